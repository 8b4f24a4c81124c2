"""Reward functions with TRL's documented signature, over :mod:`rewards` verification.

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=..., **columns)`` where
``columns`` are the dataset's other columns (here ``answer`` and ``problem_id``), and expects
one float (or ``None``: no reward for that sample) per completion. Grading runs through
:func:`rewards.verify_many`: math-verify in killable worker processes, so each answer has a
hard time bound in whatever thread TRL calls from; a timeout scores 0.

Example:
    >>> reward = OutcomeReward()
    >>> reward(completions=["x = 2.</think>\\\\boxed{2}", "</think>\\\\boxed{3}"],
    ...        answer=["2", "2"])
    [1.0, 0.0]
    >>> FormatReward()(completions=["ok</think>\\\\boxed{2}", "no answer"])
    [1.0, 0.0]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import rewards as reward_lib
from rewards.verification import Verification, VerifierConfig, get_verifier


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"expected a completion string or message list, got {type(completion)}")


class OutcomeReward:
    """The verified 0/1 outcome of each completion (anti-hedging included).

    ``None`` for an unparsable gold answer (TRL then leaves the sample out of the reward);
    ``0.0`` for wrong, missing, hedged and timed-out answers.

    Args:
        verifier: Verification settings (timeout, workers); the process-wide default when
            ``None``.
    """

    __name__ = "outcome"

    def __init__(self, verifier: VerifierConfig | None = None) -> None:
        self.verifier = verifier
        self.last_statuses: list[str] = []

    def verify(self, completions: Sequence[Any], answer: Sequence[Any]) -> list[Verification]:
        """Verifications of ``completions`` against the gold ``answer`` column."""
        if len(completions) != len(answer):
            raise ValueError(f"{len(completions)} completions but {len(answer)} answers")
        pairs = [(completion_text(c), str(a)) for c, a in zip(completions, answer, strict=True)]
        return get_verifier(self.verifier).verify_many(pairs)

    def __call__(
        self,
        completions: Sequence[Any],
        answer: Sequence[Any],
        expected_outcome: Sequence[float | None] | None = None,
        **_: Any,
    ) -> list[float | None]:
        """One outcome per completion; a row with an ``expected_outcome`` (μ's J of a truncated
        completion's thinking, ``truncation="expected"``) gets that instead, as in the env."""
        verdicts = self.verify(completions, answer)
        self.last_statuses = [v.status for v in verdicts]
        outcomes = [None if v.status == "unparsable_gold" else float(v.correct) for v in verdicts]
        expected = list(expected_outcome) if expected_outcome is not None else []
        return [e if e is not None else o for o, e in itertools.zip_longest(outcomes, expected)]


class FormatReward:
    """``rewards.FormatReward`` per completion: thinking ended, exactly one distinct boxed answer.

    Args:
        reward: Value of a well-formed final answer.
    """

    __name__ = "format"

    def __init__(self, reward: float = 1.0) -> None:
        self.module = reward_lib.FormatReward(reward=reward)

    def __call__(self, completions: Sequence[Any], **_: Any) -> list[float]:
        results = []
        for completion in completions:
            text = completion_text(completion)
            ctx = reward_lib.StepContext("", "", "", text, 0, 0, 0, terminal=True, response=text)
            results.append(float(self.module(ctx)))
        return results
