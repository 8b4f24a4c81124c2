"""A transformers backend with a hand-written batched sampling loop over the KV cache.

:class:`HFLanguageModel` prefills each distinct prompt once (bucketed by length, reusing cached
prefixes of earlier prompts), expands each prompt's cache ``n`` times, and decodes every sample
of every prompt together, one forward pass per new token. It runs unchanged on CPU (float32)
and CUDA (bfloat16). Memory grows with what is used: each row's keys/values grow in chunks as
it decodes, finished rows are dropped, and the rows decoded together are bounded by free memory.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mrt_env.lm.base import Completion, SamplingParams, resolve_seeds
from mrt_env.lm.kv import (
    KVBatch,
    PrefixKVCache,
    PrefixMatch,
    default_prefix_cache_bytes,
    free_memory_bytes,
    kv_bytes_per_token,
    make_cache,
    stack_prefixes,
)
from mrt_env.lm.planning import decode_rows_for_memory, plan_buckets, plan_waves
from mrt_env.lm.sampling import (
    SAMPLING_BYTES_PER_VOCAB_ENTRY,
    GenerationStats,
    SampleState,
    check_stops,
    draw_uniforms,
    sample_seed,
    sample_tokens,
)


class HFLanguageModel:
    """:class:`~mrt_env.lm.base.LanguageModel` over a transformers causal LM.

    Tokens are those of the model's tokenizer. ``encode``/``count_tokens`` add no special tokens
    (``add_special_tokens=False`` by default), so ``count_tokens(p + e) - count_tokens(p)``
    measures the episode ``e``; prompts that need a BOS token must contain it (chat templates
    such as R1's spell it out). Decoded text skips special tokens. A sample that ends with EOS
    does not include the EOS token in ``token_ids``; one that ends at a stop string keeps only
    the tokens that end before the stop string. Results depend only on each prompt's seed, up to
    floating-point differences between batch shapes. Models with sliding-window attention are
    not supported (the cache plumbing assumes full attention).

    Args:
        model: A transformers ``*ForCausalLM`` (moved nowhere; use its device and dtype).
        tokenizer: Its tokenizer.
        name: Display name (defaults to the model's ``name_or_path``).
        add_special_tokens: Whether ``encode`` adds the tokenizer's special tokens.
        prefix_cache_size: Prompts whose keys/values are kept for reuse (0 disables reuse).
        prefix_cache_max_tokens: Cap on tokens held by the prefix cache (``None``: none).
        prefix_cache_max_bytes: Cap on the bytes of keys/values held by the prefix cache.
            ``None``: 2 GiB on CPU; on CUDA 20% of the device's memory (28 GB on a 141 GB GPU:
            ~1M tokens of DeepSeek-R1-Distill-Qwen-1.5B in bfloat16, so 64 trajectories of
            16k tokens keep their prefixes).
        max_prefill_tokens: Cap on positions (padding included) of one prefill forward pass.
        padding_tolerance: A prefill bucket grows while its padded size stays within
            ``1 + padding_tolerance`` times its real tokens (or within ``padding_slack``
            padded positions). ``None``: 0.25 on CUDA; 0 on CPU, where a padded batch falls
            back to a slower attention kernel than one prompt at a time.
        padding_slack: Padded positions a bucket may always hold (``None``: 256 on CUDA,
            0 on CPU).
        min_shared_tokens: A prompt waits for a shorter prompt of the same call to be
            prefilled and cached when it would reuse at least this many more tokens that way.
        max_decode_rows: Most samples decoded together. ``None``: as many as fit
            ``decode_memory_fraction`` of the free memory when each row's keys/values grow to
            the longest prompt + ``max_new_tokens`` (CUDA: ``torch.cuda.mem_get_info``; CPU: the
            available RAM). Results do not depend on it.
        decode_memory_fraction: Share of free memory the automatic ``max_decode_rows`` plans
            to fill.
        kv_growth_tokens: Decoding reserves keys/values for this many new positions and grows
            a full cache by as many (``None``: reserve ``max_new_tokens`` for every row up front).
            Results do not depend on it.
        compute_dtype: Run forward passes under ``torch.autocast`` in this dtype (e.g.
            bfloat16 sampling from float32 master weights that are being trained; the weight
            casts are made once per ``generate`` call). ``None``: the weights' own dtype.
        seed: Seed of the generator that draws prompt seeds when ``generate`` gets none.

    Example:
        >>> from mrt_env.lm.testing import tiny_random_lm
        >>> lm = tiny_random_lm(seed=0)
        >>> params = SamplingParams(max_new_tokens=4, temperature=0.0, n=2)
        >>> out = lm.generate(["a", "ab"], params, seeds=[0, 1])
        >>> len(out), len(out[0]), out[0][0].text == out[0][1].text
        (2, 2, True)
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        add_special_tokens: bool = False,
        prefix_cache_size: int = 256,
        prefix_cache_max_tokens: int | None = None,
        prefix_cache_max_bytes: int | None = None,
        max_prefill_tokens: int = 16_384,
        padding_tolerance: float | None = None,
        padding_slack: int | None = None,
        min_shared_tokens: int = 32,
        max_decode_rows: int | None = None,
        decode_memory_fraction: float = 0.5,
        kv_growth_tokens: int | None = 256,
        compute_dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        self.add_special_tokens = add_special_tokens
        self.max_prefill_tokens = max_prefill_tokens
        on_cuda = self.device.type == "cuda"
        self.padding_tolerance = (
            (0.25 if on_cuda else 0.0) if padding_tolerance is None else padding_tolerance
        )
        for option, value in (
            ("max_decode_rows", max_decode_rows),
            ("kv_growth_tokens", kv_growth_tokens),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{option} must be >= 1 or None, got {value}")
        if not 0 < decode_memory_fraction <= 1:
            raise ValueError(
                f"decode_memory_fraction must be in (0, 1], got {decode_memory_fraction}"
            )
        self.max_decode_rows = max_decode_rows
        self.decode_memory_fraction = decode_memory_fraction
        self.kv_growth_tokens = kv_growth_tokens
        self.compute_dtype = compute_dtype
        self.min_shared_tokens = min_shared_tokens
        self.padding_slack = (256 if on_cuda else 0) if padding_slack is None else padding_slack
        self.stats = GenerationStats()
        if prefix_cache_max_bytes is None:
            prefix_cache_max_bytes = default_prefix_cache_bytes(self.device)
        self.prefix_cache = PrefixKVCache(
            prefix_cache_size, prefix_cache_max_tokens, prefix_cache_max_bytes
        )
        self._rng = np.random.default_rng(seed)
        self.eos_token_ids = self._find_eos_ids()
        self._pad_id = next(
            (i for i in (tokenizer.pad_token_id, self.eos_token_id) if i is not None), 0
        )
        parameters = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in parameters else "past_key_values"
        self._keep_kwarg = next(
            (k for k in ("logits_to_keep", "num_logits_to_keep") if k in parameters), None
        )

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        *,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> HFLanguageModel:
        """Load a model and tokenizer with transformers' ``Auto*`` classes.

        A hub id is downloaded into the Hugging Face cache when the network is there (the
        normal ``from_pretrained`` behaviour); offline (``HF_HUB_OFFLINE=1``, no network or
        ``local_files_only=True``) only the local cache is read.

        Args:
            path_or_id: Local directory or Hugging Face model id.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            dtype: Weight dtype (a ``torch.dtype`` or its name); defaults to bfloat16 on CUDA
                and float32 on CPU.
            local_files_only: ``True`` never downloads; ``None`` (default) follows
                transformers (download unless ``HF_HUB_OFFLINE=1``).
            **kwargs: Passed to the constructor (``prefix_cache_size``, ``max_decode_rows``,
                ...).

        Raises:
            OSError: If ``path_or_id`` is neither a local model folder nor a model in the local
                cache while offline (the message says how to provide it), or not a model.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype is None:
            dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        hub: dict[str, Any] = {}
        if local_files_only is not None:
            hub["local_files_only"] = local_files_only
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_id, **hub)
            model: Any = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype, **hub)
        except (OSError, ValueError) as error:
            if isinstance(error, ValueError) and not os.path.isdir(path_or_id):
                raise
            raise OSError(_load_error(path_or_id, local_files_only, error)) from error
        kwargs.setdefault("name", path_or_id)
        return cls(model.to(device).eval(), tokenizer, **kwargs)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.model.parameters()).device

    @property
    def eos_token_id(self) -> int | None:
        """The tokenizer's end-of-sequence token id (any of :attr:`eos_token_ids` ends a sample)."""
        eos = self.tokenizer.eos_token_id
        return eos if eos is not None else min(self.eos_token_ids, default=None)

    def _find_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        config = getattr(self.model, "generation_config", None)
        for value in (getattr(config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value is not None:
                ids.update(int(v) for v in value)
        return frozenset(ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens added only if ``add_special_tokens``)."""
        return list(self.tokenizer.encode(text, add_special_tokens=self.add_special_tokens))

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` (special tokens skipped)."""
        return str(self._decode_many([list(token_ids)])[0])

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under :meth:`encode`."""
        return len(self.encode(text))

    def clear_prefix_cache(self) -> None:
        """Forget every cached prompt prefix."""
        self.prefix_cache.clear()

    def _decode_many(self, sequences: list[list[int]]) -> list[str]:
        return list(
            self.tokenizer.batch_decode(
                sequences, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        )

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """Sample ``params.n`` continuations of every prompt (see the class docs).

        Sample ``j`` of prompt ``i`` draws its randomness from a generator seeded with
        ``(seeds[i], j)``. Without ``seeds``, prompt seeds come from this object's generator.
        """
        seeds = resolve_seeds(prompts, seeds, self._rng)
        if not prompts:
            return []
        if params.max_new_tokens == 0:
            return [[Completion("", (), (), "length") for _ in range(params.n)] for _ in prompts]
        with torch.inference_mode(), self._autocast():
            ids = [self._prompt_ids(p) for p in prompts]
            distinct = list(dict.fromkeys(tuple(i) for i in ids))
            where = {key: index for index, key in enumerate(distinct)}
            parts, logits, located = self._prefill([list(k) for k in distinct])
            sources = [located[where[tuple(i)]] for i in ids]
            row_seeds = [sample_seed(s, j) for s in seeds for j in range(params.n)]
            uniforms = draw_uniforms(row_seeds, params.max_new_tokens)
            rows_per_call = self.decode_rows(max(len(i) for i in ids), params.max_new_tokens)
            chunk = max(1, rows_per_call // params.n)
            reserve = min(params.max_new_tokens, self.kv_growth_tokens or params.max_new_tokens)
            samples = []
            for start in range(0, len(ids), chunk):
                group = sources[start : start + chunk]
                batch = KVBatch.expand(parts, group, params.n, reserve, self.kv_growth_tokens)
                first = torch.stack([logits[p][r] for p, r in group])
                rows = slice(start * params.n, (start + len(group)) * params.n)
                samples += self._decode(
                    batch, first.repeat_interleave(params.n, dim=0), params, uniforms[rows]
                )
        completions = self._completions(samples)
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def decode_rows(self, prompt_tokens: int, max_new_tokens: int) -> int:
        """Samples decoded together for prompts of up to ``prompt_tokens`` tokens.

        ``max_decode_rows`` when set; otherwise as many rows as fit ``decode_memory_fraction``
        of the free memory, each with keys/values for ``prompt_tokens + max_new_tokens``
        positions and its sampling buffers over the vocabulary.
        """
        if self.max_decode_rows is not None:
            return self.max_decode_rows
        dtype = self.compute_dtype or next(self.model.parameters()).dtype
        per_row = (prompt_tokens + max_new_tokens) * kv_bytes_per_token(self.model.config, dtype)
        per_row += SAMPLING_BYTES_PER_VOCAB_ENTRY * int(self.model.config.vocab_size)
        free = free_memory_bytes(self.device)
        return decode_rows_for_memory(free, per_row, self.decode_memory_fraction)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = self.compute_dtype
        if dtype is None or dtype == next(self.model.parameters()).dtype:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.encode(prompt)
        if ids:
            return ids
        bos = self.tokenizer.bos_token_id
        if bos is None:
            raise ValueError("cannot generate from an empty prompt: the tokenizer has no BOS token")
        return [bos]

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: object
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {self._cache_kwarg: cache, "use_cache": True}
        if self._keep_kwarg is not None:
            kwargs[self._keep_kwarg] = 1
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **kwargs)
        self.stats.forward_calls += 1
        return out.logits[:, -1, :]

    def _prefill(
        self, prompts: list[list[int]]
    ) -> tuple[list[KVBatch], list[torch.Tensor], list[tuple[int, int]]]:
        """Prefill distinct prompts.

        Returns:
            The prefilled batches, their last-position logits, and for each prompt its
            ``(batch index, row)``.

        Prompts go in waves: a prompt that shares a long prefix with a shorter prompt of the
        same call waits until that one is cached, then reuses it (growing thinking prefixes).
        """
        parts: list[KVBatch] = []
        logits: list[torch.Tensor] = []
        located = [(0, 0)] * len(prompts)
        for wave in self._waves(prompts):
            matches = {i: self.prefix_cache.lookup(prompts[i]) for i in wave}
            for bucket in self._buckets([prompts[i] for i in wave], [matches[i] for i in wave]):
                members = [wave[b] for b in bucket]
                batch, bucket_logits = self._prefill_bucket(
                    [prompts[i] for i in members], [matches[i] for i in members]
                )
                for row, i in enumerate(members):
                    self.prefix_cache.store(prompts[i], batch.row(row))
                    located[i] = (len(parts), row)
                parts.append(batch)
                logits.append(bucket_logits)
        return parts, logits, located

    def _waves(self, prompts: list[list[int]]) -> list[list[int]]:
        if self.prefix_cache.max_entries <= 0:
            return [list(range(len(prompts)))]
        return plan_waves(prompts, self.prefix_cache.reusable_length, self.min_shared_tokens)

    def _buckets(self, prompts: list[list[int]], matches: list[PrefixMatch]) -> list[list[int]]:
        new = [len(ids) - m.length for ids, m in zip(prompts, matches, strict=True)]
        return plan_buckets(
            new, self.padding_tolerance, self.padding_slack, self.max_prefill_tokens
        )

    def _prefill_bucket(
        self, prompts: list[list[int]], matches: list[PrefixMatch]
    ) -> tuple[KVBatch, torch.Tensor]:
        reused = max(m.length for m in matches)
        width = max(len(ids) - m.length for ids, m in zip(prompts, matches, strict=True))
        mask = torch.zeros(len(prompts), reused + width, dtype=torch.long)
        input_ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        positions = torch.zeros(len(prompts), width, dtype=torch.long)
        for row, (ids, m) in enumerate(zip(prompts, matches, strict=True)):
            new = len(ids) - m.length
            mask[row, reused - m.length : reused] = 1
            mask[row, reused + width - new :] = 1
            input_ids[row, width - new :] = torch.tensor(ids[m.length :])
            positions[row, width - new :] = torch.arange(m.length, len(ids))
        cache = make_cache(stack_prefixes(matches, reused))
        device = self.device
        mask = mask.to(device)
        logits = self._forward(input_ids.to(device), mask, positions.to(device), cache)
        self.stats.prefill_calls += 1
        new_tokens = sum(len(ids) - m.length for ids, m in zip(prompts, matches, strict=True))
        self.stats.prefill_tokens += new_tokens
        self.stats.prefill_padded_tokens += len(prompts) * width
        self.stats.reused_prefix_tokens += sum(m.length for m in matches)
        self.stats.prefix_cache_hits += sum(m.length > 0 for m in matches)
        next_position = torch.tensor([len(ids) for ids in prompts], device=device)
        return KVBatch(cache, mask, next_position), logits

    def _decode(
        self, batch: KVBatch, logits: torch.Tensor, params: SamplingParams, uniforms: torch.Tensor
    ) -> list[SampleState]:
        """Sample every row to completion, one forward pass per new token."""
        samples = [SampleState() for _ in range(logits.shape[0])]
        live = list(range(len(samples)))
        for step in range(params.max_new_tokens):
            tokens, logprobs = sample_tokens(
                logits, uniforms[live, step], params.temperature, params.top_p
            )
            self._record(samples, live, tokens.tolist(), logprobs.tolist())
            if params.stop:
                check_stops(samples, live, params.stop, self._decode_many)
            keep = [b for b, r in enumerate(live) if samples[r].finish is None]
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(keep) <= len(live) // 2:
                index = torch.tensor(keep, device=logits.device)
                remaining = params.max_new_tokens - step
                reserve = min(remaining, self.kv_growth_tokens or remaining)
                batch = batch.select(index, reserve, self.kv_growth_tokens)
                tokens = tokens[index]
                live = [live[b] for b in keep]
            batch, logits = self._step(batch, tokens)
        for sample in samples:
            sample.finish = sample.finish or "length"
        return samples

    def _record(
        self, samples: list[SampleState], live: list[int], tokens: list[int], logprobs: list[float]
    ) -> None:
        for row, token, logprob in zip(live, tokens, logprobs, strict=True):
            sample = samples[row]
            if sample.finish is not None:
                continue
            if token in self.eos_token_ids:
                sample.finish = "eos"
                continue
            sample.tokens.append(token)
            sample.logprobs.append(logprob)
            self.stats.generated_tokens += 1

    def _step(self, batch: KVBatch, tokens: torch.Tensor) -> tuple[KVBatch, torch.Tensor]:
        ones = torch.ones(batch.mask.shape[0], 1, dtype=batch.mask.dtype, device=batch.mask.device)
        mask = torch.cat([batch.mask, ones], dim=1)
        logits = self._forward(
            tokens.unsqueeze(1), mask, batch.next_position.unsqueeze(1), batch.cache
        )
        self.stats.decode_steps += 1
        return KVBatch(batch.cache, mask, batch.next_position + 1), logits

    def _completions(self, samples: list[SampleState]) -> list[Completion]:
        texts = self._decode_many([s.tokens for s in samples])
        return [
            Completion(
                text=s.text if s.text is not None else text,
                token_ids=tuple(s.tokens),
                logprobs=tuple(s.logprobs),
                finish_reason=s.finish or "length",
                stop_string=s.stop,
            )
            for s, text in zip(samples, texts, strict=True)
        ]


def _load_error(path_or_id: str, local_files_only: bool | None, error: Exception) -> str:
    """Why ``from_pretrained`` failed, and how to provide the model."""
    if os.path.isdir(path_or_id):
        return f"{path_or_id!r} is a folder but not a loadable model ({error})"
    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true")
    why = "offline (HF_HUB_OFFLINE=1 or local_files_only=True)" if offline else "not downloadable"
    return (
        f"model {path_or_id!r} is not a local folder and not in the local Hugging Face cache, "
        f"and it is {why}. Download it where there is a network "
        f"(`huggingface-cli download {path_or_id}`, or any from_pretrained call), or pass the "
        f"path of a local model folder (config.json, weights, tokenizer) instead. ({error})"
    )
