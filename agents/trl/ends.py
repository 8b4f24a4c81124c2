"""How a TRL completion ended, graded as the env grades a trajectory's end (:mod:`mrt_env.grading`).

A completion that closed its thinking or ended with EOS is *finished*; one that reached
``max_completion_length`` is *truncated*. :func:`grade_ends` (called by
:class:`~agents.trl.trainer.MRTGRPOTrainer` before TRL's reward functions run) hands the reward
functions a truncated completion's thinking + the termination suffix + the policy's forced
answer (``truncation="forced_answer"``), or gives :class:`~agents.trl.rewards.OutcomeReward`
μ's J of its thinking (``"expected"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.trl.episodes import CompletionEpisodes, prefix_seed
from agents.trl.rewards import completion_text
from mrt_env.grading import forced_prompt, forced_response, needs_forced_answer


@dataclass(frozen=True)
class CompletionEnd:
    """How one completion ended: its episodes and whether it finished (closed its thinking or
    ended with EOS) rather than being truncated at ``max_completion_length``."""

    split: CompletionEpisodes
    finished: bool


def problem_id_of(row: dict[str, Any]) -> str:
    """The problem id of a dataset row (its prompt when it has no ``problem_id``).

    Example:
        >>> problem_id_of({"prompt": "Q", "problem_id": 7}), problem_id_of({"prompt": "Q"})
        ('7', 'Q')
    """
    return str(row.get("problem_id", row["prompt"]))


def grade_ends(
    trainer: Any, inputs: list[dict[str, Any]], completions: list[Any], ids_list: list[Any]
) -> list[Any]:
    """How each completion ended; a truncated one is graded as the env grades it.

    Returns the completions the reward functions grade: a truncated completion becomes its
    thinking + the termination suffix + the policy's forced answer
    (``truncation="forced_answer"``); under ``"expected"`` every row gets an
    ``expected_outcome`` column (μ's J of a truncated completion's thinking, else
    ``None``) that :class:`~agents.trl.rewards.OutcomeReward` uses.
    """
    stops = {*trainer.eos_token_ids, trainer._tokenizer.pad_token_id}
    ends = []
    for ids in ids_list:
        split = trainer.split(list(ids))
        ends.append(
            CompletionEnd(split, split.ended_thinking or (len(ids) > 0 and ids[-1] in stops))
        )
    trainer._ends = ends
    truncated = [i for i, end in enumerate(ends) if not end.finished]
    graded = list(completions)
    expected: list[float | None] = [None] * len(inputs)
    if needs_forced_answer(True, trainer.mrt.truncation):
        thinking = [ends[i].split.thinking for i in truncated]
        prompts = [
            forced_prompt(trainer.chat, inputs[i]["prompt"], t)
            for i, t in zip(truncated, thinking, strict=True)
        ]
        seeds = [
            prefix_seed(
                trainer.args.seed,
                int(trainer.state.global_step),
                problem_id_of(inputs[i]),
                "forced\0" + t,
            )
            for i, t in zip(truncated, thinking, strict=True)
        ]
        answers = trainer.forced_answers(prompts, seeds)
        for i, t, answer in zip(truncated, thinking, answers, strict=True):
            text = forced_response(trainer.chat, inputs[i]["prompt"], t, answer)
            graded[i] = (
                text
                if isinstance(completions[i], str)
                else [{"role": "assistant", "content": text}]
            )
    else:
        requests = [trainer.request(inputs[i], ends[i].split.thinking) for i in truncated]
        for i, value in zip(truncated, trainer.estimate_j(requests), strict=True):
            expected[i] = value
        for row, given in zip(inputs, expected, strict=True):
            row["expected_outcome"] = given
    trainer._graded = [completion_text(g) for g in graded]
    return graded
