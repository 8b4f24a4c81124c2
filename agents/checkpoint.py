"""Atomic, pickle-free training checkpoints.

A checkpoint is a folder ``DIR/checkpoints/step-NNNNNNNN`` holding

- the model and tokenizer (``save_pretrained``: safetensors + JSON),
- ``optimizer.safetensors`` (every tensor of the optimizer state) and ``optimizer.json``
  (the rest: parameter groups, scalar state),
- ``rng.safetensors`` (torch generator states as uint8 tensors) and ``trainer.json`` (step,
  elapsed time, counters, the numpy bit-generator state).

It is written to a temporary folder, every file is fsynced, then the folder is renamed into
place with ``os.replace`` and ``DIR/checkpoints/latest.json`` is replaced atomically to point
at it. A run killed at any moment leaves either the previous or the new checkpoint, never a
torn one. Older checkpoints are deleted after the pointer moves.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest.json"


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` restored besides the tensors put back in place.

    Attributes:
        path: The checkpoint folder.
        trainer_state: The JSON trainer state (step, elapsed seconds, counters).
    """

    path: Path
    trainer_state: dict[str, Any]


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and JSON-ready rest."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any]
) -> None:
    """Load a state split by :func:`optimizer_to_files` back into ``optimizer``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in rest["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


def save_checkpoint(
    out_dir: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
    numpy_rng: np.random.Generator,
    trainer_state: Mapping[str, Any],
    keep: int = 1,
) -> Path:
    """Write a checkpoint atomically and point ``latest.json`` at it.

    Args:
        out_dir: The run folder (checkpoints go to ``out_dir/checkpoints``).
        model: A transformers model (``save_pretrained``).
        tokenizer: Its tokenizer (``save_pretrained``).
        optimizer: The optimizer.
        generators: Named torch generators whose states are saved.
        numpy_rng: The trainer's numpy generator.
        trainer_state: JSON-ready state; must hold ``"step"``.
        keep: Checkpoints kept (older ones are deleted after the pointer moves).

    Returns:
        The checkpoint folder.
    """
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    step = int(trainer_state["step"])
    final = root / f"step-{step:08d}"
    temporary = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary, safe_serialization=True)
    tokenizer.save_pretrained(temporary)
    tensors, rest = optimizer_to_files(optimizer)
    save_file(tensors, str(temporary / "optimizer.safetensors"))
    (temporary / "optimizer.json").write_text(json.dumps(rest), encoding="utf-8")
    rng_tensors = {name: g.get_state() for name, g in generators.items()}
    save_file(rng_tensors, str(temporary / "rng.safetensors"))
    payload = {**trainer_state, "numpy_rng": numpy_rng.bit_generator.state}
    (temporary / "trainer.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    _fsync_tree(temporary)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    _fsync_dir(root)
    _write_json_atomic(root / LATEST, {"step": step, "path": final.name})
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    folders = sorted(p for p in root.glob("step-*") if p.is_dir())
    for folder in folders[: max(len(folders) - keep, 0)]:
        shutil.rmtree(folder, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The folder ``latest.json`` points at, or ``None`` when there is no checkpoint."""
    pointer = Path(out_dir) / "checkpoints" / LATEST
    if not pointer.exists():
        return None
    folder = pointer.parent / json.loads(pointer.read_text(encoding="utf-8"))["path"]
    if not (folder / "trainer.json").exists():
        raise FileNotFoundError(f"{pointer} points at {folder}, which is not a checkpoint")
    return folder


def load_checkpoint(
    folder: str | Path,
    *,
    model: Any,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
    numpy_rng: np.random.Generator,
) -> LoadedCheckpoint:
    """Restore model weights, optimizer, generators and the numpy RNG in place.

    Returns:
        The folder and the JSON trainer state (``numpy_rng`` removed).
    """
    from safetensors.torch import load_model

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{folder} has no model.safetensors")
    load_model(model, str(weights), strict=False)
    rest = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
    optimizer_from_files(optimizer, load_file(str(folder / "optimizer.safetensors")), rest)
    rng_tensors = load_file(str(folder / "rng.safetensors"))
    for name, generator in generators.items():
        generator.set_state(rng_tensors[name])
    state = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
    numpy_rng.bit_generator.state = state.pop("numpy_rng")
    return LoadedCheckpoint(folder, state)
