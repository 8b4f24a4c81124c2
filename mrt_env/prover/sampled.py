"""The sampled meta-prover: J(prefix) estimated from K forced answers of a language model."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from mrt_env.lm.base import LanguageModel, SamplingParams
from mrt_env.prover.base import JEstimate, ProverRequest
from mrt_env.templates import ChatTemplate, resolve_template

CacheKey = tuple[Any, ...]
"""What a J estimate is cached by: the request's problem id, gold, prompt and prefix, and the
prover's settings that change what J means (K, sampling parameters, template, verifier)."""


class BatchVerifier(Protocol):
    """Anything with ``verify_many(pairs)`` returning objects with a ``correct`` flag."""

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> Sequence[Any]: ...


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% for ``z = 1.96``).

    Example:
        >>> low, high = wilson_interval(4, 8)
        >>> round(low, 3), round(high, 3)
        (0.215, 0.785)
    """
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class ProverStats:
    """Work counters of a :class:`SampledMetaProver` (cumulative; call :meth:`reset`).

    Attributes:
        requests: Requests received.
        cache_hits: Requests answered from the J cache of earlier calls.
        duplicates: Requests that repeated another request of the same call.
        unique_prefixes: Distinct requests (problem, gold, prompt, prefix) estimated by sampling.
        generated_answers: Forced answers sampled (``unique_prefixes * k``).
        answered: Forced answers that contain a final answer the verifier could read (status
            other than ``no_answer``); ``answered / generated_answers`` near 0 means the answer
            cap cuts answers off before their ``\\boxed{}``.
        model_calls: ``generate`` calls made (at most one per ``estimate`` call).
        generate_seconds: Wall time spent in ``generate``.
        verify_seconds: Wall time spent verifying forced answers.
    """

    requests: int = 0
    cache_hits: int = 0
    duplicates: int = 0
    unique_prefixes: int = 0
    generated_answers: int = 0
    answered: int = 0
    model_calls: int = 0
    generate_seconds: float = 0.0
    verify_seconds: float = 0.0

    def reset(self) -> None:
        """Set every counter to zero."""
        for name, value in asdict(self).items():
            setattr(self, name, type(value)())

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return asdict(self)

    @property
    def answered_share(self) -> float:
        """Share of forced answers with a readable final answer (``nan`` before any).

        Example:
            >>> ProverStats(generated_answers=8, answered=6).answered_share
            0.75
        """
        if not self.generated_answers:
            return float("nan")
        return self.answered / self.generated_answers


class SampledMetaProver:
    """Estimate J by forcing the model to answer from each thinking prefix, K times.

    For each request, the input is ``template.render_meta(prompt, prefix)``: the prefix
    followed by the termination suffix that closes the thinking or, for a prefix that has
    already ended thinking, the natural end (the prefix up to ``end_think``, no suffix). K
    answers are sampled with the request's seed and each is verified as the response
    ``render_meta(prompt, prefix)[len(prompt):] + answer`` against the gold answer. J is the
    fraction verified correct, with a 95% Wilson interval.

    One ``estimate`` call makes at most one ``generate`` call: identical requests of the call
    are estimated once (the empty prefix shared by a group of trajectories, for instance), each
    distinct input is prefilled once and its cache shared by its K samples (with
    :class:`~mrt_env.lm.hf.HFLanguageModel`), and estimates are cached in an LRU keyed on
    everything that determines J: the request's problem id, gold answer, prompt and prefix, and
    the prover's K, sampling parameters (answer cap, temperature, top-p, stop strings), template
    and verifier, read at each call (changing ``prover.params`` cannot serve a stale J). The
    seed is not in the key: it picks the Monte-Carlo noise of an estimate, not the quantity
    estimated, so a request answered by the cache or by a duplicate reuses that estimate,
    whatever its own seed (a group of trajectories shares one J of the empty prefix; same seeds
    and an empty cache give the same J). The weights are not in the key either: a prover whose
    model is trained must drop its cache when the weights change (:meth:`clear_cache`; the TRL
    engine's ``PolicyProver`` does so per optimizer step).

    Args:
        lm: The language model that answers.
        template: Chat template (preset name, ``"chat"`` for the model's own, or instance)
            whose termination suffix is used.
        k: Forced answers per estimate (K).
        max_answer_tokens: Token cap of one forced answer (``None``: the template's, see
            :meth:`~mrt_env.templates.ChatTemplate.answer_caps`).
        temperature: Sampling temperature of the answers (0 = greedy, so all K agree).
        top_p: Nucleus mass of the answers.
        stop: Stop strings that end an answer early (e.g. ``("\\n\\n",)``); empty by default.
        cache_size: Estimates kept in the LRU cache (0 disables caching).
        verifier: Object with ``verify_many(pairs)`` (e.g. a ``rewards.Verifier``); defaults to
            ``rewards.verify_many``.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> prover = SampledMetaProver(ScriptedLM(["4}", "5}"]), template="tiny", k=4)
        >>> [est] = prover.estimate([ProverRequest("p1", "Problem: 2+2?\\n<think>\\n", "4", "")])
        >>> est.j, est.num_samples
        (0.5, 4)
    """

    source = "sampled"
    """What its estimates' ``JEstimate.source`` says (trainers log it)."""

    def __init__(
        self,
        lm: LanguageModel,
        template: str | ChatTemplate | None = "tiny",
        *,
        k: int = 8,
        max_answer_tokens: int | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
        cache_size: int = 4096,
        verifier: BatchVerifier | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if max_answer_tokens is not None and max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1, got {max_answer_tokens}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.lm = lm
        self.template = resolve_template(template, lm)
        max_answer_tokens = self.template.answer_caps(forced=max_answer_tokens).forced
        self.k = k
        self.params = SamplingParams(
            max_new_tokens=max_answer_tokens, temperature=temperature, top_p=top_p, stop=stop, n=k
        )
        self.cache_size = cache_size
        self.verifier = verifier
        self.stats = ProverStats()
        self._cache: OrderedDict[CacheKey, JEstimate] = OrderedDict()

    def clear_cache(self) -> None:
        """Forget every cached estimate."""
        self._cache.clear()

    @property
    def cache_entries(self) -> int:
        """Estimates in the J cache now (at most ``cache_size``)."""
        return len(self._cache)

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]:
        """J estimates for ``requests``, in order (one model call for all uncached ones)."""
        results: list[JEstimate | None] = [None] * len(requests)
        todo: dict[CacheKey, list[int]] = {}
        settings = self._settings_key()
        for index, request in enumerate(requests):
            if not isinstance(request, ProverRequest):
                raise TypeError(f"expected ProverRequest, got {type(request).__name__}")
            key = (request.problem_id, request.gold, request.prompt, request.prefix, settings)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                results[index] = replace(cached, cached=True)
            else:
                todo.setdefault(key, []).append(index)
        self.stats.requests += len(requests)
        self.stats.cache_hits += len(requests) - sum(len(group) for group in todo.values())
        self.stats.duplicates += sum(len(group) - 1 for group in todo.values())
        if todo:
            firsts = [requests[group[0]] for group in todo.values()]
            for key, estimate in zip(todo, self._sample(firsts), strict=True):
                self._remember(key, estimate)
                for index in todo[key]:
                    results[index] = estimate
        return [r for r in results if r is not None]

    def _settings_key(self) -> tuple[Any, ...]:
        """The prover settings that change what J means, as part of every cache key."""
        params = self.params
        return (
            self.k,
            params.n,
            params.max_new_tokens,
            params.temperature,
            params.top_p,
            tuple(params.stop),
            self.template,
            id(self.verifier),
        )

    def _sample(self, requests: list[ProverRequest]) -> list[JEstimate]:
        """Sample and verify K answers for each (distinct) request."""
        rendered = [self.template.render_meta(r.prompt, r.prefix) for r in requests]
        start = time.perf_counter()
        outputs = self.lm.generate(rendered, self.params, seeds=[r.seed for r in requests])
        middle = time.perf_counter()
        self.stats.model_calls += 1
        self.stats.unique_prefixes += len(requests)
        self.stats.generated_answers += len(requests) * self.k
        pairs = [
            (text[len(r.prompt) :] + c.text, r.gold)
            for text, r, group in zip(rendered, requests, outputs, strict=True)
            for c in group
        ]
        verdicts = self._verify_many(pairs)
        self.stats.answered += sum(getattr(v, "status", "") != "no_answer" for v in verdicts)
        self.stats.generate_seconds += middle - start
        self.stats.verify_seconds += time.perf_counter() - middle
        estimates = []
        for q, group in enumerate(outputs):
            correct = sum(bool(v.correct) for v in verdicts[q * self.k : (q + 1) * self.k])
            low, high = wilson_interval(correct, self.k)
            tokens = sum(len(c.token_ids) for c in group) / self.k
            estimates.append(
                JEstimate(correct / self.k, correct, self.k, low, high, tokens, source="sampled")
            )
        return estimates

    def _verify_many(self, pairs: list[tuple[str, str]]) -> Sequence[Any]:
        if self.verifier is not None:
            return self.verifier.verify_many(pairs)
        import rewards

        return rewards.verify_many(pairs)

    def _remember(self, key: CacheKey, estimate: JEstimate) -> None:
        if self.cache_size == 0:
            return
        self._cache[key] = estimate
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
