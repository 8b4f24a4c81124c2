"""The meta-prover protocol: J(prefix) = P(forced answer from the prefix is correct)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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
    """A Monte-Carlo estimate of J.

    Attributes:
        j: Fraction of verified-correct forced answers (``num_correct / num_samples``).
        num_correct: Verified-correct samples.
        num_samples: Samples drawn (K).
        ci_low: Lower end of a 95% Wilson interval.
        ci_high: Upper end of a 95% Wilson interval.
        answer_tokens: Mean number of tokens of the forced answers (for J-vs-tokens curves).
        cached: Whether this estimate came from the cache.
    """

    j: float
    num_correct: int
    num_samples: int
    ci_low: float
    ci_high: float
    answer_tokens: float = 0.0
    cached: bool = False


@runtime_checkable
class MetaProver(Protocol):
    """Estimates J for a batch of (problem, prefix) requests in one call."""

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]: ...
