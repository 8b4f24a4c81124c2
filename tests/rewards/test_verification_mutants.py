"""Verification verdicts against hand-graded responses, written to kill mutants.

Each case states the verdict a careful grader gives (correct / wrong / no_answer / timeout /
unparsable_gold, and why). Grading runs in this process (``in_process=True``) so that a
mutated verifier is exercised without starting worker processes; the worker path is covered by
``tests/rewards/test_verification.py``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from rewards._cache import _MISSING, _ResultCache, _task_bytes
from rewards._grading import grade, parse_gold, silence_math_verify
from rewards.extraction import FINAL_ANSWER_PATTERN
from rewards.normalize import is_hedged_list, normalize_answer, top_level_parts
from rewards.pool import TIMED_OUT
from rewards.verification import (
    STATUSES,
    Verification,
    Verifier,
    VerifierConfig,
    _canonical_integer,
    _grade_in_process,
    _integer_grades,
    _is_grade,
    _verdict,
    nesting_depth,
)


def _verify(response: str, gold: str, **config: object) -> Verification:
    verifier = Verifier(VerifierConfig(in_process=True, **config))  # type: ignore[arg-type]
    return verifier.verify(response, gold)


def _boxed(*answers: str) -> str:
    return "<think>hmm</think>" + " ".join("\\boxed{" + a + "}" for a in answers)


# --- verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("<think>the answer is \\boxed{3}", "3", ("no_answer", None, "unfinished_thinking")),
        ("<think>x</think>I am not sure.", "3", ("no_answer", None, "no_boxed_answer")),
        (_boxed("3"), "3", ("correct", "3", None)),
        (_boxed("0918"), "918", ("correct", "0918", None)),
        (_boxed("-07"), "-7", ("correct", "-07", None)),
        (_boxed("7"), "-7", ("wrong", "7", None)),
        (_boxed("4"), "3", ("wrong", "4", None)),
        (_boxed("3", "3"), "3", ("correct", "3", None)),
        (_boxed("3", "4"), "3", ("wrong", "4", "hedged")),  # some right, some wrong
        (_boxed("4", "3"), "3", ("wrong", "3", "hedged")),
        (_boxed("3 \\text{ or } 5"), "5", ("wrong", "3 \\text{ or } 5", "hedged")),
        (_boxed("\\dfrac{4}{2}"), "2", ("correct", "\\dfrac{4}{2}", None)),
        (_boxed("\\frac{1}{2}"), "0.5", ("correct", "\\frac{1}{2}", None)),
        (_boxed("0.4"), "0.5", ("wrong", "0.4", None)),
        (_boxed("\\frac{1}{2}", "0.5"), "0.5", ("correct", "0.5", None)),
        (_boxed("3"), "$$", ("unparsable_gold", "3", None)),
        ("\\boxed{12}", "12", ("correct", "12", None)),  # no think tags: the whole response
    ],
)
def test_verdicts(response: str, gold: str, expected: tuple[str, str | None, str | None]) -> None:
    result = _verify(response, gold)
    assert (result.status, result.answer, result.detail) == expected
    assert result.correct is (expected[0] == "correct")


def test_limits_in_the_calling_process() -> None:
    # the answer region: exactly at the limit is scanned, one more is not
    assert _verify("</think>" + "x" * 10, "1", max_response_chars=10).detail == "no_boxed_answer"
    too_long = _verify("</think>" + "x" * 11, "1", max_response_chars=10)
    assert (too_long.status, too_long.detail) == ("no_answer", "response_too_long")
    # the gold answer
    assert _verify(_boxed("123"), "123", max_gold_chars=3).status == "correct"
    long_gold = _verify(_boxed("123"), "1234", max_gold_chars=3)
    assert (long_gold.status, long_gold.answer, long_gold.detail) == (
        "unparsable_gold",
        "123",
        "gold_too_long",
    )
    # any candidate longer than max_answer_chars
    assert _verify(_boxed("123"), "123", max_answer_chars=3).status == "correct"
    long_answer = _verify(_boxed("1234", "123"), "123", max_answer_chars=3)
    assert (long_answer.status, long_answer.answer, long_answer.detail) == (
        "wrong",
        "123",
        "answer_too_long",
    )


def test_too_many_distinct_candidates_are_hedged() -> None:
    # two wrong answers: the count check says hedged; grading alone would say plain wrong
    hedged = _verify(_boxed("6", "7"), "5", max_candidates=1)
    assert (hedged.status, hedged.answer, hedged.detail) == ("wrong", "7", "hedged")
    assert _verify(_boxed("6", "7"), "5", max_candidates=2).detail is None
    # equal after normalisation counts once
    assert _verify(_boxed("5", "05"), "5", max_candidates=1).status == "correct"
    assert _verify(_boxed("5", "5", "5", "5", "5"), "5", max_candidates=1).status == "correct"


def test_answer_depth_limit() -> None:
    # nesting 3 with a limit of 3 is graded; with a limit of 2 it is wrong unparsed
    assert _verify(_boxed("(((2)))+{1}"), "3", max_answer_depth=3).status == "correct"
    deep = _verify(_boxed("(((2)))+1"), "3", max_answer_depth=2)
    assert (deep.status, deep.answer, deep.detail) == ("wrong", "(((2)))+1", "answer_too_deep")
    # integer answers never reach the depth check
    assert _verify(_boxed("3"), "3", max_answer_depth=1).status == "correct"


def test_extra_patterns_only_when_no_box() -> None:
    response = "<think>x</think>The final answer is 5"
    assert _verify(response, "5").detail == "no_boxed_answer"
    found = _verify(response, "5", extra_patterns=(FINAL_ANSWER_PATTERN,))
    assert (found.status, found.answer) == ("correct", "5")
    boxed_first = _verify(
        _boxed("4") + " The final answer is 5", "5", extra_patterns=(FINAL_ANSWER_PATTERN,)
    )
    assert (boxed_first.status, boxed_first.answer) == ("wrong", "4")


def test_verify_many_keeps_order_and_mixes_paths() -> None:
    verifier = Verifier(VerifierConfig(in_process=True))
    pairs = [
        (_boxed("\\frac{1}{2}"), "0.5"),
        ("<think>", "1"),
        (_boxed("2"), "3"),
        (_boxed("\\frac{1}{2}"), "0.5"),
        (_boxed("\\frac{2}{4}"), "0.5"),
    ]
    statuses = [v.status for v in verifier.verify_many(pairs)]
    assert statuses == ["correct", "no_answer", "wrong", "correct", "correct"]
    assert verifier.verify_many([]) == []


def test_grades_are_cached_by_normalised_task() -> None:
    verifier = Verifier(VerifierConfig(in_process=True))
    task = ("\\frac{1}{2}", ("0.5",))
    assert verifier._cache.get(task) is _MISSING
    verifier.verify(_boxed("0.5"), "\\frac{1}{2}")
    assert verifier._cache.get(task) == (True,)
    verifier.clear_cache()
    assert verifier._cache.get(task) is _MISSING


class _GradesAs(Verifier):
    """Verifier double whose grading returns a fixed worker result (a timeout, an error)."""

    def __init__(self, result: object, config: VerifierConfig) -> None:
        super().__init__(config)
        self.result = result
        self.graded = 0

    def _grade(self, tasks):  # type: ignore[no-untyped-def]
        self.graded += len(tasks)
        return [self.result] * len(tasks)


@pytest.mark.parametrize("cache_timeouts", [False, True])
def test_timeouts_are_cached_only_when_asked(cache_timeouts: bool) -> None:
    verifier = _GradesAs(TIMED_OUT, VerifierConfig(in_process=True, cache_timeouts=cache_timeouts))
    first = verifier.verify(_boxed("x^2"), "y")
    assert (first.status, first.answer, first.detail) == ("timeout", "x^2", None)
    assert verifier.verify(_boxed("x^2"), "y").status == "timeout"
    assert verifier.graded == (1 if cache_timeouts else 2)


@pytest.mark.parametrize("cache_timeouts", [False, True])
def test_grading_errors_are_never_cached(cache_timeouts: bool) -> None:
    verifier = _GradesAs(
        "RecursionError", VerifierConfig(in_process=True, cache_timeouts=cache_timeouts)
    )
    result = verifier.verify(_boxed("x^2"), "y")
    assert (result.status, result.detail) == ("wrong", "grading_error:RecursionError")
    verifier.verify(_boxed("x^2"), "y")
    assert verifier.graded == 2


def test_integer_answers_are_graded_without_grading_tasks() -> None:
    verifier = _GradesAs((False,), VerifierConfig(in_process=True))
    assert verifier.verify(_boxed("025"), "25").status == "correct"
    assert verifier.verify(_boxed("-3"), "3").status == "wrong"
    assert verifier.graded == 0


def test_a_grader_that_loses_a_task_is_an_error() -> None:
    class _LosesTasks(Verifier):
        def _grade(self, tasks):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(ValueError):
        _LosesTasks(VerifierConfig(in_process=True)).verify(_boxed("x^2"), "y")


def test_grades_are_cached() -> None:
    verifier = _GradesAs((False,), VerifierConfig(in_process=True))
    assert verifier.verify(_boxed("x^2"), "y").status == "wrong"
    assert verifier.verify(_boxed("x^2"), "y").status == "wrong"
    assert verifier.verify(_boxed("x^3"), "y").status == "wrong"
    assert verifier.graded == 2
    unparsable = _GradesAs(None, VerifierConfig(in_process=True))
    unparsable.verify(_boxed("x^2"), "y")
    assert unparsable.verify(_boxed("x^2"), "y").status == "unparsable_gold"
    assert unparsable.graded == 1
    uncached = _GradesAs((True,), VerifierConfig(in_process=True, cache_size=0))
    uncached.verify(_boxed("x^2"), "y")
    uncached.verify(_boxed("x^2"), "y")
    assert uncached.graded == 2


def test_a_cached_grade_is_reused() -> None:
    verifier = Verifier(VerifierConfig(in_process=True))
    verifier._cache.put(("\\frac{1}{2}", ("0.7",)), (True,))  # a planted (false) grade
    assert verifier.verify(_boxed("0.7"), "\\frac{1}{2}").status == "correct"


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_s": 0.0}, r"timeout_s must be a positive finite number, got 0.0"),
        ({"timeout_s": -1.0}, r"timeout_s must be a positive finite number"),
        ({"timeout_s": math.inf}, r"timeout_s must be a positive finite number, got inf"),
        ({"timeout_s": math.nan}, r"timeout_s must be a positive finite number, got nan"),
        ({"workers": 0}, r"workers must be at least 1, got 0"),
        ({"max_answer_chars": 0}, r"max_answer_chars must be at least 1, got 0"),
        ({"max_answer_depth": 0}, r"max_answer_depth must be at least 1, got 0"),
        ({"max_candidates": 0}, r"max_candidates must be at least 1, got 0"),
        ({"max_response_chars": 0}, r"max_response_chars must be at least 1, got 0"),
        ({"max_gold_chars": 0}, r"max_gold_chars must be at least 1, got 0"),
        ({"cache_size": -1}, r"cache_size must be 0 \(no cache\) or more, got -1"),
        ({"cache_bytes": -1}, r"cache_bytes must be 0 \(no cache\) or more, got -1"),
    ],
)
def test_bad_verifier_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VerifierConfig(**kwargs)


def test_smallest_verifier_settings_are_accepted() -> None:
    config = VerifierConfig(
        timeout_s=1e-3,
        workers=1,
        max_answer_chars=1,
        max_answer_depth=1,
        max_candidates=1,
        max_response_chars=1,
        max_gold_chars=1,
        cache_size=0,
        cache_bytes=0,
    )
    assert config.workers == 1
    default = VerifierConfig()
    assert (default.timeout_s, default.workers, default.max_candidates) == (5.0, None, 4)
    assert (default.max_answer_chars, default.max_answer_depth) == (1000, 8)
    assert STATUSES == ("correct", "wrong", "no_answer", "timeout", "unparsable_gold")


# --- the pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grades", "expected"),
    [
        (TIMED_OUT, ("timeout", None)),
        ("ValueError", ("wrong", "grading_error:ValueError")),
        (None, ("unparsable_gold", None)),
        ((True,), ("correct", None)),
        ((True, True), ("correct", None)),
        ((True, False), ("wrong", "hedged")),
        ((False, True), ("wrong", "hedged")),
        ((False,), ("wrong", None)),
        ((False, False), ("wrong", None)),
    ],
)
def test_verdict_of_grades(grades: object, expected: tuple[str, str | None]) -> None:
    result = _verdict(grades, "ans")
    assert (result.status, result.detail, result.answer) == (*expected, "ans")


def test_is_grade() -> None:
    assert _is_grade((True,)) and _is_grade(None)
    assert not _is_grade(TIMED_OUT) and not _is_grade("KeyError")


@pytest.mark.parametrize(
    ("literal", "canonical"),
    [
        ("-007", "-7"),
        ("-0", "0"),
        ("000", "0"),
        ("0", "0"),
        ("12", "12"),
        ("-12", "-12"),
        ("0012", "12"),
        ("-00", "0"),
    ],
)
def test_canonical_integer(literal: str, canonical: str) -> None:
    assert _canonical_integer(literal) == canonical


@pytest.mark.parametrize(
    ("gold", "candidates", "expected"),
    [
        ("918", ("918",), (True,)),
        ("918", ("0918", "7"), (True, False)),
        ("-5", ("-05", "5"), (True, False)),
        ("0", ("-0", "00"), (True, True)),
        ("1/2", ("0.5",), None),
        ("5", ("5", "5.0"), None),
        ("５", ("5",), None),
        ("5", ("５",), None),
        ("5 ", ("5",), None),
    ],
)
def test_integer_grades(gold: str, candidates: tuple[str, ...], expected: object) -> None:
    assert _integer_grades(gold, candidates) == expected


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("a", 0),
        ("{[()]}", 3),
        ("}}{", 1),
        ("{}{}", 1),
        ("(()", 2),
        ("\\frac{1}{(2+x)^{2}}", 2),
        ("])}((", 2),
        ("[[x]]", 2),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_grade_compares_normalised_answers() -> None:
    assert grade("\\frac{1}{2}", ("0.5", "2")) == (True, False)
    assert grade("3", ()) == ()
    assert grade("", ("1",)) is None  # nothing to parse in the gold answer
    assert grade("3", ("",)) == (False,)  # an empty candidate parses to nothing
    assert parse_gold("3") == parse_gold("3") and len(parse_gold("3")) > 0


# --- normalisation and hedging ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "normal"),
    [
        ("10{,}000", "10000"),
        ("1\\,000", "1000"),
        ("1,234,567", "1234567"),
        ("-1,234.5", "-1234.5"),
        ("1,23", "1,23"),
        ("30^\\circ", "30"),
        ("30^{\\circ}", "30"),
        ("30°", "30"),
        ("17.5\\%", "17.5"),
        ("17.5%", "17.5"),
        ("\\text{(B)}", "B"),
        ("(C)", "C"),
        ("B", "B"),
        ("025", "25"),
        ("-025", "-25"),
        ("000", "0"),
        ("\\$5", "5"),
        ("$5$", "5"),
        ("5\\text{ cm}^2", "5"),
        ("12 inches", "12"),
        ("5\\text{ m}^2\\text{ s}", "5"),
        ("5 \\text{ m}\\,\\text{s}", "5"),
        ("5 cm cm", "5 cm cm"),  # a unit word after a unit word: text, not a unit
        ("123\\,\\text{cm}", "123"),
        ("123\\;\\!\\text{ kg}", "123"),
        ("\\text{cm}", "\\text{cm}"),
        ("\\tfrac{1}{2}", "\\frac{1}{2}"),
        ("\\displaystyle 3", "3"),
        ("{76^\\circ}", "76"),
        ("{ {x} }", "x"),
        ("{a}+{b}", "{a}+{b}"),
        ("  4  .", "4"),
        ("a   b", "a b"),
        ("\\[ 7 \\]", "7"),
        ("\\dfrac{4}{2}", "\\frac{4}{2}"),
        ("2X.", "2X"),
        ("{a\\}b}", "a\\}b"),  # an escaped brace does not close
        ("{\\a}", "\\a"),
        ("X cm", "X cm"),  # a unit after a letter: text, kept
        ("\\text{B}", "B"),
        ("17.5\\% ^\\circ", "17.5"),
    ],
)
def test_normalize_answer(answer: str, normal: str) -> None:
    assert normalize_answer(answer) == normal


@pytest.mark.parametrize(
    ("answer", "parts"),
    [
        ("3, 5", ["3", "5"]),
        ("3; 5", ["3", "5"]),
        ("3 \\text{ or } 5", ["3", "5"]),
        ("3 or 5", ["3", "5"]),
        ("x \\lor y", ["x", "y"]),
        ("(1, 2)", ["(1, 2)"]),
        ("[1, 2), 3", ["[1, 2)", "3"]),
        ("\\{1, 2\\}", ["\\{1, 2\\}"]),
        ("a,,b", ["a", "b"]),
        ("or", []),
        (")), 1", ["))", "1"]),
        ("((1), 2)", ["((1), 2)"]),
        ("((1, 2), 3), 4", ["((1, 2), 3)", "4"]),
        ("AXB", ["AXB"]),
    ],
)
def test_top_level_parts(answer: str, parts: list[str]) -> None:
    assert top_level_parts(answer) == parts


def test_is_hedged_list() -> None:
    assert is_hedged_list("3 \\text{ or } 5", "5")
    assert not is_hedged_list("3, 5", "3, 5")
    assert not is_hedged_list("5", "5")
    assert not is_hedged_list("(1, 2)", "(1, 2)")
    assert is_hedged_list("1, 2", "")  # an empty gold is a single (empty) answer


# --- the result cache -------------------------------------------------------------------------


def test_result_cache_is_an_lru_bounded_in_entries() -> None:
    cache = _ResultCache(size=2, max_bytes=10**6)
    a, b, c = ("1", ("a",)), ("1", ("b",)), ("1", ("c",))
    cache.put(a, (True,))
    cache.put(b, (False,))
    assert cache.get(a) == (True,)  # a is now the most recent
    cache.put(c, None)
    assert cache.get(b) is _MISSING
    assert cache.get(a) == (True,) and cache.get(c) is None
    assert cache.bytes == _task_bytes(a) + _task_bytes(c)
    cache.put(a, (False,))  # replacing does not count twice
    assert cache.get(a) == (False,) and cache.bytes == _task_bytes(a) + _task_bytes(c)
    cache.clear()
    assert cache.get(a) is _MISSING and cache.bytes == 0


def test_result_cache_is_bounded_in_bytes() -> None:
    a, b = ("1", ("a",)), ("1", ("b",))
    cost = _task_bytes(a)
    assert cost > 256  # strings plus the fixed overhead
    cache = _ResultCache(size=10, max_bytes=cost)
    cache.put(a, (True,))
    assert cache.get(a) == (True,) and cache.bytes == cost
    cache.put(b, (True,))
    assert cache.get(a) is _MISSING and cache.get(b) == (True,) and cache.bytes == cost
    small = _ResultCache(size=10, max_bytes=cost - 1)
    small.put(a, (True,))
    assert small.get(a) is _MISSING and small.bytes == 0
    off = _ResultCache(size=0, max_bytes=10**6)
    off.put(a, (True,))
    assert off.get(a) is _MISSING
    one = _ResultCache(size=1, max_bytes=10**6)
    one.put(a, (True,))
    assert one.get(a) == (True,)


def test_one_shared_verifier_per_config() -> None:
    from rewards.verification import get_verifier

    custom = VerifierConfig(timeout_s=2.5, workers=1)
    shared = get_verifier(custom)
    assert shared.config == custom
    assert get_verifier(VerifierConfig(timeout_s=2.5, workers=1)) is shared
    default = get_verifier()
    assert default.config == VerifierConfig() and default is not shared
    assert get_verifier(None) is default and get_verifier(VerifierConfig()) is default


# --- the in-process time bound (SIGALRM) ------------------------------------------------------


@contextlib.contextmanager
def _own_alarm(delay: float, interval: float = 0.0) -> Iterator[list[int]]:
    """Arm ``ITIMER_REAL`` with a recording handler (pytest-timeout's alarm is set aside and
    restored); yields the list of signals received."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, delay, interval)
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)


