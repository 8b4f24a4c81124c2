"""``rewards.verify``: equivalence table, anti-hedging, timeouts, threads, worker processes."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import rewards
from rewards import Verification, Verifier, VerifierConfig, verify
from rewards.normalize import normalize_answer
from rewards.verification import nesting_depth
from tests.shared_data import DATA_DIR, require_shared_data

TIMEOUT_S = 1.0


def respond(answer: str) -> str:
    """A response that ends thinking and boxes ``answer``."""
    return f"<think>Let me work it out.</think>\nThe answer is $\\boxed{{{answer}}}$."


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    """A verifier with a short timeout, shared by the tests of this module."""
    instance = Verifier(VerifierConfig(timeout_s=TIMEOUT_S, workers=2))
    yield instance
    instance.close()


# (response, gold, expected status, expected detail)
VERIFICATION_CASES = [
    # fraction vs decimal, both directions
    (respond("\\frac{1}{2}"), "0.5", "correct", None),
    (respond("0.5"), "\\frac12", "correct", None),
    # \dfrac and \tfrac are fractions
    (respond("\\dfrac{3}{4}"), "\\frac{3}{4}", "correct", None),
    (respond("\\tfrac{3}{4}"), "0.75", "correct", None),
    # a different fraction is wrong
    (respond("\\frac{2}{3}"), "\\frac{3}{4}", "wrong", None),
    # thousands separators: LaTeX {,}, plain comma, thin space
    (respond("10{,}000"), "10000", "correct", None),
    (respond("10,000"), "10000", "correct", None),
    (respond("1\\,000"), "1000", "correct", None),
    # degrees on either side
    (respond("30^\\circ"), "30", "correct", None),
    (respond("30"), "30^{\\circ}", "correct", None),
    (respond("{76^\\circ}"), "76^\\circ", "correct", None),
    # percent
    (respond("17.5\\%"), "17.5", "correct", None),
    # units text after the value
    (respond("5\\text{ cm}"), "5", "correct", None),
    (respond("5.4 \\text{ cents}"), "5.4", "correct", None),
    (respond("12 inches"), "12", "correct", None),
    # AIME leading zeros
    (respond("25"), "025", "correct", None),
    # intervals: same and different closedness
    (respond("[1, 2)"), "[1,2)", "correct", None),
    (respond("(1, 2)"), "[1,2)", "wrong", None),
    # sets are unordered, tuples are ordered
    (respond("\\{2, 1\\}"), "\\{1,2\\}", "correct", None),
    (respond("(2, 1)"), "(1, 2)", "wrong", None),
    # a list of several answers where several are asked for
    (respond("2, 1"), "1,2", "correct", None),
    # multiple-choice letters, wrapped or not
    (respond("\\text{(A)}"), "A", "correct", None),
    (respond("(C)"), "\\text{(C)}", "correct", None),
    (respond("B"), "\\text{(C)}", "wrong", None),
    # \pm is a pair of values, not one of them
    (respond("\\pm 3"), "\\pm 3", "correct", None),
    (respond("3"), "\\pm 3", "wrong", None),
    # symbolic expressions compared up to algebra
    (respond("(x+1)^2"), "x^2+2x+1", "correct", None),
    (respond("\\sqrt{8}"), "2\\sqrt{2}", "correct", None),
    (respond("x^2"), "x^3", "wrong", None),
    # nested braces inside the box
    (respond("\\frac{1}{1+\\frac{1}{2}}"), "\\frac{2}{3}", "correct", None),
    # text answers
    (respond("\\text{Evelyn}"), "\\text{Evelyn}", "correct", None),
    # no box at all
    ("<think>x</think>The answer is 4.", "4", "no_answer", "no_boxed_answer"),
    # the answer only inside the thinking
    ("<think>so \\boxed{4}</think>Not sure.", "4", "no_answer", "no_boxed_answer"),
    # thinking never ended
    ("<think>so \\boxed{4}", "4", "no_answer", "unfinished_thinking"),
    # the answer is in the prompt part only (not part of the response): nothing to grade
    ("</think>I cannot tell.", "4", "no_answer", "no_boxed_answer"),
    # hedging: several different boxed answers, one of them right
    ("</think>\\boxed{3} or maybe \\boxed{5}", "5", "wrong", "hedged"),
    # hedging: a list of candidates inside one box
    (respond("3 \\text{ or } 5"), "5", "wrong", "hedged"),
    (respond("3, 5"), "3", "wrong", "hedged"),
    # repeating an equivalent answer is not hedging
    ("</think>\\boxed{\\frac{1}{2}}, i.e. \\boxed{0.5}", "0.5", "correct", None),
    # several different answers, all wrong
    ("</think>\\boxed{1} \\boxed{2}", "5", "wrong", None),
    # an empty gold answer cannot be graded
    (respond("1"), " ", "unparsable_gold", None),
]


@pytest.mark.parametrize(("response", "gold", "status", "detail"), VERIFICATION_CASES)
def test_verification_table(
    verifier: Verifier, response: str, gold: str, status: str, detail: str | None
) -> None:
    result = verifier.verify(response, gold)
    assert (result.status, result.detail) == (status, detail)
    assert result.correct is (status == "correct")


def test_verify_many_matches_verify(verifier: Verifier) -> None:
    pairs = [(response, gold) for response, gold, _, _ in VERIFICATION_CASES]
    expected = [status for _, _, status, _ in VERIFICATION_CASES]
    assert [v.status for v in verifier.verify_many(pairs)] == expected


def test_module_level_verify_and_answer_field() -> None:
    result = verify(respond("\\frac{1}{2}"), "0.5")
    assert result == Verification("correct", answer="\\frac{1}{2}")
    assert pickle.loads(pickle.dumps(result)) == result


def test_extra_patterns_config() -> None:
    config = VerifierConfig(extra_patterns=(rewards.extraction.FINAL_ANSWER_PATTERN,), workers=1)
    patterned = Verifier(config)
    try:
        assert patterned.verify("</think>Final answer: 12", "12").status == "correct"
        assert verify("</think>Final answer: 12", "12").status == "no_answer"
    finally:
        patterned.close()


def test_in_process_backend_agrees(verifier: Verifier) -> None:
    in_process = Verifier(VerifierConfig(in_process=True, timeout_s=TIMEOUT_S))
    pairs = [(response, gold) for response, gold, _, _ in VERIFICATION_CASES[:12]]
    assert in_process.verify_many(pairs) == verifier.verify_many(pairs)


def test_results_are_cached_without_workers() -> None:
    cached = Verifier(VerifierConfig(workers=1, cache_size=2))
    first = cached.verify(respond("\\frac{6}{3}"), "2")
    cached.close()
    assert cached.verify(respond("\\frac{6}{3}"), "2") == first  # answered from the cache
    assert cached._pool is None  # no worker was started for it
    fillers = [(respond(f"\\frac{{{i}}}{{7}}"), "2") for i in range(2)]
    cached.verify_many(fillers)  # graded by workers, evicts the first entry
    cached.close()
    assert cached.verify(respond("\\frac{6}{3}"), "2") == first
    assert cached._pool is not None  # graded again
    cached.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"timeout_s": 0.0},
        {"timeout_s": float("nan")},
        {"timeout_s": float("inf")},
        {"workers": 0},
        {"max_candidates": 0},
        {"max_answer_depth": 0},
        {"max_response_chars": 0},
        {"max_gold_chars": 0},
        {"cache_size": -1},
        {"cache_bytes": -1},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        VerifierConfig(**bad)  # type: ignore[arg-type]


def test_result_cache_is_capped_in_bytes() -> None:
    cache = rewards.verification._ResultCache(size=100, max_bytes=4096)
    for i in range(8):
        cache.put((f"{i}" * 1000, ("1",)), (True,))  # each entry costs over 1 KB
    assert 0 < len(cache._items) <= 3 and cache.bytes <= 4096
    assert cache.get(("7" * 1000, ("1",))) == (True,)  # the newest entries stay
    cache.put(("x" * 10_000, ("1",)), (True,))  # larger than the whole cache: not stored
    assert cache.get(("x" * 10_000, ("1",))) is rewards.verification._MISSING
    without = Verifier(VerifierConfig(workers=1, cache_size=0))
    try:
        assert without.verify(respond("0.5"), "\\frac{1}{2}").correct
        assert not without._cache._items
    finally:
        without.close()


@pytest.mark.parametrize(
    ("response", "gold", "config", "detail"),
    [
        ("</think>" + "\\boxed{1}" * 200, "1", {"max_response_chars": 1000}, "response_too_long"),
        (respond("1"), "1" * 101, {"max_gold_chars": 100}, "gold_too_long"),
        (respond("(" * 9 + "x" + ")" * 9), "x", {}, "answer_too_deep"),
        (respond("x" * 1001), "x", {}, "answer_too_long"),
    ],
)
def test_documented_caps(response: str, gold: str, config: dict[str, int], detail: str) -> None:
    capped = Verifier(VerifierConfig(workers=1, **config))  # type: ignore[arg-type]
    try:
        result = capped.verify(response, gold)
        assert result.detail == detail
        assert not result.correct
        assert capped._pool is None  # decided without a worker
    finally:
        capped.close()


def test_thinking_is_never_scanned_so_it_may_exceed_the_cap() -> None:
    capped = Verifier(VerifierConfig(workers=1, max_response_chars=1000))
    try:
        assert capped.verify("<think>" + "a" * 100_000 + "</think>\\boxed{3}", "3").correct
    finally:
        capped.close()


# --- adversarial inputs -----------------------------------------------------------------------

NESTED_5000 = "1+" * 1 + "\\frac{1}{" * 500 + "2" + "}" * 500  # about 5,000 characters

ADVERSARIAL_CASES = [
    # a power tower: math-verify does not return from this on its own
    (respond("9^{9^{9^9}}"), {"timeout"}),
    # a 5,000-character nested expression: over the answer cap, rejected without parsing
    (respond(NESTED_5000), {"wrong"}),
    # 1,000 distinct boxes: hedging, rejected without parsing
    ("</think>" + " ".join(f"\\boxed{{{i}}}" for i in range(1000)), {"wrong"}),
    # 1,000 empty boxes: no answer
    ("</think>" + "\\boxed{}" * 1000, {"no_answer"}),
    # a huge factorial: evaluated or timed out, never hangs
    (respond("100000!"), {"wrong", "timeout"}),
]


@pytest.mark.parametrize(("response", "statuses"), ADVERSARIAL_CASES)
def test_adversarial_inputs_return_in_time(
    verifier: Verifier, response: str, statuses: set[str]
) -> None:
    start = time.monotonic()
    result = verifier.verify(response, "5")
    assert time.monotonic() - start < TIMEOUT_S + 1.0
    assert result.status in statuses
    assert verifier.verify(respond("\\frac{10}{2}"), "5").status == "correct"  # still working


def test_hanging_answers_under_a_raised_cap_are_bounded() -> None:
    uncapped = Verifier(VerifierConfig(timeout_s=TIMEOUT_S, workers=2, max_answer_chars=10_000))
    try:
        warm = [(respond(f"\\frac{{{5 * i}}}{{{i}}}"), "5") for i in (1, 2)]
        assert all(r.correct for r in uncapped.verify_many(warm))  # both workers warm
        for answer in (NESTED_5000, "2^{2^{2^{2^{2^{2}}}}}"):
            start = time.monotonic()
            result = uncapped.verify(respond(answer), "5")
            assert time.monotonic() - start < TIMEOUT_S + 1.0, result
        assert uncapped.verify(respond("\\frac{15}{3}"), "5").status == "correct"
    finally:
        uncapped.close()


# --- concurrency ------------------------------------------------------------------------------

CONCURRENCY_PAIRS = [(response, gold) for response, gold, _, _ in VERIFICATION_CASES[:24]]


def test_eight_threads_agree_with_sequential_calls(verifier: Verifier) -> None:
    expected = [verifier.verify(r, g) for r, g in CONCURRENCY_PAIRS]
    threaded = Verifier(VerifierConfig(timeout_s=TIMEOUT_S, workers=2))  # a cold cache
    try:
        with ThreadPoolExecutor(max_workers=8) as executor:
            got = list(executor.map(lambda pair: threaded.verify(*pair), CONCURRENCY_PAIRS))
        assert got == expected
    finally:
        threaded.close()


def _verify_pair(pair: tuple[str, str]) -> Verification:
    return rewards.verify(*pair)


def test_calls_from_daemonic_pool_workers_agree() -> None:
    expected = [verify(r, g) for r, g in CONCURRENCY_PAIRS]
    with multiprocessing.Pool(1) as pool:  # its worker is daemonic: it cannot use multiprocessing
        got = pool.map(_verify_pair, CONCURRENCY_PAIRS)
    assert got == expected


# --- agreement on the shared benchmark data ---------------------------------------------------


def _gold_answers() -> list[tuple[str, str]]:
    rows = []
    for path in sorted(DATA_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            rows += [(path.stem, json.loads(line)["answer"]) for line in handle if line.strip()]
    return rows


def _agreement(rows: list[tuple[str, str]]) -> tuple[float, list[tuple[str, str, str]]]:
    results = rewards.verify_many([(f"</think>\n\\boxed{{{gold}}}", gold) for _, gold in rows])
    misses = [(name, gold, str(r.status)) for (name, gold), r in zip(rows, results, strict=True)]
    exceptions = [miss for miss, r in zip(misses, results, strict=True) if not r.correct]
    return 1.0 - len(exceptions) / len(rows), exceptions


@pytest.fixture(scope="module")
def gold_rows() -> list[tuple[str, str]]:
    require_shared_data(DATA_DIR)
    return _gold_answers()


def test_gold_answers_verify_against_themselves_subset(gold_rows: list[tuple[str, str]]) -> None:
    rng = np.random.default_rng(0)
    subset = [gold_rows[i] for i in rng.choice(len(gold_rows), size=60, replace=False)]
    agreement, exceptions = _agreement(subset)
    print(f"agreement on a seeded subset of 60 gold answers: {agreement:.2%}; {exceptions}")
    assert agreement >= 0.995, exceptions


def test_gold_answers_nest_well_within_the_depth_cap(gold_rows: list[tuple[str, str]]) -> None:
    depths = [nesting_depth(normalize_answer(gold)) for _, gold in gold_rows]
    print(f"deepest nesting of {len(depths)} gold answers: {max(depths)}")
    assert max(depths) * 2 <= VerifierConfig().max_answer_depth


@pytest.mark.slow
def test_gold_answers_verify_against_themselves_all(gold_rows: list[tuple[str, str]]) -> None:
    agreement, exceptions = _agreement(gold_rows)
    print(f"agreement on all {len(gold_rows)} gold answers: {agreement:.2%}; {exceptions}")
    assert agreement >= 0.995, exceptions


def test_integer_answers_are_graded_without_workers() -> None:
    integers = Verifier(VerifierConfig(workers=1))
    try:
        results = integers.verify_many(
            [(respond("918"), "918"), (respond("0918"), "918"), (respond("928"), "918")]
        )
        assert [r.status for r in results] == ["correct", "correct", "wrong"]
        hedged = integers.verify("</think> \\boxed{918} or \\boxed{928}", "918")
        assert hedged.status == "wrong" and hedged.detail == "hedged"
        assert integers._pool is None  # math-verify was never needed
        assert integers.verify(respond("\\frac{1836}{2}"), "918").correct  # a worker grades this
        assert integers._pool is not None
    finally:
        integers.close()


def test_integer_shortcut_handles_any_length() -> None:
    long_integers = Verifier(VerifierConfig(workers=1, max_answer_chars=20_000))
    try:
        gold = "9" * 5000  # over Python's 4,300-digit int-str conversion limit
        assert long_integers.verify(respond("0" + gold), gold).correct
        assert long_integers.verify(respond("7"), gold).status == "wrong"
        assert long_integers.verify(respond("-" + gold), gold).status == "wrong"
        assert long_integers.verify(respond("-0"), "0").correct
        assert long_integers._pool is None
    finally:
        long_integers.close()


def test_unicode_digits_go_to_math_verify(verifier: Verifier) -> None:
    # the integer shortcut reads ASCII digits only, so both paths give math-verify's verdict
    for digit in ("５", "٥"):
        in_process = rewards.verification._integer_grades("5", (digit,))
        assert in_process is None
        assert verifier.verify(respond(digit), "5").status == "wrong"


def test_timeouts_are_cached_when_asked() -> None:
    remembering = Verifier(VerifierConfig(workers=1, timeout_s=0.5, cache_timeouts=True))
    try:
        tower = respond("7^{7^{7^{7}}}")
        assert remembering.verify(tower, "5").status == "timeout"
        start = time.monotonic()
        assert remembering.verify(tower, "5").status == "timeout"
        assert time.monotonic() - start < 0.1  # answered from the cache, no worker involved
    finally:
        remembering.close()
