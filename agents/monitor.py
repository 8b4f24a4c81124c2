"""Warnings for training runs that look degenerate: silent zeros and silent caps.

A run whose rewards (or advantages) are all 0 step after step learns nothing, and the usual
causes are settings, not the model: answers cut off by the answer cap, responses without a
``\\boxed{}`` answer, a meta-prover whose J is always 0, or episodes cut by the safety cap.
:class:`RunMonitor` reads each step's metrics and warns, naming the likely cause.

Example:
    >>> import warnings
    >>> monitor = RunMonitor(zero_steps=2)
    >>> step = {"reward/outcome": 0.0, "charts/advantage_abs": 0.0, "env/answered": 0.0}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     monitor.check(step, 1), monitor.check(step, 2)
    ([], ['zero_rewards'])
    >>> "0% of graded responses had a readable final answer" in str(caught[0].message)
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.types import Trajectory
from mrt_env.diagnostics import SINGLE_EPISODE_WARN, single_episode_reason


def answer_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Where answers and episodes were cut: shares over the batch.

    ``env/answered``: graded responses (natural or forced) with a readable final answer;
    ``env/truncated``: trajectories ended by a budget (graded on a forced answer);
    ``charts/episode_cap_share``: sampled episodes cut by the per-episode safety cap.
    """
    statuses = [e.verification for t in trajectories for e in t.episodes[-1:]]
    graded = [status for status in statuses if status is not None]
    ends = [e.end for t in trajectories for e in t.episodes if e.end is not None]
    return {
        "env/answered": (
            float(np.mean([s != "no_answer" for s in graded])) if graded else float("nan")
        ),
        "env/truncated": float(np.mean([not t.terminated for t in trajectories])),
        "charts/episode_cap_share": (
            float(np.mean([end == "episode_cap" for end in ends])) if ends else 0.0
        ),
    }


def end_metrics(
    j_sources: Sequence[str | None], truncation: Sequence[str | None], prefix: str = "env"
) -> dict[str, float]:
    """How the batch's trajectories ended were graded (both training engines log these).

    ``PREFIX/j_final_prover`` and ``PREFIX/j_final_outcome``: shares of trajectories whose J
    after the last episode is μ's estimate or the verified outcome (``final_j``);
    ``PREFIX/truncated_forced_answer`` and ``PREFIX/truncated_expected``: shares graded as
    truncated on the policy's forced answer or on μ's J (``truncation``; ``None`` entries are
    trajectories that finished).

    Example:
        >>> end_metrics(["prover", "prover", "outcome", None], [None, "forced_answer", None, None])
        ... # doctest: +NORMALIZE_WHITESPACE
        {'env/j_final_prover': 0.5, 'env/j_final_outcome': 0.25,
         'env/truncated_forced_answer': 0.25, 'env/truncated_expected': 0.0}
    """
    count = max(len(j_sources), 1)
    return {
        f"{prefix}/j_final_prover": sum(s == "prover" for s in j_sources) / count,
        f"{prefix}/j_final_outcome": sum(s == "outcome" for s in j_sources) / count,
        f"{prefix}/truncated_forced_answer": sum(t == "forced_answer" for t in truncation)
        / max(len(truncation), 1),
        f"{prefix}/truncated_expected": sum(t == "expected" for t in truncation)
        / max(len(truncation), 1),
    }


def truncation_used(trajectory: Trajectory) -> str | None:
    """How a collected trajectory was graded when truncated (``None``: it finished): on a
    forced answer (its last episode was verified) or on μ's J (``"expected"``)."""
    if trajectory.terminated or not trajectory.episodes:
        return None
    return "forced_answer" if trajectory.episodes[-1].verification is not None else "expected"


class DegenerateRunWarning(UserWarning):
    """A training run looks degenerate (all-zero rewards, answers cut off, capped episodes)."""


