"""``mrt-train`` end to end on the tiny random test double: every algorithm, logs, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from agents.cli import app

TINY = [
    "--model",
    "random-tiny",
    "--seed",
    "3",
    "--problems-per-step",
    "1",
    "--group-size",
    "4",
    "--token-budget",
    "24",
    "--max-episodes",
    "2",
    "--prover-samples",
    "2",
    "--train-size",
    "20",
    "--reward",
    "return",
    "--env-rewards",
    "outcome,length",
    "--no-progress",
]


def _metrics(out: Path) -> list[dict[str, float]]:
    lines = (out / "tb" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    "algo",
    [
        ["--algo", "grpo"],  # outcome-only baseline
        ["--algo", "grpo", "--kl-coef", "0.1", "--updates-per-batch", "2"],  # KL, clipped ratio
        ["--algo", "mrt", "--credit", "progress"],  # per-episode credit from the env's J
        # cut, continue, termination baseline (R - J(prefix) needs the 0/1 outcome)
        ["--algo", "mrt", "--credit", "released", "--reward", "outcome"],
        ["--algo", "star"],  # keep correct high-progress traces, SFT
    ],
)
def test_each_algorithm_trains_logs_and_checkpoints(tmp_path: Path, algo: list[str]) -> None:
    result = CliRunner().invoke(app, [*TINY, *algo, "--steps", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [metrics] = _metrics(tmp_path)
    for key in ("reward/outcome", "reward/progress", "env/regret", "charts/tokens"):
        assert key in metrics
    assert metrics["step"] == 1
    assert ("charts/kept_traces" if algo[1] == "star" else "losses/policy") in metrics
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "step-00000001" / "model.safetensors").exists()
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_released_credit_rejects_the_summed_return(tmp_path: Path) -> None:
    args = ["--algo", "mrt", "--credit", "released", *TINY, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)  # TINY trains on --reward return
    assert result.exit_code != 0
    assert "--credit released needs --reward outcome" in str(result.exception) + result.output
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_algorithm_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--algo", "ppo", *TINY, "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "grpo, mrt or star" in str(result.exception) + result.output


def test_rerun_with_more_steps_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--algo", "grpo", *TINY, "--no-tensorboard"]
    assert runner.invoke(app, [*args, "--steps", "2", "--out", str(tmp_path / "a")]).exit_code == 0
    resumed = runner.invoke(app, [*args, "--steps", "3", "--out", str(tmp_path / "a")])
    assert "resumed from step 2" in resumed.output
    assert runner.invoke(app, [*args, "--steps", "3", "--out", str(tmp_path / "b")]).exit_code == 0
    assert [m["step"] for m in _metrics(tmp_path / "a")] == [1, 2, 3]
    assert (
        _metrics(tmp_path / "a")[-1]["charts/tokens"]
        == _metrics(tmp_path / "b")[-1]["charts/tokens"]
    )
    for name, tensor in _weights(tmp_path / "b").items():
        assert (_weights(tmp_path / "a")[name] == tensor).all(), name


def _command(out: Path, steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agents.cli",
        "--algo",
        "grpo",
        *TINY,
        "--steps",
        str(steps),
        "--out",
        str(out),
        "--no-tensorboard",
        "--checkpoint-interval",
        "1",
    ]


def _weights(out: Path) -> dict[str, object]:
    return load_file(str(out / "model" / "model.safetensors"))


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    steps = 3
    reference = tmp_path / "reference"
    result = CliRunner().invoke(app, [*_command(reference, steps)[3:]])
    assert result.exit_code == 0, result.output

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(killed, steps), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 120
    while not pointer.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert pointer.exists(), "no checkpoint appeared before the kill"
    checkpointed = json.loads(pointer.read_text())["step"]
    assert 1 <= checkpointed <= steps

    # the same command again (in-process: only the killed run needs its own process)
    rerun = CliRunner().invoke(app, _command(killed, steps)[3:])
    assert rerun.exit_code == 0, rerun.output
    if checkpointed < steps:
        assert f"resumed from step {checkpointed}" in rerun.output
    # the resumed run repeats exactly what the uninterrupted one did
    assert [m["step"] for m in _metrics(killed)][-1] == steps
    expected = {m["step"]: m for m in _metrics(reference)}
    for resumed in _metrics(killed):
        for key in ("charts/tokens", "charts/trained_tokens", "reward/return", "losses/policy"):
            assert resumed[key] == pytest.approx(expected[resumed["step"]][key], abs=1e-9), key
    weights, reference_weights = _weights(killed), _weights(reference)
    for name, tensor in reference_weights.items():
        assert (weights[name] == tensor).all(), name
    # and training did change the weights (the comparison is not between two untouched models)
    initial = _initial_weights()
    assert any(not (weights[name] == initial[name]).all() for name in weights)


def _initial_weights() -> dict[str, object]:
    from mrt_env.lm.testing import tiny_random_model

    return {k: v for k, v in tiny_random_model(3).state_dict().items()}


def test_evaluation_on_other_problems_needs_an_eval_source(tmp_path: Path) -> None:
    """Evaluation is never silently off: other problems than TinyMath need --eval-source."""
    source = tmp_path / "problems.jsonl"
    source.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n')
    args = [*TINY, "--problems", str(source), "--eval-interval", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "--eval-source" in str(result.exception) + result.output
    args += ["--eval-source", str(source), "--eval-problems", "2", "--steps", "1"]
    result = CliRunner().invoke(app, [*args, "--no-tensorboard"])
    assert result.exit_code == 0, result.output
    start, metrics = _metrics(tmp_path)  # the starting model (step 0), then after step 1
    assert start["step"] == 0 and metrics["step"] == 1 and "eval/pass@1" in start
    assert 0.0 <= metrics["eval/pass@1"] <= 1.0 and 0.0 <= metrics["eval/answered"] <= 1.0
    assert metrics["eval/episodes"] >= 1.0 and 0.0 <= metrics["eval/single_episode_share"] <= 1.0


@pytest.mark.parametrize("module", ["agents.cli", "agents.evaluate"])
def test_help_shows_every_option_name_whole_at_80_columns(module: str) -> None:
    import importlib

    import typer

    command_app = importlib.import_module(module).app
    result = CliRunner().invoke(command_app, ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    names = [
        name
        for param in typer.main.get_command(command_app).params
        for name in (*param.opts, *param.secondary_opts)
    ]
    assert len(names) > 10
    words = {word.rstrip(",") for word in result.output.split()}
    missing = [name for name in names if name not in words]
    assert missing == [] and "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100


def test_k_zero_is_reported_as_k(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--k", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--k must be >= 1" in result.output and "prover_samples" not in result.output


def test_a_resumed_run_shows_its_true_step(tmp_path: Path) -> None:
    quiet = [a for a in TINY if a != "--no-progress"]
    args = [*quiet, "--algo", "grpo", "--no-tensorboard", "--out", str(tmp_path)]
    assert CliRunner().invoke(app, [*args, "--steps", "1"]).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--steps", "2"])
    assert result.exit_code == 0, result.output
    bar = [line for line in result.output.replace("\r", "\n").splitlines() if "grpo:" in line]
    assert "1/2" in bar[0] and any("2/2" in line for line in bar)  # starts at the checkpoint
    assert "0/2" not in result.output
    assert "trajectories 4/4" in result.output  # progress within a step (G = 4)


def test_a_filter_applies_to_the_seeded_tinymath_training_set() -> None:
    from agents.cli import _problem_source
    from mrt_env.tinymath.problems import TinyMathSource

    source = _problem_source("tinymath:train?level=2", size=40, seed=5)
    whole = TinyMathSource(split="train", size=40, seed=5)  # --train-size and --seed still count
    expected = [whole[i].id for i in range(len(whole)) if whole[i].metadata["level"] == 2]
    assert [source[i].id for i in range(len(source))] == expected and expected


def test_learning_curve_evaluates_the_start_and_every_interval_with_common_seeds(
    tmp_path: Path,
) -> None:
    evals = ["--eval-interval", "1", "--eval-problems", "2", "--eval-budget", "24"]
    runs = {}
    for name, seed in (("a", "3"), ("b", "5")):  # two training seeds, one evaluation seed
        out = tmp_path / name
        args = [*TINY, "--seed", seed, *evals, "--eval-seed", "11", "--steps", "2"]
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[name] = [m for m in _metrics(out) if "eval/pass@1" in m]
    for rows in runs.values():
        # the starting model at step 0 (no training time yet), then after steps 1 and 2
        assert [m["step"] for m in rows] == [0, 1, 2]
        assert rows[0]["charts/elapsed_s"] == 0.0 and rows[2]["charts/elapsed_s"] > 0
        for m in rows:
            assert 0.0 <= m["eval/regret@24"] <= 1.0 and 0.0 <= m["eval/pass@1"] <= 1.0
    # step 0 is the same model on the same problems with the same sampling seed in both runs
    # (common random numbers), whatever the training seed
    first = {k: v for k, v in runs["a"][0].items() if k.startswith("eval/")}
    assert first == {k: v for k, v in runs["b"][0].items() if k.startswith("eval/")}


def test_a_restart_before_the_first_checkpoint_keeps_one_starting_evaluation(
    tmp_path: Path,
) -> None:
    # what a run killed during its first step leaves: the starting evaluation, no checkpoint
    (tmp_path / "tb").mkdir(parents=True)
    row = {"charts/elapsed_s": 0.0, "eval/pass@1": 0.25, "step": 0}
    (tmp_path / "tb" / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    evals = ["--eval-interval", "1", "--eval-problems", "1", "--eval-seed", "11"]
    again = CliRunner().invoke(app, [*TINY, *evals, "--steps", "1", "--out", str(tmp_path)])
    assert again.exit_code == 0, again.output
    rows = [m for m in _metrics(tmp_path) if "eval/pass@1" in m]
    assert [m["step"] for m in rows] == [0, 1] and rows[0]["eval/pass@1"] == 0.25
