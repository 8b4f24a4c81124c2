"""Checkpoint cards: the command reproduces the run, every figure comes from the JSON inputs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from typer.testing import CliRunner

from agents.card import render_card, training_command
from agents.cli import app

RUN = [
    "--algo", "mrt", "--credit", "progress", "--alpha", "0.5", "--model", "random-tiny",
    "--minutes", "5", "--steps", "2", "--seed", "3", "--problems-per-step", "1",
    "--group-size", "2", "--lr", "0.0001", "--token-budget", "24", "--max-episodes", "2",
    "--prover-samples", "2", "--eval-interval", "1", "--eval-problems", "2",
]  # fmt: skip


def _summary(pass_at_1: float, per_problem: list[float], regret: dict[str, float]) -> dict:
    return {
        "pass_at_1": pass_at_1,
        "ci_low": pass_at_1 - 0.1,
        "ci_high": pass_at_1 + 0.1,
        "mean_tokens": 100.0 * pass_at_1,
        "per_problem": per_problem,
        "normalized_regret": regret,
    }


def _evaluation(n: int, budgets: list[float]) -> dict:
    settings = {"policy": {"temperature": 0.8}, "token_budget": 256, "prover_samples": 4}
    regret = {str(int(b)): 0.5 for b in budgets}
    return {
        "settings": settings,
        "n": n,
        "budgets": budgets,
        "base": _summary(0.25, [0.0, 0.0, 0.0, 1.0], regret),
        "grpo": {**_summary(0.5, [1.0, 0.0, 0.0, 1.0], regret), "minus_first": None},
        "mrt": {
            **_summary(0.75, [1.0, 1.0, 0.0, 1.0], regret),
            "minus_first": {"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75},
        },
    }


def test_card_command_reproduces_the_run_and_figures_come_from_the_inputs(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, [*RUN, "--no-progress", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    command = shlex.split(training_command(run, str(tmp_path / "b")))
    assert command[0] == "mrt-train"
    again = runner.invoke(app, [*command[1:], "--no-progress"])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "b" / "run.json").read_text()) == run

    base = tmp_path / "a" / "model"
    card = render_card(
        "mrt", tmp_path / "a", _evaluation(4, []), _evaluation(4, [64.0, 128.0]), base
    )
    assert "steps completed: 2" in card and "step 1: " in card and "step 2: " in card
    assert "| pass@1 [95% CI] | 0.250 [0.150, 0.350] | 0.500 [0.400, 0.600] |" in card
    assert "| pass@1 − base [95% CI] | – | – | +0.500 [+0.250, +0.750] |" in card
    assert "| normalized regret @ 128 | 0.500 | 0.500 | 0.500 |" in card
    assert "MRT beats the base by more than the CI" in card
    assert "MRT − GRPO pass@1 (paired): +0.250" in card


def test_a_card_chosen_from_a_study_names_the_seed_the_study_command_and_the_mean() -> None:
    from agents.card import study_section

    study = {
        "problems": 100,
        "settings": {
            "seeds": [0, 1, 2],
            "methods": ["grpo", "mrt-progress"],
            "train_minutes": 7.0,
            "train_flags": "--lr 3e-5",
            "curve_interval": 40,
            "num_problems": 100,
            "samples": 4,
            "name": "study5",
        },
        "methods": {
            "grpo": {
                "per_seed": {"pass@1": [0.31, 0.27, 0.35]},
                "across_seeds": {"pass@1": {"mean": 0.31, "ci_low": 0.21, "ci_high": 0.41}},
                "steps": [210, 190, 205],
            }
        },
    }
    text = study_section(study, "grpo", 0)
    assert "training seed 0 of `grpo` in the 3-seed study" in text
    assert "is 0.310, the closest of the 3 seeds" in text  # seed 0's own figure, not seed 1's
    assert "0.310 [0.210, 0.410]" in text and "Steps reached per seed: 210/190/205" in text
    assert (
        "python benchmarks/reproduce.py --seeds 0 1 2 --methods grpo mrt-progress "
        "--train-minutes 7 --train-flags '--lr 3e-5' --curve-interval 40 --num-problems 100 "
        "--name study5"
    ) in text
    assert "is 0.270" in study_section(study, "grpo", 1)


def test_the_figures_show_episodes_per_response_when_the_evaluation_measured_them() -> None:
    from agents.card import _figures_table

    passes = _evaluation(4, [])
    assert "episodes per response" not in _figures_table(["base", "mrt"], passes, {})
    passes["base"] |= {"mean_episodes": 2.1, "single_episode_share": 0.24}
    passes["mrt"] |= {"mean_episodes": 1.1, "single_episode_share": 0.91}
    table = _figures_table(["base", "mrt"], passes, {})
    assert "| episodes per response (one-episode share) | 2.10 (24%) | 1.10 (91%) |" in table
