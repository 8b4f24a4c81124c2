"""Detect one environment used from two threads at once.

An env's ``step`` and ``reset`` read and replace one trajectory state; run from two threads at
once, a ``reset`` can slip between a ``step``'s model calls and the step then commits the old
episode into the new trajectory. Envs are not thread-safe (like Gymnasium's); this guard turns
such a race into a clear error instead of a silently wrong trajectory.

Example:
    >>> guard = ExclusiveUse("MRTMathEnv")
    >>> with guard("step"):
    ...     pass
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ConcurrentUseError(RuntimeError):
    """An env method was called while another call on the same env was running."""


class ExclusiveUse:
    """A non-blocking guard: a second caller entering while one is inside raises at once.

    Args:
        owner: Name of the guarded object, used in the error message.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._running: tuple[str, str] | None = None

    @contextmanager
    def __call__(self, method: str) -> Iterator[None]:
        """Hold the guard for the duration of ``method``; raise if it is already held."""
        if not self._lock.acquire(blocking=False):
            running, thread = self._running or ("another call", "another thread")
            raise ConcurrentUseError(
                f"{self.owner}.{method}() was called while {self.owner}.{running}() is still "
                f"running (in thread {thread!r}); an env is not thread-safe: use one env per "
                "thread, or a vector env for many trajectories at once"
            )
        try:
            self._running = (method, threading.current_thread().name)
            yield
        finally:
            self._running = None
            self._lock.release()

    def __getstate__(self) -> dict[str, Any]:
        return {"owner": self.owner}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["owner"])  # type: ignore[misc]
