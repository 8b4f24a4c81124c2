"""Regret metrics against hand-computed values."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest

from mrt_env import regret
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

# (tokens, j, budget C0, expected area / C0); the curve always starts at the origin (0, 0)
AREA_CASES = [
    # reaches 1 at 100, flat to 200: triangle 100*1/2 = 50 plus rectangle 100*1 = 100 -> 150/200
    ([100.0], [1.0], 200.0, 0.75),
    # flat extension: (0,0)-(50,.5): 12.5; (50,.5)-(100,.5): 25; flat .5 to 400: 150
    # -> 187.5 / 400
    ([50.0, 100.0], [0.5, 0.5], 400.0, 0.46875),
    # interpolation at C0: (100,0)-(300,1) gives J(200) = 0.5; area 0 + 100*(0+.5)/2 = 25
    # -> 25 / 200
    ([100.0, 300.0], [0.0, 1.0], 200.0, 0.125),
    # a point exactly at C0 is used as is, later points are ignored: 50 + 50 = 100 -> 100/200
    ([100.0, 200.0, 300.0], [1.0, 0.0, 1.0], 200.0, 0.5),
    # C0 before the first reading: J(100) = 0.25 on (0,0)-(400,1); area 100*.25/2 = 12.5
    # -> 12.5 / 100
    ([400.0], [1.0], 100.0, 0.125),
    # equal token counts make a vertical jump: 0 + 0 + 100*1 = 100 -> 100/200
    ([100.0, 100.0], [0.0, 1.0], 200.0, 0.5),
    # a reading at 0 tokens jumps straight to 1: area 100 -> 100/100
    ([0.0, 100.0], [1.0, 1.0], 100.0, 1.0),
    # J never leaves 0: no area
    ([10.0, 20.0], [0.0, 0.0], 50.0, 0.0),
]


@pytest.mark.parametrize(("tokens", "j", "budget", "expected"), AREA_CASES)
def test_normalized_area(
    tokens: list[float], j: list[float], budget: float, expected: float
) -> None:
    assert normalized_area(tokens, j, budget) == pytest.approx(expected, abs=1e-12)


def test_normalized_regret_averages_traces_then_problems() -> None:
    traces = [
        # problem 0: areas 0.75 and 0.125 (cases above) -> mean 0.4375
        [([100.0], [1.0]), ([100.0, 300.0], [0.0, 1.0])],
        # problem 1: area 0.5 -> mean 0.5
        [([100.0, 100.0], [0.0, 1.0])],
    ]
    per_problem = normalized_area_per_problem(traces, budget=200)
    np.testing.assert_allclose(per_problem, [0.4375, 0.5])
    # 1 - (0.4375 + 0.5) / 2; pooling all traces would give 1 - 1.375/3 = 0.5417 instead
    assert normalized_regret(traces, budget=200) == pytest.approx(0.53125)


def test_normalized_regret_accepts_numpy_arrays_and_is_zero_for_instant_success() -> None:
    traces = [[(np.array([0.0]), np.array([1.0]))]]
    assert normalized_regret(traces, budget=1000) == pytest.approx(0.0)


def test_normalized_regret_grows_budget_with_flat_curve() -> None:
    # J = 1 from 100 tokens on: area/C0 = 1 - 50/C0, so regret = 50/C0 shrinks with the budget
    traces = [[([100.0], [1.0])]]
    for budget in (200.0, 1000.0, 4000.0):
        assert normalized_regret(traces, budget) == pytest.approx(50.0 / budget)


# (traces, budget, message the ValueError must contain)
BAD_REGRET_INPUTS = [
    # no problems at all
    ([], 100, "traces is empty"),
    # a problem with no traces
    ([[([1.0], [0.5])], []], 100, "problem 1: no traces"),
    # tokens decrease
    ([[([1.0], [0.5])], [([5.0, 3.0], [0.1, 0.2])]], 100, "problem 1, trace 0: tokens must be"),
    # lengths differ
    ([[([1.0], [0.5]), ([1.0, 2.0], [0.5])]], 100, "problem 0, trace 1: tokens has 2 points"),
    # J above 1
    ([[([1.0], [1.5])]], 100, r"problem 0, trace 0: j must lie in \[0, 1\]"),
    # J below 0
    ([[([1.0], [-0.1])]], 100, r"problem 0, trace 0: j must lie in \[0, 1\]"),
    # a trace without points
    ([[([], [])]], 100, "problem 0, trace 0: a trace needs at least one"),
    # negative tokens
    ([[([-1.0], [0.5])]], 100, "problem 0, trace 0: tokens must be >= 0"),
    # NaN J
    ([[([1.0], [math.nan])]], 100, "problem 0, trace 0: j must be finite"),
    # not a pair
    ([[([1.0], [0.5], [2.0])]], 100, "problem 0, trace 0: a trace must be a pair"),
    # 2-D tokens
    ([[([[1.0]], [0.5])]], 100, "problem 0, trace 0: tokens must be 1-D"),
    # zero budget
    ([[([1.0], [0.5])]], 0, "budget must be a positive"),
    # negative budget
    ([[([1.0], [0.5])]], -5, "budget must be a positive"),
    # infinite budget
    ([[([1.0], [0.5])]], math.inf, "budget must be a positive"),
]


@pytest.mark.parametrize(("traces", "budget", "message"), BAD_REGRET_INPUTS)
def test_normalized_regret_rejects_bad_input(traces: list, budget: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalized_regret(traces, budget)


# (j, j_star, expected Δ_0..Δ_n)
CUMULATIVE_CASES = [
    # J* = 1: increments 0.75, 0.5, 0
    ([0.25, 0.5, 1.0], 1.0, [0.0, 0.75, 1.25, 1.25]),
    # comparator curve: increments 0.5, 0, 0.5
    ([0.5, 0.5, 0.5], [1.0, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0]),
    # a comparator below J gives negative regret
    ([1.0], 0.5, [0.0, -0.5]),
    # no episodes: only Δ_0
    ([], 1.0, [0.0]),
]


@pytest.mark.parametrize(("j", "j_star", "expected"), CUMULATIVE_CASES)
def test_cumulative_regret(j: list[float], j_star: object, expected: list[float]) -> None:
    np.testing.assert_allclose(cumulative_regret(j, j_star), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("j", "j_star", "message"),
    [
        ([0.5, 0.5], [1.0], "j_star has 1 values but j has 2"),  # comparator length mismatch
        ([1.5], 1.0, r"j must lie in \[0, 1\]"),  # J outside [0, 1]
        ([0.5], math.nan, "j_star must be finite"),  # NaN comparator
        ([[0.5]], 1.0, "j must be 1-D"),  # 2-D J
    ],
)
def test_cumulative_regret_rejects_bad_input(j: object, j_star: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cumulative_regret(j, j_star)  # type: ignore[arg-type]


def test_regret_over_episode_budget() -> None:
    j_curves = [
        # problem 0: [0, 1] -> extended [0, 1, 1] -> Δ = [0, 1, 1, 1];
        #            [.5]   -> extended [.5, .5, .5] -> Δ = [0, .5, 1, 1.5]; mean [0, .75, 1, 1.25]
        [[0.0, 1.0], [0.5]],
        # problem 1: [1] -> Δ = [0, 0, 0, 0]
        [[1.0]],
    ]
    result = regret_over_episode_budget(j_curves, episode_budget=3)
    np.testing.assert_allclose(result, [0.0, 0.375, 0.5, 0.625])


def test_regret_over_episode_budget_cuts_long_curves() -> None:
    # only the first K = 2 values count
    np.testing.assert_allclose(regret_over_episode_budget([[[0.0] * 5]], 2), [0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    ("j_curves", "budget", "message"),
    [
        ([], 3, "j_curves is empty"),  # no problems
        ([[]], 3, "problem 0: no traces"),  # a problem without traces
        ([[[0.5], []]], 3, "problem 0, trace 1: j needs at least one"),  # an empty curve
        ([[[2.0]]], 3, r"problem 0, trace 0: j must lie in \[0, 1\]"),  # J outside [0, 1]
        ([[[0.5]]], 0, "episode_budget must be >= 1"),  # zero budget
    ],
)
def test_regret_over_episode_budget_rejects_bad_input(
    j_curves: list, budget: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        regret_over_episode_budget(j_curves, budget)


# (curve_a, curve_b, target, expected T_B / T_A)
EFFICIENCY_CASES = [
    # B's final accuracy 0.5 is reached by B at 450 and by A at its point 200 -> 2.25
    (([100, 200, 300], [0.3, 0.5, 0.6]), ([150, 300, 450], [0.3, 0.4, 0.5]), None, 2.25),
    # A reaches 0.5 between (100, .4) and (200, .6): 150 tokens; B at 300 -> 2.0
    (([100, 200], [0.4, 0.6]), ([100, 300], [0.1, 0.5]), None, 2.0),
    # B plateaus: it first reaches its final 0.5 at 200, not at 400 -> 200 / 100
    (([100, 200], [0.5, 0.6]), ([100, 200, 400], [0.2, 0.5, 0.5]), None, 2.0),
    # A is slower: 0.5 at 400 vs B at 200 -> 0.5
    (([200, 400], [0.3, 0.5]), ([100, 200], [0.3, 0.5]), None, 0.5),
    # explicit target 0.4: A at 150 ((100,.3)-(200,.5)), B at 300 ((200,.3)-(400,.5)) -> 2.0
    (([100, 200], [0.3, 0.5]), ([200, 400], [0.3, 0.5]), 0.4, 2.0),
]


@pytest.mark.parametrize(("curve_a", "curve_b", "target", "expected"), EFFICIENCY_CASES)
def test_token_efficiency(
    curve_a: tuple, curve_b: tuple, target: float | None, expected: float
) -> None:
    assert token_efficiency(curve_a, curve_b, target) == pytest.approx(expected)


def test_token_efficiency_is_nan_when_a_never_reaches_the_target() -> None:
    # A tops out at 0.4 < B's 0.5: the ratio is undefined without extrapolation
    assert math.isnan(token_efficiency(([100, 200], [0.3, 0.4]), ([100, 200], [0.3, 0.5])))
    # an explicit target that B never reaches is undefined too
    assert math.isnan(token_efficiency(([100], [0.9]), ([100], [0.5]), target=0.8))


def test_token_efficiency_is_inf_when_a_needs_no_tokens() -> None:
    assert token_efficiency(([0, 10], [0.6, 0.6]), ([100], [0.5])) == math.inf


def test_tokens_to_reach() -> None:
    assert tokens_to_reach([100, 200, 300], [0.2, 0.4, 0.6], 0.5) == pytest.approx(250.0)
    assert tokens_to_reach([100, 200], [0.7, 0.9], 0.5) == 100.0  # first point already there
    assert tokens_to_reach([100, 200], [0.1, 0.2], 0.5) == math.inf  # never
    with pytest.raises(ValueError, match="non-decreasing"):
        tokens_to_reach([200, 100], [0.1, 0.2], 0.5)


# (n, c, k, expected pass@k)
PASS_AT_K_CASES = [
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (10, 3, 1, 0.3),  # pass@1 is c / n
    (5, 0, 3, 0.0),  # nothing correct
    (5, 3, 3, 1.0),  # n - c = 2 < k: every 3-subset holds a correct sample
    (5, 5, 5, 1.0),  # all correct
    (20, 2, 5, 17 / 38),  # 1 - C(18,5)/C(20,5) = 1 - (15*14)/(20*19) = 1 - 21/38
]


@pytest.mark.parametrize(("n", "c", "k", "expected"), PASS_AT_K_CASES)
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_exact_binomials_for_large_n() -> None:
    # C(1000, 100) overflows float64; the product form stays accurate
    exact = 1 - Fraction(math.comb(600, 100), math.comb(1000, 100))
    assert pass_at_k(1000, 400, 100) == pytest.approx(float(exact), rel=1e-12)
    exact_small = 1 - Fraction(math.comb(995, 100), math.comb(1000, 100))
    assert pass_at_k(1000, 5, 100) == pytest.approx(float(exact_small), rel=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(0, 0, 1), (5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6), (5.0, 2, 1), (True, 1, 1)],
)
def test_pass_at_k_rejects_bad_input(n: object, c: object, k: object) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)  # type: ignore[arg-type]


# (answers, correct, k, weights, expected)
MAJ_CASES = [
    # "4" wins 2-1 and is correct
    (["4", "5", "4"], [True, False, True], 3, None, 1.0),
    # "5" wins 2-1 and is wrong
    (["4", "5", "5"], [True, False, False], 3, None, 0.0),
    # only the first k = 1 votes: "4"
    (["4", "5", "5"], [True, False, False], 1, None, 1.0),
    # tie 1-1 between a correct and a wrong answer: expected correctness 1/2
    (["4", "5"], [True, False], 2, None, 0.5),
    # None (no answer) does not vote: "5" wins alone
    ([None, None, "5"], [False, False, False], 3, None, 0.0),
    # no answer at all
    ([None, None], [False, False], 2, None, 0.0),
    # likelihood weights: "4" has 0.9 vs "5" with 0.2 + 0.3 = 0.5
    (["4", "5", "5"], [True, False, False], 3, [0.9, 0.2, 0.3], 1.0),
    # weights can also overturn a plain majority the other way
    (["4", "4", "5"], [True, True, False], 3, [0.1, 0.1, 0.5], 0.0),
]


@pytest.mark.parametrize(("answers", "correct", "k", "weights", "expected"), MAJ_CASES)
def test_maj_at_k(
    answers: list[str | None],
    correct: list[bool],
    k: int,
    weights: list[float] | None,
    expected: float,
) -> None:
    assert maj_at_k(answers, correct, k, weights) == pytest.approx(expected)


def test_maj_at_k_with_likelihood_weights_from_logprobs() -> None:
    # weights 2^-1 = 0.5 for "4"; 2^-3 = 0.125 twice for "5" -> "4" wins 0.5 vs 0.25
    weights = [likelihood_weight([-1.0]), likelihood_weight([-2.0, -4.0]), 0.125]
    assert weights[:2] == [0.5, 0.125]
    assert maj_at_k(["4", "5", "5"], [True, False, False], 3, weights) == 1.0


@pytest.mark.parametrize(
    ("answers", "correct", "k", "weights", "message"),
    [
        (["4"], [True, False], 1, None, "differ in length"),  # correctness per answer
        (["4", "4"], [True, False], 2, None, "marked both correct and wrong"),  # inconsistent
        (["4"], [True], 2, None, "k must be an int"),  # k beyond the samples
        (["4"], [True], 0, None, "k must be an int"),  # k zero
        (["4"], [True], 1, [-1.0], "non-negative"),  # negative weight
        (["4", "5"], [True, False], 1, [1.0], "non-negative"),  # weight count mismatch
    ],
)
def test_maj_at_k_rejects_bad_input(
    answers: list[str], correct: list[bool], k: int, weights: list[float] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        maj_at_k(answers, correct, k, weights)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(regret)
    assert result.attempted > 0
    assert result.failed == 0


def test_regret_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, mrt_env.regret; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_budgets_must_be_above_every_prompt() -> None:
    regret.check_budgets_above_prompts([87, 200], {"a": 12, "b": 86})  # 87 > 86: fine
    regret.check_budgets_above_prompts([], {"a": 500})  # no budgets: nothing to check
    with pytest.raises(ValueError, match=r"C0=86 is not above the 86-token prompt of problem 'b'"):
        regret.check_budgets_above_prompts([86, 200], {"a": 12, "b": 86})
