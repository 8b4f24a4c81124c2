"""Regret and test-time-compute metrics (pure numpy).

Definitions follow PAPER.md:

- cumulative regret over episodes, ``Δ_k = Σ_{j<k} (J*_j − J(c_j))``;
- normalized regret at a token budget ``C0`` (trapezoid area of the J-vs-tokens curve up to
  ``C0``, divided by ``C0``, averaged over traces then problems, subtracted from 1);
- token efficiency between accuracy-vs-tokens curves, unbiased pass@k and maj@k.

Example:
    >>> traces = [[([100.0, 200.0], [0.5, 1.0])]]  # one problem, one trace
    >>> normalized_regret(traces, budget=150)  # area (25 + 31.25) / 150 = 0.375
    0.625
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
Trace = tuple[ArrayLike, ArrayLike]
"""One sampled trace: ``(tokens, j)``, the points where J was read (origin excluded)."""


def _as_curve(values: ArrayLike, what: str) -> FloatArray:
    """A finite 1-D float array, or a ValueError naming ``what``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, got {array}")
    return array


def _check_probabilities(values: FloatArray, what: str) -> None:
    if np.any((values < 0) | (values > 1)):
        raise ValueError(f"{what} must lie in [0, 1], got {values}")


def cumulative_regret(j: ArrayLike, j_star: float | ArrayLike = 1.0) -> FloatArray:
    """Cumulative regret over episodes.

    Args:
        j: ``j[i] = J(c_i)``, the meta-prover's success probability from the context after
            ``i`` episodes (``c_0`` is the empty thinking), in ``[0, 1]``.
        j_star: The comparator ``J*``: a constant (``1.0`` in the paper's plots) or a curve
            of the same length as ``j`` (e.g. the best policy's J per episode).

    Returns:
        ``delta`` of length ``len(j) + 1`` with ``delta[k] = Δ_k = Σ_{i<k} (J*_i − J(c_i))``;
        ``delta[0] = 0``.

    Example:
        >>> cumulative_regret([0.25, 0.5, 1.0])
        array([0.  , 0.75, 1.25, 1.25])
    """
    j_values = _as_curve(j, "j")
    _check_probabilities(j_values, "j")
    if np.ndim(j_star) == 0:
        star = np.full_like(j_values, float(j_star))  # type: ignore[arg-type]
    else:
        star = _as_curve(j_star, "j_star")
        if star.shape != j_values.shape:
            raise ValueError(
                f"j_star has {star.size} values but j has {j_values.size}; they must match"
            )
    if not np.all(np.isfinite(star)):
        raise ValueError(f"j_star must be finite, got {j_star!r}")
    return np.concatenate([[0.0], np.cumsum(star - j_values)])


def _validated_trace(trace: Any, where: str) -> tuple[FloatArray, FloatArray]:
    """``(tokens, j)`` of one trace, validated; errors name the trace by ``where``."""
    try:
        tokens_raw, j_raw = trace
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a trace must be a pair (tokens, j)") from None
    tokens = _as_curve(tokens_raw, f"{where}: tokens")
    j = _as_curve(j_raw, f"{where}: j")
    if tokens.size != j.size:
        raise ValueError(f"{where}: tokens has {tokens.size} points but j has {j.size}")
    if tokens.size == 0:
        raise ValueError(f"{where}: a trace needs at least one (tokens, j) point")
    if np.any(tokens < 0):
        raise ValueError(f"{where}: tokens must be >= 0, got {tokens}")
    if np.any(np.diff(tokens) < 0):
        raise ValueError(f"{where}: tokens must be non-decreasing, got {tokens}")
    _check_probabilities(j, f"{where}: j")
    return tokens, j


def _check_budget(budget: float) -> float:
    value = float(budget)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"budget must be a positive finite number of tokens, got {budget!r}")
    return value


def check_budgets_above_prompts(budgets: Sequence[float], prompt_tokens: Mapping[str, int]) -> None:
    """Raise ``ValueError`` when a token budget ``C0`` is not above a problem's prompt.

    ``C0`` counts prompt + thinking + forced-answer tokens (the J curve's x axis), so a budget
    at or below the prompt length holds no thinking at all and its regret is 1 by
    construction. (The env's ``token_budget`` counts thinking tokens only and is not checked
    here.)

    Example:
        >>> check_budgets_above_prompts([64, 128], {"p": 86})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: regret budget C0=64 is not above the 86-token prompt of problem 'p': ...
    """
    if not budgets or not prompt_tokens:
        return
    problem, longest = max(prompt_tokens.items(), key=lambda item: item[1])
    low = min(budgets)
    if low <= longest:
        raise ValueError(
            f"regret budget C0={low:g} is not above the {longest}-token prompt of problem "
            f"{problem!r}: C0 counts prompt + thinking + forced-answer tokens; use budgets "
            f"above {longest}"
        )


