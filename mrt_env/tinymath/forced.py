"""How forced terminations are cut from a trace and which answer they are trained to give.

The classic recipe copies the last answer stated; the graded recipes answer with the belief
the prefix's evidence earns; the *worked* recipe always gives the gold answer; the *explain*
recipe (the ``tiny-explain`` template) boxes a trusted answer or writes one more attempt.

Example:
    >>> import numpy as np
    >>> forced_answer(75, 0, 85, np.random.default_rng(0))  # classic: copy the stated answer
    75
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrt_env.tinymath.problems import Expression
from mrt_env.tinymath.traces import Trace, TraceRecipe, explanation

GRADED_CONFIDENCE: tuple[float, ...] = (0.5, 0.75, 0.875, 0.9375)
"""Belief in a worked answer after 0, 1, 2, 3 confirming checks: each check halves the doubt."""


@dataclass(frozen=True)
class ForcedRecipe:
    """Where forced terminations cut a trace, and which answer they are trained to give.

    Attributes:
        empty: Probability of the empty prefix (no thinking at all).
        boundary: Probability of a cut at an episode boundary (after 1..n episodes).
            The rest are cuts at a uniformly random character inside the thinking.
        confidence: Empty (the classic recipe): the forced answer is the last answer stated
            in the prefix. Otherwise the graded recipe: the forced answer is the stated answer
            with probability ``confidence[c]`` after ``c`` confirming checks (the last entry
            for more), else the other candidate: the gold answer when the stated one is wrong,
            a near miss one digit off when it is right (see :func:`forced_answer`).
        guess_confidence: Belief in a quick guess (the graded recipe only).
        worked: The *worked* recipe: the forced answer is the gold answer after every
            prefix (what finishing the written work without a slip gives), whatever the
            prefix states; ``confidence`` is then unused. A model that copies a stated answer
            it cannot tell from a slipped one, and recomputes a slipped one only partly,
            answers right with a probability between 0 and 1: J is the model's own
            reliability at finishing the work from the prefix.
        trace: How the traces that forced terminations cut are sampled (``None``: the
            natural traces' recipe). More slips there give more prefixes whose stated answer
            is wrong, so the forced answer learns to doubt and recompute.
        direct: Belief in a *direct answer*, the forced answer when no answer is stated yet
            (the empty thinking, or a cut inside the first attempt): the gold answer with this
            probability, else a near miss of it (:func:`near_miss`). At 1 (the default) it is
            always the gold answer. Below 1, J of the empty thinking is this belief times the
            model's own chance of computing the answer without writing any work, so problems
            the model can add in its head (see ``DataRecipe.direct_fraction``) get a graded J
            before any thinking, below the belief a worked answer earns.
        explain: The *explain* recipe (the ``tiny-explain`` template, whose termination
            suffix does not open ``\\boxed{}``): a forced answer boxes the stated answer at
            once with the belief its evidence earns (as the graded recipe), and otherwise
            (no answer stated, or not trusted) writes one more attempt, the column work in a
            line, and boxes its result, as R1's forced answers restate a short solution.
            J of any prefix is then the model's own chance of finishing right from it.
        explain_slip: Probability that the attempt of an explained answer slips: a hurried
            answer slips more often than a first written attempt
            (``TraceRecipe.first_slip``), so J rises with the thinking written before it.
    """

    empty: float = 0.15
    boundary: float = 0.6
    confidence: tuple[float, ...] = ()
    guess_confidence: float = 0.25
    worked: bool = False
    trace: TraceRecipe | None = None
    direct: float = 1.0
    explain: bool = False
    explain_slip: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 < self.direct <= 1.0:
            raise ValueError(f"direct is a belief in (0, 1], got {self.direct}")
        if not 0.0 <= self.explain_slip <= 1.0:
            raise ValueError(f"explain_slip is a probability, got {self.explain_slip}")
        if self.explain and not self.confidence:
            raise ValueError("the explain recipe needs beliefs (confidence) in stated answers")


GRADED_FORCED = ForcedRecipe(confidence=GRADED_CONFIDENCE)
"""The graded recipe's forced terminations."""

CAPPED_CONFIDENCE: tuple[float, ...] = (0.5, 0.65, 0.75, 0.8)
"""Belief in a worked answer after 0, 1, 2, 3 confirming checks, kept below 0.9: J of a right
answer stays graded (inside (0.1, 0.9)) however often it was checked."""

CAPPED_FORCED = ForcedRecipe(confidence=CAPPED_CONFIDENCE)
"""The graded-checks recipe's forced terminations."""

DIRECT_CONFIDENCE: tuple[float, ...] = (0.5, 0.7, 0.8, 0.85)
"""Belief in a worked answer after 0, 1, 2, 3 confirming checks in the graded-direct recipe."""

DIRECT_FORCED = ForcedRecipe(confidence=DIRECT_CONFIDENCE, direct=0.6)
"""The graded-direct recipe's forced terminations: the capped graded beliefs, and a direct
answer (no answer stated yet) trusted at 0.6: right with probability 0.6 where the model can
compute it, else a near miss."""

WORKED_FORCED = ForcedRecipe(worked=True, trace=TraceRecipe(first_slip=0.5))
"""The worked recipe's forced terminations: gold targets, cut from traces whose first attempt
slips half of the time."""


EXPLAIN_FORCED = ForcedRecipe(confidence=DIRECT_CONFIDENCE, explain=True, explain_slip=0.95)
"""The explain recipe's forced terminations: the graded-direct beliefs (0.5, 0.7, 0.8, 0.85)
in a stated answer, else one more attempt written out, its target slipping with probability
0.95 (the model learns it only in part: its own forced answers from the empty thinking are right
more often than 5%; see ``tiny-lm-explain``'s card)."""


def belief(recipe: ForcedRecipe, confirmations: int) -> float:
    """The graded recipes' belief in a stated answer: ``guess_confidence`` for a quick guess
    (``confirmations`` -1), else ``confidence[confirmations]`` (the last entry for more).

    Example:
        >>> belief(GRADED_FORCED, -1), belief(GRADED_FORCED, 1), belief(GRADED_FORCED, 9)
        (0.25, 0.75, 0.9375)
    """
    if confirmations < 0:
        return recipe.guess_confidence
    return recipe.confidence[min(confirmations, len(recipe.confidence) - 1)]


def explained_answer(
    stated: int | None,
    confirmations: int,
    expression: Expression,
    rng: np.random.Generator,
    recipe: ForcedRecipe,
) -> str:
    """The explain recipe's forced answer, the text after the ``tiny-explain`` suffix.

    A stated answer is boxed at once with the belief its evidence earns
    (``guess_confidence`` for a quick guess, ``confidence[confirmations]`` for a worked
    answer); otherwise, and when nothing is stated, one more attempt is written (slipping
    with ``recipe.explain_slip``) and its result boxed.

    Example:
        >>> from mrt_env.tinymath.problems import Expression
        >>> recipe = ForcedRecipe(confidence=(0.5,), explain=True, explain_slip=0.0)
        >>> sum_ = Expression((86, 67), ("+",))
        >>> explained_answer(None, 0, sum_, np.random.default_rng(0), recipe)
        '86+67: 6+7=13, 8+6+1=15, so 153.\\n\\\\boxed{153}'
    """
    if stated is not None and rng.random() < belief(recipe, confirmations):
        return f"\\boxed{{{stated}}}"
    text, value = explanation(expression, rng, recipe.explain_slip)
    return f"{text}.\n\\boxed{{{value}}}"


def near_miss(answer: int, rng: np.random.Generator) -> int:
    """``answer`` with one digit off by one (``answer ± 10**k``), never negative nor equal.

    Example:
        >>> near_miss(85, np.random.default_rng(0)) in (75, 95, 84, 86)
        True
    """
    digits = len(str(answer))
    while True:
        step = 10 ** int(rng.integers(digits)) * (1 if rng.random() < 0.5 else -1)
        if answer + step >= 0:
            return answer + step


def forced_answer(
    stated: int | None,
    confirmations: int,
    gold: int,
    rng: np.random.Generator,
    recipe: ForcedRecipe | None = None,
) -> int:
    """The training target of a forced answer after a prefix that states ``stated``.

    No answer stated: a direct answer, the gold answer with probability ``recipe.direct``
    (always, at the default 1), else a near miss of it. The worked recipe
    (``recipe.worked``): the gold answer after every prefix (finishing the written work
    without a slip). Classic recipe: ``stated``. Graded
    recipe: ``stated`` with the belief its evidence earns (``guess_confidence`` for a quick
    guess, ``confidence[confirmations]`` for a worked answer), else the other candidate (gold
    when ``stated`` is wrong, a :func:`near_miss` when it is right). J of a right answer is
    then its belief and J of a
    wrong one at most one minus it: J rises with checks instead of jumping from 0 to 1.
    """
    recipe = recipe or ForcedRecipe()
    if stated is None and recipe.direct < 1.0 and not recipe.worked:
        return gold if rng.random() < recipe.direct else near_miss(gold, rng)
    if stated is None or recipe.worked:
        return gold
    if not recipe.confidence:
        return stated
    if rng.random() < belief(recipe, confirmations):
        return stated
    return gold if stated != gold else near_miss(stated, rng)


def forced_cut(
    trace: Trace, gold: int, rng: np.random.Generator, recipe: ForcedRecipe | None = None
) -> tuple[str, int]:
    """Cut ``trace`` into a thinking prefix and the answer a forced termination gives there.

    Classic recipe: the most recent answer stated in the prefix; with none stated yet the
    gold answer (a direct guess, which a small model mostly gets wrong). Graded recipe: see
    :func:`forced_answer`.
    """
    recipe = recipe or ForcedRecipe()
    prefix, stated, confirmations = cut_thinking(trace, rng, recipe)
    return prefix, forced_answer(stated, confirmations, gold, rng, recipe)


def cut_thinking(
    trace: Trace, rng: np.random.Generator, recipe: ForcedRecipe
) -> tuple[str, int | None, int]:
    """Where a forced termination cuts ``trace``: ``(prefix, stated, confirmations)``, the
    last two as :meth:`Trace.support_at` gives them for the prefix."""
    thinking, draw = trace.thinking, rng.random()
    if draw < recipe.empty:
        cut = 0
    elif draw < recipe.empty + recipe.boundary:
        ends = np.cumsum([len(episode) for episode in trace.episodes])
        cut = int(ends[int(rng.integers(len(ends)))])
    else:
        cut = int(rng.integers(1, len(thinking) + 1))
    stated, confirmations = trace.support_at(cut)
    return thinking[:cut], stated, confirmations
