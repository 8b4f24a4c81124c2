"""Verify a whole model response against a gold answer: extraction, anti-hedging, math-verify.

``verify(response, gold)`` extracts the final answer (see :mod:`rewards.extraction`), normalises it
(see :mod:`rewards.normalize`) and asks math-verify whether it is equivalent to the gold answer,
inside killable worker processes (see :mod:`rewards.pool`), so every call has a hard wall-clock
bound and is safe from any thread and any process (including daemonic ``multiprocessing.Pool``
workers). Results are cached (LRU, bounded in entries and bytes); each worker parses each gold
answer once. When the gold answer and every candidate are integer literals (ASCII digits, any
length), the values are compared in this process (math-verify decides such pairs the same way),
so integer answers need no worker.

Work in the calling process is linear in the input and bounded: answer regions longer than
``max_response_chars`` and gold answers longer than ``max_gold_chars`` are rejected unscanned;
longer or more deeply nested answers than ``max_answer_chars`` / ``max_answer_depth`` are
``wrong`` without parsing.

Anti-hedging: when the answer region holds several boxed answers that are not all equivalent to
the gold answer (some right, some wrong), or one box lists candidates (``3 \\text{ or } 5``,
``3, 5``) where the gold answer is a single value, the response is ``wrong`` with
``detail="hedged"``. Repeating the same (or an equivalent) answer is fine.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rewards._cache import _MISSING, _ResultCache, _Task
from rewards.extraction import answer_region, boxed_answers, pattern_answers
from rewards.normalize import is_hedged_list, normalize_answer
from rewards.pool import TIMED_OUT, WorkerPool

Status = Literal["correct", "wrong", "no_answer", "timeout", "unparsable_gold"]
STATUSES: tuple[Status, ...] = ("correct", "wrong", "no_answer", "timeout", "unparsable_gold")
_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: ``５`` is math-verify's to judge


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one response.

    Attributes:
        status: One of ``correct``, ``wrong``, ``no_answer``, ``timeout``, ``unparsable_gold``.
        answer: The final answer as extracted (the last candidate), or ``None`` when there is none.
        detail: Why, when the status alone does not say: ``hedged``, ``answer_too_long``,
            ``answer_too_deep``, ``unfinished_thinking``, ``no_boxed_answer``,
            ``response_too_long``, ``gold_too_long``, ``grading_error:<Exception>``.
    """

    status: Status
    answer: str | None = None
    detail: str | None = None

    @property
    def correct(self) -> bool:
        """Whether the response earns the outcome reward."""
        return self.status == "correct"


