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
from safetensors.torch import load_file, save_file

LATEST = "latest.json"
MANIFEST = "manifest.json"
STEP_FOLDER = re.compile(r"step-\d{8}")
WAYS_OUT = (
    "Either resume from the newest checkpoint that verifies (mrt-train --resume-fallback; "
    "train(..., fallback=True)) or start over in a new run folder (--out)."
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or does not fit the model being trained."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}. {WAYS_OUT}")
        self.path = Path(path)


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
    manifest = _read_json(folder / MANIFEST)
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
    optimizer.load_state_dict(_optimizer_state(tensors, rest))


def _optimizer_state(tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in rest["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": rest["param_groups"]}


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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "the file is missing") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(path, f"not valid JSON ({error})") from None


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
    content = _read_json(pointer)
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
    """Check the manifest of ``folder``: every listed file present with its size and SHA-256.

    Returns:
        The manifest.

    Raises:
        CheckpointError: naming the first file that is missing or differs.
    """
    folder = Path(folder)
    manifest = _read_json(folder / MANIFEST)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or "trainer.json" not in files:
        raise CheckpointError(folder / MANIFEST, "not a checkpoint manifest")
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


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(path, "the file is missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(path, f"not a readable safetensors file ({error})") from None


def _model_tensors(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """All tensors of the (possibly sharded) saved model, and the file to name in errors."""
    shards = sorted(folder.glob("model*.safetensors"))
    if not shards:
        raise CheckpointError(folder / "model.safetensors", "the file is missing")
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        tensors.update(_load_tensors(shard))
    return shards[0] if len(shards) == 1 else folder, tensors


def _checked_weights(model: Any, path: Path, tensors: dict[str, torch.Tensor]) -> list[tuple]:
    """``(parameter, tensor)`` pairs for every model tensor, after checking names, shapes and
    finiteness; tied tensors (one storage) may be stored under any one of their names."""
    state = model.state_dict()
    unexpected = sorted(set(tensors) - set(state))
    if unexpected:
        raise CheckpointError(path, f"tensors the model does not have: {unexpected[:5]}")
    by_storage: dict[Any, str] = {}
    for name, value in state.items():
        if name in tensors:
            by_storage.setdefault((value.data_ptr(), value.shape), name)
    pairs, missing = [], []
    for name, value in state.items():
        source = name if name in tensors else by_storage.get((value.data_ptr(), value.shape))
        if source is None:
            missing.append(name)
            continue
        stored = tensors[source]
        if stored.shape != value.shape:
            raise CheckpointError(
                path,
                f"tensor {name!r} has shape {tuple(stored.shape)}, the model {tuple(value.shape)}",
            )
        if stored.is_floating_point() and not bool(torch.isfinite(stored).all()):
            raise CheckpointError(path, f"tensor {name!r} has non-finite values (NaN or inf)")
        pairs.append((value, stored))
    if missing:
        raise CheckpointError(
            path, f"{len(missing)} model tensor(s) missing, e.g. {missing[:3]} (incomplete file)"
        )
    return pairs


def _checked_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any] | None:
    """The optimizer state dict of ``folder`` (``None`` when it was not saved), checked
    against the optimizer's parameters."""
    path = folder / "optimizer.safetensors"
    if not path.exists() and not (folder / "optimizer.json").exists():
        return None
    tensors = _load_tensors(path)
    rest = _read_json(folder / "optimizer.json")
    try:
        state = _optimizer_state(tensors, rest)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(folder / "optimizer.json", f"malformed ({error!r})") from None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved = [len(group.get("params", ())) for group in state["param_groups"]]
    if saved != [len(group["params"]) for group in optimizer.param_groups]:
        raise CheckpointError(path, "parameter groups differ from the optimizer's")
    for index, values in state["state"].items():
        if not 0 <= index < len(params):
            raise CheckpointError(path, f"state for parameter {index} of {len(params)}")
        for name, value in values.items():
            tensor = isinstance(value, torch.Tensor) and value.dim() > 0
            if tensor and value.shape != params[index].shape:
                raise CheckpointError(path, f"{index}.{name} has the wrong shape")
    return state


def _checked_generators(
    folder: Path, generators: Mapping[str, torch.Generator]
) -> dict[str, torch.Tensor]:
    path = folder / "rng.safetensors"
    states = _load_tensors(path)
    for name in generators:
        if name not in states:
            raise CheckpointError(path, f"no state for the generator {name!r}")
        try:
            torch.Generator().set_state(states[name])
        except (RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(path, f"invalid state of generator {name!r} ({error})") from None
    return states


def _checked_trainer_state(folder: Path, numpy_rng: np.random.Generator) -> dict[str, Any]:
    path = folder / "trainer.json"
    state = _read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(path, "no integer 'step'")
    try:
        probe = np.random.Generator(type(numpy_rng.bit_generator)())
        probe.bit_generator.state = state["numpy_rng"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(path, f"invalid numpy generator state ({error!r})") from None
    return state


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
    path, tensors = _model_tensors(folder)
    pairs = _checked_weights(model, path, tensors)
    optimizer_state = _checked_optimizer(optimizer, folder)
    rng_states = _checked_generators(folder, generators)
    state = _checked_trainer_state(folder, numpy_rng)
    with torch.no_grad():
        for parameter, stored in pairs:
            parameter.copy_(stored)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    for name, generator in generators.items():
        generator.set_state(rng_states[name])
    numpy_rng.bit_generator.state = state.pop("numpy_rng")
    return LoadedCheckpoint(folder, state, optimizer_state is not None)


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
