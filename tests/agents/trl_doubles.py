"""A real TRL ``MRTGRPOTrainer`` on the tiny random test double, with scripted completions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.config import MRTConfig

PROMPT = "Problem: 1+1?\n<think>\n"


def tiny_trl_trainer(
    tmp_path: Path,
    completions: Callable[[], list[str]],
    prover: Any,
    credit: str,
    groups: int,
    size: int,
    final_j: str = "prover",
    **config: Any,
) -> Any:
    """An ``MRTGRPOTrainer`` on ``random-tiny`` whose completions are ``completions()`` (a
    TRL ``rollout_func``; TRL samples them with ``credit="released"``; ``credit="grpo"``:
    outcome-only GRPO, TRL's advantages), ``groups`` prompts of
    ``size`` completions per batch, J from ``prover``; ``config`` overrides ``GRPOConfig``."""
    from datasets import Dataset
    from trl import GRPOConfig

    from agents.session import load_language_model
    from agents.trl.rewards import OutcomeReward
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    lm = load_language_model("random-tiny", "cpu", 0)

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        texts = completions()
        assert len(texts) == len(prompts)
        return {
            "prompt_ids": [lm.encode(p) for p in prompts],
            "completion_ids": [lm.encode(t) for t in texts],
            "logprobs": None,
        }

    dataset = Dataset.from_dict(
        {
            "prompt": [PROMPT.replace("1+1", f"{g + 1}+1") for g in range(groups)],
            "answer": [str(g + 2) for g in range(groups)],
            "problem_id": [f"p{g}" for g in range(groups)],
        }
    )
    settings: dict[str, Any] = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": groups * size,
        "num_generations": size,
        "max_completion_length": 64,
        "use_cpu": True,
        "report_to": [],
        "seed": 0,
        "shuffle_dataset": False,
    }
    args = GRPOConfig(**(settings | config))
    return MRTGRPOTrainer(
        lm.model,
        reward_funcs=[OutcomeReward()],
        args=args,
        train_dataset=dataset,
        processing_class=lm.tokenizer,
        rollout_func=None if credit == "released" else rollout,
        mrt=MRTSettings(
            credit=None if credit == "grpo" else MRTConfig(credit=credit, alpha=1.0),  # type: ignore[arg-type]
            prover=prover,
            final_j=final_j,  # type: ignore[arg-type]
        ),
    )
