"""Learner.policy_gradient: micro-batch gradient accumulation equals one large batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.config import TrainConfig
from agents.types import EpisodeRecord, Trajectory
from agents.update import Learner
from mrt_env.lm.testing import tiny_random_model


def batch(seed: int) -> tuple[list[Trajectory], list[np.ndarray]]:
    """Five trajectories of different lengths, some prefix episodes frozen, mixed advantages."""
    rng = np.random.default_rng(seed)
    trajectories, advantages = [], []
    for i in range(5):
        prompt = [int(t) for t in rng.integers(4, 30, size=3 + i % 2)]
        response = [int(t) for t in rng.integers(4, 30, size=4 + 2 * i)]
        half = len(response) // 2
        episodes = [
            EpisodeRecord(0, half, "a", 0.0, None, None, half, trainable=i % 2 == 0),
            EpisodeRecord(half, len(response), "b", 0.0, None, None, len(response) - half),
        ]
        trajectories.append(Trajectory(f"p{i}", i, "q", prompt, response, episodes))
        advantages.append(rng.normal(size=len(response)).astype(np.float32))
    return trajectories, advantages


def updated_parameters(micro_batch_size: int, **overrides: float) -> list[torch.Tensor]:
    # float64: in float32 the summation order of the two sides differs by ~1e-3 after an
    # lr-0.5 step on some CPUs (AMD EPYC, torch 2.13); in float64 they agree to ~1e-12, so the
    # comparison can be tight and still hold on any machine.
    model = tiny_random_model(seed=0).double()
    config = TrainConfig(micro_batch_size=micro_batch_size, max_grad_norm=1e9, **overrides)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    reference = tiny_random_model(seed=1).double() if config.kl_coef > 0 else None
    learner = Learner(model, optimizer, reference, config, pad_id=0)
    learner.policy_gradient(*batch(seed=3))
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("overrides", [{}, {"kl_coef": 0.1}])
def test_gradient_accumulation_equals_one_large_batch(overrides: dict[str, float]) -> None:
    before = [p.detach().clone() for p in tiny_random_model(seed=0).double().parameters()]
    whole = updated_parameters(micro_batch_size=16, **overrides)  # one micro-batch of 5
    for size in (1, 2):
        accumulated = updated_parameters(micro_batch_size=size, **overrides)
        for a, b in zip(accumulated, whole, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    moved = max(float((a - b).abs().max()) for a, b in zip(whole, before, strict=True))
    assert moved > 1e-4  # the update did something, so the comparison means something


@pytest.mark.parametrize(
    ("zero", "kl_coef", "moves"),
    [(True, 0.0, False), (False, 0.0, True), (True, 0.1, True)],  # KL alone still trains
)
def test_all_zero_advantages_skip_the_adamw_step(zero: bool, kl_coef: float, moves: bool) -> None:
    model = tiny_random_model(seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    # weight decay and momentum would move the weights even with a zero gradient
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    reference = tiny_random_model(seed=1) if kl_coef else None
    learner = Learner(model, optimizer, reference, TrainConfig(kl_coef=kl_coef), pad_id=0)
    trajectories, advantages = batch(seed=3)
    if zero:
        advantages = [np.zeros_like(a) for a in advantages]
    metrics = learner.policy_gradient(trajectories, advantages)
    after = [p.detach() for p in model.parameters()]
    moved = max(float((a - b).abs().max()) for a, b in zip(after, before, strict=True))
    assert (moved > 0) is moves
    assert metrics["charts/skipped_update"] == (0.0 if moves else 1.0)
    assert bool(optimizer.state) is moves  # a skipped step leaves AdamW's state untouched
