"""Checks that a saved checkpoint fits the model, optimizer and generators it is loaded into.

Every check raises :class:`CheckpointError` naming the file and the two ways out; nothing is
changed by a check (see :func:`agents.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

WAYS_OUT = (
    "Either resume from the newest checkpoint that verifies (mrt-train --resume-fallback; "
    "train(..., fallback=True)) or start over in a new run folder (--out)."
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or does not fit the model being trained."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}. {WAYS_OUT}")
        self.path = Path(path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "the file is missing") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(path, f"not valid JSON ({error})") from None


def optimizer_state(tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in rest["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": rest["param_groups"]}


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(path, "the file is missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(path, f"not a readable safetensors file ({error})") from None


def model_tensors(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """All tensors of the (possibly sharded) saved model, and the file to name in errors."""
    shards = sorted(folder.glob("model*.safetensors"))
    if not shards:
        raise CheckpointError(folder / "model.safetensors", "the file is missing")
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        tensors.update(load_tensors(shard))
    return shards[0] if len(shards) == 1 else folder, tensors


def checked_weights(model: Any, path: Path, tensors: dict[str, torch.Tensor]) -> list[tuple]:
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


def checked_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any] | None:
    """The optimizer state dict of ``folder`` (``None`` when it was not saved), checked
    against the optimizer's parameters."""
    path = folder / "optimizer.safetensors"
    if not path.exists() and not (folder / "optimizer.json").exists():
        return None
    tensors = load_tensors(path)
    rest = read_json(folder / "optimizer.json")
    try:
        state = optimizer_state(tensors, rest)
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


def checked_generators(
    folder: Path, generators: Mapping[str, torch.Generator]
) -> dict[str, torch.Tensor]:
    path = folder / "rng.safetensors"
    states = load_tensors(path)
    for name in generators:
        if name not in states:
            raise CheckpointError(path, f"no state for the generator {name!r}")
        try:
            torch.Generator().set_state(states[name])
        except (RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(path, f"invalid state of generator {name!r} ({error})") from None
    return states


def checked_trainer_state(folder: Path, numpy_rng: np.random.Generator) -> dict[str, Any]:
    path = folder / "trainer.json"
    state = read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(path, "no integer 'step'")
    try:
        probe = np.random.Generator(type(numpy_rng.bit_generator)())
        probe.bit_generator.state = state["numpy_rng"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(path, f"invalid numpy generator state ({error!r})") from None
    return state
