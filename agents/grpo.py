"""Outcome-only GRPO: the baseline MRT is compared against.

One step: sample ``problems_per_step`` problems, ``group_size`` trajectories each
(:func:`collect_rollouts`); advantage of a trajectory = its 0/1 outcome minus its group's mean,
optionally divided by the group's standard deviation (:func:`outcome_advantages`); every
response token of the trajectory gets that advantage; clipped policy-gradient loss with an
optional KL penalty to the reference (:meth:`agents.update.Learner.policy_gradient`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.config import GRPOConfig
from agents.rollout import group_requests
from agents.types import Trajectory

if TYPE_CHECKING:
    from agents.session import TrainSession

STD_EPS = 1e-6
"""Added to a group's standard deviation before dividing by it."""


def collect_rollouts(session: TrainSession, seed: int) -> list[Trajectory]:
    """``group_size`` trajectories for each of ``problems_per_step`` sampled problems."""
    rng = np.random.default_rng(seed)
    problems = session.sample_problems(rng)
    requests = group_requests(problems, session.config.group_size)
    return session.collect(requests, int(rng.integers(2**31 - 1)))


def group_scales(
    outcomes: Sequence[float] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    normalize_std: bool = True,
) -> np.ndarray:
    """The scale each trajectory's credit is divided by: its group's reward spread.

    With ``normalize_std`` the scale is the group's population standard deviation plus
    :data:`STD_EPS`; a group whose rewards are all equal (std <= ``STD_EPS``) has scale 1, so
    whatever credit it gets (its outcome term is 0) keeps its raw size. Without it every scale
    is 1. The outcome advantage and MRT's per-episode progress term are divided by the same
    scale, so their ratio is ``alpha`` in every group.

    Example:
        >>> group_scales([1, 0, 1, 1], [0, 0, 1, 1]).round(3).tolist()
        [0.5, 0.5, 1.0, 1.0]
    """
    rewards = np.asarray(outcomes, dtype=np.float64)
    group_ids = np.asarray(groups)
    if rewards.shape != group_ids.shape or rewards.ndim != 1:
        raise ValueError(
            f"outcomes {rewards.shape} and groups {group_ids.shape} must be 1-D, equal"
        )
    scales = np.ones_like(rewards)
    if not normalize_std:
        return scales
    for group in np.unique(group_ids):
        members = group_ids == group
        std = float(rewards[members].std())
        scales[members] = std + STD_EPS if std > STD_EPS else 1.0
    return scales


def outcome_advantages(
    outcomes: Sequence[float] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    normalize_std: bool = True,
) -> np.ndarray:
    """Group-relative advantages: ``(R - mean_group(R)) / scale`` (see :func:`group_scales`).

    The standard deviation is the population one (``ddof=0``); a group whose rewards are all
    equal gets advantage 0.

    Args:
        outcomes: Reward of each trajectory.
        groups: Group index of each trajectory (trajectories of a group share a problem).
        normalize_std: Divide by the group's standard deviation.

    Example:
        >>> outcome_advantages([1, 0, 0, 0], [0, 0, 0, 0], normalize_std=False).tolist()
        [0.75, -0.25, -0.25, -0.25]
    """
    rewards = np.asarray(outcomes, dtype=np.float64)
    scales = group_scales(rewards, groups, normalize_std)
    group_ids = np.asarray(groups)
    advantages = np.zeros_like(rewards)
    for group in np.unique(group_ids):
        members = group_ids == group
        advantages[members] = rewards[members] - rewards[members].mean()
    return advantages / scales


def broadcast_advantages(
    trajectories: Sequence[Trajectory], advantages: Sequence[float] | np.ndarray
) -> list[np.ndarray]:
    """Every response token of trajectory ``i`` gets ``advantages[i]``."""
    return [
        np.full(len(t.response_ids), float(a), dtype=np.float32)
        for t, a in zip(trajectories, advantages, strict=True)
    ]


class GRPO:
    """Outcome-only GRPO over :class:`agents.session.TrainSession`.

    Args:
        config: GRPO settings.
    """

    name = "grpo"
    needs_prover = False

    def __init__(self, config: GRPOConfig | None = None) -> None:
        self.config = config or GRPOConfig()

    def train_step(self, session: TrainSession, seed: int) -> dict[str, float]:
        """Rollouts, advantages and one policy-gradient update; returns the step's metrics."""
        trajectories = collect_rollouts(session, seed)
        advantages = outcome_advantages(
            [session.reward_of(t) for t in trajectories],
            [t.group for t in trajectories],
            self.config.normalize_std,
        )
        metrics = session.learner.policy_gradient(
            trajectories, broadcast_advantages(trajectories, advantages)
        )
        metrics["charts/advantage_abs"] = float(np.abs(advantages).mean())
        return {**session.rollout_metrics(trajectories), **metrics}
