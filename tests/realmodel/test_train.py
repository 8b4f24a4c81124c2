"""``mrt-train --algo grpo`` and ``--algo mrt`` on SmolLM2 and MATH-500: killed, then resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import app

pytestmark = pytest.mark.realmodel


def _options(model: str, math500: Path, algo: str, out: Path) -> list[str]:
    return [
        "--algo", algo, "--model", model, "--problems", str(math500), "--seed", "0",
        "--steps", "2", "--problems-per-step", "1", "--group-size", "2",
        "--token-budget", "8", "--max-episodes", "2", "--prover-samples", "1",
        "--no-tensorboard", "--no-progress", "--out", str(out),
    ]  # fmt: skip


def _steps(out: Path) -> list[int]:
    lines = (out / "tb" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("algo", ["grpo", "mrt"])
def test_two_steps_killed_after_the_first_checkpoint_then_resumed(
    lm_spec: str, short_math500: Path, tmp_path: Path, algo: str
) -> None:
    out = tmp_path / algo
    options = _options(lm_spec, short_math500, algo, out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pointer = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 900
    while not pointer.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert pointer.exists(), "no checkpoint appeared before the kill"
    checkpointed = json.loads(pointer.read_text())["step"]
    assert checkpointed in (1, 2)

    rerun = CliRunner().invoke(app, options)
    assert rerun.exit_code == 0, rerun.output
    if checkpointed < 2:
        assert "resumed from step 1" in rerun.output
    steps = _steps(out)
    assert steps[-1] == 2 and sorted(set(steps)) == [1, 2]
    assert (out / "model" / "model.safetensors").is_file()
    settings = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert settings["step"] == 2
    shutil.rmtree(out / "checkpoints")  # 1.6 GB per checkpoint of a 135M model
