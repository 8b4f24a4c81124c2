"""A tiny process pool whose workers are killed and replaced when a task overruns its deadline.

``concurrent.futures.ProcessPoolExecutor`` cannot kill a hung worker, and
``multiprocessing.Process`` cannot be started from a daemonic process (a ``multiprocessing.Pool``
worker). Workers here are plain interpreters started with :mod:`subprocess` (see
:mod:`rewards._worker`), which works from any thread of any process, never re-imports the
caller's ``__main__`` and never forks a multi-threaded parent. Each worker serves one task at a
time over its own pair of pipes; a task that overruns is answered :data:`TIMED_OUT` and its
worker is killed and replaced at once (the replacement warms up in the background).

Workers run in isolated mode with the parent's import path minus the working directory, and die
with their parent (a parent-death signal on Linux, a pipe watchdog everywhere). They are started
from one long-lived thread per process, because Linux sends the parent-death signal when the
*thread* that started a process exits.

POSIX only (workers inherit their pipes through ``pass_fds``).

Guarantee: a task returns at most ``timeout_s`` (plus a few milliseconds) after it was handed to
a ready worker. Waiting for a free worker (all busy with other callers' tasks) is not counted.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

#: Result of a task that overran its deadline (its worker was killed).
TIMED_OUT = "timed_out"
_STARTUP_TIMEOUT_S = 120.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from rewards._worker import main; main(sys.argv[2:])"
)


def worker_sys_path() -> list[str]:
    """The import path of a worker: this package's root, then the caller's absolute path entries
    except the working directory (a ``sympy.py`` lying there must never be imported).

    Example:
        >>> os.getcwd() in worker_sys_path()[1:]
        False
    """
    cwd = os.getcwd()
    entries = [_PACKAGE_ROOT]
    for entry in sys.path:
        if entry and os.path.isabs(entry) and entry != cwd and entry not in entries:
            entries.append(entry)
    return entries


class _Spawner:
    """Starts processes from one long-lived daemon thread of this process.

    Linux delivers ``PR_SET_PDEATHSIG`` when the thread that started a process exits, so a worker
    started from a caller's short-lived thread (a ``ThreadPoolExecutor``) would die with it.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._requests: queue.SimpleQueue[tuple[list[str], dict[str, Any], Future[Any]]]
        self._requests = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, name="rewards-worker-spawner", daemon=True)
        thread.start()

    def _serve(self) -> None:
        while True:
            argv, options, future = self._requests.get()
            try:
                future.set_result(subprocess.Popen(argv, **options))
            except BaseException as error:  # handed to the caller
                future.set_exception(error)

    def popen(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(argv, **options)``, run on the spawner thread."""
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((argv, options, future))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner.pid != os.getpid():
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.popen(argv, **options)


def _forget_spawner_after_fork() -> None:
    global _spawner, _spawner_lock
    _spawner, _spawner_lock = None, threading.Lock()  # threads (and held locks) stay behind


os.register_at_fork(after_in_child=_forget_spawner_after_fork)


class _Worker:
    """One worker process and the parent's ends of its two pipes."""

    def __init__(self) -> None:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        argv = [sys.executable, "-I", "-c", _BOOTSTRAP, json.dumps(worker_sys_path())]
        argv += [str(task_read), str(result_write), str(os.getpid())]
        try:
            self.process = _spawn(
                argv,
                pass_fds=(task_read, result_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            os.close(task_read)
            os.close(result_write)
        self.tasks = Connection(task_write, readable=False)
        self.results = Connection(result_read, writable=False)
        self.ready = False

    def poll_ready(self) -> bool:
        """Whether the worker has finished starting (never blocks)."""
        if not self.ready and self.process.poll() is None and self.results.poll(0):
            try:
                self.ensure_ready()
            except RuntimeError:
                return False
        return self.ready

    def ensure_ready(self) -> None:
        """Block until the worker has imported math-verify (only the first time)."""
        if self.ready:
            return
        try:
            started = self.results.poll(_STARTUP_TIMEOUT_S) and self.results.recv() == "ready"
        except (EOFError, OSError):
            started = False
        if not started:
            self.kill()
            raise RuntimeError(f"verifier worker did not start (exit code {self.process.poll()})")
        self.ready = True

    def kill(self) -> None:
        """Kill the process and close the pipes (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.tasks.close()
        self.results.close()


#: Tasks in flight: a worker's result connection → (worker, task index, deadline).
_Busy = dict[Connection, tuple[_Worker, int, float]]


class WorkerPool:
    """A fixed number of killable grading workers, shared safely by any number of threads.

    Args:
        size: Number of worker processes (at least 1).

    Example:
        >>> pool = WorkerPool(size=1)
        >>> pool.run_many([("2", ("2", "3"))], timeout_s=5.0)
        [(True, False)]
        >>> pool.close()
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got size={size}")
        self.size = size
        self.pid = os.getpid()
        self._lock = threading.Condition()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()  # every started worker, idle or busy
        self._started = 0
        self._closed = False
        _open_pools.add(self)

    def _acquire(self, block: bool) -> _Worker | None:
        """An idle worker (a warmed-up one when possible), starting all missing ones on demand."""
        with self._lock:
            while not self._idle and self._started >= self.size and block and not self._closed:
                self._lock.wait()
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            missing = self.size - self._started if not self._idle else 0
            self._started += missing
        fresh: list[_Worker] = []
        try:
            for _ in range(missing):
                fresh.append(_Worker())
        finally:
            with self._lock:
                self._started -= missing - len(fresh)
                self._idle.extend(fresh)
                self._live.update(fresh)
        return self._take_idle()

    def _take_idle(self) -> _Worker | None:
        """Remove and return an idle worker, preferring one that has finished starting."""
        with self._lock:
            if not self._idle:
                return None
            warm = [worker for worker in self._idle if worker.poll_ready()]
            worker = warm[-1] if warm else self._idle[-1]
            self._idle.remove(worker)
            return worker

    def _release(self, worker: _Worker | None) -> None:
        with self._lock:
            if worker is None:
                self._started -= 1
            elif self._closed:
                self._live.discard(worker)
                worker.kill()
            else:
                self._idle.append(worker)
            self._lock.notify()

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start another in its place (unless the pool is closed)."""
        worker.kill()
        replacement: _Worker | None = None
        with self._lock:
            self._live.discard(worker)
            closed = self._closed
        if not closed:
            try:
                replacement = _Worker()
            except OSError:
                replacement = None
            else:
                with self._lock:
                    self._live.add(replacement)
        self._release(replacement)

    def run_many(self, tasks: Sequence[tuple[str, tuple[str, ...]]], timeout_s: float) -> list[Any]:
        """Grade every ``(gold, candidates)`` task, keeping all free workers busy.

        Returns one result per task, in order: the worker's answer, or :data:`TIMED_OUT`.
        """
        results: list[Any] = [TIMED_OUT] * len(tasks)
        pending = deque(range(len(tasks)))
        busy: _Busy = {}
        try:
            while pending or busy:
                while pending:
                    worker = self._acquire(block=not busy)
                    if worker is None:
                        break
                    self._dispatch(worker, tasks, pending, busy, timeout_s)
                self._collect(busy, results)
        finally:
            for worker, _, _ in busy.values():  # only left on an exception (e.g. Ctrl-C)
                self._replace(worker)
        return results

    def _dispatch(
        self,
        worker: _Worker,
        tasks: Sequence[Any],
        pending: deque[int],
        busy: _Busy,
        timeout_s: float,
    ) -> None:
        try:
            worker.ensure_ready()
            index = pending.popleft()
            worker.tasks.send(tasks[index])
        except BaseException:
            self._replace(worker)
            raise
        busy[worker.results] = (worker, index, time.monotonic() + timeout_s)

    def _collect(self, busy: _Busy, results: list[Any]) -> None:
        """Wait for the next result or deadline; release finished workers, replace late ones."""
        if not busy:
            return
        next_deadline = min(deadline for _, _, deadline in busy.values())
        ready = wait(list(busy), timeout=max(next_deadline - time.monotonic(), 0.0))
        for connection in ready:
            worker, index, _ = busy.pop(connection)  # type: ignore[call-overload]
            try:
                results[index] = worker.results.recv()
            except (EOFError, OSError):
                results[index] = TIMED_OUT  # the worker died (e.g. out of memory)
                self._replace(worker)
            else:
                self._release(worker)
        now = time.monotonic()
        for connection, (worker, index, deadline) in list(busy.items()):
            if deadline <= now:
                del busy[connection]
                results[index] = TIMED_OUT
                self._replace(worker)

    def close(self) -> None:
        """Kill every worker now (a task in flight then reports :data:`TIMED_OUT`)."""
        with self._lock:
            self._closed = True
            live, self._live, self._idle = list(self._live), set(), []
            self._lock.notify_all()
        if os.getpid() == self.pid:  # a forked child never touches its parent's workers
            for worker in live:
                worker.kill()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


_open_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


@atexit.register
def _close_open_pools() -> None:
    for pool in list(_open_pools):
        pool.close()
