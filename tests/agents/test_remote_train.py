"""``mrt-train --env-url``: the native trainer steps a served MRTMath-v0 (real server, loopback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.cli import app
from tests.agents.test_cli import TINY

pytest.importorskip("openenv")


def test_two_training_steps_against_the_served_env(tmp_path: Path, mrt_env_server: Any) -> None:
    before = mrt_env_server.stats()
    args = [*TINY, "--algo", "mrt", "--credit", "progress", "--steps", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--env-url", mrt_env_server.base_url])
    assert result.exit_code == 0, result.output
    metrics = [
        json.loads(line) for line in (tmp_path / "tb" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("reward/outcome", "reward/progress", "env/regret", "losses/policy"):
        assert key in metrics[-1]
    after = mrt_env_server.stats()
    # every reset and step of both batches (4 trajectories each) ran on the server
    assert after["worker_jobs"] - before["worker_jobs"] >= 2 * 4 * 2
    assert after["sessions_opened"] > before["sessions_opened"]
    # the run closed its sessions when it ended (not when this process exits)
    closed = mrt_env_server.wait_for("sessions_live", before["sessions_live"], timeout=10.0)
    assert closed["sessions_live"] == before["sessions_live"]
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert json.loads((tmp_path / "run.json").read_text())["env_url"] == (mrt_env_server.base_url)


def test_env_url_is_refused_with_the_trl_engine(tmp_path: Path) -> None:
    args = [*TINY, "--engine", "trl", "--env-url", "http://127.0.0.1:9", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "--env-url drives the native engine" in str(result.exception) + result.output
