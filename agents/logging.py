"""Scalars with namespaced keys to TensorBoard and/or Weights & Biases, plus a JSONL copy that is
easy to test and diff.

Keys are ``namespace/name``: ``reward/outcome``, ``reward/progress``, ``env/j``,
``env/regret``, ``charts/tokens``, ``losses/policy``, ``losses/kl``, ``eval/pass@1`` ...
Non-finite values are recorded as ``null`` in ``metrics.jsonl`` (strict JSON, readable by any
JSON parser) and as NaN/inf in TensorBoard.
Importing this module configures nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
WANDB_ID_FILE = "wandb-run-id"
REPORTERS = ("tensorboard", "wandb")
"""Where :class:`ScalarLogger` (and the TRL engine, through TRL's ``report_to``) can report."""


def parse_report_to(spec: str) -> tuple[str, ...]:
    """The reporters of ``--report-to``: comma-separated names of :data:`REPORTERS`, or ``none``.

    Example:
        >>> parse_report_to("tensorboard,wandb"), parse_report_to("none")
        (('tensorboard', 'wandb'), ())
    """
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["none"]:
        return ()
    unknown = [name for name in names if name not in REPORTERS]
    if unknown or not names:
        raise ValueError(
            f"--report-to takes {', '.join(REPORTERS)} (comma-separated) or none, got {spec!r}"
        )
    return tuple(dict.fromkeys(names))


def import_wandb() -> Any:
    """The ``wandb`` module, or a clear error naming the extra that installs it."""
    try:
        import wandb
    except ImportError:
        raise ValueError(
            "--report-to wandb needs the wandb package: pip install 'mrt-gym[wandb]' "
            "(WANDB_MODE=offline logs without an account or network)"
        ) from None
    return wandb


class ScalarLogger:
    """Writes namespaced scalars to TensorBoard and to ``metrics.jsonl``.

    Args:
        log_dir: Folder of the event files and ``metrics.jsonl``.
        tensorboard: Whether to write TensorBoard event files.
        resume_step: The step training (re)starts from (``0`` for a fresh run): lines and
            events of later steps, written before the run was interrupted, are removed first,
            so a resumed run never records a step twice. ``None`` appends to what is there.
        wandb: Keyword arguments of ``wandb.init`` (``project``, ``name``, ``config``, ``dir``)
            to also log to Weights & Biases, or ``None``. The run id is kept in
            ``log_dir/wandb-run-id``, so a resumed run continues the same W&B run (W&B keeps
            the rows of steps it already has). ``WANDB_MODE=offline`` logs to ``dir`` only.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     log = ScalarLogger(d, tensorboard=False)
        ...     log.log({"losses/policy": 0.5, "losses/kl": float("nan")}, step=1)
        ...     log.close()
        ...     (Path(d) / "metrics.jsonl").read_text().strip()
        '{"losses/kl": null, "losses/policy": 0.5, "step": 1}'
    """

    def __init__(
        self,
        log_dir: str | Path,
        tensorboard: bool = True,
        resume_step: int | None = None,
        wandb: Mapping[str, Any] | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / METRICS_FILE
        if resume_step is not None:
            trim_metrics(path, resume_step)
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._writer = SummaryWriter(str(self.log_dir), purge_step=purge)
        self._wandb: Any = None if wandb is None else self._start_wandb(dict(wandb))
        self._jsonl = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def _start_wandb(self, settings: dict[str, Any]) -> Any:
        module = import_wandb()
        id_file = self.log_dir / WANDB_ID_FILE
        if id_file.exists():
            run_id = id_file.read_text(encoding="utf-8").strip()
        else:
            run_id = uuid.uuid4().hex[:12]  # an identifier, not a random choice of the run
            id_file.write_text(run_id, encoding="utf-8")
        settings.setdefault("dir", str(self.log_dir))
        return module.init(id=run_id, resume="allow", **settings)

    def log(self, scalars: Mapping[str, float | int | None], step: int) -> None:
        """Record every scalar of ``scalars`` (``None`` skipped) at ``step``; keys must be
        namespaced. NaN and infinities are recorded (``null`` in the JSONL), not dropped."""
        clean: dict[str, float] = {}
        for key, value in scalars.items():
            if "/" not in key:
                raise ValueError(f"metric key {key!r} must be namespaced like 'losses/policy'")
            if value is None:
                continue
            clean[key] = float(value)
            if self._writer is not None:
                self._writer.add_scalar(key, float(value), global_step=step)
        if self._wandb is not None:
            self._wandb.log(clean, step=step)
        strict = {k: (v if math.isfinite(v) else None) for k, v in clean.items()}
        self._jsonl.write(
            json.dumps({**strict, "step": step}, sort_keys=True, allow_nan=False) + "\n"
        )
        self._jsonl.flush()

    def close(self) -> None:
        """Flush and close the writers."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        self._jsonl.close()


def trim_metrics(path: Path, last_step: int) -> int:
    """Drop the lines of ``path`` after step ``last_step`` (and a torn last line); returns how
    many were dropped. A missing file is left missing.

    Kept lines are kept byte for byte. A damaged line (a bad character, invalid UTF-8) is
    kept when its ``"step"`` can still be read and is at most ``last_step``, and also when
    no step can be read from it unless it is the file's unterminated last line (a write
    torn by a crash): a resume never deletes a logged row it cannot read.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = Path(d) / "metrics.jsonl"
        ...     _ = path.write_text('{"step": 1}\\n{"x": 1\\x00, "step": 2}\\n{"step": 3}\\n{"s')
        ...     trim_metrics(path, 2), path.read_text()
        (2, '{"step": 1}\\n{"x": 1\\x00, "step": 2}\\n')
    """
    if not path.exists():
        return 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    kept = [line for line in lines if _keep_line(line, last_step)]
    dropped = len(lines) - len(kept) + (1 if torn.strip() else 0)
    if dropped:
        temporary = path.with_suffix(".jsonl.tmp")
        temporary.write_bytes(b"".join(line + b"\n" for line in kept))
        os.replace(temporary, path)
    return dropped


_STEP = re.compile(rb'"step"\s*:\s*(-?\d+)\s*[,}]')


def _keep_line(line: bytes, last_step: int) -> bool:
    """Whether a complete line of ``metrics.jsonl`` belongs to steps up to ``last_step``."""
    if not line.strip():
        return False
    try:
        step = json.loads(line.decode("utf-8"))["step"]
    except (ValueError, KeyError, TypeError):
        steps = _STEP.findall(line)
        return not steps or int(steps[-1]) <= last_step  # unreadable: keep, never delete
    return not isinstance(step, int) or step <= last_step
