"""Attacks on the env's arguments and actions and on the trainer's run folders.

Each attack asserts the status (a clear error of the right type, or a refused run with a
non-zero exit), a time bound, and that the next ordinary call still works.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

import mrt_env  # noqa: F401  (registers the ids)
from agents.cli import app
from mrt_env.env import MRTMathEnv
from tests.agents.test_cli import TINY
from tests.mrt_env.env_doubles import env_kwargs

SECONDS = 2.0
"""Time bound of every env attack (they are all input validation or text work)."""

BAD_MAKE_ARGUMENTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"k": 0}, ValueError, "k must be a positive int"),
    ({"k": 2.5}, ValueError, "k must be a positive int"),
    ({"token_budget": -1}, ValueError, "token_budget"),
    ({"token_budget": True}, ValueError, "token_budget"),
    ({"max_episodes": 0}, ValueError, "max_episodes"),
    ({"max_observation_chars": 0}, ValueError, "max_observation_chars"),
    ({"prover_temperature": math.nan}, ValueError, "prover_temperature must be a finite"),
    ({"prover_temperature": math.inf}, ValueError, "prover_temperature must be a finite"),
    ({"prover_temperature": -1.0}, ValueError, "prover_temperature"),
    ({"j_star": math.nan}, ValueError, "j_star"),
    ({"truncation_outcome": "maybe"}, ValueError, "truncation_outcome"),
    ({"prover": "sampled"}, ValueError, "prover must be None"),
    ({"prover": 3}, TypeError, "prover must implement"),
    ({"lm": 3}, TypeError, "lm must be a LanguageModel"),
    ({"lm": "/nonexistent/path"}, FileNotFoundError, "/nonexistent/path does not exist"),
    ({"lm": "./no-such-model"}, FileNotFoundError, "does not exist"),
    ({"template": "nope"}, KeyError, "nope"),
    ({"rewards": "outcome"}, TypeError, "rewards must be a tuple"),
    ({"rewards": ()}, ValueError, "at least one reward"),
    ({"reward_weights": (1.0,)}, ValueError, "reward_weights"),
    ({"seed": "0"}, TypeError, "seed must be an int"),
    ({"device": 0}, TypeError, "device must be a str"),
    ({"segmenter": object()}, TypeError, "segmenter must have"),
    ({"no_such_field": 1}, TypeError, "unknown EnvConfig field"),
    ({"problems": []}, ValueError, "the problem source is empty"),
    ({"problems": "/nonexistent/problems.jsonl"}, FileNotFoundError, "problem file not found"),
]


@pytest.mark.parametrize(("override", "error", "message"), BAD_MAKE_ARGUMENTS)
def test_bad_make_arguments_fail_fast_with_clear_errors(
    override: dict[str, Any], error: type[Exception], message: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(error, match=message):
        gym.make("MRTMath-v0", **env_kwargs(**override))
    assert time.perf_counter() - started < SECONDS
    env = gym.make("MRTMath-v0", **env_kwargs())  # and an ordinary make still works
    env.reset(seed=0)
    assert env.step("1+1=2.\n</think>\\boxed{2}")[2] in (True, False)


BAD_ACTIONS: list[tuple[Any, type[Exception], str]] = [
    (None, TypeError, "action must be a str"),
    (b"bytes", TypeError, "action must be a str"),
    (["list"], TypeError, "action must be a str"),
    (3, TypeError, "action must be a str"),
    ("ok \ud800 lone", ValueError, "lone surrogate '\\\\ud800' at character 3"),
    ("\udfff", ValueError, "lone surrogate"),
]


@pytest.mark.parametrize(("action", "error", "message"), BAD_ACTIONS)
def test_bad_actions_raise_and_leave_the_trajectory_unchanged(
    action: Any, error: type[Exception], message: str
) -> None:
    env = MRTMathEnv(**env_kwargs())
    env.reset(seed=0)
    env.step("x = 1.\n\n")
    before = (env.trajectory.thinking, env.trajectory.total_tokens, env.trajectory.episode_index)
    started = time.perf_counter()
    with pytest.raises(error, match=message):
        env.step(action)
    assert time.perf_counter() - started < SECONDS
    after = (env.trajectory.thinking, env.trajectory.total_tokens, env.trajectory.episode_index)
    assert after == before
    assert env.step("y = 2.\n\n")[4]["episode_index"] == 1  # the next step works


@pytest.mark.parametrize(
    "action",
    [
        "a" * 5_000_000,  # one 5 MB word
        "x = 1. " * 700_000,  # 4.9 MB of short words
        "\n" * 3_000_000,  # only boundaries
        "中" * 2_000_000,  # non-ASCII
        "\\boxed{1}" * 300_000,  # thousands of boxes, no end of thinking
    ],
)
def test_multi_megabyte_actions_are_cut_at_the_budget_in_bounded_time(action: str) -> None:
    env = MRTMathEnv(**env_kwargs(token_budget=300, max_observation_chars=10_000_000))
    env.reset(seed=0)
    started = time.perf_counter()
    observation, _, terminated, truncated, info = env.step(action)
    assert time.perf_counter() - started < SECONDS
    assert truncated and not terminated and info["episode_cut"]
    assert info["total_tokens"] <= 300 and len(observation) < 1000
    env.reset(seed=1)
    assert env.step("1+1=2.\n</think>\\boxed{2}")[2]


# --------------------------------------------------------------------- trainer attacks
GRPO = ["--algo", "grpo", *TINY, "--no-tensorboard"]


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, [*GRPO, *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "steps must be >= 1"),
        (["--lr", "-1"], "lr must be a finite number > 0"),
        (["--lr", "inf"], "lr must be a finite number > 0"),
        (["--keep-checkpoints", "1"], "keep_checkpoints must be >= 2"),
        (["--credit", "released"], "--credit applies to --algo mrt only"),
        (["--template", "nope"], "nope"),
        (["--model", "/nonexistent/path"], "/nonexistent/path does not exist"),
    ],
)
def test_bad_training_settings_exit_2_with_one_clean_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    started = time.perf_counter()
    result = _invoke(*args, "--out", str(tmp_path))
    assert time.perf_counter() - started < 30
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "checkpoints").exists()


def test_a_diverging_run_stops_non_zero_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    # the KL term keeps every step a real update (all-zero advantages alone skip the step)
    out = ["--out", str(tmp_path), "--checkpoint-interval", "1", "--kl-coef", "0.1"]
    result = _invoke("--lr", "1000", "--steps", "4", *out)
    assert result.exit_code == 1
    assert "is not finite; training stopped" in result.output
    assert not (tmp_path / "model").exists()  # no NaN model exported
    rows = [json.loads(line) for line in (tmp_path / "tb" / "metrics.jsonl").open()]
    bad = rows[-1]
    assert any(v is None for k, v in bad.items() if k.startswith("losses/"))  # logged: null
    latest = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"]
    assert latest == bad["step"] - 1
    weights = load_file(str(tmp_path / "checkpoints" / f"step-{latest:08d}" / "model.safetensors"))
    assert all(bool(t.isfinite().all()) for t in weights.values())
    # a rerun resumes from that checkpoint and stops at the same step, the same way
    again = _invoke("--lr", "1000", "--steps", "4", *out)
    assert again.exit_code == 1 and f"step {bad['step']}:" in again.output
    steps = [json.loads(line)["step"] for line in (tmp_path / "tb" / "metrics.jsonl").open()]
    assert steps == list(range(1, bad["step"] + 1))  # no step logged twice
    # and a sane run in this process still trains
    fresh = _invoke("--steps", "1", "--out", str(tmp_path / "fresh"))
    assert fresh.exit_code == 0, fresh.output


def _two_checkpoints(out: Path) -> None:
    result = _invoke("--steps", "2", "--out", str(out), "--checkpoint-interval", "1")
    assert result.exit_code == 0, result.output


def _bad_pointer(out: Path) -> None:
    other = out.parent / "other"
    _two_checkpoints(other)
    pointer = {"step": 2, "path": str(other / "checkpoints" / "step-00000002")}
    (out / "checkpoints" / "latest.json").write_text(json.dumps(pointer))


ROOT = "checkpoints/step-00000002"


@pytest.mark.parametrize(
    ("damage", "file", "resumed"),
    [
        (lambda out: (out / ROOT / "trainer.json").write_text("{"), "trainer.json", 1),
        (lambda out: (out / ROOT / "model.safetensors").write_bytes(b""), "model.safetensors", 1),
        (lambda out: (out / ROOT / "rng.safetensors").write_bytes(b"\x00" * 9), "rng", 1),
        (lambda out: (out / ROOT / "manifest.json").unlink(), "manifest.json", 1),
        # a broken pointer: the step folders themselves verify, the newest is taken
        (lambda out: (out / "checkpoints/latest.json").write_text("[}"), "latest.json", 2),
        (_bad_pointer, "latest.json", 2),
    ],
)
def test_corrupt_run_folders_are_refused_by_name_and_fall_back_on_request(
    tmp_path: Path, damage: Any, file: str, resumed: int
) -> None:
    out = tmp_path / "run"
    _two_checkpoints(out)
    damage(out)
    refused = _invoke("--steps", "3", "--out", str(out))
    assert refused.exit_code == 1, refused.output
    assert file in refused.output and "Traceback" not in refused.output
    assert "--resume-fallback" in refused.output and "new run folder" in refused.output
    rescued = _invoke("--steps", "3", "--out", str(out), "--resume-fallback")
    assert rescued.exit_code == 0, rescued.output
    assert f"resumed from step {resumed}" in rescued.output


def test_a_kill_during_a_checkpoint_write_resumes_from_the_previous_one(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*GRPO, "--steps", "3", "--checkpoint-interval", "1", "--out", str(out)]
    # the process SIGKILLs itself in the middle of writing step 2's checkpoint
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import agents.checkpoint as checkpoint
        original = checkpoint.save_file
        def save_file(tensors, path, *a, **k):
            if "step-00000002" in path and path.endswith("rng.safetensors"):
                os.kill(os.getpid(), signal.SIGKILL)
            return original(tensors, path, *a, **k)
        checkpoint.save_file = save_file
        from agents.cli import app
        sys.argv = ["mrt-train", *{args!r}]
        app()
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, timeout=240, check=False
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    root = out / "checkpoints"
    assert [p.name for p in root.glob(".tmp-step-*")]  # the torn write is there
    assert json.loads((root / "latest.json").read_text())["step"] == 1
    rerun = CliRunner().invoke(app, args)
    assert rerun.exit_code == 0, rerun.output
    assert "resumed from step 1" in rerun.output and "removed" in rerun.output
    assert not list(root.glob(".tmp-step-*"))
    assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000003"]


@pytest.mark.slow
def test_lr_1000_on_the_tiny_lm_exits_non_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            *["--model", "tiny", "--lr", "1000", "--steps", "8", "--problems-per-step", "2"],
            *["--group-size", "2", "--no-progress", "--no-tensorboard", "--out", str(tmp_path)],
        ],
    )
    assert result.exit_code == 1, result.output
    assert "is not finite; training stopped" in result.output
    assert not (tmp_path / "model").exists()
