"""Atomic, verified, pickle-free training checkpoints.

A checkpoint is a folder ``DIR/checkpoints/step-NNNNNNNN`` holding

- the model and tokenizer (``save_pretrained``: safetensors + JSON),
- optionally ``optimizer.safetensors`` (every tensor of the optimizer state) and
  ``optimizer.json`` (the rest: parameter groups, scalar state),
- ``rng.safetensors`` (torch generator states as uint8 tensors) and ``trainer.json`` (step,
  elapsed time, counters, the numpy bit-generator state),
- ``manifest.json``, written last: the size and SHA-256 of every other file.

It is written to a temporary folder ``.tmp-step-*``, every file is fsynced, then the folder is
renamed into place with ``os.replace`` and ``DIR/checkpoints/latest.json`` is replaced
atomically to point at it. A run killed at any moment leaves either the previous or the new
checkpoint, never a torn one. Only then are checkpoints beyond the newest ``keep`` deleted,
so old and new coexist only while the new one is written. A failed save removes its
temporary folder; :func:`remove_stale_temporaries` removes those of killed runs.

Loading verifies before it changes anything: the manifest's sizes and checksums, every model
tensor present with its shape (tied weights may be stored once), finite weights, the
optimizer and RNG states. Any problem raises :class:`CheckpointError` naming the file and the
two ways out: resume from the newest checkpoint that verifies (``fallback=True``), or start
a new run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from agents.checkpoint_checks import (
    CheckpointError,
    checked_generators,
    checked_optimizer,
    checked_trainer_state,
    checked_weights,
    model_tensors,
    optimizer_state,
    read_json,
)

LATEST = "latest.json"
MANIFEST = "manifest.json"
STEP_FOLDER = re.compile(r"step-\d{8}")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What :func:`load_checkpoint` restored besides the tensors put back in place.

    Attributes:
        path: The checkpoint folder.
        trainer_state: The JSON trainer state (step, elapsed seconds, counters).
        has_optimizer: Whether the optimizer state was saved (and restored).
    """

    path: Path
    trainer_state: dict[str, Any]
    has_optimizer: bool = True


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(folder: Path, step: int) -> None:
    """Fsync every file, then write ``manifest.json`` (sizes and checksums) last."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        files[path.relative_to(folder).as_posix()] = {
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        }
    _write_json_atomic(folder / MANIFEST, {"format": 1, "step": step, "files": files})


def checkpoint_bytes(folder: Path) -> int:
    """Bytes of the files a checkpoint's manifest lists."""
    manifest = read_json(folder / MANIFEST)
    return sum(int(entry["bytes"]) for entry in manifest["files"].values())


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
    optimizer.load_state_dict(optimizer_state(tensors, rest))


def save_checkpoint(
    out_dir: str | Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
    numpy_rng: np.random.Generator,
    trainer_state: Mapping[str, Any],
    keep: int = 2,
    save_optimizer: bool = True,
) -> Path:
    """Write a checkpoint atomically, point ``latest.json`` at it, keep the newest ``keep``.

    Args:
        out_dir: The run folder (checkpoints go to ``out_dir/checkpoints``).
        model: A transformers model (``save_pretrained``).
        tokenizer: Its tokenizer (``save_pretrained``).
        optimizer: The optimizer.
        generators: Named torch generators whose states are saved.
        numpy_rng: The trainer's numpy generator.
        trainer_state: JSON-ready state; must hold ``"step"``.
        keep: Checkpoints kept (older ones are deleted after the pointer moves; >= 1).
        save_optimizer: Save the optimizer state (a resume without it restarts the optimizer's
            moments, so it is no longer identical to an uninterrupted run).

    Returns:
        The checkpoint folder.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    step = int(trainer_state["step"])
    final = root / f"step-{step:08d}"
    temporary = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        model.save_pretrained(temporary, safe_serialization=True)
        tokenizer.save_pretrained(temporary)
        if save_optimizer:
            tensors, rest = optimizer_to_files(optimizer)
            save_file(tensors, str(temporary / "optimizer.safetensors"))
            (temporary / "optimizer.json").write_text(json.dumps(rest), encoding="utf-8")
        rng_tensors = {name: g.get_state() for name, g in generators.items()}
        save_file(rng_tensors, str(temporary / "rng.safetensors"))
        payload = {**trainer_state, "numpy_rng": numpy_rng.bit_generator.state}
        (temporary / "trainer.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
        _write_manifest(temporary, step)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        _fsync_dir(root)
    except SafetensorError as error:  # an I/O error while writing tensors (full disk, ...)
        shutil.rmtree(temporary, ignore_errors=True)
        raise OSError(f"cannot write the checkpoint of step {step} in {root}: {error}") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _write_json_atomic(root / LATEST, {"step": step, "path": final.name})
    _prune(root, keep, final)
    return final


def _step_folders(root: Path) -> list[Path]:
    """Complete-looking step folders, newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_FOLDER.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _prune(root: Path, keep: int, current: Path) -> None:
    for folder in _step_folders(root)[keep:]:
        if folder != current:
            shutil.rmtree(folder, ignore_errors=True)
    remove_stale_temporaries(root.parent)


