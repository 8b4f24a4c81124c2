"""Training examples for the tiny LM: natural traces and forced terminations, tokenized.

An example is a text plus the character offset where the loss starts: natural traces are
trained on the whole response; forced terminations only on the forced answer (``85}``), so
the model never learns to write the termination suffix by itself.

Example:
    >>> import numpy as np
    >>> text, start = training_text(np.random.default_rng(0), DataRecipe(forced_fraction=0.0))
    >>> text[:start].endswith("<think>\\n")
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mrt_env.templates import TEMPLATES
from mrt_env.tinymath.forced import (
    CAPPED_FORCED,
    DIRECT_FORCED,
    EXPLAIN_FORCED,
    GRADED_FORCED,
    WORKED_FORCED,
    ForcedRecipe,
    cut_thinking,
    explained_answer,
    forced_answer,
    forced_cut,
)
from mrt_env.tinymath.problems import DEFAULT_LEVELS, Expression, Split, sample_problem
from mrt_env.tinymath.traces import (
    Trace,
    TraceRecipe,
    natural_response,
    problem_prompt,
    sample_trace,
)

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class DataRecipe:
    """What the training data is made of.

    Attributes:
        levels: TinyMath levels drawn (uniformly).
        forced_fraction: Fraction of examples that are forced terminations.
        trace: How natural traces are sampled.
        forced: Where forced terminations cut.
        direct_fraction: Fraction of examples that are *direct answers*: a forced termination
            of the empty thinking for a problem of ``direct_levels``, whose target is the
            forced recipe's direct answer (``ForcedRecipe.direct``). They teach the model to
            answer the easiest problems without writing any work (the other examples split
            as ``forced_fraction`` says).
        direct_levels: Levels of the direct-answer examples.
    """

    levels: tuple[int, ...] = DEFAULT_LEVELS
    forced_fraction: float = 0.25
    trace: TraceRecipe = field(default_factory=TraceRecipe)
    forced: ForcedRecipe = field(default_factory=ForcedRecipe)
    direct_fraction: float = 0.0
    direct_levels: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if not 0.0 <= self.direct_fraction < 1.0:
            raise ValueError(f"direct_fraction is a share in [0, 1), got {self.direct_fraction}")
        if self.direct_fraction and not self.direct_levels:
            raise ValueError("direct answers need direct_levels")


DATA_RECIPES: dict[str, DataRecipe] = {
    "classic": DataRecipe(),
    "graded": DataRecipe(forced=GRADED_FORCED),
    "graded-checks": DataRecipe(
        trace=TraceRecipe(first_check=0.95, extra_check=0.5), forced=CAPPED_FORCED
    ),
    "worked": DataRecipe(forced_fraction=0.5, forced=WORKED_FORCED),
    "graded-direct": DataRecipe(forced=DIRECT_FORCED, direct_fraction=0.4, direct_levels=(1,)),
    "explain": DataRecipe(forced=EXPLAIN_FORCED),
}
"""Named data recipes: ``classic`` (the shipped ``tiny-lm``: a forced answer copies the last
answer stated, so J is a step), ``graded`` (a forced answer follows a designed belief in the
prefix's evidence, so J rises with checks), ``graded-checks`` (the graded forced answers with
beliefs capped below 0.9, and natural traces that check a right answer more often, so more
prefixes state a right answer at a given accuracy; meant for fine-tuning with
``TrainConfig.anchor``), ``worked`` (a forced answer is always the gold
answer, cut from traces that slip more often: J is the model's own reliability at finishing the
work; meant for fine-tuning with ``TrainConfig.anchor``) and ``graded-direct`` (the graded
forced answers with beliefs capped below 0.9, plus direct answers: 40% of the examples are a
level-1 problem answered from the empty thinking, right with probability 0.6 else a near miss,
so the model learns to add two-digit numbers in its head and J of the empty thinking, of a
quick guess and of a wrong answer is graded there too; meant for fine-tuning with
``TrainConfig.anchor``)."""


def training_example(
    rng: np.random.Generator, recipe: DataRecipe, split: Split = "train"
) -> tuple[str, int, bool]:
    """One example: ``(text, loss_start, natural)``; the loss covers ``text[loss_start:]`` +
    EOS; ``natural`` is False for a forced termination."""
    template = TEMPLATES["tiny"]
    if recipe.direct_fraction and rng.random() < recipe.direct_fraction:
        return direct_example(rng, recipe, split)
    expression, _ = sample_problem(rng, split, recipe.levels)
    prompt = problem_prompt(expression, template)
    trace = sample_trace(expression, rng, recipe.trace)
    if rng.random() < recipe.forced_fraction:
        if recipe.forced.trace is not None:
            trace = sample_trace(expression, rng, recipe.forced.trace)
        return forced_example(expression, trace, rng, recipe.forced)
    return prompt + natural_response(trace, template), len(prompt), True


def forced_example(
    expression: Expression, trace: Trace, rng: np.random.Generator, forced: ForcedRecipe
) -> tuple[str, int, bool]:
    """A forced termination of ``trace``: the prompt, a cut of the thinking, the termination
    suffix (``tiny``, or ``tiny-explain`` for the explain recipe) and the forced answer."""
    if not forced.explain:
        template = TEMPLATES["tiny"]
        prefix, answer = forced_cut(trace, expression.value, rng, forced)
        text = template.render_forced(problem_prompt(expression, template), prefix)
        return f"{text}{answer}}}", len(text), False
    template = TEMPLATES["tiny-explain"]
    prefix, stated, confirmations = cut_thinking(trace, rng, forced)
    explained = explained_answer(stated, confirmations, expression, rng, forced)
    text = template.render_forced(problem_prompt(expression, template), prefix)
    return text + explained, len(text), False


def direct_example(
    rng: np.random.Generator, recipe: DataRecipe, split: Split = "train"
) -> tuple[str, int, bool]:
    """A direct answer: a problem of ``recipe.direct_levels`` forced to answer from the empty
    thinking, its target the forced recipe's direct answer (see :func:`forced_answer`)."""
    template = TEMPLATES["tiny"]
    expression, _ = sample_problem(rng, split, recipe.direct_levels)
    forced = template.render_forced(problem_prompt(expression, template), "")
    answer = forced_answer(None, 0, expression.value, rng, recipe.forced)
    return f"{forced}{answer}}}", len(forced), False


