"""Which extra patterns read a policy's final answer when its response has no ``\\boxed{}``.

The paper grades the boxed answer. Instruct models without thinking tags (e.g. SmolLM2-Instruct)
rarely box: they end with "So, the answer is 5.", and boxed-only grading gives them a silent
pass@1 of 0. :func:`default_answer_patterns` therefore reads ``the answer is X`` for
``template="chat"`` on such models (a box still wins); ``EnvConfig.answer_patterns=()`` and
``benchmarks/regret.py --answer-pattern none`` restore boxed-only grading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mrt_env.templates import ChatTemplate

if TYPE_CHECKING:
    from rewards.verification import VerifierConfig


def check_answer_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """``patterns`` as a tuple after checking each is a regular expression (``ValueError``)."""
    import re

    if isinstance(patterns, str):
        raise TypeError(f"answer_patterns must be a sequence of regexes, got {patterns!r}")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as error:
            raise ValueError(
                f"answer pattern {pattern!r} is not a regular expression: {error}"
            ) from error
    return tuple(patterns)


def default_answer_patterns(template: ChatTemplate) -> tuple[str, ...]:
    """Extra answer patterns the policy's responses are graded with when none are configured.

    ``(rewards.extraction.ANSWER_IS_PATTERN,)`` for ``template="chat"`` on a model without
    thinking tags (instruct models that end with "So, the answer is 5." rather than a box; a box
    still wins), none for every other template (boxed answers only, as in the paper).

    Example:
        >>> from mrt_env.templates import TEMPLATES
        >>> default_answer_patterns(TEMPLATES["tiny"])
        ()
    """
    from rewards.extraction import ANSWER_IS_PATTERN

    if template.name == "chat" and template.end_think != "</think>":
        return (ANSWER_IS_PATTERN,)
    return ()


def resolve_answer_patterns(
    template: ChatTemplate, patterns: Sequence[str] | None = None
) -> tuple[str, ...]:
    """``patterns`` checked, or the template's :func:`default_answer_patterns` when ``None``
    (``()`` keeps boxed answers only)."""
    if patterns is None:
        return default_answer_patterns(template)
    return check_answer_patterns(patterns)


def answer_verifier_config(patterns: Sequence[str]) -> VerifierConfig | None:
    """Verification settings reading boxed answers, then ``patterns``; ``None`` (the
    process-wide default verifier) when there are none. Every engine grades with this."""
    from rewards.verification import VerifierConfig

    return VerifierConfig(extra_patterns=tuple(patterns)) if patterns else None
