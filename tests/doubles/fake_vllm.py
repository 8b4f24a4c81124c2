"""A test double of the ``vllm`` module: ``LLM``, ``SamplingParams`` and the output classes.

It mimics the parts of vLLM's offline API that :class:`mrt_env.lm.vllm_backend.VLLMLanguageModel`
uses, on a transformers model on CPU, so the backend's contract tests run without a GPU:

- ``LLM(model=PATH, ...)`` loads a local folder with ``AutoModelForCausalLM``; engine options
  (``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``,
  ``enable_prefix_caching``, ``dtype``, ``seed``) are recorded in ``LLM.engine_args``.
- ``LLM.generate(prompts, sampling_params, use_tqdm=...)`` takes strings or
  ``{"prompt_token_ids": [...]}`` and one ``SamplingParams`` or one per prompt, and returns one
  ``RequestOutput`` per prompt in order, each with ``n`` ``CompletionOutput``.
- Stops as in vLLM: after each token the output text is searched for a stop string (at any
  offset, 0 included); the text is cut after the stop with ``include_stop_str_in_output`` and
  before it otherwise; ``finish_reason`` is ``"stop"`` with ``stop_reason`` the string. EOS ends
  a sample with ``finish_reason="stop"``, ``stop_reason=None`` and the EOS id kept in
  ``token_ids``. ``max_tokens`` gives ``"length"``.
- ``logprobs=0`` gives, per token, ``{token_id: Logprob(...)}`` of the sampled token under the
  raw model (vLLM's default ``logprobs_mode``).
- A request's ``seed`` fixes its samples whatever else is in the batch (sample ``j`` draws from a
  generator seeded with ``(seed, j)``; vLLM derives its own per-sample streams).

It decodes one token at a time without a KV cache: it is a double for behaviour, not speed.
Install it with ``monkeypatch.setitem(sys.modules, "vllm", fake_vllm)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class SamplingParams:
    """The fields of ``vllm.SamplingParams`` the backend sets (unknown keywords raise)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = 16
    include_stop_str_in_output: bool = False
    logprobs: int | None = None
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


class LLM:
    """``vllm.LLM`` on a local transformers folder (CPU, float32)."""

    def __init__(self, model: str, **engine_args: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.engine_args = engine_args
        self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
        self.hf_model = AutoModelForCausalLM.from_pretrained(
            model, dtype=torch.float32, local_files_only=True
        ).eval()
        self.generate_calls = 0

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(
        self,
        prompts: Sequence[str | dict[str, list[int]]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        self.generate_calls += 1
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = (
            [sampling_params] * len(prompts)
            if isinstance(sampling_params, SamplingParams)
            else list(sampling_params)
        )
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        return [
            self._request(str(i), p, sp)
            for i, (p, sp) in enumerate(zip(prompts, params, strict=True))
        ]

    def _request(self, request_id: str, prompt: Any, params: SamplingParams) -> RequestOutput:
        if isinstance(prompt, dict):
            ids, text = list(prompt["prompt_token_ids"]), None
        else:
            ids, text = self.tokenizer.encode(prompt), prompt
        outputs = [self._sample(ids, params, j) for j in range(params.n)]
        return RequestOutput(request_id, text, ids, outputs)

    @torch.inference_mode()
    def _sample(
        self, prompt_ids: list[int], params: SamplingParams, index: int
    ) -> CompletionOutput:
        seed = np.random.SeedSequence([params.seed or 0, index]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(seed))
        stops = [params.stop] if isinstance(params.stop, str) else list(params.stop or [])
        eos = self.tokenizer.eos_token_id
        ids: list[int] = []
        logprobs: list[dict[int, Logprob]] = []
        text, finish, reason = "", "length", None
        for _ in range(params.max_tokens or 16):
            logits = self.hf_model(torch.tensor([prompt_ids + ids])).logits[0, -1].double()
            token = _pick(logits, params, generator)
            raw = torch.log_softmax(logits, -1)[token].item()
            ids.append(token)
            logprobs.append({token: Logprob(raw, 1, self.tokenizer.decode([token]))})
            if token == eos:
                finish = "stop"
                break
            previous, text = text, self.tokenizer.decode(ids, skip_special_tokens=True)
            hit = _find(text, stops, len(text) - len(previous))
            if hit is not None:
                at, stop = hit
                text = text[: at + len(stop)] if params.include_stop_str_in_output else text[:at]
                finish, reason = "stop", stop
                break
        return CompletionOutput(
            index,
            text,
            ids,
            sum(next(iter(d.values())).logprob for d in logprobs),
            logprobs if params.logprobs is not None else None,
            finish,
            reason,
        )


def _pick(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    if params.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / params.temperature, -1)
    if params.top_p < 1:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, 0) - ordered < params.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


def _find(text: str, stops: list[str], new_chars: int) -> tuple[int, str] | None:
    """vLLM's check: a stop string in the text's new tail (offset 0 included)."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop, max(0, len(text) - new_chars - len(stop) + 1))
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    return best
