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
from mrt_env.tinymath.problems import DEFAULT_LEVELS, Split, sample_problem
from mrt_env.tinymath.traces import (
    CAPPED_FORCED,
    GRADED_FORCED,
    WORKED_FORCED,
    ForcedRecipe,
    TraceRecipe,
    forced_cut,
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
    """

    levels: tuple[int, ...] = DEFAULT_LEVELS
    forced_fraction: float = 0.25
    trace: TraceRecipe = field(default_factory=TraceRecipe)
    forced: ForcedRecipe = field(default_factory=ForcedRecipe)


DATA_RECIPES: dict[str, DataRecipe] = {
    "classic": DataRecipe(),
    "graded": DataRecipe(forced=GRADED_FORCED),
    "graded-checks": DataRecipe(
        trace=TraceRecipe(first_check=0.95, extra_check=0.5), forced=CAPPED_FORCED
    ),
    "worked": DataRecipe(forced_fraction=0.5, forced=WORKED_FORCED),
}
"""Named data recipes: ``classic`` (the shipped ``tiny-lm``: a forced answer copies the last
answer stated, so J is a step), ``graded`` (a forced answer follows a designed belief in the
prefix's evidence, so J rises with checks), ``graded-checks`` (the graded forced answers with
beliefs capped below 0.9, and natural traces that check a right answer more often, so more
prefixes state a right answer at a given accuracy; meant for fine-tuning with
``TrainConfig.anchor``) and ``worked`` (a forced answer is always the gold
answer, cut from traces that slip more often: J is the model's own reliability at finishing the
work; meant for fine-tuning with ``TrainConfig.anchor``)."""


def training_example(
    rng: np.random.Generator, recipe: DataRecipe, split: Split = "train"
) -> tuple[str, int, bool]:
    """One example: ``(text, loss_start, natural)``; the loss covers ``text[loss_start:]`` +
    EOS; ``natural`` is False for a forced termination."""
    template = TEMPLATES["tiny"]
    expression, _ = sample_problem(rng, split, recipe.levels)
    prompt = problem_prompt(expression, template)
    trace = sample_trace(expression, rng, recipe.trace)
    if rng.random() < recipe.forced_fraction:
        if recipe.forced.trace is not None:
            trace = sample_trace(expression, rng, recipe.forced.trace)
        prefix, answer = forced_cut(trace, expression.value, rng, recipe.forced)
        forced = template.render_forced(prompt, prefix)
        return f"{forced}{answer}}}", len(forced), False
    return prompt + natural_response(trace, template), len(prompt), True


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
