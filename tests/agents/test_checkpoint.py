"""Checkpoints: exact round trip; atomic pointer; verified loading with clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from agents.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    _write_manifest,
    checkpoint_bytes,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    resume_from,
    save_checkpoint,
    verify_checkpoint,
)


class _Tokenizer:
    """Stands in for a tokenizer: writes one JSON file."""

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / "tokenizer.json").write_text("{}", encoding="utf-8")


def _model_and_optimizer(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from mrt_env.lm.testing import tiny_random_model

    model = tiny_random_model(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    return model, optimizer


def _train_once(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    ids = torch.tensor([[5, 6, 7, 8]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer(0)
    _train_once(model, optimizer)
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)
    rng = np.random.default_rng(11)
    rng.integers(100, size=5)
    folder = save_checkpoint(
        tmp_path,
        model=model,
        tokenizer=_Tokenizer(),
        optimizer=optimizer,
        generators={"g": generator},
        numpy_rng=rng,
        trainer_state={"step": 3, "elapsed_s": 1.5},
    )
    assert latest_checkpoint(tmp_path) == folder
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.bin"))  # no pickle

    restored, restored_optimizer = _model_and_optimizer(1)  # different weights before loading
    restored_generator, restored_rng = torch.Generator(), np.random.default_rng(0)
    loaded = load_checkpoint(
        folder,
        model=restored,
        optimizer=restored_optimizer,
        generators={"g": restored_generator},
        numpy_rng=restored_rng,
    )
    assert loaded.trainer_state == {"step": 3, "elapsed_s": 1.5}
    for (name, a), (_, b) in zip(
        model.state_dict().items(), restored.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    # the next draws and the next optimizer step are identical
    assert torch.equal(
        torch.rand(4, generator=generator), torch.rand(4, generator=restored_generator)
    )
    assert rng.integers(10**9) == restored_rng.integers(10**9)
    _train_once(model, optimizer)
    _train_once(restored, restored_optimizer)
    for a, b in zip(model.parameters(), restored.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _common(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return dict(
        model=model,
        tokenizer=_Tokenizer(),
        optimizer=optimizer,
        generators={"g": torch.Generator().manual_seed(1)},
        numpy_rng=np.random.default_rng(0),
    )


def _save(tmp_path: Path, step: int, **kwargs: object) -> Path:
    model, optimizer = _model_and_optimizer(step)
    _train_once(model, optimizer)
    return save_checkpoint(
        tmp_path,
        trainer_state={"step": step, "elapsed_s": 0.0},
        **_common(model, optimizer),
        **kwargs,
    )


def _load(folder: Path) -> LoadedCheckpoint:
    model, optimizer = _model_and_optimizer(99)
    return load_checkpoint(
        folder,
        model=model,
        optimizer=optimizer,
        generators={"g": torch.Generator()},
        numpy_rng=np.random.default_rng(0),
    )


def test_pointer_moves_atomically_and_the_newest_two_are_kept(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    # a torn write (killed mid-way) leaves a temporary folder that is ignored and cleaned up
    (tmp_path / "checkpoints" / ".tmp-step-00000002-999").mkdir()
    _save(tmp_path, 2)
    third = _save(tmp_path, 3)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest.json", "step-00000002", "step-00000003"]
    pointer = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert pointer == {"step": 3, "path": third.name}
    manifest = verify_checkpoint(third)
    assert {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "trainer.json"} <= set(
        manifest["files"]
    )
    assert checkpoint_bytes(third) == sum(e["bytes"] for e in manifest["files"].values())


def test_no_checkpoint_and_pointers_outside_the_run(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "latest.json").write_text('{"step": 1, "path": "step-00000001"}')
    with pytest.raises(CheckpointError, match=r"not a checkpoint.*--resume-fallback.*new run"):
        latest_checkpoint(tmp_path)
    other = _save(tmp_path / "other", 1)
    for path in (str(other), "../other/checkpoints/step-00000001", "step-1"):
        (root / "latest.json").write_text(json.dumps({"step": 1, "path": path}))
        with pytest.raises(CheckpointError, match=r"latest\.json: .path. must name a step folder"):
            latest_checkpoint(tmp_path)
    (root / "latest.json").write_text('{"step": 1, "pa')
    with pytest.raises(CheckpointError, match=r"latest\.json: not valid JSON"):
        latest_checkpoint(tmp_path)


def test_missing_pointer_resumes_from_the_newest_verified_folder(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    second = _save(tmp_path, 2)
    (tmp_path / "checkpoints" / "latest.json").unlink()
    assert latest_checkpoint(tmp_path) == second
    (second / "trainer.json").write_text("{}")  # damaged: the older one is chosen
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-00000001"


def _empty_weights(folder: Path) -> None:
    save_file({}, str(folder / "model.safetensors"))


def _one_tensor_missing(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(folder / "model.safetensors"))


def _wrong_shape(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(3, 3)
    save_file(tensors, str(folder / "model.safetensors"))


def _nan_weight(folder: Path) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(folder / "model.safetensors"))


def _write(name: str, content: bytes) -> object:
    return lambda folder: (folder / name).write_bytes(content)


def _bad_rng(folder: Path) -> None:
    save_file({"g": torch.zeros(3, dtype=torch.uint8)}, str(folder / "rng.safetensors"))


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (_empty_weights, "model.safetensors", "model tensor.*missing"),
        (_one_tensor_missing, "model.safetensors", "1 model tensor.*missing"),
        (_wrong_shape, "model.safetensors", "has shape"),
        (_nan_weight, "model.safetensors", "non-finite"),
        (_write("trainer.json", b"{not json"), "trainer.json", "not valid JSON"),
        (_write("trainer.json", b'{"step": 2}'), "trainer.json", "numpy generator state"),
        (_write("optimizer.json", b"[]"), "optimizer.json", "malformed"),
        (_write("optimizer.safetensors", b"garbage"), "optimizer.safetensors", "safetensors"),
        (_write("model.safetensors", b"\x00" * 64), "model.safetensors", "safetensors"),
        (_bad_rng, "rng.safetensors", "invalid state"),
    ],
)
def test_damaged_checkpoints_name_the_file_and_change_nothing(
    tmp_path: Path, damage: Any, file: str, message: str
) -> None:
    folder = _save(tmp_path, 2)
    damage(folder)
    (folder / "manifest.json").unlink()
    _write_manifest(folder, 2)  # a manifest that agrees: the content checks must catch it
    model, optimizer = _model_and_optimizer(99)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(
            folder,
            model=model,
            optimizer=optimizer,
            generators={"g": torch.Generator()},
            numpy_rng=np.random.default_rng(0),
        )
    assert str(folder / file) in str(raised.value) and "new run folder" in str(raised.value)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name  # nothing was loaded


def test_bit_flips_fail_the_checksum_and_fallback_takes_the_previous(tmp_path: Path) -> None:
    first = _save(tmp_path, 1)
    second = _save(tmp_path, 2)
    weights = second / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit of a tensor payload
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: the checksum differs"):
        resume_from(tmp_path, _load)
    warnings: list[str] = []
    loaded = resume_from(tmp_path, _load, fallback=True, warn=warnings.append)
    assert loaded is not None and loaded.path == first
    assert loaded.trainer_state["step"] == 1
    assert warnings and str(weights) in warnings[0]
    (first / "trainer.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no checkpoint verifies"):
        resume_from(tmp_path, _load, fallback=True, warn=warnings.append)


class _DiskFull:
    def save_pretrained(self, folder: Path) -> None:
        raise OSError(28, "No space left on device")


def test_a_failed_save_leaves_no_temporary_and_keeps_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    first = _save(tmp_path, 1)
    model, optimizer = _model_and_optimizer(0)
    common = {**_common(model, optimizer), "tokenizer": _DiskFull()}
    for _ in range(3):
        with pytest.raises(OSError, match="No space"):
            save_checkpoint(tmp_path, trainer_state={"step": 2, "elapsed_s": 0.0}, **common)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest.json",
        "step-00000001",
    ]
    assert latest_checkpoint(tmp_path) == first
    (tmp_path / "checkpoints" / ".tmp-step-00000009-1").mkdir()
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".tmp-step-00000009-1"]


def test_optimizer_state_is_optional(tmp_path: Path) -> None:
    with_state = _save(tmp_path / "a", 1)
    without = _save(tmp_path / "b", 1, save_optimizer=False)
    assert not (without / "optimizer.safetensors").exists()
    assert checkpoint_bytes(without) < checkpoint_bytes(with_state) / 2
    assert _load(with_state).has_optimizer and not _load(without).has_optimizer