def has_checkpoints(out_dir: str | Path) -> bool:
    """Whether the run folder holds a checkpoint pointer or step folder."""
    root = Path(out_dir) / "checkpoints"
    return (root / LATEST).exists() or bool(_step_folders(root))


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Delete the ``.tmp-step-*`` folders that killed or failed saves left; returns them."""
    root = Path(out_dir) / "checkpoints"
    stale = sorted(root.glob(".tmp-step-*")) if root.is_dir() else []
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The folder ``latest.json`` points at, or ``None`` when the run has no checkpoint.

    Without ``latest.json`` (deleted, or lost) the newest step folder whose manifest verifies
    is returned. ``latest.json`` may only name a step folder of this run.

    Raises:
        CheckpointError: ``latest.json`` is unreadable, names something outside the run, or a
            folder that is not a complete checkpoint.
    """
    root = Path(out_dir) / "checkpoints"
    pointer = root / LATEST
    if not pointer.exists():
        for folder in _step_folders(root):
            try:
                verify_checkpoint(folder)
            except CheckpointError:
                continue
            return folder
        return None
    content = read_json(pointer)
    name = content.get("path") if isinstance(content, dict) else None
    if not isinstance(name, str) or not STEP_FOLDER.fullmatch(name):
        raise CheckpointError(
            pointer, f"'path' must name a step folder of this run (step-NNNNNNNN), got {name!r}"
        )
    folder = root / name
    if not (folder / "trainer.json").exists():
        raise CheckpointError(pointer, f"points at {folder}, which is not a checkpoint")
    return folder


def checkpoint_candidates(out_dir: str | Path, fallback: bool) -> Iterator[Path]:
    """Checkpoints to resume from, best first: the latest (see :func:`latest_checkpoint`),
    then, with ``fallback``, every other step folder, newest first."""
    root = Path(out_dir) / "checkpoints"
    seen: set[Path] = set()
    try:
        latest = latest_checkpoint(out_dir)
    except CheckpointError:
        if not fallback:
            raise
        latest = None
    if latest is not None:
        seen.add(latest)
        yield latest
    if fallback:
        yield from (folder for folder in _step_folders(root) if folder not in seen)


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check the manifest of ``folder``: every listed file present with its size and SHA-256,
    the model weights listed, and no file in the folder that the manifest does not list (a
    manifest with an entry removed cannot let a swapped file load unchecked).

    Returns:
        The manifest.

    Raises:
        CheckpointError: naming the first file that is missing or differs.
    """
    folder = Path(folder)
    manifest = read_json(folder / MANIFEST)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or "trainer.json" not in files:
        raise CheckpointError(folder / MANIFEST, "not a checkpoint manifest")
    unlisted = sorted(
        name
        for name in (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        if name != MANIFEST and name not in files
    )
    if unlisted:
        raise CheckpointError(
            folder / unlisted[0], "the manifest does not list this file (edited manifest?)"
        )
    if not any(re.fullmatch(r"model.*\.safetensors", name) for name in files):
        raise CheckpointError(folder / MANIFEST, "the manifest lists no model weights")
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(path, "the file is missing")
        if path.stat().st_size != entry["bytes"]:
            raise CheckpointError(
                path, f"{path.stat().st_size} bytes, the manifest says {entry['bytes']}"
            )
        if _sha256(path) != entry["sha256"]:
            raise CheckpointError(path, "the checksum differs from the manifest (damaged file)")
    return manifest


def load_checkpoint(
    folder: str | Path,
    *,
    model: Any,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
    numpy_rng: np.random.Generator,
) -> LoadedCheckpoint:
    """Verify ``folder`` completely, then restore weights, optimizer and RNGs in place.

    Nothing is changed unless every check passes (see the module docs).

    Returns:
        The folder, the JSON trainer state (``numpy_rng`` removed) and whether the optimizer
        state was restored.

    Raises:
        CheckpointError: naming the file that is missing, damaged or does not fit.
    """
    folder = Path(folder)
    verify_checkpoint(folder)
    path, tensors = model_tensors(folder)
    pairs = checked_weights(model, path, tensors)
    saved_optimizer = checked_optimizer(optimizer, folder)
    rng_states = checked_generators(folder, generators)
    state = checked_trainer_state(folder, numpy_rng)
    with torch.no_grad():
        for parameter, stored in pairs:
            parameter.copy_(stored)
    if saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer)
    for name, generator in generators.items():
        generator.set_state(rng_states[name])
    numpy_rng.bit_generator.state = state.pop("numpy_rng")
    return LoadedCheckpoint(folder, state, saved_optimizer is not None)


def resume_from(
    out_dir: str | Path,
    load: Callable[[Path], LoadedCheckpoint],
    *,
    fallback: bool = False,
    warn: Callable[[str], None] = print,
) -> LoadedCheckpoint | None:
    """Load the run's latest checkpoint with ``load`` (``None`` when there is none).

    With ``fallback`` a checkpoint that fails verification is reported with ``warn`` and the
    next older one is tried; without it the first failure is raised.
    """
    failures: list[str] = []
    for folder in checkpoint_candidates(out_dir, fallback):
        try:
            loaded = load(folder)
        except CheckpointError as error:
            if not fallback:
                raise
            failures.append(str(error))
            warn(f"skipping a checkpoint that does not verify: {error.path}")
            continue
        return loaded
    if failures:
        raise CheckpointError(
            Path(out_dir) / "checkpoints", f"no checkpoint verifies ({len(failures)} tried)"
        )
    return None
