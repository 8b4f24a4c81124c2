"""The limitations section of the tiny LMs' model cards, one text per data recipe."""

from __future__ import annotations

from typing import Any


def limitations(training: dict[str, Any]) -> str:
    """The card's limitations section for the recipe in ``training`` (``training.json``)."""
    if training.get("recipe") == "worked":
        return """\
A toy, like `tiny-lm`: column addition, subtraction and one-digit multiplication of small
numbers, much weaker on levels 3–5 than on additions. Its J is the model's own probability of
answering right when forced to stop, trained toward the right answer after every prefix; how
graded it is depends on how partly the model learned to doubt and redo written work, not on a
designed schedule, so J after a right answer is mostly near 1 and J after a wrong one spreads
between 0 and 1 (the histogram above). The empty thinking stays near 0: from nothing, the
model seldom guesses an answer right. Its forced answers recompute, while its natural traces
still copy their own slips (they are held at `tiny-lm`'s), so μ is a better arithmetician than
the policy it scores: J after a wrong answer is the chance of recovering from it by stopping,
not the chance that the policy itself will."""
    if training.get("recipe") == "explain":
        return """\
A toy, like `tiny-lm`: column addition, subtraction and one-digit multiplication of small
numbers, much weaker on levels 3–5 than on additions. Its J is partly designed and partly the
model's own: after a stated answer, how often the forced answer trusts it follows a schedule
(`ForcedRecipe.confidence`); when it does not, J is the model's own accuracy at writing one
more attempt, which slips more often than its thinking by design (`explain_slip`). Forced
answers are a line of column work instead of a number, so each of μ's K forced answers
decodes tens of tokens instead of a few: J costs more per episode than with `tiny-lm`,
as it does for R1-scale models, and MRT's μ is slower at equal K."""
    if training.get("recipe") == "graded-direct":
        return """\
A toy, like `tiny-lm`: column addition, subtraction and one-digit multiplication of small
numbers, much weaker on levels 3–5 than on additions. Its J is graded by construction: the
forced answer is trained on a belief schedule (a direct answer, a guess, an unchecked answer,
each passed check), not on the probability that the model's own answer is right, so J is a
designed, not a calibrated, probability of success. Only where the model learned to answer
without writing any work (the direct-answer levels) can J be graded before the first worked
answer or after a wrong one; elsewhere the empty thinking and a wrong answer keep J near 0,
because the model does not recover the right answer from its own wrong work. Its natural
traces are held near `tiny-lm`'s (`--anchor`), so the policy is `tiny-lm`'s to within the
pass@1 band checked above, while its forced answers are not: μ adds small numbers in its head,
the policy does not."""
    if training.get("recipe") == "graded":
        return """\
A toy, like `tiny-lm`: column addition, subtraction and one-digit multiplication of small
numbers, much weaker on levels 3–5 than on additions. Its J is graded by construction: the
forced answer is trained on a belief schedule (how much a guess, an unchecked answer and each
passed check are worth), not on the probability that the model's own answer is right, so J is a
designed, not a calibrated, probability of success; a right answer's J after c passed checks
sits near the schedule's value whatever the problem. The schedule is a training choice
(`ForcedRecipe.confidence`), so other shapes of J can be trained the same way. After a wrong
answer J could reach one minus the belief only where the model learned what the right answer
is; most prefixes it does not grade are the empty thinking and prefixes after a wrong answer,
so the share of graded prefixes grows with the policy's accuracy. The fine-tuning also trained
the natural traces further (three quarters of its examples), so its pass@1 is above
`tiny-lm`'s (table above): comparing the graded and the classic world changes the policy's
accuracy too."""
    return """\
A toy: it knows column addition, subtraction and one-digit multiplication of small numbers and
nothing else, and it is much weaker on levels 3–5 (subtraction with borrows, two-step
expressions, multiplication) than on additions. Its quick guesses are mostly wrong and its
worked attempts mostly right, which is why mean J rises most over the first two episodes; a
recomputation restates the answer it checks, so the model's own slips while checking seldom
cost an answer, and later episodes change J little. Episodes differ in usefulness, which is what
a progress bonus can learn from. `python -m mrt_env.tinymath.train` with no arguments uses this
card's recipe (the `--minutes` cap only stops a run early; it did not trigger here)."""
