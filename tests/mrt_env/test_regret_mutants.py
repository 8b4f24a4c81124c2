"""Regret and test-time-compute metrics against hand-computed values, written to kill mutants.

Expected values follow PAPER.md's definitions (cumulative regret ``Δ_k = Σ_{j<k} (J* − J(c_j))``,
normalized regret as one minus the trapezoid area of the J-vs-tokens curve up to ``C0`` over
``C0``, unbiased pass@k, majority vote) and are worked out by hand in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrt_env.regret import (
    cumulative_regret,
    likelihood_weight,
    maj_at_k,
    normalized_area,
    normalized_area_per_problem,
    normalized_regret,
    pass_at_k,
    regret_over_episode_budget,
    token_efficiency,
    tokens_to_reach,
)

# --- cumulative regret ------------------------------------------------------------------------


def test_cumulative_regret_against_a_curve_comparator() -> None:
    # J* - J = 0.75, 0.25, 0.0
    result = cumulative_regret([0.25, 0.5, 1.0], [1.0, 0.75, 1.0])
    assert result.dtype == np.float64
    assert result.tolist() == [0.0, 0.75, 1.0, 1.0]


def test_cumulative_regret_against_a_constant_comparator() -> None:
    assert cumulative_regret([0.25, 0.5], 0.5).tolist() == [0.0, 0.25, 0.25]
    assert cumulative_regret([0.25, 0.5]).tolist() == [0.0, 0.75, 1.25]
    assert cumulative_regret([]).tolist() == [0.0]


@pytest.mark.parametrize(
    ("j", "j_star", "message"),
    [
        ([[0.5]], 1.0, r"j must be 1-D, got shape \(1, 1\)"),
        ([0.5, math.nan], 1.0, r"j must be finite, got"),
        ([0.5, 1.5], 1.0, r"j must lie in \[0, 1\], got"),
        ([-0.5], 1.0, r"j must lie in \[0, 1\], got"),
        ([0.5, 0.5], [1.0], r"j_star has 1 values but j has 2; they must match"),
        ([0.5], [[1.0]], r"j_star must be 1-D"),
        ([0.5], [math.inf], r"j_star must be finite"),
        ([0.5], math.inf, r"j_star must be finite, got inf"),
        ([0.5], math.nan, r"j_star must be finite, got nan"),
    ],
)
def test_cumulative_regret_rejects_bad_input(j: object, j_star: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cumulative_regret(j, j_star)  # type: ignore[arg-type]


def test_integer_j_values_are_read_as_floats() -> None:
    # J* = 0.5 against J = 0, 1: regrets 0.5 and -0.5
    result = cumulative_regret([0, 1], 0.5)
    assert result.dtype == np.float64 and result.tolist() == [0.0, 0.5, 0.0]


def test_probabilities_at_the_bounds_are_accepted() -> None:
    assert cumulative_regret([0.0, 1.0]).tolist() == [0.0, 1.0, 1.0]


# --- normalized area and regret ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "j", "budget", "expected"),
    [
        # interpolated at 150: J = 0.75; area 100 * 0.25 + 50 * (0.5 + 0.75) / 2 = 56.25
        ([100.0, 200.0], [0.5, 1.0], 150, 56.25 / 150),
        # ends before the budget: flat at 1.0; area 50 + 100 = 150
        ([100.0], [1.0], 200, 0.75),
        # the budget falls on a point: area 100 * 0.5 / 2 = 25
        ([100.0, 200.0], [0.5, 1.0], 100, 0.25),
        # reaches the budget at the last point: area 25 + 100 * 0.75 = 100
        ([100.0, 200.0], [0.5, 1.0], 200, 0.5),
        # the budget before the first point: J(50) = 0.25; area 50 * 0.125 = 6.25
        ([200.0], [1.0], 50, 0.125),
        # repeated token counts (a jump): J(150) = 0.8; area 10 + 0 + 50 * 0.7 = 45
        ([100.0, 100.0, 200.0], [0.2, 0.6, 1.0], 150, 0.3),
        # a trace read at 0 tokens: x = [0, 0, 100], y = [0, 1, 1]; area 100
        ([0.0, 100.0], [1.0, 1.0], 100, 1.0),
        # three points past the budget: J(250) = 0.5 between (200, 0.25) and (300, 0.75)
        # area 100 * 0.125 + 100 * 0.25 / 2... = 100 * 0.25 / 2 + 100 * 0.25 + 50 * 0.375
        ([100.0, 200.0, 300.0], [0.25, 0.25, 0.75], 250, (12.5 + 25.0 + 18.75) / 250),
    ],
)
def test_normalized_area(
    tokens: list[float], j: list[float], budget: float, expected: float
) -> None:
    assert normalized_area(tokens, j, budget) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("budget", "expected"), [(1, 0.75), (0.5, 0.5)])
def test_budgets_of_one_token_or_less(budget: float, expected: float) -> None:
    # J reaches 1 at 0.5 tokens: area 0.5 * 1/2 (+ 0.5 * 1 for a budget of 1)
    assert normalized_area([0.5], [1.0], budget) == pytest.approx(expected, rel=1e-12)


def test_normalized_regret_averages_traces_then_problems() -> None:
    # problem A: traces of area 0.75 and 0.5 at C0 = 200 -> 0.625; problem B: area 0
    traces = [
        [([100.0], [1.0]), ([100.0, 200.0], [0.5, 1.0])],
        [([50.0], [0.0])],
    ]
    per_problem = normalized_area_per_problem(traces, 200)
    assert per_problem.dtype == np.float64
    np.testing.assert_allclose(per_problem, [0.625, 0.0], rtol=1e-12)
    assert normalized_regret(traces, 200) == pytest.approx(1 - 0.3125, rel=1e-12)
    assert isinstance(normalized_regret(traces, 200), float)


@pytest.mark.parametrize("budget", [0, -1.0, math.inf, math.nan])
def test_bad_budgets_are_rejected(budget: float) -> None:
    message = r"budget must be a positive finite number of tokens, got"
    with pytest.raises(ValueError, match=message):
        normalized_area([1.0], [1.0], budget)
    with pytest.raises(ValueError, match=message):
        normalized_regret([[([1.0], [1.0])]], budget)


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        (([1.0],), r"problem 0, trace 1: a trace must be a pair \(tokens, j\)"),
        (5, r"problem 0, trace 1: a trace must be a pair \(tokens, j\)"),
        (([1.0, 2.0], [0.5]), r"problem 0, trace 1: tokens has 2 points but j has 1"),
        (([], []), r"problem 0, trace 1: a trace needs at least one \(tokens, j\) point"),
        (([-1.0], [0.5]), r"problem 0, trace 1: tokens must be >= 0, got"),
        (([2.0, 1.0], [0.5, 0.5]), r"problem 0, trace 1: tokens must be non-decreasing, got"),
        (([1.0], [1.5]), r"problem 0, trace 1: j must lie in \[0, 1\]"),
        (([1.0], [math.nan]), r"problem 0, trace 1: j must be finite"),
        (([[1.0]], [[0.5]]), r"problem 0, trace 1: tokens must be 1-D"),
    ],
)
def test_bad_traces_are_named(trace: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalized_regret([[([1.0], [1.0]), trace]], 10)  # type: ignore[list-item]


def test_a_single_trace_is_named_trace() -> None:
    with pytest.raises(ValueError, match=r"^trace: tokens has 2 points but j has 1$"):
        normalized_area([1.0, 2.0], [0.5], 10)


def test_zero_tokens_are_allowed_and_equal_tokens_too() -> None:
    assert normalized_area([0.0, 0.0], [0.5, 1.0], 10) == 1.0


def test_empty_problem_lists_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"^traces is empty: need at least one problem$"):
        normalized_regret([], 10)
    with pytest.raises(ValueError, match=r"problem 1: no traces"):
        normalized_area_per_problem([[([1.0], [1.0])], []], 10)


# --- regret over an episode budget ------------------------------------------------------------


def test_regret_over_episode_budget_extends_and_truncates() -> None:
    # problem 0: [0, 1] -> [0, 1, 1]: Δ = 0, 1, 1, 1; [0.5] -> [0.5] * 3: Δ = 0, 0.5, 1, 1.5
    #   mean 0, 0.75, 1, 1.25; problem 1: [0.25] * 3 (the 1.0 cut off): Δ = 0, 0.75, 1.5, 2.25
    curves = [[[0.0, 1.0], [0.5]], [[0.25, 0.25, 0.25, 1.0]]]
    result = regret_over_episode_budget(curves, episode_budget=3)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, [0.0, 0.75, 1.25, 1.75], rtol=1e-12)


def test_regret_over_episode_budget_with_another_comparator() -> None:
    np.testing.assert_allclose(
        regret_over_episode_budget([[[0.0]]], episode_budget=2, j_star=0.5), [0.0, 0.5, 1.0]
    )
    np.testing.assert_allclose(regret_over_episode_budget([[[0.25]]], 1), [0.0, 0.75])


@pytest.mark.parametrize(
    ("curves", "budget", "message"),
    [
        ([[[0.5]]], True, r"episode_budget must be an int, got True"),
        ([[[0.5]]], 2.0, r"episode_budget must be an int, got 2.0"),
        ([[[0.5]]], 0, r"episode_budget must be >= 1, got 0"),
        ([], 1, r"^j_curves is empty: need at least one problem$"),
        ([[[0.5]], []], 1, r"problem 1: no traces"),
        ([[[0.5], []]], 1, r"problem 0, trace 1: j needs at least one value"),
        ([[[0.5], [[0.5]]]], 1, r"problem 0, trace 1: j must be 1-D"),
        ([[[0.5], [1.5]]], 1, r"problem 0, trace 1: j must lie in \[0, 1\]"),
    ],
)
def test_regret_over_episode_budget_rejects_bad_input(
    curves: object, budget: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        regret_over_episode_budget(curves, budget)  # type: ignore[arg-type]


# --- token efficiency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (0.5, 250.0),  # between (200, 0.4) and (300, 0.6)
        (0.4, 200.0),  # exactly at a point
        (0.6, 300.0),  # exactly at the last point
        (0.1, 100.0),  # the first point already reaches it: no extrapolation to 0
        (0.2, 100.0),
        (0.3, 150.0),
        (0.7, math.inf),
    ],
)
def test_tokens_to_reach(target: float, expected: float) -> None:
    assert tokens_to_reach([100, 200, 300], [0.2, 0.4, 0.6], target) == expected


def test_tokens_to_reach_accepts_repeated_token_counts() -> None:
    # a jump at 100 tokens from 0.2 to 0.4: 0.3 is first reached at 100
    assert tokens_to_reach([100, 100, 200], [0.2, 0.4, 0.6], 0.3) == 100.0
    assert tokens_to_reach([0.5, 1.0], [0.0, 1.0], 0.5) == 0.75


def test_tokens_to_reach_interpolates_an_uneven_step() -> None:
    # between (10, 0.0) and (50, 0.8): 0.6 reached at 10 + 0.6 / 0.8 * 40 = 40
    assert tokens_to_reach([10, 50], [0.0, 0.8], 0.6) == pytest.approx(40.0, rel=1e-12)


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        (([1, 2], [0.5]), r"curve: tokens \(2\) and accuracy \(1\) must have the same non-zero"),
        (([], []), r"curve: tokens \(0\) and accuracy \(0\) must have the same non-zero"),
        (([-1], [0.5]), r"curve: tokens must be >= 0 and non-decreasing, got"),
        (([2, 1], [0.5, 0.5]), r"curve: tokens must be >= 0 and non-decreasing"),
        (([1], [math.nan]), r"curve accuracy must be finite"),
        (([math.nan], [0.5]), r"curve tokens must be finite"),
    ],
)
def test_tokens_to_reach_rejects_bad_curves(curve: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tokens_to_reach(*curve, target=0.5)  # type: ignore[misc]


def test_token_efficiency_cases() -> None:
    a = ([100, 200, 300], [0.3, 0.5, 0.6])
    b = ([150, 300, 450], [0.3, 0.4, 0.5])
    assert token_efficiency(a, b) == 2.25  # B reaches 0.5 at 450, A at 200
    assert token_efficiency(a, b, target=0.4) == 2.0  # B at 300, A at 150
    assert math.isnan(token_efficiency(b, a))  # B never reaches A's 0.6
    assert math.isnan(token_efficiency(a, b, target=0.55))  # B never reaches 0.55
    assert token_efficiency(([0, 100], [0.5, 1.0]), ([100], [0.5])) == math.inf
    assert math.isnan(token_efficiency(([0, 100], [0.5, 1.0]), ([0], [0.5])))
    assert token_efficiency(([0, 100], [0.5, 1.0]), ([0.5], [0.5])) == math.inf


def test_token_efficiency_names_the_bad_curve() -> None:
    with pytest.raises(ValueError, match=r"curve_a must be a pair \(tokens, accuracy\)"):
        token_efficiency((1, 2, 3), ([1], [0.5]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"curve_b must be a pair \(tokens, accuracy\)"):
        token_efficiency(([1], [0.5]), 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"curve_a tokens must be 1-D"):
        token_efficiency(([[1]], [[0.5]]), ([1], [0.5]))
    with pytest.raises(ValueError, match=r"curve_b: tokens \(1\) and accuracy \(2\)"):
        token_efficiency(([1], [0.5]), ([1], [0.5, 0.6]))


# --- pass@k, maj@k ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3, 2) / C(5, 2)
        (4, 1, 2, 0.5),
        (5, 1, 1, 0.2),
        (4, 0, 1, 0.0),
        (4, 0, 4, 0.0),
        (4, 3, 2, 1.0),  # n - c = 1 < k
        (4, 2, 2, 1 - 1 / 6),  # n - c = k: 1 - C(2, 2) / C(4, 2)
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7, 4) / C(10, 4)
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pass_at_k_accepts_numpy_integers() -> None:
    assert pass_at_k(np.int64(4), np.int64(1), np.int64(2)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (True, 0, 1, r"n must be an int, got True"),
        (4.0, 0, 1, r"n must be an int, got 4.0"),
        (4, False, 1, r"c must be an int, got False"),
        (4, 0, 1.0, r"k must be an int, got 1.0"),
        (0, 0, 1, r"need n >= 1, 0 <= c <= n and 1 <= k <= n; got n=0, c=0, k=1"),
        (4, 5, 1, r"got n=4, c=5, k=1"),
        (4, -1, 1, r"got n=4, c=-1, k=1"),
        (4, 1, 0, r"got n=4, c=1, k=0"),
        (4, 1, 5, r"got n=4, c=1, k=5"),
    ],
)
def test_pass_at_k_rejects_bad_input(n: object, c: object, k: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)  # type: ignore[arg-type]


def test_likelihood_weight_is_two_to_the_mean_logprob() -> None:
    assert likelihood_weight([-1.0, -3.0]) == 0.25
    assert likelihood_weight([0.0]) == 1.0
    assert likelihood_weight([-2.0, -2.0, -5.0]) == pytest.approx(2.0**-3)
    with pytest.raises(ValueError, match=r"^token_logprobs is empty$"):
        likelihood_weight([])
    with pytest.raises(ValueError, match=r"token_logprobs must be 1-D"):
        likelihood_weight([[-1.0]])


def test_maj_at_k_votes_among_the_first_k() -> None:
    answers = [None, "5", "4", "4"]
    correct = [False, False, True, True]
    assert maj_at_k(answers, correct, k=1) == 0.0  # no vote at all
    assert maj_at_k(answers, correct, k=2) == 0.0  # only "5" votes
    assert maj_at_k(answers, correct, k=3) == 0.5  # tie "5" / "4": half the winners correct
    assert maj_at_k(answers, correct, k=4) == 1.0
    assert maj_at_k(["7", "8", "9"], [False, True, False], k=3) == pytest.approx(1 / 3)


def test_maj_at_k_with_weights() -> None:
    answers, correct = ["4", "5", "5"], [True, False, False]
    assert maj_at_k(answers, correct, 3, weights=[0.9, 0.2, 0.3]) == 1.0
    assert maj_at_k(answers, correct, 3, weights=[0.4, 0.2, 0.3]) == 0.0
    assert maj_at_k(answers, correct, 3, weights=[0.5, 0.2, 0.3]) == 0.5  # a tie
    assert maj_at_k(answers, correct, 2, weights=[0.0, 0.0, 9.0]) == 0.5  # a tie at zero
    # tiny likelihood weights (2 ** mean logprob of long answers) still decide the vote
    assert maj_at_k(["4", "5"], [True, False], 2, weights=[3e-17, 1e-17]) == 1.0


@pytest.mark.parametrize(
    ("answers", "correct", "k", "weights", "message"),
    [
        (["4", "4"], [True, False], 2, None, r"answer '4' is marked both correct and wrong"),
        (["4"], [True, False], 1, None, r"answers \(1\) and correct \(2\) differ in length"),
        (["4", "5"], [True, False], 0, None, r"k must be an int in \[1, 2\], got 0"),
        (["4", "5"], [True, False], 3, None, r"k must be an int in \[1, 2\], got 3"),
        (["4", "5"], [True, False], True, None, r"k must be an int in \[1, 2\], got True"),
        (["4", "5"], [True, False], 1.0, None, r"k must be an int in \[1, 2\], got 1.0"),
        (["4", "5"], [True, False], 2, [1.0], r"weights must be 2 non-negative values"),
        (["4", "5"], [True, False], 2, [1.0, -0.5], r"weights must be 2 non-negative values"),
        (["4", "5"], [True, False], 2, [math.nan, 1.0], r"^weights must be finite, got"),
    ],
)
def test_maj_at_k_rejects_bad_input(
    answers: list[str], correct: list[bool], k: object, weights: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        maj_at_k(answers, correct, k, weights)  # type: ignore[arg-type]


def test_maj_at_k_checks_conflicts_only_among_votes() -> None:
    # the conflicting fourth answer is outside k = 3
    assert maj_at_k(["4", "5", "4", "4"], [True, False, True, False], k=3) == 1.0


def test_budget_check_names_the_longest_prompt_not_the_last_id() -> None:
    from mrt_env.regret import check_budgets_above_prompts

    # "b" sorts after "a" but has the shorter prompt: the check is against a's 90 tokens
    with pytest.raises(ValueError, match=r"C0=80 is not above the 90-token prompt of problem 'a'"):
        check_budgets_above_prompts([80, 200], {"a": 90, "b": 10})
    check_budgets_above_prompts([91], {"a": 90, "b": 10})  # above every prompt: fine
