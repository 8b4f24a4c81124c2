"""Skip the optimizer step when no loss term has a gradient (every advantage is 0, no KL).

The native trainer's rule (:meth:`agents.update.Learner.policy_gradient`) on TRL: with every
advantage 0, no KL term (``beta == 0``), no entropy bonus and no auxiliary (router) loss, the
GRPO loss has no gradient, yet AdamW would still move the weights through weight decay and
momentum. :class:`SkipZeroAdvantageSteps` then hands TRL's training loop a zero loss that is
not connected to the model, so no gradient is written; ``torch.optim`` optimizers leave a
parameter without a gradient untouched (no decay, no momentum, no step count), so the weights
and the optimizer state stay as they were. The learning-rate schedule still advances (TRL
counts the step; ``mrt-train``'s schedule is constant).

Every process must agree (a micro-batch skipped on one process and trained on another would
hang DDP's gradient all-reduce), so the decision counts the non-zero advantages of all
processes. Under DeepSpeed the engine applies its optimizer to its own gradient buffers, so
nothing is skipped there.

Logged as ``mrt/skipped_update``: per micro-batch 1 (skipped) or 0, averaged over a logging
window by TRL (1 = the whole optimizer step was skipped).
"""

from __future__ import annotations

from typing import Any

import torch

SKIPPED = "mrt/skipped_update"
"""The metric: 1 when the micro-batch carried no gradient and was skipped."""


class SkipZeroAdvantageSteps:
    """Mixin for ``trl.GRPOTrainer`` subclasses (before ``GRPOTrainer`` in the bases)."""

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """TRL's loss, or a zero loss without any gradient when :meth:`no_gradient`."""
        trainer: Any = self
        if not trainer.model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        skip = self.no_gradient(inputs["advantages"])
        trainer._metrics["train"][SKIPPED].append(float(skip))
        if skip:
            return torch.zeros((), device=inputs["advantages"].device, requires_grad=True)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]

    def no_gradient(self, advantages: torch.Tensor) -> bool:
        """Whether the loss of this micro-batch, on every process, has no gradient: every
        advantage is 0 and no other loss term (KL, entropy bonus, auxiliary loss) is on."""
        trainer: Any = self
        from accelerate.utils import DistributedType

        if trainer.accelerator.distributed_type == DistributedType.DEEPSPEED:
            return False
        other_terms = (
            trainer.beta != 0.0,
            getattr(trainer, "entropy_coef", 0.0) != 0.0,
            getattr(trainer, "use_adaptive_entropy", False),
            getattr(trainer, "aux_loss_enabled", False),
        )
        if any(other_terms):
            return False
        nonzero = torch.count_nonzero(advantages).reshape(1).float()
        return bool(trainer.accelerator.reduce(nonzero, reduction="sum").item() == 0)
