"""A :class:`~mrt_env.lm.base.LanguageModel` on vLLM's in-process engine (``vllm.LLM``).

``vllm`` is imported only when a model is built (the ``mrt-gym[vllm]`` extra). One
``generate`` call is one ``LLM.generate`` call: each prompt is one request with
``SamplingParams(n=K, seed=...)``, so the K forced answers of a meta-prover prefix share one
prefill and vLLM's prefix cache shares prefixes across requests. Prompts go in as token ids
(encoded without special tokens, like :class:`~mrt_env.lm.hf.HFLanguageModel`; prompts that need
a BOS token must contain it).

Stops follow the protocol exactly: vLLM is asked to keep the stop string in the text
(``include_stop_str_in_output``), the text is cut at the earliest stop at offset >= 1, and a
sample vLLM ended at a stop at offset 0 is resumed from its own sampled tokens (prompt ids +
those tokens, a derived seed, the remaining budget) in one more batched call.

Example (needs vLLM and a GPU):
    >>> lm = VLLMLanguageModel.from_pretrained("Qwen/Qwen2.5-0.5B")  # doctest: +SKIP
    >>> [[c]] = lm.generate(["1+1="], SamplingParams(max_new_tokens=4), seeds=[0])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mrt_env.lm.base import Completion, FinishReason, SamplingParams, find_stop, resolve_seeds
from mrt_env.lm.openai_server import derive_seed

__all__ = ["VLLMLanguageModel"]


@dataclass
class _Pending:
    """A sample in progress: its prompt ids, tokens so far and how it ended."""

    prompt_ids: list[int]
    seed: int
    index: int
    ids: list[int]
    logprobs: list[float]
    text: str = ""
    finish: FinishReason = "length"
    stop: str | None = None


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("VLLMLanguageModel needs vLLM: pip install 'mrt-gym[vllm]'") from error


class VLLMLanguageModel:
    """:class:`~mrt_env.lm.base.LanguageModel` over a ``vllm.LLM``.

    Args:
        llm: A ``vllm.LLM`` (see :meth:`from_pretrained`).
        name: Display name.
        logprobs: Ask vLLM for each sampled token's log-probability (its default
            ``logprobs_mode`` gives the raw model's, as the protocol asks); without it
            ``Completion.logprobs`` are NaN.
        seed: Seed of the generator that draws prompt seeds when ``generate`` gets none.
    """

    def __init__(self, llm: Any, *, name: str = "vllm", logprobs: bool = True, seed: int = 0):
        self.llm = llm
        self.name = name
        self.want_logprobs = logprobs
        self.tokenizer = llm.get_tokenizer()
        self._vllm = _import_vllm()
        self._rng = np.random.default_rng(seed)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        self._eos_ids = {int(eos)} if eos is not None else set()

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        dtype: str = "auto",
        seed: int = 0,
        logprobs: bool = True,
        **llm_kwargs: Any,
    ) -> VLLMLanguageModel:
        """Start a ``vllm.LLM`` on ``path_or_id`` (prefix caching on by default).

        ``llm_kwargs`` go to ``vllm.LLM`` unchanged (e.g. ``enforce_eager=True``).
        """
        vllm = _import_vllm()
        llm = vllm.LLM(
            model=path_or_id,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
            dtype=dtype,
            seed=seed,
            **llm_kwargs,
        )
        return cls(llm, name=path_or_id, logprobs=logprobs, seed=seed)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` (special tokens skipped)."""
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under :meth:`encode`."""
        return len(self.encode(text))

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """``params.n`` completions per prompt: one ``LLM.generate`` call (two when a sample
        must be resumed past a stop at offset 0)."""
        seeds = resolve_seeds(prompts, seeds, self._rng)
        if not prompts:
            return []
        if params.max_new_tokens == 0:
            return [[Completion("", (), (), "length") for _ in range(params.n)] for _ in prompts]
        ids = [self._prompt_ids(p) for p in prompts]
        requests = [
            (i, derive_seed(s), params.n, params.max_new_tokens)
            for i, s in zip(ids, seeds, strict=True)
        ]
        pending = [p for group in self._run(requests, params) for p in group]
        self._resume(pending, params)
        done = [self._completion(p) for p in pending]
        return [done[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.encode(prompt)
        if ids:
            return ids
        bos = getattr(self.tokenizer, "bos_token_id", None)
        if bos is None:
            raise ValueError("cannot generate from an empty prompt: the tokenizer has no BOS token")
        return [int(bos)]

    def _run(
        self, requests: list[tuple[list[int], int, int, int]], params: SamplingParams
    ) -> list[list[_Pending]]:
        """One ``LLM.generate`` call: ``(prompt ids, seed, n, max tokens)`` per request."""
        vllm = self._vllm
        sampling = [
            vllm.SamplingParams(
                n=n,
                seed=seed,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=max_tokens,
                stop=list(params.stop) or None,
                include_stop_str_in_output=True,
                logprobs=0 if self.want_logprobs else None,
                skip_special_tokens=True,
            )
            for _, seed, n, max_tokens in requests
        ]
        prompts = [{"prompt_token_ids": ids} for ids, *_ in requests]
        outputs = self.llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        return [
            [self._pending(ids, seed, o, params) for o in sorted(out.outputs, key=_index)]
            for (ids, seed, *_), out in zip(requests, outputs, strict=True)
        ]

    def _pending(
        self, prompt_ids: list[int], seed: int, output: Any, params: SamplingParams
    ) -> _Pending:
        ids = list(output.token_ids)
        steps = output.logprobs or []
        logprobs = [_sampled_logprob(step, t) for step, t in zip(steps, ids, strict=False)]
        sample = _Pending(prompt_ids, seed, int(output.index), ids, logprobs, str(output.text))
        if output.finish_reason == "length":
            sample.finish = "length"
        elif isinstance(output.stop_reason, str):
            sample.finish, sample.stop = "stop", output.stop_reason
        else:  # EOS or a stop token id of the model's generation config, kept by vLLM
            sample.finish = "eos"
            if ids and output.stop_reason in (None, ids[-1]) and ids[-1] in self._eos_ids:
                del ids[-1], logprobs[len(ids) :]
        found = find_stop(sample.text, params.stop)
        if found is not None:
            sample.text, sample.finish, sample.stop = sample.text[: found[0]], "stop", found[1]
        return sample

    def _resume(self, pending: list[_Pending], params: SamplingParams) -> None:
        """Continue samples that vLLM stopped at a stop string at offset 0 (ignored there)."""
        at_start = [
            (k, p)
            for k, p in enumerate(pending)
            if p.finish == "stop" and p.stop is not None and p.text == p.stop
        ]
        todo = [(k, p) for k, p in at_start if len(p.ids) < params.max_new_tokens]
        for _, p in at_start:
            if len(p.ids) >= params.max_new_tokens:
                p.finish, p.stop = "length", None
        if not todo:
            return
        requests = [
            (
                p.prompt_ids + p.ids,
                derive_seed(p.seed, p.index, 1),
                1,
                params.max_new_tokens - len(p.ids),
            )
            for _, p in todo
        ]
        for (_, first), [rest] in zip(todo, self._run(requests, params), strict=True):
            first.text += rest.text
            first.ids += rest.ids
            first.logprobs += rest.logprobs
            first.finish, first.stop = rest.finish, rest.stop
            found = find_stop(first.text, params.stop)
            if found is not None:
                first.text, first.finish, first.stop = first.text[: found[0]], "stop", found[1]

    def _completion(self, sample: _Pending) -> Completion:
        ids = sample.ids
        if sample.finish == "stop":
            count = len(ids)
            while count and not sample.text.startswith(self.decode(ids[:count])):
                count -= 1
            ids = ids[:count]
        logprobs = (
            tuple(sample.logprobs[: len(ids)]) if self.want_logprobs else (float("nan"),) * len(ids)
        )
        return Completion(sample.text, tuple(ids), logprobs, sample.finish, sample.stop)


def _index(output: Any) -> int:
    return int(output.index)


def _sampled_logprob(step: Any, token: int) -> float:
    """The log-probability of ``token`` in one position of vLLM's ``logprobs``."""
    entry = step[token]
    return float(getattr(entry, "logprob", entry))
