"""The verifier's result cache: an LRU map bounded in entries and in (approximate) bytes."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any

#: A grading task: the normalised gold answer and the distinct normalised candidates.
_Task = tuple[str, tuple[str, ...]]
#: What :meth:`_ResultCache.get` returns for a task it does not hold.
_MISSING = object()
_ENTRY_OVERHEAD_BYTES = 256


def _task_bytes(task: _Task) -> int:
    """Approximate memory held by a cached task (its strings plus container overhead)."""
    gold, candidates = task
    return _ENTRY_OVERHEAD_BYTES + sys.getsizeof(gold) + sum(map(sys.getsizeof, candidates))


class _ResultCache:
    """A thread-safe LRU map from a grading task to its grades, bounded in entries and bytes."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[_Task, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: _Task) -> Any:
        """The cached grades of ``key``, or :data:`_MISSING`."""
        with self._lock:
            if key not in self._items:
                return _MISSING
            self._items.move_to_end(key)
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def put(self, key: _Task, value: Any) -> None:
        cost = _task_bytes(key)
        if self.size < 1 or cost > self.max_bytes:
            return
        with self._lock:
            if key not in self._items:
                self.bytes += cost
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size or self.bytes > self.max_bytes:
                old, _ = self._items.popitem(last=False)
                self.bytes -= _task_bytes(old)