def _nested_fraction(depth: int) -> str:
    return "\\frac{1}{" * depth + "2" + "}" * depth


def test_in_process_grading_is_bounded_in_the_main_thread() -> None:
    # math-verify needs seconds for a fraction nested 16 deep; the bound is 0.3 s
    with _own_alarm(0.0) as fired:
        assert _grade_in_process(("1", (_nested_fraction(16),)), 0.3) == TIMED_OUT
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # nothing left armed
        time.sleep(0.05)
        assert fired == []


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_swallowed_alarm_is_followed_by_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """An alarm raised where Python swallows exceptions (a gc callback, a ``__del__``; here a
    grader that catches it once) must not let grading run unbounded: the alarm repeats."""
    import rewards._grading as grading

    def swallows_once(*task: object) -> tuple[bool]:
        with contextlib.suppress(BaseException):
            _spin(2.0)
        _spin(5.0)
        return (False,)

    monkeypatch.setattr(grading, "grade", swallows_once)
    with _own_alarm(0.0):
        start = time.monotonic()
        assert _grade_in_process(("1", ("2",)), 0.2) == TIMED_OUT
        assert time.monotonic() - start < 1.5  # not the 5 s the grader would take
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_grade_that_outlives_its_bound_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewards._grading as grading

    def swallows_every_alarm(*task: object) -> tuple[bool]:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            with contextlib.suppress(BaseException):
                _spin(end - time.monotonic())
        return (True,)

    monkeypatch.setattr(grading, "grade", swallows_every_alarm)
    with _own_alarm(0.0):
        assert _grade_in_process(("1", ("1",)), 0.2) == TIMED_OUT  # not a late (True,)


