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


def test_a_zero_reward_training_run_warns_and_flags_from_the_first_step(tmp_path: Path) -> None:
    """The random test double never answers right: every outcome is 0, and the run says so
    at step 1 (warning and metrics), skipping the optimizer step."""
    import json

    from typer.testing import CliRunner

    from agents.cli import app

    args = ["--algo", "grpo", "--model", "random-tiny", "--steps", "1"]
    args += ["--problems-per-step", "1", "--group-size", "2", "--token-budget", "16"]
    args += ["--train-size", "10", "--no-progress", "--no-tensorboard", "--out", str(tmp_path)]
    with pytest.warns(DegenerateRunWarning, match="step 1: every advantage was 0"):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "optimizer step skipped" in result.output
    rows = [json.loads(line) for line in (tmp_path / "tb" / "metrics.jsonl").open()]
    assert rows[0]["step"] == 1 and rows[0]["degenerate/zero_rewards"] == 1.0
    assert rows[0]["charts/skipped_update"] == 1.0
    assert "env/single_episode_share" in rows[0]


def test_degenerate_flags_are_metrics_from_the_first_step() -> None:
    monitor = RunMonitor()
    step = {**ZERO, "env/j": 0.0, "env/j_final": 0.0, "env/single_episode_share": 0.75}
    assert monitor.flags({**step, "env/forced_answered": 0.25}) == {
        "degenerate/zero_rewards": 1.0,
        "degenerate/j_zero": 1.0,
        "degenerate/single_episode": 1.0,
        "degenerate/forced_unreadable": 1.0,
    }
    healthy = {"reward/outcome": 0.5, "charts/advantage_abs": 0.3, "env/j": 0.4,
               "env/single_episode_share": 0.5, "env/forced_answered": 0.9}  # fmt: skip
    assert set(monitor.flags(healthy).values()) == {0.0}
    names, messages = _issued(monitor, [{**step, "charts/skipped_update": 1.0}])
    assert names == ["zero_rewards", "single_episode"]  # at step 1, by default
    assert "the optimizer step was skipped" in messages[0]
    assert "progress credit is empty: MRT reduces to outcome RL" in messages[1]


def test_one_episode_responses_do_not_warn_without_a_meta_prover() -> None:
    names, _ = _issued(RunMonitor(), [{"reward/outcome": 0.5, "env/single_episode_share": 1.0}])
    assert names == []  # outcome-only training has no progress credit to lose
