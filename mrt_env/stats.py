"""Confidence intervals and paired comparisons of evaluation figures (numpy + scipy).

* :func:`bootstrap_ci`: mean and 95% percentile-bootstrap CI (``scipy.stats.bootstrap``),
  e.g. over problems.
* :func:`seed_ci`: mean and 95% Student-t CI over a few independent runs (training seeds),
  where a bootstrap of 3-5 values would understate the uncertainty.
* :func:`probability_of_improvement`: rliable's P(a better than b) on paired values, with a
  bootstrap CI.

Every function returns ``{"mean", "ci_low", "ci_high", "n"}`` (JSON-ready floats).

Example:
    >>> stat = bootstrap_ci([0.0, 1.0] * 20)
    >>> stat["mean"], 0.3 < stat["ci_low"] < 0.5 < stat["ci_high"] < 0.7, stat["n"]
    (0.5, True, 40)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Stat = dict[str, float]
"""``{"mean", "ci_low", "ci_high", "n"}``."""

__all__ = ["Stat", "bootstrap_ci", "probability_of_improvement", "seed_ci", "strict_json"]


def strict_json(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """``value`` with every non-finite float (NaN, ±inf; numpy scalars too) replaced by
    ``None``, so ``json.dumps(..., allow_nan=False)`` writes strict JSON (``null``, never
    ``NaN``). ``default`` converts other objects first (like ``json.dumps``'s).

    Example:
        >>> strict_json({"a": [1.0, float("nan")], "b": np.float64("inf"), "c": (2, "x")})
        {'a': [1.0, None], 'b': None, 'c': [2, 'x']}
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, dict):
        return {key: strict_json(item, default) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [strict_json(item, default) for item in value]
    if default is not None:
        return strict_json(default(value), default)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _point(data: np.ndarray) -> Stat | None:
    """The degenerate cases: no data (nan), or no spread (the interval is the mean)."""
    if data.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    mean = float(data.mean())
    if data.size < 2 or np.ptp(data) == 0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "n": int(data.size)}
    return None


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    seed: int = 0,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> Stat:
    """Mean and percentile-bootstrap CI of the mean of ``values``.

    Args:
        values: Independent observations (e.g. one figure per problem).
        seed: Seed of the resampling.
        resamples: Bootstrap resamples.
        confidence: Confidence level.

    Returns:
        ``{"mean", "ci_low", "ci_high", "n"}``; with fewer than two distinct values the
        interval is the mean, with none everything is ``nan`` and ``n`` is 0.

    Example:
        >>> bootstrap_ci([0.5, 0.5])
        {'mean': 0.5, 'ci_low': 0.5, 'ci_high': 0.5, 'n': 2}
    """
    from scipy import stats

    data = _as_values(values)
    point = _point(data)
    if point is not None:
        return point
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return {
        "mean": float(data.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": data.size,
    }


def seed_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Stat:
    """Mean and Student-t CI of the mean over independent runs (one value per training seed).

    Args:
        values: One figure per run (e.g. per-seed mean regret).
        confidence: Confidence level.

    Returns:
        ``{"mean", "ci_low", "ci_high", "n"}``: ``mean ± t(n-1) * sd / sqrt(n)``; a single run
        (or no spread) gives the mean as the interval.

    Example:
        >>> stat = seed_ci([0.50, 0.52, 0.54])
        >>> round(stat["mean"], 2), round(stat["ci_low"], 3), round(stat["ci_high"], 3)
        (0.52, 0.47, 0.57)
    """
    from scipy import stats

    data = _as_values(values)
    point = _point(data)
    if point is not None:
        return point
    mean, sem = float(data.mean()), float(stats.sem(data))
    low, high = stats.t.interval(confidence, data.size - 1, loc=mean, scale=sem)
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "n": data.size}


def probability_of_improvement(
    lower_is_better_a: Sequence[float] | np.ndarray,
    lower_is_better_b: Sequence[float] | np.ndarray,
    seed: int = 0,
    resamples: int = 2000,
) -> Stat:
    """P(a < b) with a bootstrap CI, for paired values where lower is better (e.g. regret).

    The point estimate is rliable's probability of improvement on paired scores: the mean of
    ``1[a < b] + 0.5 * 1[a == b]``; the CI resamples the pairs.

    Example:
        >>> probability_of_improvement([0.1, 0.2, 0.5, 0.9], [0.3, 0.2, 0.4, 1.0])["mean"]
        0.625
    """
    a, b = _as_values(lower_is_better_a), _as_values(lower_is_better_b)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    wins = (a < b).astype(np.float64) + 0.5 * (a == b)
    return bootstrap_ci(wins, seed=seed, resamples=resamples)


def minimum_detectable_effect(
    differences: Sequence[float] | np.ndarray, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest mean difference a paired design of this size detects with ``power``.

    ``differences`` holds one paired difference per replicate (e.g. MRT − GRPO per training
    seed); their sample standard deviation ``sd`` stands for the seed-to-seed noise of the
    design. With ``n`` replicates and a two-sided t-test at level ``alpha``, the minimum
    detectable effect is ``(t(1 − alpha/2, n−1) + t(power, n−1)) · sd / sqrt(n)`` (the usual
    normal-approximation formula with t quantiles; the exact noncentral-t answer is slightly
    smaller). A true difference smaller than this is likely to come out "not significant", so
    an interval that contains 0 says little about effects below it.

    Raises:
        ValueError: With fewer than 2 differences (no spread to estimate), a non-finite value,
            or ``alpha``/``power`` outside (0, 1).

    Example:
        >>> round(minimum_detectable_effect([0.02, 0.06, -0.01, 0.04, 0.03]), 3)
        0.043
    """
    from scipy import stats

    data = np.asarray(differences, dtype=np.float64)
    if data.ndim != 1 or data.size < 2:
        raise ValueError(f"need at least 2 paired differences, got {data.size}")
    if not np.all(np.isfinite(data)):
        raise ValueError("paired differences must be finite")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha} and {power}")
    df = data.size - 1
    quantiles = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
    return float(quantiles * data.std(ddof=1) / np.sqrt(data.size))