def test_in_process_grading_without_an_outer_alarm_leaves_none() -> None:
    with _own_alarm(0.0) as fired:
        assert _grade_in_process(("\\frac{1}{2}", ("0.5",)), 5.0) == (True,)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        time.sleep(0.05)
        assert fired == []


def test_an_outer_alarm_is_rearmed_with_its_remaining_time() -> None:
    with _own_alarm(0.9) as fired:
        assert _grade_in_process(("\\frac{1}{2}", ("0.5",)), 5.0) == (True,)
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert fired or 0.0 < delay <= 0.9
    with _own_alarm(60.0, 7.0):
        assert _grade_in_process(("\\frac{1}{2}", ("0.5",)), 5.0) == (True,)
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        # what is left of 60 s after a grading of milliseconds (not a fresh 1 ms alarm)
        assert 50.0 < delay <= 60.0 and interval == 7.0


def test_in_process_grading_outside_the_main_thread() -> None:
    results: list[object] = []

    def work() -> None:
        try:
            results.append(_grade_in_process(("\\frac{1}{2}", ("0.5", "2")), 5.0))
        except Exception as error:  # reported below
            results.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert results == [(True, False)]


def test_silencing_math_verify_touches_only_its_loggers() -> None:
    names = ("math_verify", "latex2sympy2_extended")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    try:
        for logger in loggers:  # start from a fresh state, whatever ran before in this process
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.handlers = []
        silence_math_verify()
        silence_math_verify()
        for logger in loggers:
            assert logger.level == logging.CRITICAL + 1
            assert logger.propagate is False
            assert len(logger.handlers) == 1
            assert isinstance(logger.handlers[0], logging.NullHandler)
        assert root.level == root_level and root.handlers == root_handlers
    finally:
        for logger, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers = handlers


