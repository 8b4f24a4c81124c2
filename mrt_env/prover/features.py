"""Features of a meta-prover input: one forward pass, no sampling.

A learned μ reads J off the feature model's hidden state at the last token of
``template.render_meta(prompt, prefix)``: the position whose next-token distribution starts the
forced answer (feature set ``"hidden"``). With ``"hidden+gold"`` the same forward pass also
reads the reference answer written after that position (teacher-forced, as in
likelihood-of-reference rewards such as VeriFree or RLPR): two more features, the answer's
log-likelihood ``s`` under the feature model and ``log(1 - e^s)``, so that a logistic probe
can represent ``J = e^s``, the chance that a forced answer is exactly the reference. The state
says what the prefix has done; the likelihood says whether what it leads to is right, which a
state alone cannot tell when the prefix's own answer is wrong but confidently stated.
:class:`FeatureExtractor` computes them for a batch of requests, for any set of layers, in one
padded forward pass per call (or per ``batch_size`` requests).

Example:
    >>> from mrt_env.lm.testing import tiny_random_lm
    >>> from mrt_env.prover.base import ProverRequest
    >>> extractor = FeatureExtractor(tiny_random_lm(seed=0), "tiny")
    >>> request = ProverRequest("p", "Problem: 1+1?\\n<think>\\n", "2", "1+1=2.")
    >>> extractor.features([request], layers=(1,)).shape
    torch.Size([1, 1, 32])
    >>> FeatureExtractor(tiny_random_lm(seed=0), "tiny", features="hidden+gold").feature_size
    34
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from mrt_env.prover.base import ProverRequest
from mrt_env.templates import ChatTemplate, resolve_template

FEATURE_SETS = ("hidden", "hidden+gold")
"""What a learned μ reads: the hidden state at the answer's start, optionally with the
reference answer's log-likelihood (see the module docstring)."""
GOLD_FEATURES = 2
"""Features appended by ``"hidden+gold"``: ``s`` and ``log(1 - e^s)``."""


def gold_continuation(meta: str, gold: str) -> str:
    r"""The reference answer as the forced answer would write it after ``meta``.

    After a termination suffix that opens the box (``...\boxed{``) it is ``gold}``; after one
    that ends a line (``tiny-explain``'s ``...</think>\n``) it is ``\boxed{gold}``; after a
    natural end of thinking (or any other suffix) it is a new line and ``\boxed{gold}``.

    Example:
        >>> gold_continuation("...</think>\n\\boxed{", "12"), gold_continuation("</think>", "12")
        ('12}', '\n\\boxed{12}')
        >>> gold_continuation("...</think>\n", "12")
        '\\boxed{12}'
    """
    if meta.endswith("\\boxed{"):
        return gold + "}"
    if meta.endswith("\n"):
        return "\\boxed{" + gold + "}"
    return "\n\\boxed{" + gold + "}"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of a tokenizer's vocabulary (two tokenizers that agree on it match).

    Example:
        >>> from mrt_env.lm.testing import char_tokenizer
        >>> tokenizer_fingerprint(char_tokenizer()) == tokenizer_fingerprint(char_tokenizer())
        True
    """
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


def model_fingerprint(model: Any) -> str:
    """A short hash of a model's weights (names, shapes and a strided sample of values).

    Cheap on any size (at most 4096 values per tensor are read, rounded to bfloat16, so a
    checkpoint loaded in float32 or bfloat16 gives the same fingerprint); different
    checkpoints of one architecture differ in it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        # through bfloat16: the same checkpoint loaded in float32 or bfloat16 matches
        sample = flat[::step][:4096].to(torch.bfloat16).to("cpu", torch.float32).numpy()
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()[:16]


