"""TensorBoard scalars with namespaced keys, plus a JSONL copy that is easy to test and diff.

Keys are ``namespace/name``: ``reward/outcome``, ``reward/progress``, ``env/j``,
``env/regret``, ``charts/tokens``, ``losses/policy``, ``losses/kl``, ``eval/pass@1`` ...
Importing this module configures nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ScalarLogger:
    """Writes namespaced scalars to TensorBoard and to ``metrics.jsonl``.

    Args:
        log_dir: Folder of the event files and ``metrics.jsonl``.
        tensorboard: Whether to write TensorBoard event files.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     log = ScalarLogger(d, tensorboard=False)
        ...     log.log({"losses/policy": 0.5}, step=1)
        ...     log.close()
        ...     (Path(d) / "metrics.jsonl").read_text().strip()
        '{"losses/policy": 0.5, "step": 1}'
    """

    def __init__(self, log_dir: str | Path, tensorboard: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))
        self._jsonl = open(self.log_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def log(self, scalars: Mapping[str, float | int | None], step: int) -> None:
        """Record every finite scalar of ``scalars`` at ``step``; keys must be namespaced."""
        clean: dict[str, float] = {}
        for key, value in scalars.items():
            if "/" not in key:
                raise ValueError(f"metric key {key!r} must be namespaced like 'losses/policy'")
            if value is None or not math.isfinite(float(value)):
                continue
            clean[key] = float(value)
            if self._writer is not None:
                self._writer.add_scalar(key, float(value), global_step=step)
        self._jsonl.write(json.dumps({**clean, "step": step}, sort_keys=True) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        """Flush and close the writers."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
        self._jsonl.close()
