"""MRT-STaR: sample traces, keep correct ones that make the most progress, fine-tune on them.

One step: ``group_size`` trajectories per problem with J after every episode
(:func:`collect_rollouts`); per problem keep the ``keep_per_problem`` correct, terminated
traces with the highest progress score (:func:`progress_score`: the mean of J after each
episode — high when J rises early, i.e. low cumulative regret; ties go to fewer tokens)
(:func:`select_traces`); one supervised update on them (:meth:`agents.update.Learner.supervised`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.config import STaRConfig
from agents.grpo import collect_rollouts
from agents.types import Trajectory

if TYPE_CHECKING:
    from agents.session import TrainSession

__all__ = ["STaR", "collect_rollouts", "progress_score", "select_traces"]


def progress_score(trajectory: Trajectory) -> float:
    """Mean of J after each episode (unknown values skipped; ``-inf`` if none is known).

    Example:
        >>> from agents.types import EpisodeRecord
        >>> t = Trajectory("p", 0, "q", [])
        >>> t.episodes = [EpisodeRecord(0, 0, "", 0.0, 0.0, 0.5, 1),
        ...               EpisodeRecord(0, 0, "", 1.0, 0.5, 1.0, 1)]
        >>> progress_score(t)
        0.75
    """
    values = [e.j_after for e in trajectory.episodes if e.j_after is not None]
    return float(np.mean(values)) if values else float("-inf")


def select_traces(trajectories: Sequence[Trajectory], keep_per_problem: int) -> list[Trajectory]:
    """Per group, the correct terminated traces with the highest :func:`progress_score`."""
    kept: list[Trajectory] = []
    groups = sorted({t.group for t in trajectories})
    for group in groups:
        correct = [t for t in trajectories if t.group == group and t.outcome >= 1 and t.terminated]
        correct.sort(key=lambda t: (-progress_score(t), t.total_tokens))
        kept.extend(correct[:keep_per_problem])
    return kept


class STaR:
    """MRT-STaR over :class:`agents.session.TrainSession`.

    Args:
        config: STaR settings.
    """

    name = "star"
    needs_prover = True

    def __init__(self, config: STaRConfig | None = None) -> None:
        self.config = config or STaRConfig()

    def train_step(self, session: TrainSession, seed: int) -> dict[str, float]:
        """Rollouts, selection and one supervised update; returns the step's metrics."""
        trajectories = collect_rollouts(session, seed)
        kept = select_traces(trajectories, self.config.keep_per_problem)
        metrics = session.learner.supervised(kept, self.config.sft_epochs)
        metrics["charts/kept_traces"] = float(len(kept))
        return {**session.rollout_metrics(trajectories), **metrics}