def _area_up_to(tokens: FloatArray, j: FloatArray, budget: float) -> float:
    """Trapezoid area under ``[(0, 0), *zip(tokens, j)]`` on ``[0, budget]``, over ``budget``."""
    x = np.concatenate([[0.0], tokens])
    y = np.concatenate([[0.0], j])
    inside = int(np.searchsorted(x, budget, side="left"))  # points with x < budget
    if inside < x.size:  # the curve reaches or passes the budget: interpolate at it
        x0, y0, x1, y1 = x[inside - 1], y[inside - 1], x[inside], y[inside]
        y_at_budget = y0 + (y1 - y0) * (budget - x0) / (x1 - x0)
    else:  # the curve ends before the budget: extend flat at its last value
        y_at_budget = y[-1]
    x = np.append(x[:inside], budget)
    y = np.append(y[:inside], y_at_budget)
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return area / budget


def normalized_area(tokens: ArrayLike, j: ArrayLike, budget: float) -> float:
    """Normalized area under one trace's J-vs-tokens curve up to the budget ``C0``.

    The curve is ``(0, 0)`` followed by the points ``(tokens[i], j[i])``; its trapezoid area on
    ``[0, C0]`` is divided by ``C0``. A curve that ends before ``C0`` is extended flat at its
    last value; one that passes ``C0`` is linearly interpolated at ``C0``.

    Args:
        tokens: Non-decreasing token counts ``T_i`` where J was read (origin excluded).
        j: J at those points, in ``[0, 1]``.
        budget: The token budget ``C0`` (> 0).

    Returns:
        The area over ``C0``, in ``[0, 1]``.

    Example:
        >>> normalized_area([100.0], [1.0], budget=200)  # (100*1/2 + 100*1) / 200
        0.75
    """
    budget_value = _check_budget(budget)
    tokens_values, j_values = _validated_trace((tokens, j), "trace")
    return _area_up_to(tokens_values, j_values, budget_value)


def normalized_area_per_problem(traces: Sequence[Sequence[Trace]], budget: float) -> FloatArray:
    """Mean normalized area over the traces of each problem (for bootstrap CIs).

    Args:
        traces: ``traces[p][t] = (tokens, j)`` for problem ``p`` and sampled trace ``t``;
            see :func:`normalized_regret`.
        budget: The token budget ``C0`` (> 0).

    Returns:
        One value per problem, in ``[0, 1]``; ``1 - mean(result)`` is the normalized regret.

    Example:
        >>> normalized_area_per_problem([[([100.0], [1.0])], [([100.0], [0.0])]], 200)
        array([0.75, 0.  ])
    """
    budget_value = _check_budget(budget)
    if len(traces) == 0:
        raise ValueError("traces is empty: need at least one problem")
    areas = np.empty(len(traces), dtype=np.float64)
    for p, problem_traces in enumerate(traces):
        if len(problem_traces) == 0:
            raise ValueError(f"problem {p}: no traces")
        per_trace = [
            _area_up_to(*_validated_trace(trace, f"problem {p}, trace {t}"), budget_value)
            for t, trace in enumerate(problem_traces)
        ]
        areas[p] = float(np.mean(per_trace))
    return areas


def normalized_regret(traces: Sequence[Sequence[Trace]], budget: float) -> float:
    """Normalized regret at the token budget ``C0`` (the paper's main regret metric).

    For each trace the curve ``y = [0, J(c_0), J(c_1), ...]`` against
    ``x = [0, T_0, T_1, ...]`` (``T_i`` = tokens consumed when ``J(c_i)`` was read) is
    integrated by the trapezoid rule up to ``C0`` and divided by ``C0`` (flat extension after
    the last point, linear interpolation at ``C0``). The result is
    ``1 - mean over problems of (mean over traces of that area)``.

    Args:
        traces: A sequence over problems, each a sequence over sampled traces, each a pair
            ``(tokens, j)`` of equal-length 1-D arrays of the points where J was read, without
            the origin (``(0, 0)`` is prepended here). ``tokens`` is non-decreasing and >= 0;
            ``j`` lies in ``[0, 1]``.
        budget: The token budget ``C0`` (> 0).

    Returns:
        Normalized regret in ``[0, 1]`` (lower is better).

    Raises:
        ValueError: On empty input, a problem without traces, mismatched lengths, decreasing
            or negative tokens, J outside ``[0, 1]``, non-finite values or ``budget <= 0``;
            the message names the problem and trace index.

    Example:
        >>> # J reaches 1 at 100 tokens: area = (100 * 1/2 + 100 * 1) / 200 = 0.75
        >>> normalized_regret([[([100.0], [1.0])]], budget=200)
        0.25
    """
    return float(1.0 - np.mean(normalized_area_per_problem(traces, budget)))


