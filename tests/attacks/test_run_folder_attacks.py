"""Attacks on run folders of both training engines: a second trainer, changed settings, the
other engine's folder, a deleted ``run.json``, an edited manifest, a damaged metrics line, a
full or read-only disk.

Every refusal exits non-zero with one clean line and leaves the folder as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.cli import app
from agents.logging import trim_metrics
from agents.run_folder import RunLock
from tests.agents.test_cli import TINY

NATIVE = ["--algo", "grpo", *TINY, "--no-tensorboard"]
TRL = [
    "--engine", "trl", "--algo", "grpo", "--model", "tiny", "--seed", "0",
    "--problems-per-step", "2", "--group-size", "2", "--token-budget", "96",
    "--prover-samples", "2", "--train-size", "20", "--no-tensorboard", "--no-progress",
]  # fmt: skip


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (to show it was left as it was)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _one_line_error(result: Any) -> str:
    # A library logger whose handler kept the stream of an earlier in-process invocation
    # reports "--- Logging error ---" with a traceback of its own; that is this test harness
    # (CliRunner closes its streams), not the command's output.
    output = re.sub(r"--- Logging error ---.*?Arguments: \(.*?\)\n", "", result.output, flags=re.S)
    assert "Traceback" not in output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def native_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A native run folder with checkpoints at steps 1 and 2 and an exported model."""
    out = tmp_path_factory.mktemp("native") / "run"
    result = _invoke(*NATIVE, "--steps", "2", "--checkpoint-interval", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def trl_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A TRL run folder with ``checkpoint-1`` and an exported model."""
    pytest.importorskip("trl")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    out = tmp_path_factory.mktemp("trl") / "run"
    result = _invoke(*TRL, "--steps", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    yield out


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns(".lock"))
    return out


# ------------------------------------------------------------------------- the TRL engine
def test_a_second_trl_trainer_on_the_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunLock(out):  # another trainer holds the folder
        result = _invoke(*TRL, "--steps", "1", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "is in use by another trainer" in _one_line_error(result)
    assert not list(out.glob("checkpoint-*")) and not (out / "model").exists()


def test_a_trl_resume_with_another_lr_is_refused_naming_it(trl_run: Path, tmp_path: Path) -> None:
    out = _copy(trl_run, tmp_path)
    before = _digest(out)
    result = _invoke(*TRL, "--steps", "2", "--lr", "0.001", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "train.lr: 0.0001 in run.json, 0.001 now" in result.output
    assert _digest(out) == before


def test_a_trl_resume_without_run_json_is_refused(trl_run: Path, tmp_path: Path) -> None:
    out = _copy(trl_run, tmp_path)
    (out / "run.json").unlink()
    before = _digest(out)
    result = _invoke(*TRL, "--steps", "2", "--lr", "0.001", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "run.json is missing" in _one_line_error(result)
    assert _digest(out) == before


def test_the_trl_engine_refuses_a_native_folder(native_run: Path, tmp_path: Path) -> None:
    out = _copy(native_run, tmp_path)
    before = _digest(out)
    result = _invoke(*TRL, "--steps", "3", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "holds a run of the native engine" in _one_line_error(result)
    assert _digest(out) == before  # model/ not overwritten by a model trained from the base


def test_the_native_engine_refuses_a_trl_folder(trl_run: Path, tmp_path: Path) -> None:
    out = _copy(trl_run, tmp_path)
    before = _digest(out)
    result = _invoke(*NATIVE, "--steps", "2", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "holds a run of the trl engine" in _one_line_error(result)
    assert _digest(out) == before


def test_a_trl_folder_without_run_json_is_still_the_trl_engine_s(
    trl_run: Path, tmp_path: Path
) -> None:
    out = _copy(trl_run, tmp_path)
    (out / "run.json").unlink()
    result = _invoke(*NATIVE, "--steps", "2", "--out", str(out))
    assert result.exit_code == 1 and "holds a run of the trl engine" in result.output


def test_a_full_disk_while_saving_the_trl_model_keeps_the_old_model(
    trl_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import Trainer

    out = _copy(trl_run, tmp_path)
    before = _digest(out / "model")
    original = Trainer.save_model

    def full_disk(self: Any, output_dir: str | None = None, *args: Any, **kwargs: Any) -> None:
        if output_dir is not None and ".tmp-model" in output_dir:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), output_dir)
        original(self, output_dir, *args, **kwargs)

    monkeypatch.setattr(Trainer, "save_model", full_disk)
    result = _invoke(*TRL, "--steps", "2", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "No space left on device" in _one_line_error(result)
    assert _digest(out / "model") == before
    assert not [p for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


# ---------------------------------------------------------------------- the native engine
def test_a_native_resume_without_run_json_is_refused(native_run: Path, tmp_path: Path) -> None:
    out = _copy(native_run, tmp_path)
    (out / "run.json").unlink()
    result = _invoke(*NATIVE, "--steps", "3", "--lr", "0.001", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "run.json is missing" in _one_line_error(result)
    assert not (out / "checkpoints" / "step-00000003").exists()
    allowed = _invoke(*NATIVE, "--steps", "3", "--out", str(out), "--allow-changed-settings")
    assert allowed.exit_code == 0, allowed.output
    assert "run.json" in (out / "run-changes.jsonl").read_text()


def test_a_manifest_with_an_entry_removed_does_not_let_swapped_weights_load(
    native_run: Path, tmp_path: Path
) -> None:
    out = _copy(native_run, tmp_path)
    root = out / "checkpoints"
    newest = root / "step-00000002"
    shutil.copy(root / "step-00000001" / "model.safetensors", newest / "model.safetensors")
    manifest = json.loads((newest / "manifest.json").read_text())
    del manifest["files"]["model.safetensors"]
    (newest / "manifest.json").write_text(json.dumps(manifest))
    result = _invoke(*NATIVE, "--steps", "3", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "model.safetensors: the manifest does not list this file" in _one_line_error(result)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_a_failing_disk_while_exporting_keeps_the_old_native_model(
    native_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    from transformers import PreTrainedTokenizerBase

    out = _copy(native_run, tmp_path)
    before = _digest(out / "model")
    original = PreTrainedTokenizerBase.save_pretrained

    def failing(self: Any, directory: Any, *args: Any, **kwargs: Any) -> Any:
        if "checkpoints" not in str(directory):  # the export (the checkpoints succeed)
            raise OSError(code, os.strerror(code), str(directory))
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", failing)
    result = _invoke(*NATIVE, "--steps", "3", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert os.strerror(code) in _one_line_error(result)
    assert _digest(out / "model") == before  # the model/ of step 2, whole
    assert not [p for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_a_real_write_limit_ends_in_one_line_and_no_partial_model(tmp_path: Path) -> None:
    """A per-file size limit (``RLIMIT_FSIZE``) makes the first large write fail (EFBIG)."""
    out = tmp_path / "run"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    command = [sys.executable, "-m", "agents.cli", *NATIVE, "--steps", "1", "--out", str(out)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=limit, check=False
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and len(errors) == 1
    assert "File too large" in errors[0]
    assert not (out / "model").exists()
    assert not list((out / "checkpoints").glob("*step-*"))  # no torn or partial checkpoint


# ------------------------------------------------------------------------- metrics.jsonl
def test_one_bad_character_in_a_metrics_line_does_not_delete_the_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [
        b'{"losses/policy": 0.5, "step": 1}',
        b'{"losses/policy": 0.\x005, "step": 2}',  # a NUL inside a number: not JSON
        b'{"losses/p\xffolicy": 0.5, "step": 3}',  # an invalid UTF-8 byte
        b'{"losses/policy": 0.5, "step": 4}x',  # a stray character after the object
        b'{"losses/policy": 0.5, "step": 5}',
        b'{"losses/policy": 0.5, "st',  # torn by a crash: not terminated
    ]
    path.write_bytes(b"\n".join(rows))
    assert trim_metrics(path, 4) == 2
    assert path.read_bytes() == b"".join(row + b"\n" for row in rows[:4])  # byte for byte
