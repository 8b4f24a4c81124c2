"""One model worker for all sessions: the resets and steps of concurrent sessions are batched.

Every session submits its reset or step as a :class:`Job`; a single worker thread takes all
jobs waiting (after a short window for stragglers), groups them by their
:class:`~mrt_env.core.StepCore`, and for each group runs the same three phases as the vector
env: ``prepare_*`` per job, *one* ``call_models`` (one ``prover.estimate`` and one forced-answer
``generate`` over all of them), ``finish_*``. So N sessions cost one batched μ call per round,
not N, and every model, tokenizer and grading call happens on one thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mrt_env.core import StepCore
from mrt_env.trajectory import ModelResult, Pending, PendingStep, TrajectoryState


@dataclass
class Job:
    """A reset (``action is None``) or a step of one session's trajectory.

    ``future`` resolves to ``(state, observation, info)`` for a reset and to the env's
    ``(observation, reward, terminated, truncated, info)`` for a step.
    """

    core: StepCore
    rng: np.random.Generator
    state: TrajectoryState | None = None
    action: Any = None
    options: Mapping[str, Any] | None = None
    future: Future[Any] = field(default_factory=Future)

    @property
    def is_reset(self) -> bool:
        return self.state is None


class ModelWorker:
    """The thread that runs every session's model calls, batched across sessions.

    Args:
        window_s: After the first job arrives, wait this long for more before a round.

    Example:
        >>> worker = ModelWorker(window_s=0.0)
        >>> worker.close()
    """

    def __init__(self, window_s: float = 0.002) -> None:
        self.window_s = window_s
        self.rounds = 0
        self.jobs_done = 0
        self.largest_round = 0
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mrt-model-worker", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, job: Job) -> Future[Any]:
        """Queue ``job``; its future resolves when its round has run."""
        if self._closed:
            raise RuntimeError("the model worker is closed")
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the jobs already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            self._round(jobs)
            # a job holds its session's trajectory: let it go with the session, not with the
            # next round (an idle worker would otherwise keep the last round's trajectories)
            del first, jobs
            if stop:
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        jobs, deadline = [first], time.monotonic() + self.window_s
        while True:
            try:
                timeout = max(deadline - time.monotonic(), 0.0)
                job = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                return jobs, False
            if job is None:
                return jobs, True
            jobs.append(job)

    def _round(self, jobs: list[Job]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        groups: dict[int, list[Job]] = {}
        for job in live:
            groups.setdefault(id(job.core), []).append(job)
        for group in groups.values():
            _run_group(group)
        self.rounds += 1
        self.jobs_done += len(live)
        self.largest_round = max(self.largest_round, len(live))


def _run_group(jobs: list[Job]) -> None:
    """Prepare each job, one batched model call, finish each (errors go to their job)."""
    core = jobs[0].core
    prepared: list[tuple[Job, Pending]] = []
    for job in jobs:
        try:
            prepared.append((job, _prepare(core, job)))
        except Exception as error:  # bad input: this job fails, the others go on
            job.future.set_exception(error)
    if not prepared:
        return
    try:
        results = core.call_models([pending for _, pending in prepared])
    except Exception as error:  # every job of the round gets the model's error
        for job, _ in prepared:
            job.future.set_exception(error)
        return
    steps: list[tuple[Job, PendingStep, ModelResult]] = []
    for (job, pending), result in zip(prepared, results, strict=True):
        if isinstance(pending, PendingStep):
            steps.append((job, pending, result))
            continue
        try:
            job.future.set_result(core.finish_reset(pending, result))
        except Exception as error:
            job.future.set_exception(error)
    if not steps:
        return
    try:
        states = [job.state for job, _, _ in steps if job.state is not None]
        outputs = core.finish_steps(states, [p for _, p, _ in steps], [r for _, _, r in steps])
    except Exception as error:
        for job, _, _ in steps:
            job.future.set_exception(error)
        return
    for (job, _, _), output in zip(steps, outputs, strict=True):
        job.future.set_result(output)


def _prepare(core: StepCore, job: Job) -> Pending:
    if job.state is None:
        problem = core.choose_problem(job.rng, job.options)
        return core.prepare_reset(problem, job.rng)
    pending: PendingStep = core.prepare_step(job.state, job.action, job.rng)
    return pending
