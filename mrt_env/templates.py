"""Prompt and termination templates per model family.

A :class:`ChatTemplate` renders the prompt the policy continues (it ends where the thinking
starts) and the meta-prover's forced-termination input (prompt + thinking prefix + the
termination suffix, which closes the thinking so that the model states an answer).
"""

from __future__ import annotations

from dataclasses import dataclass

BOXED_ANSWER_TOKENS = 32
"""Answer cap after a termination suffix that already opens ``\\boxed{``: the answer itself."""

FULL_ANSWER_TOKENS = 1024
"""Answer cap after a natural end of thinking: R1-style models restate the solution before
``\\boxed{}``, often several hundred tokens."""

FORCED_ANSWER_TOKENS = 512
"""Answer cap after a termination suffix that does not open ``\\boxed{`` (R1's suffix opens a
numbered explanation, ``1. **``): long enough for a short explanation and the boxed answer."""

R1_TERMINATION = (
    "Time is up.\n\n"
    "Given the time I've spent and the approaches I've tried, I should stop thinking and "
    "formulate a final answer based on what I already have.\n"
    "</think>\n\n"
    "**Step-by-Step Explanation and Answer:**\n\n"
    "1. **"
)


@dataclass(frozen=True)
class ChatTemplate:
    """How prompts, thinking and forced terminations are laid out for one model family.

    Attributes:
        name: Preset name.
        prompt: Format string with ``{problem}``; the rendered text ends where thinking starts
            (e.g. after ``<think>\\n``).
        end_think: The marker that ends thinking (``</think>``).
        termination: Suffix appended after a thinking prefix to force an answer (PAPER.md's
            "Time is up ..." for R1-style models).
        separator: Joins a non-empty thinking prefix and the termination suffix: the prefix
            is right-stripped of newlines and followed by this separator.
        answer_tokens: Token cap of the final answer after a natural end of thinking (the
            policy's own answer). ``None``: :data:`FULL_ANSWER_TOKENS`.
        forced_answer_tokens: Token cap of a forced answer after :attr:`termination` (μ's
            answers, the forced answer of a truncated trajectory). ``None``:
            :data:`BOXED_ANSWER_TOKENS` when the suffix ends by opening ``\\boxed{``, else
            :data:`FORCED_ANSWER_TOKENS`.

    Example:
        >>> t = TEMPLATES["tiny"]
        >>> t.render_prompt("1+1?").endswith("<think>\\n")
        True
        >>> t.answer_caps(), TEMPLATES["r1-distill"].answer_caps()
        (AnswerCaps(natural=32, forced=16), AnswerCaps(natural=1024, forced=512))
    """

    name: str
    prompt: str
    end_think: str = "</think>"
    termination: str = R1_TERMINATION
    separator: str = "\n\n"
    answer_tokens: int | None = None
    forced_answer_tokens: int | None = None

    def answer_caps(self, natural: int | None = None, forced: int | None = None) -> AnswerCaps:
        """The answer caps of this template; ``natural``/``forced`` override them."""
        opens_boxed = self.termination.rstrip().endswith("\\boxed{")
        default_forced = BOXED_ANSWER_TOKENS if opens_boxed else FORCED_ANSWER_TOKENS
        return AnswerCaps(
            natural=_first(natural, self.answer_tokens, FULL_ANSWER_TOKENS),
            forced=_first(forced, self.forced_answer_tokens, default_forced),
        )

    def render_prompt(self, problem: str) -> str:
        """The prompt text for ``problem``."""
        return self.prompt.format(problem=problem)

    def render_forced(self, prompt: str, prefix: str) -> str:
        """Prompt + thinking prefix + termination suffix: the meta-prover's input."""
        body = prefix.rstrip("\n")
        if body:
            return prompt + body + self.separator + self.termination
        return prompt + self.termination

    def render_meta(self, prompt: str, prefix: str) -> str:
        """The meta-prover's input for ``prefix``.

        A prefix that has ended thinking (it contains ``end_think``) gets the *natural* end:
        the prompt and the prefix up to and including the first ``end_think``, with no
        termination suffix (PAPER.md: J after the full trace). Any other prefix gets
        :meth:`render_forced`.

        Example:
            >>> t = TEMPLATES["tiny"]
            >>> t.render_meta("P\\n", "x = 2.\\n</think>\\n\\\\boxed{2}")
            'P\\nx = 2.\\n</think>'
        """
        cut = prefix.find(self.end_think)
        if cut < 0:
            return self.render_forced(prompt, prefix)
        return prompt + prefix[: cut + len(self.end_think)]


@dataclass(frozen=True)
class AnswerCaps:
    """Token caps of answers: the one definition shared by the env, μ, trainers and evaluation.

    Attributes:
        natural: Tokens kept after a natural end of thinking (the policy's final answer).
        forced: Tokens of a forced answer after the termination suffix (μ's K answers and the
            forced answer that grades a truncated trajectory).

    Example:
        >>> AnswerCaps(natural=64, forced=0)
        Traceback (most recent call last):
        ...
        ValueError: forced answer cap must be a positive int, got 0
    """

    natural: int
    forced: int

    def __post_init__(self) -> None:
        for name, value in (("natural", self.natural), ("forced", self.forced)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} answer cap must be a positive int, got {value!r}")


def _first(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def answer_caps(
    template: str | ChatTemplate, natural: int | None = None, forced: int | None = None
) -> AnswerCaps:
    """The answer caps of a template preset or instance (``natural``/``forced`` override).

    Example:
        >>> answer_caps("r1-distill", forced=256)
        AnswerCaps(natural=1024, forced=256)
    """
    return get_template(template).answer_caps(natural, forced)


TEMPLATES: dict[str, ChatTemplate] = {
    "tiny": ChatTemplate(
        name="tiny",
        prompt="Problem: {problem}\n<think>\n",
        termination="Time is up. I should stop thinking and answer.\n</think>\n\\boxed{",
        answer_tokens=32,
        forced_answer_tokens=16,
    ),
    "r1-distill": ChatTemplate(
        name="r1-distill",
        prompt=(
            "<｜begin▁of▁sentence｜><｜User｜>{problem}\n"
            "Please reason step by step, and put your final answer within \\boxed{{}}."
            "<｜Assistant｜><think>\n"
        ),
    ),
    "plain": ChatTemplate(
        name="plain",
        prompt=(
            "Problem: {problem}\nPlease reason step by step inside <think> ... </think>, "
            "then put your final answer within \\boxed{{}}.\n<think>\n"
        ),
    ),
}


def get_template(name_or_template: str | ChatTemplate) -> ChatTemplate:
    """Look up a preset by name (or pass a :class:`ChatTemplate` through)."""
    if isinstance(name_or_template, ChatTemplate):
        return name_or_template
    try:
        return TEMPLATES[name_or_template]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise KeyError(f"unknown template {name_or_template!r}; known: {known}") from None
