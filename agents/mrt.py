"""MRT-RL: outcome reward plus dense credit for progress (PAPER.md, "Training").

Two credit modes (:class:`agents.config.MRTConfig`):

- ``"released"`` (the released recipe): sample one trajectory per problem, cut it after a
  random number of episodes ``c``, continue the prefix ``group_size - 1`` more times (the
  source trajectory's own tail is the first continuation). The stop-now rollouts from the
  prefix are μ's K forced answers, whose mean 0/1 reward is ``J(prefix)`` — already computed by
  the env's meta-prover and cached. Advantage of a continuation: ``R - J(prefix)`` (the
  termination-reward baseline), on the continuation's tokens only.
- ``"progress"`` / ``"progress_to_go"`` (per-episode credit): GRPO groups; each episode's
  tokens get the group outcome advantage plus ``alpha * progress_j`` (``J(c_{j+1}) - J(c_j)``)
  or ``alpha * (J_final - J(c_j))``, from the J values the env computed during the rollout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.config import CreditMode, MRTConfig
from agents.grpo import collect_rollouts as collect_groups
from agents.grpo import outcome_advantages
from agents.rollout import RolloutRequest
from agents.types import Trajectory

if TYPE_CHECKING:
    from agents.session import TrainSession


def episode_bonuses(trajectory: Trajectory, mode: CreditMode) -> list[float]:
    """The per-episode progress term (before ``alpha``) of each episode.

    ``"progress"``: ``J(c_{j+1}) - J(c_j)``; ``"progress_to_go"``: ``J_final - J(c_j)`` where
    ``J_final`` is J after the last episode (the env's ``final_j``: μ's estimate by default). An
    episode whose J values are unknown gets 0 (the progress reward abstains).

    Example:
        >>> from agents.types import EpisodeRecord
        >>> t = Trajectory("p", 0, "q", [])
        >>> t.episodes = [EpisodeRecord(0, 0, "", 0.0, 0.25, 0.5, 1),
        ...               EpisodeRecord(0, 0, "", 1.0, 0.5, 1.0, 1)]
        >>> episode_bonuses(t, "progress"), episode_bonuses(t, "progress_to_go")
        ([0.25, 0.5], [0.75, 0.5])
    """
    if mode == "progress":
        return [e.progress if e.progress is not None else 0.0 for e in trajectory.episodes]
    if mode != "progress_to_go":
        raise ValueError(
            f"episode bonuses need credit 'progress' or 'progress_to_go', got {mode!r}"
        )
    final = trajectory.episodes[-1].j_after if trajectory.episodes else None
    return [
        final - e.j_before if final is not None and e.j_before is not None else 0.0
        for e in trajectory.episodes
    ]


def per_episode_advantages(
    trajectories: Sequence[Trajectory],
    outcome_advantage: Sequence[float] | np.ndarray,
    alpha: float,
    mode: CreditMode,
) -> list[np.ndarray]:
    """Token advantages: trajectory outcome advantage + ``alpha`` * the episode's bonus.

    Args:
        trajectories: Collected trajectories with per-episode J values.
        outcome_advantage: One outcome advantage per trajectory (e.g. GRPO's).
        alpha: Weight of the progress term.
        mode: ``"progress"`` or ``"progress_to_go"``.

    Returns:
        One array per trajectory with an advantage per response token.
    """
    result = []
    for trajectory, base in zip(trajectories, outcome_advantage, strict=True):
        tokens = np.zeros(len(trajectory.response_ids), dtype=np.float32)
        for episode, bonus in zip(
            trajectory.episodes, episode_bonuses(trajectory, mode), strict=True
        ):
            tokens[episode.token_start : episode.token_end] = float(base) + alpha * bonus
        result.append(tokens)
    return result


def termination_baseline_advantages(
    outcomes: Sequence[float] | np.ndarray, prefix_j: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Released-recipe advantage of each continuation: ``R - J(prefix)``.

    ``J(prefix)`` is the mean 0/1 reward of the stop-now (forced-answer) rollouts from the
    prefix the continuation started from.

    Example:
        >>> termination_baseline_advantages([1.0, 0.0], [0.25, 0.25]).tolist()
        [0.75, -0.25]
    """
    rewards, baseline = np.asarray(outcomes, float), np.asarray(prefix_j, float)
    if rewards.shape != baseline.shape:
        raise ValueError(f"outcomes {rewards.shape} and prefix_j {baseline.shape} differ")
    return rewards - baseline


def _cut(trajectory: Trajectory, rng: np.random.Generator) -> int:
    """A random cut ``c`` in ``0 .. len(episodes) - 1`` (the prefix keeps ``c`` episodes)."""
    return int(rng.integers(len(trajectory.episodes))) if trajectory.episodes else 0


def _freeze_prefix(trajectory: Trajectory, cut: int) -> Trajectory:
    """A copy of ``trajectory`` whose first ``cut`` episodes receive no gradient."""
    episodes = [
        dataclasses.replace(e, trainable=False) if i < cut else e
        for i, e in enumerate(trajectory.episodes)
    ]
    return dataclasses.replace(trajectory, episodes=episodes)


def collect_continuations(session: TrainSession, seed: int) -> tuple[list[Trajectory], np.ndarray]:
    """The released recipe's rollouts: sources, random cuts, continuations.

    Returns:
        The trainable trajectories (per problem: the source with its prefix frozen, then
        ``group_size - 1`` continuations) and ``J(prefix)`` for each of them.
    """
    rng = np.random.default_rng(seed)
    problems = session.sample_problems(rng)
    sources = session.collect(
        [RolloutRequest(p, g) for g, p in enumerate(problems)], int(rng.integers(2**31 - 1))
    )
    cuts = [_cut(t, rng) for t in sources]
    requests = [
        RolloutRequest(p, g, tuple(e.text for e in source.episodes[:cut]))
        for g, (p, source, cut) in enumerate(zip(problems, sources, cuts, strict=True))
        for _ in range(session.config.group_size - 1)
    ]
    continued = session.collect(requests, int(rng.integers(2**31 - 1))) if requests else []
    trajectories: list[Trajectory] = []
    baselines: list[float] = []
    for group, (source, cut) in enumerate(zip(sources, cuts, strict=True)):
        members = [_freeze_prefix(source, cut)] + [t for t in continued if t.group == group]
        j_prefix = source.j_values[cut] if source.j_values else None
        if j_prefix is None:
            raise ValueError("the released MRT recipe needs J(prefix): give the env a meta-prover")
        trajectories.extend(members)
        baselines.extend([float(j_prefix)] * len(members))
    return trajectories, np.asarray(baselines)


class MRT:
    """MRT-RL over :class:`agents.session.TrainSession`.

    Args:
        config: MRT settings (credit mode, alpha).
    """

    name = "mrt"
    needs_prover = True

    def __init__(self, config: MRTConfig | None = None) -> None:
        self.config = config or MRTConfig()

    def advantages(
        self, trajectories: Sequence[Trajectory], rewards: Sequence[float]
    ) -> list[np.ndarray]:
        """Per-episode credit: group advantage of ``rewards`` + alpha * bonus, per token."""
        outcome = outcome_advantages(
            rewards,
            [t.group for t in trajectories],
            self.config.normalize_std,
        )
        return per_episode_advantages(trajectories, outcome, self.config.alpha, self.config.credit)

    def train_step(self, session: TrainSession, seed: int) -> dict[str, float]:
        """Rollouts, advantages and one policy-gradient update; returns the step's metrics."""
        if self.config.credit == "released":
            trajectories, baselines = collect_continuations(session, seed)
            advantage = termination_baseline_advantages(
                [t.outcome for t in trajectories], baselines
            )
            tokens = [
                np.full(len(t.response_ids), a, np.float32)
                for t, a in zip(trajectories, advantage, strict=True)
            ]
        else:
            trajectories = collect_groups(session, seed)
            tokens = self.advantages(trajectories, [session.reward_of(t) for t in trajectories])
        metrics = session.learner.policy_gradient(trajectories, tokens)
        trained = (
            np.concatenate([t for t in tokens if len(t)])
            if any(len(t) for t in tokens)
            else np.zeros(1)
        )
        metrics["charts/advantage_abs"] = float(np.abs(trained).mean())
        return {**session.rollout_metrics(trajectories), **metrics}