class FeatureExtractor:
    """Features of a transformers causal LM where the forced answer would start.

    Args:
        lm: An :class:`~mrt_env.lm.hf.HFLanguageModel` (anything with ``model``,
            ``tokenizer`` and ``encode``); its weights are only read (in eval mode; a model in
            training mode is put back in it afterwards).
        template: Template whose ``render_meta`` builds the input (preset name or instance).
        batch_size: Requests per forward pass (``None``: every request of a call in one
            right-padded pass, as a learned μ is used in training).
        features: ``"hidden"`` or ``"hidden+gold"`` (see the module docstring).
        max_batch_tokens: Cap on the padded tokens (rows × longest input) of one pass; a
            larger call is split into passes of length-sorted requests under it (memory).
    """

    def __init__(
        self,
        lm: Any,
        template: str | ChatTemplate | None = "tiny",
        *,
        batch_size: int | None = None,
        features: str = "hidden",
        max_batch_tokens: int = 65536,
    ) -> None:
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise TypeError(
                f"a learned meta-prover needs a transformers model (HFLanguageModel) as its "
                f"feature model, got {type(lm).__name__}"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        if features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {FEATURE_SETS}, got {features!r}")
        self.lm = lm
        self.template = resolve_template(template, lm)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.feature_set = features
        self.num_layers = int(lm.model.config.num_hidden_layers)
        self.hidden_size = int(lm.model.config.hidden_size)
        self.feature_size = self.hidden_size + (GOLD_FEATURES if self.gold else 0)

    @property
    def gold(self) -> bool:
        """Whether the reference answer's log-likelihood is part of the features."""
        return self.feature_set == "hidden+gold"

    def input_ids(self, request: ProverRequest) -> list[int]:
        """Token ids of the meta-prover input of ``request`` (BOS when it would be empty)."""
        ids = list(self.lm.encode(self.template.render_meta(request.prompt, request.prefix)))
        if not ids:
            bos = self.lm.tokenizer.bos_token_id
            ids = [0 if bos is None else int(bos)]
        return ids

    def gold_ids(self, request: ProverRequest) -> list[int]:
        """Token ids of the reference answer written after the meta-prover input."""
        meta = self.template.render_meta(request.prompt, request.prefix)
        return list(self.lm.encode(gold_continuation(meta, request.gold)))

    @torch.no_grad()
    def features(
        self, requests: Sequence[ProverRequest], layers: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``[len(requests), len(layers), feature_size]`` float32 features.

        The hidden states are those at each input's last token; layer 0 is the embedding
        output and layer ``num_layers`` the last block's (normed) output, as in transformers'
        ``hidden_states``; ``None`` means every layer. With ``"hidden+gold"`` every layer's
        vector ends with the reference answer's ``s`` and ``log(1 - e^s)``. Requests with the
        same input share one row of the forward pass.
        """
        chosen = tuple(range(self.num_layers + 1)) if layers is None else tuple(layers)
        for layer in chosen:
            if not 0 <= layer <= self.num_layers:
                raise ValueError(f"layer must be in [0, {self.num_layers}], got {layer}")
        # identical inputs (the env asks J of one prefix for every trajectory sharing it) are
        # encoded once
        distinct: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        index = [
            distinct.setdefault(
                (tuple(self.input_ids(r)), tuple(self.gold_ids(r) if self.gold else ())),
                len(distinct),
            )
            for r in requests
        ]
        encoded = [(list(ids), list(gold)) for ids, gold in distinct]
        out = torch.zeros(len(encoded), len(chosen), self.feature_size)
        lengths = [sum(map(len, pair)) for pair in encoded]
        model = self.lm.model
        was_training = model.training
        model.eval()
        try:
            for rows in self._passes(lengths):
                out[rows] = self._batch([encoded[i] for i in rows], chosen)
        finally:
            model.train(was_training)
        return out[torch.tensor(index, dtype=torch.long)]

    def _passes(self, lengths: list[int]) -> list[list[int]]:
        """Request indices of each forward pass: sorted by length, at most ``batch_size``
        requests and (beyond one request) ``max_batch_tokens`` padded tokens per pass."""
        passes: list[list[int]] = []
        for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            last = passes[-1] if passes else None
            full = last is None or (self.batch_size is not None and len(last) >= self.batch_size)
            if full or (len(last or []) + 1) * lengths[i] > self.max_batch_tokens:
                passes.append([i])
            else:
                assert last is not None
                last.append(i)
        return passes

    def _batch(
        self, sequences: list[tuple[list[int], list[int]]], layers: tuple[int, ...]
    ) -> torch.Tensor:
        device = next(self.lm.model.parameters()).device
        full = [meta + gold for meta, gold in sequences]
        width = max(len(s) for s in full)
        ids = torch.zeros(len(full), width, dtype=torch.long)
        mask = torch.zeros(len(full), width, dtype=torch.long)
        for row, sequence in enumerate(full):  # right padding: positions stay 0..n-1
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        output = self.lm.model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            output_hidden_states=True,
            use_cache=False,
            logits_to_keep=1,
        )
        last = torch.tensor([len(meta) - 1 for meta, _ in sequences], device=device)
        rows = torch.arange(len(full), device=device)
        states = torch.stack([output.hidden_states[i][rows, last] for i in layers], dim=1)
        states = states.float().cpu()
        if not self.gold:
            return states
        scores = self._gold_scores(output.hidden_states[-1], sequences)
        return torch.cat([states, scores[:, None, :].expand(-1, len(layers), -1)], dim=2)

    def _gold_scores(
        self, last_hidden: torch.Tensor, sequences: list[tuple[list[int], list[int]]]
    ) -> torch.Tensor:
        """``[n, 2]``: ``s`` = log-likelihood of each reference answer and ``log(1 - e^s)``."""
        head = self.lm.model.get_output_embeddings()
        scores = torch.zeros(len(sequences), GOLD_FEATURES)
        for row, (meta, gold) in enumerate(sequences):
            positions = torch.arange(len(meta) - 1, len(meta) + len(gold) - 1)
            logits = head(last_hidden[row, positions.to(last_hidden.device)]).double()
            targets = torch.tensor(gold, device=logits.device)
            s = logits.log_softmax(-1).gather(1, targets[:, None]).sum().cpu()
            s = s.clamp(max=-1e-9)  # log(1 - e^s) stays finite
            scores[row] = torch.stack([s, torch.log(-torch.expm1(s))]).float()
        return scores
