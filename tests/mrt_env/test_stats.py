"""Confidence intervals and paired comparisons (mrt_env.stats)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from mrt_env import stats


def test_bootstrap_ci_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(0).normal(0.3, 0.1, size=200)
    stat = stats.bootstrap_ci(values)
    assert stat["ci_low"] < stat["mean"] < stat["ci_high"]
    assert stat["mean"] == pytest.approx(values.mean()) and stat["n"] == 200
    assert stat["ci_high"] - stat["ci_low"] < 0.05  # ≈ 4 standard errors of 0.007
    assert stats.bootstrap_ci(values, seed=3) == stats.bootstrap_ci(values, seed=3)
    assert stats.bootstrap_ci([0.5, 0.5])["ci_low"] == 0.5  # constant data: no spread
    assert stats.bootstrap_ci([])["n"] == 0


def test_seed_ci_is_the_student_t_interval() -> None:
    values = [0.50, 0.52, 0.57]
    stat = stats.seed_ci(values)
    # mean 0.53, sd 0.036056, t(0.975, 2) = 4.302653 -> half width 0.089566
    assert stat["mean"] == pytest.approx(0.53)
    assert stat["ci_high"] - stat["mean"] == pytest.approx(4.302653 * 0.036056 / 3**0.5, rel=1e-4)
    assert stats.seed_ci([0.4])["ci_low"] == 0.4  # one run: no interval
    # far wider than a bootstrap over the same three values
    boot = stats.bootstrap_ci(values)
    assert stat["ci_high"] - stat["ci_low"] > 2 * (boot["ci_high"] - boot["ci_low"])


def test_probability_of_improvement_counts_paired_wins_and_ties() -> None:
    a, b = [0.1, 0.2, 0.5, 0.9], [0.3, 0.2, 0.4, 1.0]
    # wins at 0, 3; tie at 1 (counts 1/2); loss at 2 -> (1 + 0.5 + 0 + 1) / 4
    assert stats.probability_of_improvement(a, b)["mean"] == pytest.approx(0.625)
    assert stats.probability_of_improvement(b, a)["mean"] == pytest.approx(0.375)
    with pytest.raises(ValueError, match="paired"):
        stats.probability_of_improvement([0.1], [0.1, 0.2])


def test_docstring_examples_run() -> None:
    result = doctest.testmod(stats)
    assert result.attempted > 0 and result.failed == 0


def test_minimum_detectable_effect_matches_the_t_formula_by_hand() -> None:
    from mrt_env.stats import minimum_detectable_effect

    # differences 0.02, 0.06, -0.01, 0.04, 0.03: mean 0.028, squared deviations sum 2.68e-3,
    # sd = sqrt(2.68e-3 / 4) = 0.0258844; t(0.975, 4) = 2.7764451, t(0.80, 4) = 0.9409645
    # (Student-t tables) -> (2.7764451 + 0.9409645) * 0.0258844 / sqrt(5) = 0.0430321
    value = minimum_detectable_effect([0.02, 0.06, -0.01, 0.04, 0.03])
    assert value == pytest.approx(0.0430321, abs=2e-7)
    # more seeds with the same spread detect smaller effects; a smaller power needs less
    wide = minimum_detectable_effect([0.02, 0.06, -0.01, 0.04, 0.03] * 2)
    assert wide < value
    assert minimum_detectable_effect([0.02, 0.06, -0.01, 0.04, 0.03], power=0.5) < value


@pytest.mark.parametrize("bad", [[0.1], [], [0.1, float("nan")], [0.1, float("inf"), 0.2]])
def test_minimum_detectable_effect_rejects_what_has_no_spread(bad: list[float]) -> None:
    from mrt_env.stats import minimum_detectable_effect

    with pytest.raises(ValueError):
        minimum_detectable_effect(bad)
