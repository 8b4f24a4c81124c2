"""The meta-prover protocol: J(prefix) = P(forced answer from the prefix is correct)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ProverRequest:
    """One J estimate to compute.

    Attributes:
        problem_id: Stable id of the problem (part of the J cache key, with the gold, prompt
            and prefix).
        prompt: The fully rendered prompt the policy saw (chat template applied, ends where
            the thinking starts).
        gold: Gold answer used to verify the forced answers.
        prefix: Thinking text so far (concatenated episodes; may be empty).
        seed: Seed that determines the K forced-answer samples for this request.
    """

    problem_id: str
    prompt: str
    gold: str
    prefix: str
    seed: int = 0


@dataclass(frozen=True)
class JEstimate:
    """An estimate of J and where it came from.

    Attributes:
        j: The estimate: for a sampled μ the fraction of verified-correct forced answers
            (``num_correct / num_samples``); for a learned μ the head's probability.
        num_correct: Verified-correct samples (0 for an estimator that samples nothing).
        num_samples: Samples drawn (K; 0 for a learned μ, which samples nothing).
        ci_low: Lower end of a 95% Wilson interval (``j`` for an estimator without one).
        ci_high: Upper end of a 95% Wilson interval (``j`` for an estimator without one).
        answer_tokens: Mean number of tokens of the forced answers (for J-vs-tokens curves;
            a learned μ reports the mean of its training labels).
        cached: Whether this estimate came from the cache.
        source: The estimator: ``"sampled"`` (K forced answers), ``"learned"`` (a probe on
            the feature model's hidden state), ``"table"`` (a test double) or another name a
            custom μ chooses. The environment reports it as ``info["j_estimator"]``.
    """

    j: float
    num_correct: int
    num_samples: int
    ci_low: float
    ci_high: float
    answer_tokens: float = 0.0
    cached: bool = False
    source: str = "sampled"


@runtime_checkable
class MetaProver(Protocol):
    """Estimates J for a batch of (problem, prefix) requests in one call."""

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]: ...


def check_requests(requests: Sequence[Any]) -> None:
    """Raise ``TypeError`` unless every request is a :class:`ProverRequest`."""
    for request in requests:
        if not isinstance(request, ProverRequest):
            raise TypeError(f"expected ProverRequest, got {type(request).__name__}")