@dataclass
class RunMonitor:
    """Warns about degenerate training steps.

    Attributes:
        zero_steps: Consecutive steps with every reward 0 (or every advantage 0) before a
            warning (``0`` = never).
        answered_threshold: Warn when less than this share of forced answers (μ's) or graded
            responses has a readable final answer.
        cap_threshold: Warn when more than this share of a step's episodes was cut by the
            per-episode safety cap.
    """

    zero_steps: int = 1
    answered_threshold: float = 0.5
    cap_threshold: float = 0.5
    _streak: int = 0
    _warned: set[str] = field(default_factory=set)

    def check(self, metrics: Mapping[str, float], step: int) -> list[str]:
        """Warn about this step's metrics; returns the names of the warnings issued."""
        issued = []
        zero = _all_zero(metrics)
        self._streak = self._streak + 1 if zero else 0
        if self.zero_steps and self._streak == self.zero_steps:
            issued.append("zero_rewards")
            if _value(metrics, "charts/advantage_abs") == 0.0:
                what = "every advantage was 0 (the weights learn nothing"
                skipped = _value(metrics, "charts/skipped_update") == 1.0
                what += "; the optimizer step was skipped)" if skipped else ")"
            else:
                what = "every outcome was 0 (nothing solved; only a progress bonus trains)"
            _warn(
                f"step {step}: {what} for {self._streak} consecutive steps. Likely cause: "
                f"{_likely_cause(metrics, self.answered_threshold)}"
            )
        for name, message in self._one_time(metrics):
            if name not in self._warned:
                self._warned.add(name)
                issued.append(name)
                _warn(f"step {step}: {message}")
        return issued

    def flags(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """This step's degenerate-run flags as metrics (1.0 = flagged), logged from the first
        step: ``degenerate/zero_rewards`` (every outcome or every advantage 0; the latter
        skips the update), ``degenerate/j_zero`` (μ's J is 0 everywhere),
        ``degenerate/single_episode`` (most responses are one episode: progress credit is
        empty) and
        ``degenerate/forced_unreadable`` (most forced answers unreadable)."""
        j_values = [_value(metrics, key) for key in ("env/j", "env/j_final")]
        known_j = [value for value in j_values if value is not None]
        single = _value(metrics, "env/single_episode_share")
        forced = _value(metrics, "env/forced_answered")
        return {
            "degenerate/zero_rewards": float(_all_zero(metrics)),
            "degenerate/j_zero": float(bool(known_j) and all(v == 0.0 for v in known_j)),
            "degenerate/single_episode": float(single is not None and single > SINGLE_EPISODE_WARN),
            "degenerate/forced_unreadable": float(
                forced is not None and forced < self.answered_threshold
            ),
        }

    def _one_time(self, metrics: Mapping[str, float]) -> list[tuple[str, str]]:
        """Warnings issued once per run."""
        found = []
        single = _value(metrics, "env/single_episode_share")
        has_prover = _value(metrics, "env/j") is not None
        reason = single_episode_reason(single) if has_prover else None
        if reason is not None:
            found.append(("single_episode", reason))
        forced = _value(metrics, "env/forced_answered")
        if forced is not None and forced < self.answered_threshold:
            found.append(
                (
                    "forced_cut",
                    f"only {forced:.0%} of the meta-prover's forced answers hold a readable "
                    "final answer: raise the forced answer cap (--forced-answer-tokens), or J "
                    "reads near 0 whatever the model knows",
                )
            )
        capped = _value(metrics, "charts/episode_cap_share")
        if capped is not None and capped > self.cap_threshold:
            found.append(
                (
                    "episode_cap",
                    f"{capped:.0%} of the episodes were cut by the per-episode safety cap "
                    "(--max-episode-tokens), not by the segmenter: raise or remove the cap",
                )
            )
        return found


def _likely_cause(metrics: Mapping[str, float], threshold: float) -> str:
    answered = _value(metrics, "env/answered")
    forced = _value(metrics, "env/forced_answered")
    j_values = [_value(metrics, key) for key in ("env/j", "env/j_final")]
    if answered is not None and answered < threshold:
        return (
            f"{answered:.0%} of graded responses had a readable final answer, so answers are "
            "cut off (raise --max-answer-tokens / --token-budget) or the model writes no "
            "\\boxed{} answer (check --template)"
        )
    if forced is not None and forced < threshold:
        return f"only {forced:.0%} of forced answers were readable: raise --forced-answer-tokens"
    if all(value == 0.0 for value in j_values if value is not None) and any(
        value is not None for value in j_values
    ):
        return "J is 0 everywhere: the problems may be too hard for the model"
    if _value(metrics, "reward/outcome") == 1.0:
        return "every trajectory is correct: the problems are too easy to learn from"
    return "every answer in each group had the same outcome (no answer was ever correct?)"


def _all_zero(metrics: Mapping[str, float]) -> bool:
    return _value(metrics, "reward/outcome") == 0.0 or (
        _value(metrics, "charts/advantage_abs") == 0.0
    )


def _value(metrics: Mapping[str, float], key: str) -> float | None:
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _warn(message: str) -> None:
    warnings.warn(message, DegenerateRunWarning, stacklevel=3)
