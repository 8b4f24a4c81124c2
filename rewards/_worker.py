"""Entry point of a grading worker process, started by :mod:`rewards.pool` as::

    python -I -c "<bootstrap>" SYS_PATH_JSON READ_FD WRITE_FD PARENT_PID

``-I`` (isolated mode, Python ≥ 3.4) keeps the working directory, ``PYTHONPATH`` and the user
site directory off the import path; the bootstrap then sets ``sys.path`` to the parent's path
without the working directory, so a ``sympy.py`` lying in the working directory is never imported.

Protocol (``multiprocessing.connection`` framing over two inherited pipes): the worker sends
``"ready"`` once math-verify is imported, then answers each ``(gold, candidates)`` task with
``rewards._grading.grade``'s result.

A worker never outlives its parent: on Linux it asks the kernel for ``SIGKILL`` when the parent
dies (``PR_SET_PDEATHSIG``), which works even while grading holds the interpreter in C code; on
every platform a watchdog thread exits when the task pipe hangs up or the parent PID changes.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection

_PR_SET_PDEATHSIG = 1
_WATCHDOG_PERIOD_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """Arrange for SIGKILL when the parent dies (Linux); exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl (an unusual libc): the watchdog remains
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(0)


def _watch_parent(read_fd: int, parent_pid: int) -> None:
    """Exit the process when the task pipe hangs up or the worker is re-parented."""
    poller = select.poll()
    poller.register(read_fd, select.POLLHUP)  # hang-ups and errors are always reported
    while True:
        events = poller.poll(_WATCHDOG_PERIOD_S * 1000)
        if events or os.getppid() != parent_pid:
            os._exit(0)


def serve(read_fd: int, write_fd: int) -> None:
    """Answer grading tasks until the parent closes the task pipe."""
    from rewards._grading import grade, warm_up

    tasks = Connection(read_fd, writable=False)
    results = Connection(write_fd, readable=False)
    warm_up()
    results.send("ready")
    while True:
        try:
            gold, candidates = tasks.recv()
        except (EOFError, OSError):
            return
        try:
            outcome: object = grade(gold, candidates)
        except Exception as error:  # reported to the parent, never fatal here
            outcome = error.__class__.__name__
        results.send(outcome)


def main(argv: Sequence[str]) -> None:
    """``main([READ_FD, WRITE_FD, PARENT_PID])``: guard against orphaning, then serve."""
    read_fd, write_fd, parent_pid = (int(arg) for arg in argv)
    _die_with_parent(parent_pid)
    if hasattr(select, "poll"):
        watchdog = threading.Thread(target=_watch_parent, args=(read_fd, parent_pid), daemon=True)
        watchdog.start()
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # long integers are bounded by the parent's deadline
    serve(read_fd, write_fd)
