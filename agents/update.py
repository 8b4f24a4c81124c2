"""Gradient updates shared by the trainers: clipped policy gradient (+ KL) and SFT."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.config import TrainConfig
from agents.losses import (
    TokenBatch,
    build_token_batch,
    clipped_policy_loss,
    kl_penalty,
    sft_loss,
    token_logprobs,
)
from agents.types import Trajectory


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Recompute ``model``'s decoder-layer activations in the backward pass (transformers)."""
    kwargs = {"use_reentrant": False}
    enable: Any = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.x
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    elif (enable := getattr(model, "gradient_checkpointing_enable", None)) is not None:
        enable(gradient_checkpointing_kwargs=kwargs)
    else:
        raise ValueError(
            f"gradient checkpointing is on but {type(model).__name__} cannot enable it "
            "(not a transformers model); set gradient_checkpointing=False"
        )


@dataclass
class Learner:
    """The trained model with its optimizer and (optional) frozen reference.

    Attributes:
        model: The policy's torch model (shared with the policy's language model).
        optimizer: AdamW over ``model``'s parameters.
        reference: Frozen reference model for the KL penalty (``None`` when ``kl_coef == 0``).
        config: The training settings.
        pad_id: Padding token id.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    reference: torch.nn.Module | None
    config: TrainConfig
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.config.use_gradient_checkpointing:
            enable_checkpointing(self.model)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on CUDA, nothing on CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def set_learning_rate(self, step: int) -> float:
        """Linear warm-up to ``config.lr``, constant afterwards (stateless, resumable)."""
        warmup = self.config.warmup_steps
        lr = self.config.lr * min(1.0, (step + 1) / warmup) if warmup > 0 else self.config.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _micro_batches(self, batch: TokenBatch) -> Iterator[TokenBatch]:
        size = self.config.micro_batch_size
        for start in range(0, len(batch), size):
            yield batch.slice(start, min(start + size, len(batch))).to(self.device)

    def _logprobs(self, model: torch.nn.Module, micro: TokenBatch) -> torch.Tensor:
        with self.autocast():
            return token_logprobs(
                model,
                micro.input_ids,
                micro.attention_mask,
                self.config.policy.temperature,
                chunk_tokens=self.config.loss_chunk_tokens,
            )

    def _optimizer_step(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def policy_gradient(
        self, trajectories: Sequence[Trajectory], token_advantages: Sequence[np.ndarray]
    ) -> dict[str, float]:
        """Clipped policy-gradient update(s) on one rollout batch (+ KL to the reference).

        When every advantage is 0 and there is no KL term the loss has no gradient, yet
        AdamW would still move the weights (weight decay, momentum): the step is skipped
        (``charts/skipped_update`` = 1, no optimizer state changes).

        Returns:
            ``losses/policy``, ``losses/kl``, ``losses/clip_fraction``, ``losses/grad_norm``,
            ``charts/trained_tokens`` and ``charts/skipped_update``.
        """
        with_kl = self.reference is not None and self.config.kl_coef > 0
        if not with_kl and not any(np.any(a != 0) for a in token_advantages):
            zero = {"losses/policy": 0.0, "losses/kl": 0.0, "losses/clip_fraction": 0.0}
            return {
                **zero,
                "losses/grad_norm": 0.0,
                "charts/trained_tokens": 0.0,
                "charts/skipped_update": 1.0,
            }
        batch = build_token_batch(trajectories, token_advantages, self.pad_id)
        num_tokens = float(batch.loss_mask.sum().clamp(min=1.0))
        self.model.train()
        old: list[torch.Tensor] = []
        if self.config.updates_per_batch > 1:
            with torch.no_grad():
                old = [self._logprobs(self.model, m).detach() for m in self._micro_batches(batch)]
        totals = {"policy": 0.0, "kl": 0.0, "clipped": 0.0, "grad_norm": 0.0}
        for _ in range(self.config.updates_per_batch):
            for index, micro in enumerate(self._micro_batches(batch)):
                logprobs = self._logprobs(self.model, micro)
                previous = old[index] if old else logprobs.detach()
                loss, clipped = clipped_policy_loss(
                    logprobs,
                    previous,
                    micro.advantages,
                    micro.loss_mask,
                    self.config.clip_eps,
                    num_tokens,
                )
                totals["policy"] += float(loss.detach())
                totals["clipped"] += float(clipped)
                if self.reference is not None and self.config.kl_coef > 0:
                    with torch.no_grad():
                        reference = self._logprobs(self.reference, micro)
                    kl = kl_penalty(logprobs, reference, micro.loss_mask, num_tokens)
                    totals["kl"] += float(kl.detach())
                    loss = loss + self.config.kl_coef * kl
                loss.backward()
            totals["grad_norm"] += self._optimizer_step()
        self.model.eval()
        updates = self.config.updates_per_batch
        return {
            "losses/policy": totals["policy"] / updates,
            "losses/kl": totals["kl"] / updates,
            "losses/clip_fraction": totals["clipped"] / (num_tokens * updates),
            "losses/grad_norm": totals["grad_norm"] / updates,
            "charts/trained_tokens": num_tokens,
            "charts/skipped_update": 0.0,
        }

    def supervised(self, trajectories: Sequence[Trajectory], epochs: int) -> dict[str, float]:
        """Supervised fine-tuning (token-mean NLL) on the trainable tokens of ``trajectories``.

        Returns:
            ``losses/sft`` (mean over epochs), ``losses/grad_norm``, ``charts/trained_tokens``.
        """
        if not trajectories:
            return {"losses/sft": float("nan"), "charts/trained_tokens": 0.0}
        ones = [np.ones(len(t.response_ids), dtype=np.float32) for t in trajectories]
        batch = build_token_batch(trajectories, ones, self.pad_id)
        num_tokens = float(batch.loss_mask.sum().clamp(min=1.0))
        self.model.train()
        total, norm = 0.0, 0.0
        for _ in range(epochs):
            for micro in self._micro_batches(batch):
                loss = sft_loss(self._logprobs(self.model, micro), micro.loss_mask, num_tokens)
                loss.backward()
                total += float(loss.detach())
            norm += self._optimizer_step()
        self.model.eval()
        return {
            "losses/sft": total / epochs,
            "losses/grad_norm": norm / epochs,
            "charts/trained_tokens": num_tokens,
        }