def test_nesting_depth_counts_only_brackets() -> None:
    assert nesting_depth("XX") == 0
    assert nesting_depth("{X{") == 2
    assert nesting_depth("{{}{{") == 3


def test_a_task_too_big_for_the_cache_evicts_nothing() -> None:
    small = ("1", ("a",))
    cache = _ResultCache(size=10, max_bytes=2 * _task_bytes(small))
    cache.put(small, (True,))
    cache.put(("g" * 1000, ("a",)), (False,))  # its gold alone is larger than the bound
    assert cache.get(small) == (True,) and cache.bytes == _task_bytes(small)
    assert cache.get(("g" * 1000, ("a",))) is _MISSING
    assert _task_bytes(("g" * 1000, ())) > 1000 + 256


# --- the worker pool's wiring (no process is started) -----------------------------------------


def test_the_worker_pool_is_made_once_per_process_and_closed() -> None:
    verifier = Verifier(VerifierConfig(workers=3))
    pool = verifier._worker_pool()  # workers start on demand: none is started here
    assert pool.size == 3 and pool.pid == os.getpid()
    assert verifier._worker_pool() is pool
    verifier.close()
    assert verifier._pool is None
    verifier.close()  # closing twice is fine
    again = verifier._worker_pool()
    assert again is not pool and again.size == 3
    verifier.close()


