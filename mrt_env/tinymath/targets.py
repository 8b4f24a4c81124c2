"""The targets a graded tiny world must meet, as checks that pass or fail.

A graded tiny LM (``tiny-lm-graded``) is meant to change *J* and nothing else: its held-out
prefixes must have a graded J* (strictly inside (0.1, 0.9)) often enough, J* must rise with
partial work on average, and its pass@1 must stay in the band of the model it is compared with
(``tiny-lm``), so that comparing the graded and the classic world does not also compare a more
accurate policy with a less accurate one.

The pass@1 band is the base's 95% binomial (Wilson) interval on the same held-out problems:
a model whose pass@1 falls outside it is more (or less) accurate than the base by more than
the base's own measurement uncertainty on that many problems (about ± 0.044 at 45% on 500
problems, ± 0.039 at 28%).

Example:
    >>> low, high = pass_band(0.454, 500)
    >>> round(low, 3), round(high, 3)
    (0.411, 0.498)
    >>> [c.passed for c in pass_checks({"greedy": 0.46}, {"greedy": 0.454}, 500)]
    [True]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GRADED_SHARE = 0.25
"""Least share of held-out prefixes whose J* lies strictly inside (0.1, 0.9)."""
RISE_TOLERANCE = 0.02
"""Largest drop of mean J* from one episode index to the next still read as not falling."""


@dataclass(frozen=True)
class Check:
    """One target and whether a measurement meets it.

    Attributes:
        name: What is checked.
        value: The measured figure, as printed.
        target: The target, as printed.
        passed: Whether the figure meets the target.
    """

    name: str
    value: str
    target: str
    passed: bool

    def line(self) -> str:
        """``PASS``/``FAIL``, the check, the figure and its target on one line."""
        return (
            f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.value} (target {self.target})"
        )


def pass_band(pass_at_1: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson interval of a pass@1 measured on ``n`` problems.

    Raises:
        ValueError: If ``n`` is not positive or ``pass_at_1`` is not a share of ``n``.
    """
    from scipy.stats import binomtest

    successes = round(pass_at_1 * n)
    if n <= 0 or not 0.0 <= pass_at_1 <= 1.0 or abs(successes - pass_at_1 * n) > 1e-6 * n:
        raise ValueError(f"pass@1 {pass_at_1} is not a share of {n} problems")
    interval = binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def pass_checks(measured: Mapping[str, float], base: Mapping[str, float], n: int) -> list[Check]:
    """One check per pass@1 kind (``greedy``, ``sampled``): inside the base's 95% band."""
    checks = []
    for kind, value in measured.items():
        low, high = pass_band(base[kind], n)
        checks.append(
            Check(
                f"{kind} pass@1 in the base's band",
                f"{value:.3f}",
                f"[{low:.3f}, {high:.3f}], base {base[kind]:.3f} on {n} problems",
                low <= value <= high,
            )
        )
    return checks


def j_checks(share_graded: float, mean_j_by_episode: Sequence[float]) -> list[Check]:
    """The graded-share check and the rising-J check.

    J* rises with partial work on average when mean J* after the first episode is above mean
    J* of the empty thinking, the last index is above the first, and no index falls by more
    than :data:`RISE_TOLERANCE` below the one before it.
    """
    curve = list(mean_j_by_episode)
    steps = [b - a for a, b in itertools.pairwise(curve)]
    rising = len(curve) > 1 and steps[0] > 0 and curve[-1] > curve[0]
    rising = rising and min(steps) >= -RISE_TOLERANCE
    return [
        Check(
            "share of prefixes with J* in (0.1, 0.9)",
            f"{share_graded:.3f}",
            f">= {GRADED_SHARE}",
            share_graded >= GRADED_SHARE,
        ),
        Check(
            "mean J* rises with episodes",
            " -> ".join(f"{j:.3f}" for j in curve),
            f"first step up, last above first, no step below -{RISE_TOLERANCE}",
            rising,
        ),
    ]