def regret_over_episode_budget(
    j_curves: Sequence[Sequence[ArrayLike]],
    episode_budget: int,
    j_star: float = 1.0,
) -> FloatArray:
    """Mean cumulative regret as a function of an episode budget.

    Each trace's J curve ``[J(c_0), J(c_1), ...]`` is extended flat at its last value up to
    ``episode_budget`` values (a trace that stopped early keeps its final J), then
    :func:`cumulative_regret` is taken; results are averaged over the traces of each problem,
    then over problems.

    Args:
        j_curves: ``j_curves[p][t]`` is the J curve of trace ``t`` of problem ``p``
            (``J(c_0)`` first; at least one value, each in ``[0, 1]``).
        episode_budget: Number of episodes ``K`` (>= 1).
        j_star: The constant comparator ``J*``.

    Returns:
        Array of length ``K + 1``: entry ``k`` is the mean ``Δ_k`` (entry 0 is 0).

    Example:
        >>> regret_over_episode_budget([[[0.0, 1.0]]], episode_budget=3)
        array([0., 1., 1., 1.])
    """
    if isinstance(episode_budget, bool) or not isinstance(episode_budget, int):
        raise ValueError(f"episode_budget must be an int, got {episode_budget!r}")
    if episode_budget < 1:
        raise ValueError(f"episode_budget must be >= 1, got {episode_budget}")
    if len(j_curves) == 0:
        raise ValueError("j_curves is empty: need at least one problem")
    per_problem = []
    for p, problem_curves in enumerate(j_curves):
        if len(problem_curves) == 0:
            raise ValueError(f"problem {p}: no traces")
        regrets = []
        for t, curve in enumerate(problem_curves):
            j = _as_curve(curve, f"problem {p}, trace {t}: j")
            if j.size == 0:
                raise ValueError(f"problem {p}, trace {t}: j needs at least one value")
            extended = np.concatenate([j, np.full(max(episode_budget - j.size, 0), j[-1])])
            try:
                regrets.append(cumulative_regret(extended[:episode_budget], j_star))
            except ValueError as error:
                raise ValueError(f"problem {p}, trace {t}: {error}") from None
        per_problem.append(np.mean(regrets, axis=0))
    return np.asarray(np.mean(per_problem, axis=0), dtype=np.float64)


def _validated_accuracy_curve(curve: Any, what: str) -> tuple[FloatArray, FloatArray]:
    try:
        tokens_raw, accuracy_raw = curve
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (tokens, accuracy)") from None
    tokens = _as_curve(tokens_raw, f"{what} tokens")
    accuracy = _as_curve(accuracy_raw, f"{what} accuracy")
    if tokens.size != accuracy.size or tokens.size == 0:
        raise ValueError(
            f"{what}: tokens ({tokens.size}) and accuracy ({accuracy.size}) must have the same "
            "non-zero length"
        )
    if np.any(tokens < 0) or np.any(np.diff(tokens) < 0):
        raise ValueError(f"{what}: tokens must be >= 0 and non-decreasing, got {tokens}")
    return tokens, accuracy


