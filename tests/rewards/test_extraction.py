"""Final-answer extraction and normalisation: tables of cases plus property-based checks."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.extraction import FINAL_ANSWER_PATTERN, answer_region, final_answers
from rewards.normalize import is_hedged_list, normalize_answer, top_level_parts

EXTRACTION_CASES = [
    # plain box after thinking
    ("<think>hmm</think>So \\boxed{42}.", ["42"]),
    # nested braces are matched, not cut at the first }
    ("</think>\\boxed{\\frac{1}{\\sqrt{2}}}", ["\\frac{1}{\\sqrt{2}}"]),
    # escaped braces of a set are not structural
    ("</think>\\boxed{\\{1, 2\\}}", ["\\{1, 2\\}"]),
    # \boxed followed by a single token, and \fbox
    ("</think>\\boxed 7 and then \\fbox{8}", ["7", "8"]),
    # a box only inside the thinking never counts
    ("<think>it is \\boxed{3}</think>I give up.", []),
    # thinking never closed: no answer at all (None), even with a box
    ("<think>it is \\boxed{3}", None),
    # no think tags at all: the whole response is graded
    ("The answer is \\boxed{5}.", ["5"]),
    # the last </think> ends the thinking
    ("<think>a</think>\\boxed{1}</think>\\boxed{2}", ["2"]),
    # empty and unclosed boxes are skipped
    ("</think>\\boxed{} \\boxed{4} \\boxed{5", ["4"]),
    # a command that only starts with "boxed" is not a box
    ("</think>\\boxedx{3}", []),
    # surrounding whitespace inside the box is stripped
    ("</think>\\boxed{  12 }", ["12"]),
    # \boxed with a one-token argument and no space, as TeX allows
    ("</think>\\boxed5 and \\boxed-3.", ["5", "-3."]),
]


@pytest.mark.parametrize(("response", "expected"), EXTRACTION_CASES)
def test_final_answers(response: str, expected: list[str] | None) -> None:
    assert final_answers(response) == expected


def test_extra_patterns_only_when_no_box() -> None:
    text = "</think>Final answer: 12"
    assert final_answers(text) == []
    assert final_answers(text, [FINAL_ANSWER_PATTERN]) == ["12"]
    assert final_answers(text + " \\boxed{13}", [FINAL_ANSWER_PATTERN]) == ["13"]
    # a pattern inside the thinking does not count either
    assert final_answers("<think>Final answer: 3</think>", [FINAL_ANSWER_PATTERN]) == []


def test_final_answer_pattern_takes_the_rest_of_the_line() -> None:
    text = "</think>So the final answer is $\\frac{1}{2}$.\nFINAL ANSWER: 7"
    assert final_answers(text, [FINAL_ANSWER_PATTERN]) == ["$\\frac{1}{2}$.", "7"]
    assert normalize_answer("$\\frac{1}{2}$.") == "\\frac{1}{2}"  # delimiters go in normalisation


def test_answer_region() -> None:
    assert answer_region("<think>x</think>y") == "y"
    assert answer_region("<think>x") is None
    assert answer_region("plain") == "plain"


NORMALIZATION_CASES = [
    ("10{,}000", "10000"),  # LaTeX thousands separator
    ("1\\,000", "1000"),  # thin-space thousands separator
    ("1,234,567", "1234567"),  # plain thousands separators (the whole answer is one number)
    ("30^\\circ", "30"),  # degrees
    ("30^{\\circ}", "30"),  # degrees, braced
    ("17.5\\%", "17.5"),  # percent
    ("\\text{(A)}", "A"),  # multiple-choice letter
    ("(C)", "C"),  # multiple-choice letter in parentheses
    ("5\\text{ cm}^2", "5"),  # trailing unit text with an exponent
    ("12 inches", "12"),  # trailing plain unit word
    ("\\$5.00", "5.00"),  # dollar sign
    ("025", "25"),  # AIME leading zeros
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),  # \dfrac
    ("$\\tfrac{1}{2}$", "\\frac{1}{2}"),  # \tfrac and math delimiters
    ("\\text{Evelyn}", "\\text{Evelyn}"),  # an answer that is only text keeps its text
    ("(1, 2)", "(1, 2)"),  # a tuple is not a thousands number
    ("2x", "2x"),  # a variable is not a unit
    ("{76^\\circ}", "76"),  # redundant outer braces
    ("{76}^\\circ", "76"),  # braces left alone once the degree sign is gone
    ("{1}+{2}", "{1}+{2}"),  # braces that are not one outer group stay
    ("{{ {7} }}", "7"),  # nested outer braces, whitespace between them
    ("5\\text{ m}^2\\text{ s}", "5"),  # two unit texts
    ("5\\,\\text{cm}", "5"),  # a TeX thin space before the unit
    ("0000", "0"),  # all zeros
    ("-007", "-7"),  # a negative number with leading zeros
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZATION_CASES)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    ("answer", "gold", "hedged"),
    [
        ("3, 5", "3", True),  # a list of candidates for a single answer
        ("3 \\text{ or } 5", "3", True),  # "or" between candidates
        ("3 \\lor 5", "3", True),  # logical or
        ("3, 5", "3, 5", False),  # the gold answer itself is a list
        ("(3, 5)", "3", False),  # a tuple is one answer (math-verify judges it)
        ("[1, 2)", "3", False),  # an interval is one answer
    ],
)
def test_is_hedged_list(answer: str, gold: str, hedged: bool) -> None:
    assert is_hedged_list(answer, gold) is hedged


def test_top_level_parts_ignores_bracketed_commas() -> None:
    assert top_level_parts("\\{1, 2\\}, (3, 4)") == ["\\{1, 2\\}", "(3, 4)"]


LATEX_TOKENS = ["\\boxed", "\\fbox", "{", "}", "\\{", "\\}", "\\", " ", "<think>", "</think>"]
LATEX_ALPHABET = st.sampled_from([*LATEX_TOKENS, *"$,x0123456789()[]^_%or\n"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(LATEX_ALPHABET, max_size=400).map("".join) | st.text(max_size=2000))
def test_extractor_never_raises_and_is_fast(text: str) -> None:
    start = time.perf_counter()
    answers = final_answers(text, [FINAL_ANSWER_PATTERN])
    for answer in answers or []:
        normalize_answer(answer)
        is_hedged_list(answer, "1")
    assert time.perf_counter() - start < 0.5
    assert answers is None or all(isinstance(answer, str) and answer for answer in answers)


def test_extractor_is_linear_on_huge_inputs() -> None:
    text = "</think>" + "\\boxed{" * 50_000 + "1" + "}" * 50_000 + " \\boxed{}" * 20_000
    start = time.perf_counter()
    answers = final_answers(text)
    assert time.perf_counter() - start < 2.0
    assert answers is not None and len(answers) == 1
