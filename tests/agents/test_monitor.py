"""RunMonitor: warnings that prevent silent zeros and silent caps in training runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from agents.monitor import DegenerateRunWarning, RunMonitor

ZERO = {"reward/outcome": 0.0, "charts/advantage_abs": 0.0}


def _issued(monitor: RunMonitor, steps: list[dict[str, float]]) -> tuple[list[str], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = [name for step, m in enumerate(steps, 1) for name in monitor.check(m, step)]
    return names, [str(w.message) for w in caught if w.category is DegenerateRunWarning]


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        ({"env/answered": 0.0}, "readable final answer"),  # answers cut off / no \boxed{}
        ({"env/answered": 1.0, "env/forced_answered": 0.1}, "--forced-answer-tokens"),
        ({"env/answered": 1.0, "env/j": 0.0, "env/j_final": 0.0}, "J is 0 everywhere"),
    ],
)
def test_consecutive_zero_reward_steps_warn_with_the_likely_cause(
    extra: dict[str, float], cause: str
) -> None:
    names, messages = _issued(RunMonitor(zero_steps=3), [{**ZERO, **extra}] * 4)
    assert names.count("zero_rewards") == 1  # once the streak reaches 3, not at every step
    assert any("3 consecutive steps" in m and cause in m for m in messages)


def test_a_step_with_rewards_resets_the_streak() -> None:
    learning = {"reward/outcome": 0.5, "charts/advantage_abs": 0.7}
    names, _ = _issued(RunMonitor(zero_steps=2), [ZERO, learning, ZERO, learning])
    assert names == []


def test_capped_episodes_and_cut_forced_answers_warn_once() -> None:
    step = {"charts/episode_cap_share": 0.8, "env/forced_answered": 0.2, "reward/outcome": 0.5}
    names, messages = _issued(RunMonitor(), [step, step])
    assert sorted(names) == ["episode_cap", "forced_cut"]
    assert any("safety cap" in m for m in messages)


def test_a_zero_reward_training_run_warns(tmp_path: Path) -> None:
    """The random test double never answers right: every outcome is 0, and the run says so."""
    from typer.testing import CliRunner

    from agents.cli import app

    args = ["--algo", "grpo", "--model", "random-tiny", "--steps", "2", "--zero-reward-steps"]
    args += ["2", "--problems-per-step", "1", "--group-size", "2", "--token-budget", "16"]
    args += ["--train-size", "10", "--no-progress", "--no-tensorboard", "--out", str(tmp_path)]
    with pytest.warns(DegenerateRunWarning, match="2 consecutive steps"):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
