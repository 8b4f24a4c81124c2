"""benchmarks/strategy.py: PPO on MRTStrategy-v0 with both rewards, on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.scripts import load_script, run_script

strategy = load_script("strategy")

TINY = ["--seeds", "2", "--total-timesteps", "256", "--n-steps", "128", "--eval-trajectories", "8"]


def _check(results: dict) -> None:
    assert results["budgets"]["train"] == 64 and results["budgets"]["eval"] == [64, 128]
    assert results["budgets"]["read"] == [16, 32, 48, 64, 80, 96, 112, 128]
    expected = {
        "ppo/outcome",
        "ppo/outcome+progress",
        "fixed/attempt-once",
        "fixed/attempt-recheck-2",
    }
    assert set(results["results"]) == expected
    for by_budget in results["results"].values():
        assert set(by_budget) == {str(b) for b in results["budgets"]["read"]}
        for budget, stats in by_budget.items():
            regret = stats["normalized_regret"]
            assert regret["ci_low"] <= regret["mean"] <= regret["ci_high"]
            assert 0.0 <= regret["mean"] <= 1.0
            cumulative = stats["cumulative_regret_tokens"]["mean"]
            assert cumulative == pytest.approx(regret["mean"] * int(budget))
            assert 0.0 <= stats["accuracy"]["mean"] <= 1.0
    for name, by_budget in results["results"].items():
        seeds = name.startswith("ppo/")
        for stats in by_budget.values():
            assert stats["ci_over"] == ("training seeds" if seeds else "evaluation trajectories")
            assert len(stats["per_seed_normalized_regret"]) == (2 if seeds else 1)
            per_seed = stats["per_seed_normalized_regret"]
            if seeds:  # the CI is across the seeds' means, not pooled trajectories
                assert stats["normalized_regret"]["mean"] == pytest.approx(sum(per_seed) / 2)
                assert stats["normalized_regret"]["n"] == 2
    for budget, stat in results["regret_difference_progress_minus_outcome"].items():
        ppo = results["results"]
        expected = [
            a - b
            for a, b in zip(
                ppo["ppo/outcome+progress"][budget]["per_seed_normalized_regret"],
                ppo["ppo/outcome"][budget]["per_seed_normalized_regret"],
                strict=True,
            )
        ]
        assert stat["mean"] == pytest.approx(sum(expected) / 2) and stat["n"] == 2


def test_strategy_script_in_process(tmp_path: Path) -> None:
    argv = [*TINY, "--token-budget", "64", "--run-dir", str(tmp_path), "--name", "t"]
    results = strategy.main(strategy.parse_args(strategy.Args, argv))
    _check(results)
    assert (tmp_path / "t" / "regret.png").stat().st_size > 0
    assert json.loads((tmp_path / "t" / "results.json").read_text())["args"]["seeds"] == 2


@pytest.mark.slow
def test_strategy_script_as_a_process(tmp_path: Path) -> None:
    run_script("strategy", *TINY, "--token-budget", "64", "--run-dir", str(tmp_path))
    _check(json.loads((tmp_path / "default" / "results.json").read_text()))
