"""A run folder's identity and ownership: the settings that define the run, and one trainer.

``run.json`` stores the settings of a run once, when it starts. Rerunning in the same folder
resumes only with the same settings, except those in :data:`RESUMABLE_SETTINGS` (how long to
train, how often to evaluate and checkpoint, the device); any other difference is refused
with the differences named, unless explicitly allowed (then they are appended to
``run-changes.jsonl`` and ``run.json`` keeps the original settings).

:class:`RunLock` holds an exclusive ``fcntl`` lock on ``.lock`` for as long as a trainer uses
the folder; the operating system releases it when the process ends, however it ends.

Example:
    >>> differences({"train": {"lr": 1e-4, "steps": 5}}, {"train": {"lr": 1.0, "steps": 9}})
    ['train.lr: 0.0001 in run.json, 1.0 now']
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

RUN_FILE = "run.json"
CHANGES_FILE = "run-changes.jsonl"
LOCK_FILE = ".lock"

RESUMABLE_SETTINGS: frozenset[str] = frozenset(
    {
        "train.steps",
        "train.minutes",
        "train.eval_interval",
        "train.eval_problems",
        "train.checkpoint_interval",
        "train.keep_checkpoints",
        "train.checkpoint_optimizer",
        "train.device",
    }
)
"""Settings (dotted paths into ``run.json``) that may change when a run is resumed."""

ADDED_SETTINGS: Mapping[str, Any] = {"train.final_j": "prover", "train.truncation": "forced_answer"}
"""Settings added after runs were recorded, with the value every earlier run used: a
``run.json`` without them resumes as if it held that value."""


class RunFolderError(RuntimeError):
    """The run folder belongs to another run or is in use by another trainer."""


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _normalized(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` as ``run.json`` stores them (JSON types: tuples become lists)."""
    normalized: dict[str, Any] = json.loads(json.dumps(settings, default=str))
    return normalized


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The settings (dotted paths) that differ, except :data:`RESUMABLE_SETTINGS`."""
    old, new = _flatten(_normalized(stored)), _flatten(_normalized(current))
    if "train" in stored and "train" in current:  # recorded before a setting existed
        old, new = {**ADDED_SETTINGS, **old}, {**ADDED_SETTINGS, **new}
    names = sorted((set(old) | set(new)) - RESUMABLE_SETTINGS)
    missing = "(not set)"
    return [
        f"{name}: {old.get(name, missing)} in run.json, {new.get(name, missing)} now"
        for name in names
        if old.get(name, missing) != new.get(name, missing)
    ]


def check_identity(
    out: Path, settings: Mapping[str, Any], *, has_checkpoint: bool, allow_changes: bool
) -> list[str]:
    """Store ``settings`` in ``out/run.json`` or check them against the stored ones.

    A folder without a checkpoint has nothing to protect: ``run.json`` is (re)written.

    Returns:
        The differences that were allowed (empty when the settings match).

    Raises:
        RunFolderError: when the settings differ and ``allow_changes`` is false, or
            ``run.json`` is unreadable.
    """
    path = out / RUN_FILE
    if not has_checkpoint:
        _write(path, json.dumps(_normalized(settings), indent=2))
        return []
    if not path.exists():
        if not allow_changes:
            raise RunFolderError(
                f"{path} is missing but {out} holds checkpoints, so the settings of the run "
                "cannot be checked; refusing to resume. Restore run.json, use a new run folder "
                "(--out), or resume with the current settings anyway "
                "(mrt-train --allow-changed-settings; train(..., allow_changed_settings=True))."
            )
        _write(path, json.dumps(_normalized(settings), indent=2))
        changed = [f"{RUN_FILE}: missing, the current settings were stored"]
        with open(out / CHANGES_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"changes": changed}) + "\n")
        return changed
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path}: not valid JSON ({error}); use a new run folder") from None
    changed = differences(stored, settings)
    if changed and not allow_changes:
        raise RunFolderError(
            f"{out} holds a run with other settings; refusing to resume it with:\n  "
            + "\n  ".join(changed)
            + "\nUse a new run folder (--out), or resume with the new settings anyway "
            "(mrt-train --allow-changed-settings; train(..., allow_changed_settings=True))."
        )
    if changed:
        with open(out / CHANGES_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"changes": changed}) + "\n")
    return changed


ENGINES = ("native", "trl")
"""Training engines; a run folder belongs to the one that started it."""


def folder_engines(out: Path) -> set[str]:
    """The engines whose checkpoints or settings ``out`` holds (empty for a new folder).

    ``checkpoints/`` is the native engine's, ``checkpoint-N`` folders are TRL's, and
    ``run.json`` names its engine (a ``run.json`` without one is the native engine's).
    """
    found = set()
    if (out / "checkpoints").is_dir():
        found.add("native")
    if any(p.is_dir() for p in out.glob("checkpoint-*")):
        found.add("trl")
    try:
        stored = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        stored = None
    if isinstance(stored, dict):
        found.add(str(stored.get("engine", "native")))
    return found


def check_engine(out: Path, engine: str) -> None:
    """Refuse to train with ``engine`` in a folder another engine's run owns.

    Without this a run folder of the other engine would be trained again from the base model
    (its checkpoints are not the format this engine resumes from) and its ``model/`` replaced.

    Raises:
        RunFolderError: the folder holds another engine's run.
    """
    others = sorted(folder_engines(Path(out)) - {engine})
    if others:
        raise RunFolderError(
            f"{out} holds a run of the {others[0]} engine; refusing to train it with --engine "
            f"{engine}, which would start over from the base model and replace {out}/model. "
            f"Resume it with --engine {others[0]}, or use a new run folder (--out)."
        )


def replace_folder(source: Path, target: Path) -> None:
    """Move the complete folder ``source`` to ``target``, replacing any folder there.

    The previous ``target`` is renamed aside first and deleted only after the new one is in
    place, so an interruption leaves one complete folder (the new one or the old one).
    """
    old = target.with_name(f".old-{target.name}-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(source, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class RunLock:
    """An exclusive lock on a run folder (``with RunLock(out): ...``).

    Raises:
        RunFolderError: on entry, when another process holds the lock.
    """

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_FILE
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderError(
                f"{self.path.parent} is in use by another trainer (pid {owner}); wait for it "
                "to finish or use another run folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