@pytest.mark.parametrize(("cpus", "size"), [(8, 2), (2, 2), (1, 1), (None, 1)])
def test_the_default_pool_has_two_workers_at_most(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, size: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    verifier = Verifier()
    assert verifier._worker_pool().size == size
    verifier.close()


class _FakePool:
    """Worker-pool double: records ``run_many`` calls and grades every candidate correct."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[object], float]] = []

    def run_many(self, tasks: list[object], timeout_s: float) -> list[object]:
        self.calls.append((list(tasks), timeout_s))
        return [(True,) * len(task[1]) for task in tasks]  # type: ignore[index]


def test_tasks_go_to_the_worker_pool_with_the_time_bound() -> None:
    pool = _FakePool()

    class _WithFakePool(Verifier):
        def _worker_pool(self):  # type: ignore[no-untyped-def]
            return pool

    verifier = _WithFakePool(VerifierConfig(timeout_s=2.5, in_process=False))
    result = verifier.verify(_boxed("x^2", "x^{2}"), "y")
    assert result.status == "correct"
    assert pool.calls == [([("y", ("x^2", "x^{2}"))], 2.5)]
    assert verifier.verify_many([]) == [] and len(pool.calls) == 1  # nothing to grade


def test_the_module_level_functions_use_the_shared_default_verifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rewards import verification

    pool = _FakePool()

    class _WithFakePool(Verifier):
        def _worker_pool(self):  # type: ignore[no-untyped-def]
            return pool

    monkeypatch.setitem(verification._shared, VerifierConfig(), _WithFakePool())
    result = verification.verify(_boxed("x^2"), "y")
    assert (result.status, result.answer) == ("correct", "x^2")
    many = verification.verify_many([(_boxed("x^3"), "z"), ("<think>", "z")])
    assert [v.status for v in many] == ["correct", "no_answer"]
    assert pool.calls == [([("y", ("x^2",))], 5.0), ([("z", ("x^3",))], 5.0)]