def training_text(
    rng: np.random.Generator, recipe: DataRecipe, split: Split = "train"
) -> tuple[str, int]:
    """One example: ``(text, loss_start)``; the loss covers ``text[loss_start:]`` + EOS."""
    text, start, _ = training_example(rng, recipe, split)
    return text, start


def encode_example(text: str, loss_start: int, tokenizer) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
    """Token ids (with EOS) and labels (``IGNORE_INDEX`` before ``loss_start``)."""
    head = tokenizer(text[:loss_start], add_special_tokens=False)["input_ids"]
    tail = tokenizer(text[loss_start:], add_special_tokens=False)["input_ids"]
    tail = [*tail, tokenizer.eos_token_id]
    return head + tail, [IGNORE_INDEX] * len(head) + tail


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch into ``input_ids``, ``attention_mask`` and ``labels`` tensors.

    An example may carry a third item, whether it is a natural trace; the batch then has a
    ``natural`` boolean row mask too (pop it before calling the model).
    """
    import torch

    width = max(len(example[0]) for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (tokens, targets, *_) in enumerate(examples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if examples and len(examples[0]) == 3:
        batch["natural"] = torch.tensor([bool(example[2]) for example in examples])  # type: ignore[misc]
    return batch


def batches(
    tokenizer,  # type: ignore[no-untyped-def]
    recipe: DataRecipe,
    batch_size: int,
    seed: int,
    split: Split = "train",
    pool_batches: int = 32,
    kinds: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless seeded batches; examples of similar length are batched together.

    With ``kinds`` each batch also has a ``natural`` row mask (see :func:`collate`).
    """
    rng = np.random.default_rng(seed)
    while True:
        pool: list = []
        for _ in range(batch_size * pool_batches):
            text, start, natural = training_example(rng, recipe, split)
            ids, labels = encode_example(text, start, tokenizer)
            pool.append((ids, labels, natural) if kinds else (ids, labels))
        pool.sort(key=lambda example: len(example[0]))
        order = rng.permutation(pool_batches)
        for index in order:
            chunk = pool[index * batch_size : (index + 1) * batch_size]
            yield collate(chunk, tokenizer.pad_token_id)


def fixed_batches(
    tokenizer,  # type: ignore[no-untyped-def]
    recipe: DataRecipe,
    num_examples: int,
    batch_size: int,
    seed: int,
) -> list[dict[str, torch.Tensor]]:
    """A fixed held-out evaluation set (for the test loss)."""
    stream = batches(tokenizer, recipe, batch_size, seed, "heldout", num_examples // batch_size)
    return [next(stream) for _ in range(num_examples // batch_size)]
