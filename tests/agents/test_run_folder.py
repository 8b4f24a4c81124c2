"""Run folders: exact resume at a checkpoint interval, identity, lock, one metric line per step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.torch import load_file
from typer.testing import CliRunner

from agents.cli import app
from agents.run_folder import RunLock, differences
from tests.agents.test_cli import TINY

GRPO = ["--algo", "grpo", *TINY, "--no-tensorboard"]


def _steps(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "tb" / "metrics.jsonl").read_text().splitlines()]


def test_interval_of_five_resumes_exactly_without_latest_json_or_repeated_lines(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    run, reference = tmp_path / "run", tmp_path / "reference"
    every5 = [*GRPO, "--checkpoint-interval", "5"]
    first = runner.invoke(app, [*every5, "--steps", "6", "--out", str(run)])
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == [
        "step-00000005",
        "step-00000006",
    ]
    # killed while writing step 6's checkpoint, and latest.json lost: step 5 is all there is
    shutil.rmtree(run / "checkpoints" / "step-00000006")
    (run / "checkpoints" / "latest.json").unlink()
    resumed = runner.invoke(app, [*every5, "--steps", "8", "--out", str(run)])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from step 5" in resumed.output
    assert runner.invoke(app, [*every5, "--steps", "8", "--out", str(reference)]).exit_code == 0
    assert [m["step"] for m in _steps(run)] == list(range(1, 9))  # steps 6.. not repeated
    for got, expected in zip(_steps(run), _steps(reference), strict=True):
        for key in ("charts/tokens", "reward/return", "losses/policy", "losses/grad_norm"):
            assert got[key] == expected[key], (got["step"], key)
    weights = load_file(str(run / "model" / "model.safetensors"))
    for name, tensor in load_file(str(reference / "model" / "model.safetensors")).items():
        assert (weights[name] == tensor).all(), name


def test_other_settings_are_refused_by_name_unless_allowed(tmp_path: Path) -> None:
    runner = CliRunner()
    out = ["--out", str(tmp_path)]
    assert runner.invoke(app, [*GRPO, "--steps", "1", *out]).exit_code == 0
    stored = (tmp_path / "run.json").read_text()
    refused = runner.invoke(app, [*GRPO, "--steps", "2", "--lr", "0.001", "--seed", "4", *out])
    assert refused.exit_code == 1
    assert "train.lr: 0.0001 in run.json, 0.001 now" in refused.output
    assert "train.seed: 3 in run.json, 4 now" in refused.output
    assert "--allow-changed-settings" in refused.output and "Traceback" not in refused.output
    assert (tmp_path / "run.json").read_text() == stored
    allowed = runner.invoke(
        app, [*GRPO, "--steps", "2", "--lr", "0.001", *out, "--allow-changed-settings"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "resumed from step 1" in allowed.output
    assert (tmp_path / "run.json").read_text() == stored  # the original settings stay
    assert "train.lr" in (tmp_path / "run-changes.jsonl").read_text()
    # longer training is not a different run
    assert runner.invoke(app, [*GRPO, "--steps", "3", *out]).exit_code == 0


def test_a_second_trainer_on_the_folder_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        result = CliRunner().invoke(app, [*GRPO, "--steps", "1", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "in use by another trainer" in result.output
    assert not (tmp_path / "checkpoints").exists()


def test_differences_ignore_the_resumable_settings() -> None:
    stored = {"algo": "grpo", "train": {"steps": 5, "lr": 1e-4, "policy": {"top_p": 1.0}}}
    assert differences(stored, {**stored, "train": {**stored["train"], "steps": 50}}) == []
    changed = {**stored, "algo": "mrt", "train": {**stored["train"], "policy": {"top_p": 0.9}}}
    assert differences(stored, changed) == [
        "algo: grpo in run.json, mrt now",
        "train.policy.top_p: 1.0 in run.json, 0.9 now",
    ]


def test_a_run_recorded_before_final_j_and_truncation_resumes_with_their_old_values() -> None:
    from agents.run_folder import differences

    stored = {"algo": "mrt", "train": {"lr": 0.1}}
    same = {"algo": "mrt", "train": {"lr": 0.1, "final_j": "prover", "truncation": "forced_answer"}}
    assert differences(stored, same) == []
    changed = {
        "algo": "mrt",
        "train": {"lr": 0.1, "final_j": "outcome", "truncation": "forced_answer"},
    }
    assert differences(stored, changed) == ["train.final_j: prover in run.json, outcome now"]
