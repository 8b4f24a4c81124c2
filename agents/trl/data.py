"""Any mrt-gym problem source as the ``datasets.Dataset`` TRL's ``GRPOTrainer`` expects.

Columns: ``prompt`` (the problem rendered with the env's template: the text the policy
continues, ending where thinking starts), ``answer`` (the gold answer, passed to the reward
functions as a keyword column) and ``problem_id`` (the env's stable id, which keys μ's J cache).

Example:
    >>> from mrt_env.tinymath.problems import TinyMathSource
    >>> ds = problems_dataset(TinyMathSource(split="train", size=3, seed=0), template="tiny")
    >>> ds.column_names, ds[0]["prompt"].endswith("<think>\\n")
    (['prompt', 'answer', 'problem_id'], True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrt_env.problems import ProblemSource
from mrt_env.sources import FieldNames, resolve_source
from mrt_env.templates import ChatTemplate, get_template


def problems_dataset(
    source: ProblemSource | str | Path,
    *,
    template: str | ChatTemplate = "tiny",
    fields: FieldNames | None = None,
) -> Any:
    """A ``datasets.Dataset`` of ``source``'s problems, prompts rendered with ``template``.

    Args:
        source: A ``ProblemSource`` or any ``problems`` spec of the env: ``"tinymath"``,
            ``"tinymath:heldout"``, a JSONL path (e.g. ``../shared/data/math500.jsonl``),
            ``"hf:NAME:SPLIT"`` (only what you pass downloads anything).
        template: The env's chat template (preset name or instance).
        fields: Field names of JSONL files and ``hf:`` datasets.

    Returns:
        A dataset with columns ``prompt``, ``answer`` and ``problem_id``, one row per problem
        in source order.
    """
    from datasets import Dataset

    problems = resolve_source(source, fields or FieldNames())
    chat = get_template(template)
    rows = [problems[i] for i in range(len(problems))]
    return Dataset.from_dict(
        {
            "prompt": [chat.render_prompt(p.problem) for p in rows],
            "answer": [p.answer for p in rows],
            "problem_id": [p.id for p in rows],
        }
    )
