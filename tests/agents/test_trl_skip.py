"""TRL engine: an optimizer step whose every advantage is 0 (and no KL term) is skipped.

A real ``MRTGRPOTrainer`` on the tiny random test double trains one step on completions fixed
by a TRL ``rollout_func``, with J from a ``TableMetaProver`` double (0 everywhere). AdamW with
weight decay would move every weight even on a zero gradient, so byte-identical weights show
that the step was skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("trl")

from mrt_env.prover.table import TableMetaProver
from tests.agents.trl_doubles import tiny_trl_trainer

RIGHT = "1+1=2.\n\nWait, yes.</think>\\boxed{2}"
WRONG = "1+1=3.\n\nWait, no.</think>\\boxed{3}"


def _one_step(tmp_path: Path, completions: list[str], credit: str) -> tuple[bool, Any, float]:
    """(weights unchanged, the trainer, logged ``mrt/skipped_update``) after one step."""
    trainer = tiny_trl_trainer(
        tmp_path,
        lambda: list(completions),
        TableMetaProver(lambda request: 0.0),
        credit,
        1,
        len(completions),
        "outcome",
        max_steps=1,
        learning_rate=1e-2,
        weight_decay=0.1,  # moves every weight on a zero gradient unless the step is skipped
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    unchanged = all(
        torch.equal(before[name], p.detach()) for name, p in trainer.model.named_parameters()
    )
    [logged] = [h for h in trainer.state.log_history if "mrt/skipped_update" in h]
    return unchanged, trainer, logged["mrt/skipped_update"]


@pytest.mark.parametrize("credit", ["progress", "grpo"])
def test_all_equal_rewards_skip_the_step_and_leave_weights_and_optimizer_untouched(
    tmp_path: Path, credit: str
) -> None:
    unchanged, trainer, skipped = _one_step(tmp_path, [WRONG, WRONG], credit)
    if credit == "progress":  # MRT's advantages (GRPO's are TRL's: 0 for equal rewards)
        assert not any(bool(a.any()) for a in trainer.last_credit.advantages)
    assert skipped == 1.0
    assert unchanged  # byte-identical: no weight decay, no momentum
    assert not trainer.optimizer.state  # AdamW made no state for any parameter


@pytest.mark.parametrize("credit", ["progress", "grpo"])
def test_non_zero_advantages_train(tmp_path: Path, credit: str) -> None:
    unchanged, trainer, skipped = _one_step(tmp_path, [RIGHT, WRONG], credit)
    assert skipped == 0.0
    assert not unchanged
    assert trainer.optimizer.state


@pytest.mark.parametrize(
    ("setting", "value"), [("beta", 0.1), ("entropy_coef", 0.01), ("aux_loss_enabled", True)]
)
def test_another_loss_term_keeps_the_step(tmp_path: Path, setting: str, value: Any) -> None:
    # a KL term (toward the reference), an entropy bonus or a router loss has a gradient of its
    # own even when every advantage is 0 (a KL run needs a reference model the tiny double
    # cannot load by name, so the decision is checked here, not a whole step)
    trainer = tiny_trl_trainer(tmp_path, list, TableMetaProver(lambda r: 0.0), "progress", 1, 2)
    zeros, ones = torch.zeros(2, 5), torch.ones(2, 5)
    assert trainer.no_gradient(zeros) and not trainer.no_gradient(ones)
    setattr(trainer, setting, value)
    assert not trainer.no_gradient(zeros)
