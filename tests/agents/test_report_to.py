"""``mrt-train --report-to``: TensorBoard, Weights & Biases (offline, no network) or none, on
both engines. The W&B test reads the offline run's own record file back and compares its
history with the metrics the trainer logged."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.cli import app
from agents.logging import parse_report_to
from tests.agents.test_cli import TINY

NATIVE = ["--algo", "grpo", *TINY]


def wandb_history(root: Path) -> list[dict[str, Any]]:
    """The history rows of the single offline W&B run under ``root/wandb``."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    [path] = list(root.glob("wandb/offline-run-*/run-*.wandb"))
    store = datastore.DataStore()
    store.open_for_scan(str(path))
    rows = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def _same(a: float, b: float | None) -> bool:
    if b is None:  # metrics.jsonl is strict JSON: a non-finite value is written as null
        return not math.isfinite(a)
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.usefixtures("offline_wandb")
def test_native_wandb_offline_run_holds_the_logged_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, [*NATIVE, "--steps", "2", "--report-to", "wandb", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in (out / "tb" / "metrics.jsonl").open()]
    history = wandb_history(out)
    assert [row["_step"] for row in history] == [1, 2]
    for row, expected in zip(history, logged, strict=True):
        scalars = {k: v for k, v in expected.items() if k != "step"}
        assert set(scalars) <= set(row)
        assert all(_same(float(row[k]), v) for k, v in scalars.items()), (row, scalars)
    assert "reward/outcome" in history[0]
    assert not list((out / "tb").glob("events.out.tfevents*"))  # wandb only, as asked


def test_report_to_none_writes_no_event_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, [*NATIVE, "--steps", "1", "--report-to", "none", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "tb" / "metrics.jsonl").exists()
    assert not list(out.rglob("events.out.tfevents*")) and not (out / "wandb").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [("mlflow", "--report-to takes tensorboard, wandb"), ("", "--report-to takes")],
)
def test_unknown_reporters_exit_2_before_training(tmp_path: Path, spec: str, message: str) -> None:
    result = CliRunner().invoke(app, [*NATIVE, "--report-to", spec, "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "checkpoints").exists()


def test_parse_report_to() -> None:
    assert parse_report_to("wandb, tensorboard,wandb") == ("wandb", "tensorboard")
    assert parse_report_to("none") == ()
    with pytest.raises(ValueError, match="none"):
        parse_report_to("none,wandb")


@pytest.mark.usefixtures("offline_wandb")
def test_trl_wandb_offline_run_holds_the_logged_metrics(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from tests.agents.test_trl_train import TINY as TRL_TINY

    out = tmp_path / "run"
    args = [*TRL_TINY, "--algo", "grpo", "--steps", "1", "--report-to", "wandb", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    history = wandb_history(out)
    state = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    [logged] = [h for h in state["log_history"] if "loss" in h]
    rows = [r for r in history if "train/loss" in r]
    assert len(rows) == 1, history
    [row] = rows
    assert row["train/loss"] == pytest.approx(logged["loss"])
    assert row["train/rewards/outcome/mean"] == pytest.approx(logged["rewards/outcome/mean"])
