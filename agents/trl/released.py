"""The released MRT recipe as a TRL ``rollout_func``: source, random cut, continuations.

Per group of ``num_generations`` rows (one prompt), TRL's own generation (vLLM or the training
model) samples one source completion; it is cut after a random number ``c`` of its episodes
(``c`` uniform in ``0 .. episodes - 1``, as :func:`agents.mrt.collect_continuations`); the
prefix (prompt + the source's first ``c`` episodes) is continued ``num_generations - 1`` times.
Every row's completion is prefix + continuation (the source's own tail is the first one);
``env_mask`` marks the prefix tokens 0, so TRL's loss trains only the continuations, and the
reward functions grade the whole trajectory. ``J(prefix)`` of every row is stored on the
trainer for :func:`agents.mrt.released_credit`. Cuts are seeded by the run seed, the optimizer
step and the process, so a resumed run cuts as the uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def released_rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
    """TRL ``rollout_func``: ``prompt_ids``, ``completion_ids``, ``logprobs``, ``env_mask``."""
    size = trainer.num_generations
    if len(prompts) % size or any(prompts[i] != prompts[i - i % size] for i in range(len(prompts))):
        raise ValueError(
            "the released recipe needs whole groups on each process: make "
            "per_device_train_batch_size * steps_per_generation a multiple of num_generations"
        )
    prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
    heads = list(range(0, len(prompts), size))
    sources, source_logps = trainer._generate_single_turn(
        [prompt_ids[i] for i in heads], None, {}, 1
    )
    step = int(trainer.state.global_step)
    rng = np.random.default_rng([trainer.args.seed, step, trainer.accelerator.process_index])
    cuts = []
    for source in sources:
        split = trainer.split(source)
        cut = int(rng.integers(len(split.spans)))
        cuts.append((split.spans[cut][0], split.prefixes[cut]))
    rows = [trainer._mrt_inputs[i] for i in heads]
    prefix_j = trainer.estimate_j(
        [trainer.request(r, p) for r, (_, p) in zip(rows, cuts, strict=True)]
    )
    starts = [
        list(prompt_ids[i]) + list(source[:tokens])
        for i, source, (tokens, _) in zip(heads, sources, cuts, strict=True)
        for _ in range(size - 1)
    ]
    continued, continued_logps = (
        trainer._generate_single_turn(starts, None, {}, 1) if starts else ([], None)
    )
    limit = trainer.max_completion_length
    completions, masks, logps, released = [], [], [], []
    for group, (source, (tokens, _)) in enumerate(zip(sources, cuts, strict=True)):
        members = [list(source)] + [
            list(source[:tokens]) + list(c)[: max(limit - tokens, 0)]
            for c in continued[group * (size - 1) : (group + 1) * (size - 1)]
        ]
        for member_index, member in enumerate(members):
            completions.append(member)
            masks.append([0] * tokens + [1] * (len(member) - tokens))
            released.append((tokens, float(prefix_j[group])))
            logps.append(
                _member_logps(
                    source_logps, continued_logps, (group, member_index, size), tokens, limit
                )
            )
    trainer._released_rows = released
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completions,
        "logprobs": None if source_logps is None else logps,
        "env_mask": masks,
    }


def _member_logps(
    source: Any, continued: Any, where: tuple[int, int, int], tokens: int, limit: int
) -> list[float] | None:
    """Sampling log-probabilities of one member (vLLM only): the prefix's, then its own."""
    group, member, size = where
    if source is None:
        return None
    if member == 0:
        return list(source[group])
    own = continued[group * (size - 1) + member - 1]
    return list(source[group][:tokens]) + list(own)[: max(limit - tokens, 0)]
