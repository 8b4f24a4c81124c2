"""Hidden-state features of a meta-prover input: one forward pass, no sampling.

A learned μ reads J off the feature model's hidden state at the last token of
``template.render_meta(prompt, prefix)``: the position whose next-token distribution starts the
forced answer. :class:`FeatureExtractor` computes those states for a batch of requests, for
any set of layers, in one forward pass per padded batch.

Example:
    >>> from mrt_env.lm.testing import tiny_random_lm
    >>> from mrt_env.prover.base import ProverRequest
    >>> extractor = FeatureExtractor(tiny_random_lm(seed=0), "tiny")
    >>> request = ProverRequest("p", "Problem: 1+1?\\n<think>\\n", "2", "1+1=2.")
    >>> extractor.features([request], layers=(1,)).shape
    torch.Size([1, 1, 32])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from mrt_env.prover.base import ProverRequest
from mrt_env.templates import ChatTemplate, resolve_template


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
    """Hidden states of a transformers causal LM where the forced answer would start.

    Args:
        lm: An :class:`~mrt_env.lm.hf.HFLanguageModel` (anything with ``model``,
            ``tokenizer`` and ``encode``); its weights are only read.
        template: Template whose ``render_meta`` builds the input (preset name or instance).
        batch_size: Requests per forward pass (``None``: 64 on CUDA; 1 on CPU, where a padded
            batch takes a slower attention path: on the tiny LM 87 inputs took 1.12 s one at a
            time against 1.89 s in padded batches of 64).
    """

    def __init__(
        self,
        lm: Any,
        template: str | ChatTemplate | None = "tiny",
        *,
        batch_size: int | None = None,
    ) -> None:
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise TypeError(
                f"a learned meta-prover needs a transformers model (HFLanguageModel) as its "
                f"feature model, got {type(lm).__name__}"
            )
        if batch_size is None:
            on_cuda = next(lm.model.parameters()).device.type == "cuda"
            batch_size = 64 if on_cuda else 1
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lm = lm
        self.template = resolve_template(template, lm)
        self.batch_size = batch_size
        self.num_layers = int(lm.model.config.num_hidden_layers)
        self.hidden_size = int(lm.model.config.hidden_size)

    def input_ids(self, request: ProverRequest) -> list[int]:
        """Token ids of the meta-prover input of ``request`` (BOS when it would be empty)."""
        ids = list(self.lm.encode(self.template.render_meta(request.prompt, request.prefix)))
        if not ids:
            bos = self.lm.tokenizer.bos_token_id
            ids = [0 if bos is None else int(bos)]
        return ids

    @torch.no_grad()
    def features(
        self, requests: Sequence[ProverRequest], layers: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``[len(requests), len(layers), hidden]`` float32 states at each input's last token.

        Layer 0 is the embedding output and layer ``num_layers`` the last block's (normed)
        output, as in transformers' ``hidden_states``; ``None`` means every layer. Requests
        with the same input share one row of the forward pass.
        """
        chosen = tuple(range(self.num_layers + 1)) if layers is None else tuple(layers)
        for layer in chosen:
            if not 0 <= layer <= self.num_layers:
                raise ValueError(f"layer must be in [0, {self.num_layers}], got {layer}")
        # identical inputs (the env asks J of one prefix for every trajectory sharing it) are
        # encoded once
        distinct: dict[tuple[int, ...], int] = {}
        index = [distinct.setdefault(tuple(self.input_ids(r)), len(distinct)) for r in requests]
        encoded = [list(ids) for ids in distinct]
        out = torch.zeros(len(encoded), len(chosen), self.hidden_size)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._batch([encoded[i] for i in rows], chosen)
        return out[torch.tensor(index, dtype=torch.long)]

    def _batch(self, sequences: list[list[int]], layers: tuple[int, ...]) -> torch.Tensor:
        device = next(self.lm.model.parameters()).device
        width = max(len(s) for s in sequences)
        ids = torch.zeros(len(sequences), width, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.long)
        for row, sequence in enumerate(sequences):  # right padding: positions stay 0..n-1
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        output = self.lm.model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            output_hidden_states=True,
            use_cache=False,
        )
        last = torch.tensor([len(s) - 1 for s in sequences], device=device)
        rows = torch.arange(len(sequences), device=device)
        states = [output.hidden_states[layer][rows, last] for layer in layers]
        return torch.stack(states, dim=1).float().cpu()
