"""R1-style reasoning traces for TinyMath, with episodes that differ in usefulness.

A trace is a list of thinking episodes, each one paragraph:

* sometimes a quick guess first (``"47+38 is about 84."``), which a small model mostly gets
  wrong, then the worked attempt (``"Wait, let me work it out: 47+38: ..."``);
* the first worked attempt (``"47+38: 7+8=15, 4+3+1=8, so 85."``), sometimes with a slip;
* checks that can catch a slip: for a difference, adding back (``"Wait, check: 47+38: ...,
  so 85. Yes."`` for ``85-38``); otherwise a recomputation (``"But let me double-check:
  47+38: ..."``); after a failed check by adding back, a new attempt (``"Alternatively, ..."``);
* a recomputation ends by restating the answer it checks and a verdict
  (``"..., so 75 (before: 85). Different."``); after ``Different`` comes a tie-break
  (``"Wait, once more: 47+38: ..."``) whose result is kept. A recomputation never overrides
  an answer by itself: the prefix still supports the earlier answer (the last number
  written), so a slip in a check costs nothing unless the tie-break slips too;
* redundant checks of a correct answer, which change nothing.

Episodes after the first start with ``"\\n\\n"`` and a marker of the official split rules, so
``MarkerSegmenter(min_paragraphs=1)`` recovers them.
:func:`~mrt_env.tinymath.data.forced_example` cuts a trace anywhere and appends a termination
suffix, for training the forced answer μ (the forced answers' recipes are in
:mod:`mrt_env.tinymath.forced`).

Example:
    >>> import numpy as np
    >>> from mrt_env.tinymath.problems import Expression
    >>> trace = sample_trace(Expression((47, 38), ("+",)), np.random.default_rng(0))
    >>> trace.thinking.startswith("47+38: ")
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrt_env.templates import TEMPLATES, ChatTemplate
from mrt_env.tinymath.arithmetic import compute, sample_slip
from mrt_env.tinymath.problems import Expression, problem_text

CHECK_MARKERS: tuple[str, ...] = ("Wait, check: ", "But wait, check: ", "But hold on, check: ")
REDO_MARKER = "But let me double-check: "
TIEBREAK_MARKER = "Wait, once more: "
RETRY_MARKER = "Alternatively, "
WORK_MARKER = "Wait, let me work it out: "


@dataclass(frozen=True)
class TraceRecipe:
    """Probabilities that shape sampled traces.

    Attributes:
        guess_first: Probability that the trace opens with a quick guess before working.
        guess_right: Probability that the quick guess is right (else it is off by a little).
        first_slip: Probability that the first worked attempt contains a slip.
        later_slip: Probability of a slip in a new attempt or a recomputation.
        unchecked_error: Probability that a wrong first attempt is never checked.
        first_check: Probability of checking a correct answer at least once.
        extra_check: Probability of each further redundant check (at most ``max_episodes``).
        inverse_check: Probability of checking by the inverse operation (when one exists)
            rather than recomputing.
        max_episodes: Most episodes in one trace.
    """

    guess_first: float = 0.4
    guess_right: float = 0.2
    first_slip: float = 0.2
    later_slip: float = 0.05
    unchecked_error: float = 0.1
    first_check: float = 0.8
    extra_check: float = 0.25
    inverse_check: float = 0.3
    max_episodes: int = 4


@dataclass(frozen=True)
class Trace:
    """A sampled thinking trace.

    Attributes:
        episodes: Episode texts; their concatenation is the thinking.
        kinds: What each episode is: ``"guess"``, ``"attempt"``, ``"retry"``, ``"check"``,
            ``"redo"`` or ``"tiebreak"``.
        answers: ``(end, answer)``: the thinking states ``answer`` once ``end`` characters are
            written (a check that only confirms states no answer).
        final_answer: The last stated answer (the response's boxed answer).
    """

    episodes: tuple[str, ...]
    kinds: tuple[str, ...]
    answers: tuple[tuple[int, int], ...]
    final_answer: int

    @property
    def thinking(self) -> str:
        """The whole thinking text."""
        return "".join(self.episodes)

    def answer_at(self, offset: int) -> int | None:
        """The most recent answer stated within the first ``offset`` characters."""
        stated = [answer for end, answer in self.answers if end <= offset]
        return stated[-1] if stated else None

    def support_at(self, offset: int) -> tuple[int | None, int]:
        """The most recent answer within ``offset`` characters and the checks that confirm it.

        Returns:
            ``(answer, confirmations)``: ``answer`` as :meth:`answer_at`; ``confirmations`` is
            the number of whole check episodes since it was stated that passed (``Yes.`` or
            ``Same.``; a failed check resets it to 0), or -1 when the answer is a quick guess.
        """
        stated = dict(self.answers)
        answer, confirmations, end = None, 0, 0
        for text, kind in zip(self.episodes, self.kinds, strict=True):
            end += len(text)
            if end > offset:
                break
            if end in stated:
                answer, confirmations = stated[end], -1 if kind == "guess" else 0
            elif kind in ("check", "redo"):
                passed = text.endswith(("Yes.", "Same."))
                confirmations = confirmations + 1 if passed else 0
        return answer, confirmations


def _work(
    expression: Expression, rng: np.random.Generator, slip_prob: float
) -> tuple[str, int, int]:
    """Work an expression out op by op, maybe slipping in one op.

    Returns:
        ``(text, result, left)``: the worked text, the result it states, and the stated left
        input of the last op (what an inverse check compares against).
    """
    operands, operators = expression.operands, expression.operators
    slip_op = int(rng.integers(len(operators))) if rng.random() < slip_prob else -1
    texts, value, left = [], operands[0], operands[0]
    for i, (op, operand) in enumerate(zip(operators, operands[1:], strict=True)):
        left = value
        a, b = value, operand
        slip = sample_slip(op, a, b, rng) if slip_op == i else None
        text, value = compute(op, a, b, slip)
        following = operators[i + 1] if i + 1 < len(operators) else ""
        if following == "-" and value < operands[i + 2]:
            text, value = compute(op, a, b)
        texts.append(text)
    return ". ".join(texts), value, left


def _guess(gold: int, rng: np.random.Generator, right: float) -> int:
    """A quick guess at ``gold``: right with probability ``right``, else off by 1 to 20."""
    if rng.random() < right:
        return gold
    offset = int(rng.integers(1, 21)) * (1 if rng.random() < 0.5 else -1)
    return gold + offset if gold + offset >= 0 else gold - offset


def _inverse_check(op: str, stated: int, left: int, right: int) -> tuple[str, bool] | None:
    """Check a difference ``left - right = stated`` by adding back; ``None`` for other ops.

    Sums and products are rechecked by recomputing instead: checking a sum by subtracting is
    harder than the sum itself, so such a check would mostly raise false alarms.
    """
    if op != "-":
        return None
    text, back = compute("+", stated, right)
    if back == left:
        return f"{text}. Yes.", True
    return f"{text}, not {left}. Wrong.", False


class _TraceBuilder:
    """Accumulates episodes and the answers they state."""

    def __init__(self) -> None:
        self.episodes: list[str] = []
        self.kinds: list[str] = []
        self.answers: list[tuple[int, int]] = []
        self.length = 0

    def emit(self, text: str, kind: str, answer: int | None) -> None:
        self.episodes.append(text)
        self.kinds.append(kind)
        self.length += len(text)
        if answer is not None:
            self.answers.append((self.length, answer))

    @property
    def checks(self) -> int:
        return sum(kind in ("check", "redo") for kind in self.kinds)


def sample_trace(
    expression: Expression, rng: np.random.Generator, recipe: TraceRecipe | None = None
) -> Trace:
    """Sample one trace for ``expression`` (all randomness from ``rng``)."""
    recipe = recipe or TraceRecipe()
    gold, trace = expression.value, _TraceBuilder()
    opening = ""
    if rng.random() < recipe.guess_first:
        guess = _guess(gold, rng, recipe.guess_right)
        trace.emit(f"{expression.text} is about {guess}.", "guess", guess)
        opening = f"\n\n{WORK_MARKER}"
    text, current, left = _work(expression, rng, recipe.first_slip)
    trace.emit(f"{opening}{text}.", "attempt", current)
    ignore_error = rng.random() < recipe.unchecked_error
    while len(trace.episodes) < recipe.max_episodes:
        if current != gold and ignore_error:
            break
        keep_checking = recipe.first_check if trace.checks == 0 else recipe.extra_check
        if current == gold and rng.random() >= keep_checking:
            break
        marker = CHECK_MARKERS[int(rng.integers(len(CHECK_MARKERS)))]
        inverse = None
        missed = trace.kinds[-1] == "check" and current != gold
        if not missed and rng.random() < recipe.inverse_check:
            op, right = expression.operators[-1], expression.operands[-1]
            inverse = _inverse_check(op, current, left, right)
        if inverse is not None:
            check, passed = inverse
            trace.emit(f"\n\n{marker}{check}", "check", None)
            if not passed and len(trace.episodes) < recipe.max_episodes:
                text, current, left = _work(expression, rng, recipe.later_slip)
                trace.emit(f"\n\n{RETRY_MARKER}{text}.", "retry", current)
            continue
        text, value, _ = _work(expression, rng, recipe.later_slip)
        verdict = "Same" if value == current else "Different"
        trace.emit(f"\n\n{REDO_MARKER}{text} (before: {current}). {verdict}.", "redo", None)
        if value != current and len(trace.episodes) < recipe.max_episodes:
            text, current, left = _work(expression, rng, recipe.later_slip)
            trace.emit(f"\n\n{TIEBREAK_MARKER}{text}.", "tiebreak", current)
    return Trace(tuple(trace.episodes), tuple(trace.kinds), tuple(trace.answers), current)


def natural_response(trace: Trace, template: ChatTemplate | None = None) -> str:
    """The full response for ``trace``: thinking, end of thinking, boxed answer."""
    template = template or TEMPLATES["tiny"]
    return f"{trace.thinking}\n{template.end_think}\n\\boxed{{{trace.final_answer}}}"


def explanation(expression: Expression, rng: np.random.Generator, slip: float) -> tuple[str, int]:
    """One attempt written in a line (``86+67: 6+7=13, 8+6+1=15, so 153``) and its result.

    Example:
        >>> from mrt_env.tinymath.problems import Expression
        >>> explanation(Expression((86, 67), ("+",)), np.random.default_rng(0), 0.0)
        ('86+67: 6+7=13, 8+6+1=15, so 153', 153)
    """
    text, value, _ = _work(expression, rng, slip)
    return text, value


def problem_prompt(expression: Expression, template: ChatTemplate | None = None) -> str:
    """The rendered prompt for an expression."""
    return (template or TEMPLATES["tiny"]).render_prompt(problem_text(expression))
