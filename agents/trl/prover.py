"""The meta-prover μ over the weights being trained, with J caches tied to a weights version.

The paper's μ is the policy being trained, forced to stop thinking. :class:`PolicyProver`
wraps a :class:`~mrt_env.prover.sampled.SampledMetaProver` (batched, cached, K forced answers,
seeds per request: common random numbers) whose language model samples with the *current*
weights: the training model itself (:class:`~mrt_env.lm.hf.HFLanguageModel` over it) or TRL's
colocated vLLM engine (:class:`VLLMEngineLM`, which TRL keeps in sync with the training
weights). Every J estimate names the weights version it must use (TRL's optimizer step); when
the version changes, the J cache and the prefix KV cache are dropped, so a cached J is never
reused across a weight update and is always reused within one.

Example:
    >>> from mrt_env.lm.scripted import ScriptedLM
    >>> from mrt_env.prover.base import ProverRequest
    >>> prover = PolicyProver(ScriptedLM(["4}"]), template="tiny", k=2)
    >>> request = ProverRequest("p", "Problem: 2+2?\\n<think>\\n", "4", "", seed=1)
    >>> [est] = prover.estimate([request], version=0)
    >>> est.j, prover.estimate([request], version=0)[0].cached
    (1.0, True)
    >>> prover.estimate([request], version=1)[0].cached  # weights changed: re-estimated
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mrt_env.lm.base import Completion, LanguageModel, SamplingParams
from mrt_env.prover.base import JEstimate, ProverRequest
from mrt_env.prover.hybrid import HybridMetaProver
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.templates import ChatTemplate


class PolicyProver:
    """μ = the current policy; J estimates cached only while the weights stay the same.

    Args:
        lm: The language model that answers (it must sample with the current weights).
        template: The env's chat template (its termination suffix forces the answer).
        k: Forced answers per J estimate.
        max_answer_tokens: Token cap of one forced answer (``None``: the template's, as in the
            env; see :meth:`~mrt_env.templates.ChatTemplate.answer_caps`).
        cache_size: J estimates kept per weights version.
    """

    def __init__(
        self,
        lm: LanguageModel,
        template: str | ChatTemplate = "tiny",
        *,
        k: int = 4,
        max_answer_tokens: int | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.prover = SampledMetaProver(
            lm, template, k=k, max_answer_tokens=max_answer_tokens, cache_size=cache_size
        )
        self.version: int | None = None
        self.invalidations = 0

    @property
    def lm(self) -> Any:
        """The answering language model."""
        return self.prover.lm

    def sync(self, version: int) -> None:
        """Drop every cache when the weights version differs from the last one used."""
        if version != self.version:
            if self.version is not None:
                self.invalidations += 1
            self.prover.clear_cache()
            clear = getattr(self.prover.lm, "clear_prefix_cache", None)
            if clear is not None:
                clear()
            self.version = version

    def estimate(self, requests: Sequence[ProverRequest], version: int) -> list[JEstimate]:
        """J for ``requests`` with the weights of ``version`` (one batched model call)."""
        self.sync(version)
        return self.prover.estimate(requests)


class HybridPolicyProver:
    """The hybrid μ on TRL: a learned μ answers every request, the current policy a share ρ.

    The share's K forced answers come from ``online`` (a :class:`PolicyProver`: current
    weights, caches tied to the weights version); those labels update the learned head once
    per optimizer step (:meth:`update`). One process only: several would each update their
    own copy of the head.

    Args:
        learned: The learned μ (``LearnedMetaProver``; its head is updated in place).
        online: The policy's own μ that labels the share.
        share: ρ, the probability that a distinct request is also sampled.
        seed: Seed of the choice of sampled requests.
    """

    source = "learned"
    """What its estimates' ``JEstimate.source`` says (every answer is the learned μ's)."""

    def __init__(self, learned: Any, online: PolicyProver, *, share: float, seed: int) -> None:
        self.online = online
        self.hybrid = HybridMetaProver(learned, online.prover, share=share, seed=seed)
        self.updated_at = 0

    @property
    def lm(self) -> Any:
        """The model that answers the sampled share (it must hold the current weights)."""
        return self.online.lm

    def estimate(self, requests: Sequence[ProverRequest], version: int) -> list[JEstimate]:
        """The learned μ's J for every request; the share sampled with ``version``'s weights."""
        self.online.sync(version)
        return self.hybrid.estimate(requests)

    def update(self, step: int) -> dict[str, float]:
        """The head's online update when ``step`` (TRL's optimizer step) moved on since the
        last one, with the metrics of :meth:`HybridMetaProver.update`; else nothing."""
        if step == self.updated_at:
            return {}
        self.updated_at = step
        return self.hybrid.update()


class VLLMEngineLM:
    """A :class:`~mrt_env.lm.base.LanguageModel` over a ``vllm.LLM`` (TRL's colocated engine).

    TRL pushes the training weights into this engine before each step's generation, so μ's
    forced answers sample with the current policy. Needs vLLM and a GPU.

    Args:
        llm: The ``vllm.LLM`` (``trainer.vllm_generation.llm``).
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        """``params.n`` samples of each prompt, prompt ``i``'s seeded by ``seeds[i]``."""
        from vllm import SamplingParams as VLLMSamplingParams

        seeds = list(seeds) if seeds is not None else [0] * len(prompts)
        settings = [
            VLLMSamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                stop=list(params.stop) or None,
                seed=seed,
                logprobs=0,
            )
            for seed in seeds
        ]
        outputs = self.llm.generate(list(prompts), settings, use_tqdm=False)
        return [[_completion(sample) for sample in output.outputs] for output in outputs]


def _completion(sample: Any) -> Completion:
    """An mrt-gym ``Completion`` of one vLLM ``CompletionOutput``."""
    ids = tuple(int(t) for t in sample.token_ids)
    logprobs = tuple(
        float(step[token].logprob) if step and token in step else float("nan")
        for step, token in zip(sample.logprobs or [{}] * len(ids), ids, strict=True)
    )
    stop = sample.stop_reason if isinstance(sample.stop_reason, str) else None
    reason = "stop" if stop else ("length" if sample.finish_reason == "length" else "eos")
    return Completion(sample.text, ids, logprobs, reason, stop)  # type: ignore[arg-type]
