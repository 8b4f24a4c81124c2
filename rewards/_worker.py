"""Entry point of a grading worker process: ``python -m rewards._worker READ_FD WRITE_FD``.

Protocol (``multiprocessing.connection`` framing over two inherited pipes): the worker sends
``"ready"`` once math-verify is imported, then answers each ``(gold, candidates)`` task with
``rewards._grading.grade``'s result. It exits when the task pipe closes (the parent went away).
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


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


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
