"""``ANSWER_IS_PATTERN``: the final answer of chat models that end with a sentence, not a box.

Expected answers are written by hand from the replies (the first lines are the shape SmolLM2-135M-
Instruct ends with: "So, the answer is 5.").
"""

from __future__ import annotations

import pytest

from rewards import Verifier, VerifierConfig
from rewards.extraction import ANSWER_IS_PATTERN, final_answers

REPLIES = [
    ("2 + 3 = 5.\n\nSo, the answer is 5.", ["5."]),
    ("Answer: 12", ["12"]),
    ("ANSWER : 7", ["7"]),
    ("The answer is: 315", ["315"]),
    ("Therefore the final answer is $x = 6$.", ["$x = 6$"]),
    ("answer = 0.5 and then", ["0.5"]),
    ("The answer is 4.\nWait, the answer is 6", ["4.", "6"]),  # in order; the last one counts
    ("Answer:$\\frac{1}{2}$ (in lowest terms)", ["$\\frac{1}{2}$"]),
    ("These answers 5 and 6 are", []),  # "answers" is not "answer"
    ("The answer to this problem is hard.", []),  # "answer" must be followed by is, : or =
    ("The answerIs 5", []),
    ("The answer isn't obvious.", []),  # "is" must be a whole word
    ("the answer is $$ done", []),  # an empty math span is no answer
    ("<think>the answer is 3", None),  # never finished thinking
    ("<think>the answer is 3</think>I am not sure.", []),  # thinking never counts
]


@pytest.mark.parametrize(("reply", "expected"), REPLIES)
def test_answer_is_pattern_reads_hand_written_replies(
    reply: str, expected: list[str] | None
) -> None:
    assert final_answers(reply, [ANSWER_IS_PATTERN]) == expected


def test_a_box_wins_over_the_pattern() -> None:
    reply = "So, the answer is 4. Hmm, no: \\boxed{5}"
    assert final_answers(reply, [ANSWER_IS_PATTERN]) == ["5"]
    verifier = Verifier(VerifierConfig(in_process=True, extra_patterns=(ANSWER_IS_PATTERN,)))
    assert verifier.verify(reply, "5").status == "correct"
    assert verifier.verify(reply, "4").status == "wrong"


@pytest.mark.parametrize(
    ("reply", "gold", "status"),
    [
        ("2 + 3 = 5.\n\nSo, the answer is 5.", "5", "correct"),  # the final period goes
        ("So, the answer is 5.", "6", "wrong"),
        ("The answer is $\\frac{2}{4}$.", "\\frac{1}{2}", "correct"),
        ("The answer to this is 5.", "5", "no_answer"),
    ],
)
def test_the_verifier_grades_the_pattern_answer(reply: str, gold: str, status: str) -> None:
    with_pattern = Verifier(VerifierConfig(in_process=True, extra_patterns=(ANSWER_IS_PATTERN,)))
    assert with_pattern.verify(reply, gold).status == status
    boxed_only = Verifier(VerifierConfig(in_process=True))
    assert boxed_only.verify(reply, gold).status == "no_answer"  # the paper's rule: no box