def tokens_to_reach(tokens: ArrayLike, accuracy: ArrayLike, target: float) -> float:
    """Fewest tokens at which a piecewise-linear accuracy curve first reaches ``target``.

    Args:
        tokens: Non-decreasing token counts of the curve's points.
        accuracy: Accuracy at those points.
        target: Accuracy to reach.

    Returns:
        ``tokens[0]`` when the first point already reaches ``target`` (no extrapolation
        towards the origin); otherwise the linear interpolation between the last point below
        ``target`` and the first point at or above it; ``inf`` when the curve never reaches it.

    Example:
        >>> tokens_to_reach([100, 200, 300], [0.2, 0.4, 0.6], target=0.5)
        250.0
    """
    x, y = _validated_accuracy_curve((tokens, accuracy), "curve")
    reached = np.flatnonzero(y >= target)
    if reached.size == 0:
        return math.inf
    i = int(reached[0])
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def token_efficiency(
    curve_a: tuple[ArrayLike, ArrayLike],
    curve_b: tuple[ArrayLike, ArrayLike],
    target: float | None = None,
) -> float:
    """How many times fewer tokens method A needs than B to reach B's accuracy.

    Each curve is ``(tokens, accuracy)``, e.g. maj@k for k = 1..10 against total tokens. The
    target is B's accuracy at its largest token count (or ``target``). With ``T_X`` the
    fewest tokens at which curve X first reaches the target (:func:`tokens_to_reach`, linear
    interpolation between points), the efficiency is ``T_B / T_A``: ``1.5`` means A needs
    1.5× fewer tokens.

    Args:
        curve_a: Method A's ``(tokens, accuracy)``.
        curve_b: Method B's ``(tokens, accuracy)``.
        target: Accuracy to reach; defaults to B's accuracy at its last point.

    Returns:
        ``T_B / T_A``; ``nan`` when A (or B, for an explicit ``target``) never reaches the
        target within its measured range (the ratio is undefined without extrapolation);
        ``inf`` when A reaches it at 0 tokens.

    Example:
        >>> a = ([100, 200, 300], [0.3, 0.5, 0.6])
        >>> b = ([150, 300, 450], [0.3, 0.4, 0.5])
        >>> token_efficiency(a, b)  # B reaches 0.5 at 450, A at 200
        2.25
    """
    tokens_a, accuracy_a = _validated_accuracy_curve(curve_a, "curve_a")
    tokens_b, accuracy_b = _validated_accuracy_curve(curve_b, "curve_b")
    goal = float(accuracy_b[-1]) if target is None else float(target)
    needed_a = tokens_to_reach(tokens_a, accuracy_a, goal)
    needed_b = tokens_to_reach(tokens_b, accuracy_b, goal)
    if math.isinf(needed_a) or math.isinf(needed_b):
        return math.nan
    if needed_a == 0:
        return math.inf if needed_b > 0 else math.nan
    return needed_b / needed_a


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: ``1 − C(n−c, k) / C(n, k)``.

    Computed as ``1 − Π_{i=n−c+1}^{n} (1 − k / i)``, which never forms large binomials.

    Args:
        n: Samples drawn (>= 1).
        c: Correct samples among them (``0 <= c <= n``).
        k: The k of pass@k (``1 <= k <= n``).

    Returns:
        The probability that at least one of ``k`` samples drawn without replacement from the
        ``n`` is correct.

    Example:
        >>> pass_at_k(n=4, c=1, k=2)  # 1 - C(3, 2) / C(4, 2) = 1 - 3/6
        0.5
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {value!r}")
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need n >= 1, 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    factors = 1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(factors))


def likelihood_weight(token_logprobs: ArrayLike) -> float:
    """The official maj@k vote weight of one answer: ``2 ** mean(token logprobs)``.

    Example:
        >>> likelihood_weight([-1.0, -3.0])
        0.25
    """
    logprobs = _as_curve(token_logprobs, "token_logprobs")
    if logprobs.size == 0:
        raise ValueError("token_logprobs is empty")
    return float(2.0 ** np.mean(logprobs))


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    k: int,
    weights: ArrayLike | None = None,
) -> float:
    """Majority vote over the first ``k`` sampled answers of one problem.

    Answers are compared as given (normalize them first, e.g. to a canonical string); ``None``
    (no answer) does not vote. Each answer votes with weight 1, or with ``weights[i]`` (the
    official likelihood-weighted variant uses :func:`likelihood_weight`). Ties are broken
    uniformly at random *in expectation*: the result is the fraction of tied winners that are
    correct, so it is deterministic.

    Args:
        answers: Normalized answers of the sampled traces, in sampling order.
        correct: Whether each answer is correct (equal answers must agree).
        k: Number of samples that vote (``1 <= k <= len(answers)``).
        weights: Optional non-negative vote weights, one per answer.

    Returns:
        Expected correctness of the vote in ``[0, 1]``; 0 when no answer among the ``k`` votes.

    Example:
        >>> maj_at_k(["4", "5", "4"], [True, False, True], k=3)
        1.0
        >>> maj_at_k(["4", "5", "5"], [True, False, False], k=3, weights=[0.9, 0.2, 0.3])
        1.0
    """
    if len(correct) != len(answers):
        raise ValueError(f"answers ({len(answers)}) and correct ({len(correct)}) differ in length")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(answers):
        raise ValueError(f"k must be an int in [1, {len(answers)}], got {k!r}")
    vote_weights = np.ones(len(answers)) if weights is None else _as_curve(weights, "weights")
    if vote_weights.size != len(answers) or np.any(vote_weights < 0):
        raise ValueError(f"weights must be {len(answers)} non-negative values")
    totals: dict[str, float] = {}
    is_correct: dict[str, bool] = {}
    for answer, ok, weight in zip(answers[:k], correct[:k], vote_weights[:k], strict=True):
        if answer is None:
            continue
        if is_correct.setdefault(answer, bool(ok)) != bool(ok):
            raise ValueError(f"answer {answer!r} is marked both correct and wrong")
        totals[answer] = totals.get(answer, 0.0) + float(weight)
    if not totals:
        return 0.0
    best = max(totals.values())
    winners = [answer for answer, total in totals.items() if total == best]
    return sum(is_correct[answer] for answer in winners) / len(winners)
