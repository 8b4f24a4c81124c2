"""The standing attack suite of the verifier: every adversarial input answers an allowed status
within the time bound, never raises, never earns unwarranted credit, and leaves the verifier
working. Property tests assert the time bound of the parsing done in the calling process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import Verifier, VerifierConfig
from rewards.extraction import ANSWER_IS_PATTERN, FINAL_ANSWER_PATTERN, final_answers
from rewards.normalize import is_hedged_list, normalize_answer
from tests.attacks.verifier_catalogue import PWN_MARKER, Attack, Tally, catalogue, run_attack

TIMEOUT_S = 1.0
#: The per-attack bound: the grading timeout plus slack for a loaded 2-core machine.
BOUND_S = TIMEOUT_S + 2.0
ATTACKS = catalogue()


@pytest.fixture(scope="module")
def verifiers() -> Iterator[dict[bool, Verifier]]:
    """A plain verifier and one with the shipped extra answer patterns, both warmed up."""
    plain = Verifier(VerifierConfig(timeout_s=TIMEOUT_S, workers=2))
    patterned = Verifier(
        VerifierConfig(
            timeout_s=TIMEOUT_S, workers=1, extra_patterns=(FINAL_ANSWER_PATTERN, ANSWER_IS_PATTERN)
        )
    )
    plain.verify_many(
        [("</think>\\boxed{\\frac{4}{2}}", "2"), ("</think>\\boxed{\\frac{6}{2}}", "3")]
    )
    yield {False: plain, True: patterned}
    plain.close()
    patterned.close()


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_is_answered_in_time(verifiers: dict[bool, Verifier], attack: Attack) -> None:
    result = run_attack(verifiers[attack.patterns], attack)
    assert not result.crashed, result.error
    assert result.status in attack.statuses, result
    assert result.seconds <= BOUND_S, result
    assert result.still_works, "the verifier no longer grades ordinary responses"
    assert not os.path.exists(PWN_MARKER)


def test_the_catalogue_covers_the_issue_list() -> None:
    names = " ".join(attack.name for attack in ATTACKS)
    for topic in (
        "tower",
        "100000!",
        "nested",
        "boxes",
        "unclosed",
        "fullwidth",
        "NUL",
        "surrogate",
        "10 MB",
        "2 MB gold",
        "\\write18",
        "\\def",
        "text or",
    ):
        assert topic in names, topic
    assert len(ATTACKS) >= 60


# --- properties: parsing in the calling process is linear and bounded -------------------------

CHUNKS = [
    "\\boxed{",
    "\\boxed",
    "\\fbox{",
    "{",
    "}",
    "\\{",
    "\\}",
    "\\",
    " ",
    "  ",
    "\n",
    "<think>",
    "</think>",
    "$",
    "^",
    "^{\\circ}",
    "\\%",
    "\\text{ cm}",
    " cm",
    "(",
    ")",
    "[",
    ",",
    " or ",
    "0",
    "5",
    "12",
    "\\frac{1}{2}",
    "final answer",
    "answer",
    ":",
    "=",
    "is",
    " is ",
    "\t",
    "x",
    "\\,",
    "{,}",
]
SHIPPED_PATTERNS = [FINAL_ANSWER_PATTERN, ANSWER_IS_PATTERN]
"""Every extra answer pattern the project ships (they run in the calling process)."""
ADVERSARIAL_CHUNK = st.lists(st.sampled_from(CHUNKS), min_size=1, max_size=12).map("".join)


def _parse_like_the_verifier(text: str) -> None:
    """The parent-side work of ``verify``: extraction, then normalising and hedging checks."""
    answers = final_answers(text, SHIPPED_PATTERNS) or []
    for answer in dict.fromkeys(answers):
        normalize_answer(answer)
        is_hedged_list(answer, "5")


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(ADVERSARIAL_CHUNK, st.integers(min_value=1_000, max_value=20_000))
def test_parsing_a_repeated_adversarial_chunk_is_fast(chunk: str, repeats: int) -> None:
    text = (chunk * repeats)[:200_000]
    start = time.perf_counter()
    _parse_like_the_verifier(text)
    normalize_answer(text[:100_000])  # as a gold answer (VerifierConfig.max_gold_chars)
    assert time.perf_counter() - start < 2.0, (chunk, len(text))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(ADVERSARIAL_CHUNK, st.integers(min_value=100, max_value=20_000), ADVERSARIAL_CHUNK)
def test_normalising_padded_answers_is_fast(head: str, pad: int, tail: str) -> None:
    text = head + " " * pad + tail  # the shape that made the old patterns quadratic
    start = time.perf_counter()
    normalize_answer(text)
    is_hedged_list(text, "5")
    final_answers("</think>final answer: " + text, [FINAL_ANSWER_PATTERN])
    final_answers("</think>the answer is " + text, [ANSWER_IS_PATTERN])
    final_answers("</think>answer" + text, [ANSWER_IS_PATTERN])
    assert time.perf_counter() - start < 0.5, (head, pad, tail)


def test_parsing_time_grows_linearly() -> None:
    def seconds(size: int) -> float:
        text = "</think>" + "\\boxed{1} \\boxed{ 2 }" * (size // 20)
        start = time.perf_counter()
        _parse_like_the_verifier(text)
        normalize_answer("5" + " " * size + "y")
        return time.perf_counter() - start

    small, large = seconds(100_000), seconds(800_000)
    assert large < 8 * small * 3 + 0.05, (small, large)  # linear: x8 input, well under x64


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(ADVERSARIAL_CHUNK, st.integers(min_value=10_000, max_value=200_000))
def test_parsing_a_megabyte_of_adversarial_text_is_fast(chunk: str, repeats: int) -> None:
    text = (chunk * repeats)[:1_000_000]  # VerifierConfig.max_response_chars
    start = time.perf_counter()
    _parse_like_the_verifier(text)
    normalize_answer(text[:100_000])
    assert time.perf_counter() - start < 5.0, (chunk, len(text))


@pytest.mark.slow
def test_attack_suite_summary(verifiers: dict[bool, Verifier]) -> None:
    """Every attack twice (cold cache, then warm), with the counts printed for the record."""
    tally = Tally(bound_s=BOUND_S)
    for _ in range(2):
        for verifier in verifiers.values():
            verifier.clear_cache()
        for attack in ATTACKS:
            tally.add(run_attack(verifiers[attack.patterns], attack))
    print("\n" + tally.report())
    counts = tally.counts
    assert counts["crashes"] == 0 and counts["silent_successes"] == 0, tally.report()
    assert counts["unexpected_status"] == 0 and counts["broken_afterwards"] == 0, tally.report()
    assert counts["time_bound_held"] == counts["tried"], tally.report()