@dataclass(frozen=True)
class VerifierConfig:
    """How responses are verified (hashable: one shared verifier per distinct config).

    Attributes:
        timeout_s: Hard wall-clock bound on grading one response, in seconds (finite).
        workers: Worker processes; ``None`` means ``min(2, os.cpu_count())``.
        max_answer_chars: Longer answers are ``wrong`` (``answer_too_long``) without parsing.
        max_answer_depth: Answers nested deeper than this (braces, brackets and parentheses)
            are ``wrong`` (``answer_too_deep``) without parsing: math-verify needs longer than
            the default timeout for ``\\frac`` nested 16 deep (161 characters) and seconds for
            12 nested parentheses, while the gold answers in ``../shared/data`` nest at most 4
            deep (``tests/rewards/test_verification.py`` checks this).
        max_candidates: More distinct boxed answers than this are ``wrong`` (``hedged``) at once.
        max_response_chars: An answer region (the text after the last ``</think>``, or the whole
            response without think tags) longer than this is ``no_answer``
            (``response_too_long``) without being scanned. Thinking text is never scanned.
        max_gold_chars: A longer gold answer is ``unparsable_gold`` (``gold_too_long``).
        extra_patterns: Regular expressions (first group = answer) tried when no box is found,
            e.g. ``(rewards.extraction.FINAL_ANSWER_PATTERN,)``. They run in the calling
            process, so they must not backtrack catastrophically.
        cache_size: Entries in the result cache (0 disables it).
        cache_bytes: Approximate bytes of the result cache (answers, gold answers, overhead).
        cache_timeouts: Also cache timeouts, so an identical task that overran once is answered
            ``timeout`` at once instead of costing another ``timeout_s`` (off by default: a
            timeout can be due to load rather than to the task).
        in_process: Grade in the calling process instead of worker processes. The time bound
            then holds only in the main thread (SIGALRM); elsewhere only ``max_answer_chars``
            guards against slow answers. Meant for debugging and benchmarking.
    """

    timeout_s: float = 5.0
    workers: int | None = None
    max_answer_chars: int = 1000
    max_answer_depth: int = 8
    max_candidates: int = 4
    max_response_chars: int = 1_000_000
    max_gold_chars: int = 100_000
    extra_patterns: tuple[str, ...] = ()
    cache_size: int = 65536
    cache_bytes: int = 64 * 2**20
    cache_timeouts: bool = False
    in_process: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive finite number, got {self.timeout_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        for name in (
            "max_answer_chars",
            "max_answer_depth",
            "max_candidates",
            "max_response_chars",
            "max_gold_chars",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("cache_size", "cache_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (no cache) or more, got {getattr(self, name)}")


class Verifier:
    """Verifies responses against gold answers with a hard per-response time bound.

    Most code uses the module-level :func:`verify`; build a ``Verifier`` for other settings.

    Example:
        >>> verifier = Verifier(VerifierConfig(timeout_s=5.0, workers=1))
        >>> response = "<think>2 or 3?</think> The answer is $\\\\boxed{\\\\dfrac{4}{2}}$."
        >>> verifier.verify(response, "2").status
        'correct'
        >>> verifier.close()
    """

    def __init__(self, config: VerifierConfig | None = None) -> None:
        self.config = config or VerifierConfig()
        self._cache = _ResultCache(self.config.cache_size, self.config.cache_bytes)
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()

    def verify(self, response: str, gold: str) -> Verification:
        """Verify one response (a whole model output; the final answer is extracted here)."""
        return self.verify_many([(response, gold)])[0]

    def verify_many(self, pairs: Iterable[tuple[str, str]]) -> list[Verification]:
        """Verify many ``(response, gold)`` pairs, keeping every worker busy."""
        prepared = [self._prepare(response, gold) for response, gold in pairs]
        grades: dict[_Task, Any] = {}
        for item in prepared:
            if not isinstance(item, Verification):
                grades[item[0]] = self._cache.get(item[0])
        todo = [task for task, cached in grades.items() if cached is _MISSING]
        for task, result in zip(todo, self._grade(todo), strict=True):
            grades[task] = result
            cacheable = self.config.cache_timeouts if result is TIMED_OUT else _is_grade(result)
            if cacheable:
                self._cache.put(task, result)  # grading errors are never cached
        return [
            item if isinstance(item, Verification) else _verdict(grades[item[0]], item[1])
            for item in prepared
        ]

    def _prepare(self, response: str, gold: str) -> Verification | tuple[_Task, str]:
        """Extract and normalise; return a final verdict when no grading is needed."""
        config = self.config
        region = answer_region(response)
        if region is None:
            return Verification("no_answer", detail="unfinished_thinking")
        if len(region) > config.max_response_chars:
            return Verification("no_answer", detail="response_too_long")
        candidates = boxed_answers(region)
        if not candidates and config.extra_patterns:
            candidates = pattern_answers(region, config.extra_patterns)
        if not candidates:
            return Verification("no_answer", detail="no_boxed_answer")
        answer = candidates[-1]
        if len(gold) > config.max_gold_chars:
            return Verification("unparsable_gold", answer=answer, detail="gold_too_long")
        gold_normal = normalize_answer(gold)
        if not gold_normal:
            return Verification("unparsable_gold", answer=answer)
        if any(len(candidate) > config.max_answer_chars for candidate in candidates):
            return Verification("wrong", answer=answer, detail="answer_too_long")
        distinct: dict[str, None] = {}
        for candidate in dict.fromkeys(candidates):  # equal strings are normalised once
            distinct[normalize_answer(candidate)] = None
            if len(distinct) > config.max_candidates:
                return Verification("wrong", answer=answer, detail="hedged")
        if any(is_hedged_list(candidate, gold_normal) for candidate in distinct):
            return Verification("wrong", answer=answer, detail="hedged")
        integer_grades = _integer_grades(gold_normal, tuple(distinct))
        if integer_grades is not None:
            return _verdict(integer_grades, answer)
        if any(nesting_depth(candidate) > config.max_answer_depth for candidate in distinct):
            return Verification("wrong", answer=answer, detail="answer_too_deep")
        return (gold_normal, tuple(distinct)), answer

    def _grade(self, tasks: Sequence[_Task]) -> list[Any]:
        if not tasks:
            return []
        if self.config.in_process:
            return [_grade_in_process(task, self.config.timeout_s) for task in tasks]
        return self._worker_pool().run_many(tasks, self.config.timeout_s)

    def _worker_pool(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None or self._pool.pid != os.getpid():
                size = self.config.workers or min(2, os.cpu_count() or 1)
                self._pool = WorkerPool(size)  # a forked child never reuses its parent's workers
            return self._pool

    def clear_cache(self) -> None:
        """Forget cached results (e.g. to time grading itself)."""
        self._cache.clear()

    @property
    def cache_entries(self) -> int:
        """Grading tasks in the result cache now (at most ``config.cache_size``)."""
        return len(self._cache)

    def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _integer_grades(gold: str, candidates: Sequence[str]) -> tuple[bool, ...] | None:
    """Grades without math-verify when gold and every candidate are integer literals.

    Two integer literals are equivalent exactly when their values are equal, which is what
    math-verify decides for them too; anything else (``None``) goes to math-verify. Values are
    compared as canonical digit strings, so any length works in linear time.

    Example:
        >>> _integer_grades("918", ("918",)), _integer_grades("918", ("0918", "7"))
        ((True,), (True, False))
        >>> _integer_grades("1/2", ("0.5",)) is None
        True
    """
    if not _INTEGER.fullmatch(gold) or not all(_INTEGER.fullmatch(c) for c in candidates):
        return None
    value = _canonical_integer(gold)
    return tuple(_canonical_integer(candidate) == value for candidate in candidates)


def _canonical_integer(literal: str) -> str:
    """``"-007"`` → ``"-7"``, ``"-0"`` → ``"0"``: equal values, equal strings."""
    digits = literal.lstrip("-").lstrip("0") or "0"
    return "-" + digits if literal.startswith("-") and digits != "0" else digits


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{}``, ``[]`` and ``()`` in ``text`` (one linear pass).

    Example:
        >>> nesting_depth("\\frac{1}{(2+x)^{2}}")
        2
    """
    depth = deepest = 0
    for char in text:
        if char in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}])":
            depth = max(depth - 1, 0)
    return deepest


def _is_grade(result: Any) -> bool:
    """Whether a worker's result is a grade (not a timeout or an error name)."""
    return not isinstance(result, str)


def _verdict(grades: Any, answer: str) -> Verification:
    """Turn a worker's grades (one bool per distinct candidate) into a verification."""
    if grades is TIMED_OUT:
        return Verification("timeout", answer=answer)
    if isinstance(grades, str):
        return Verification("wrong", answer=answer, detail=f"grading_error:{grades}")
    if grades is None:
        return Verification("unparsable_gold", answer=answer)
    if all(grades):
        return Verification("correct", answer=answer)
    return Verification("wrong", answer=answer, detail="hedged" if any(grades) else None)


class _Alarm(BaseException):  # math-verify catches every Exception
    pass


_ALARM_REPEAT_S = 0.05
"""After the bound, the alarm fires again at this interval: an alarm raised where Python
swallows exceptions (a garbage-collector callback, a ``__del__``) is followed by another."""


def _grade_in_process(task: _Task, timeout_s: float) -> Any:
    """Grade in this process; bounded by SIGALRM only in the main thread of the main interpreter.

    An alarm the caller had set is suspended meanwhile and re-armed afterwards. A grade that
    returns after the bound (its alarm swallowed where exceptions cannot propagate) is a
    timeout too.
    """
    from rewards._grading import grade, warm_up

    warm_up()  # imports outside the time bound, as in a worker that reports "ready"
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        return grade(*task)
    fired: list[bool] = []
    armed = [True]  # cleared first thing on the way out: no alarm escapes the cleanup

    def raise_alarm(signum: int, frame: object) -> None:
        fired.append(True)
        if armed[0]:
            raise _Alarm

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, raise_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s, _ALARM_REPEAT_S)
    try:
        grades = grade(*task)
        return TIMED_OUT if fired else grades
    except _Alarm:
        return TIMED_OUT
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:
            remaining = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)


_shared: dict[VerifierConfig, Verifier] = {}
_shared_lock = threading.Lock()


def get_verifier(config: VerifierConfig | None = None) -> Verifier:
    """The process-wide verifier for ``config`` (created on first use; workers stop at exit)."""
    key = config or VerifierConfig()
    with _shared_lock:
        verifier = _shared.get(key)
        if verifier is None:
            verifier = _shared[key] = Verifier(key)
        return verifier


def _forget_shared_after_fork() -> None:
    global _shared_lock
    _shared.clear()  # the parent's verifiers (and their workers) belong to the parent
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_shared_after_fork)


def verify(response: str, gold: str) -> Verification:
    """Verify a whole model response against a gold answer (thread- and process-safe).

    The final answer is the last ``\\boxed{...}`` after ``</think>``; grading takes at most
    ``VerifierConfig().timeout_s`` seconds of worker time.

    Example:
        >>> verify("<think>maybe 0.5</think>So $\\\\boxed{\\\\frac{1}{2}}$.", "0.5").status
        'correct'
        >>> verify("<think>the answer is \\\\boxed{3}</think>I am not sure.", "3").status
        'no_answer'
    """
    return get_verifier().verify(response, gold)


def verify_many(pairs: Iterable[tuple[str, str]]) -> list[Verification]:
    """Verify many ``(response, gold)`` pairs at once, using every worker (see :func:`verify`)."""
    return get_verifier().verify_many(pairs)
