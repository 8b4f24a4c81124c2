"""MRT-RL: outcome reward plus dense credit for progress (PAPER.md, "Training").

Two credit modes (:class:`agents.config.MRTConfig`):

- ``"released"`` (the released recipe): sample one trajectory per problem, cut it after a
  random number of episodes ``c``, continue the prefix ``group_size - 1`` more times (the
  source trajectory's own tail is the first continuation). The stop-now rollouts from the
  prefix are μ's K forced answers, whose mean 0/1 reward is ``J(prefix)`` — already computed by
  the env's meta-prover and cached. Advantage of a continuation: ``R - J(prefix)`` (the
  termination-reward baseline), on the continuation's tokens only.
- ``"progress"`` / ``"progress_to_go"`` (per-episode credit): GRPO groups; each episode's
  tokens get ``(R - mean_group(R) + alpha * bonus_j) / scale`` with ``bonus_j`` the progress
  ``J(c_{j+1}) - J(c_j)`` or ``J_final - J(c_j)``, from the J values the env computed during
  the rollout. Outcome and progress share the group scale (the outcome's group standard
  deviation with ``normalize_std``; 1 for a group whose outcomes are all equal), so ``alpha``
  weighs progress against the outcome the same way in every group.

The credit definitions are pure functions (:func:`per_episode_credit`,
:func:`released_credit`) shared with the TRL engine (:mod:`agents.trl`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from agents.config import CreditMode, MRTConfig
from agents.grpo import collect_rollouts as collect_groups
from agents.grpo import group_scales, outcome_advantages
from agents.rollout import RolloutRequest
from agents.types import Trajectory

if TYPE_CHECKING:
    from agents.session import TrainSession


JPair = tuple[float | None, float | None]
"""``(J(c_j), J(c_{j+1}))`` of one episode (``None`` where μ gave no estimate)."""


def episode_bonus_values(j_pairs: Sequence[JPair], mode: CreditMode) -> list[float]:
    """The per-episode progress term (before ``alpha``) from each episode's J pair.

    ``"progress"``: ``J(c_{j+1}) - J(c_j)``; ``"progress_to_go"``: ``J_final - J(c_j)`` where
    ``J_final`` is J after the last episode (the env's ``final_j``: μ's estimate by default). An
    episode whose J values are unknown gets 0 (the progress reward abstains). This pure function
    is the one definition both training engines (``agents`` and :mod:`agents.trl`) use.

    Example:
        >>> episode_bonus_values([(0.25, 0.5), (0.5, 1.0)], "progress_to_go")
        [0.75, 0.5]
    """
    if mode == "progress":
        return [a - b if a is not None and b is not None else 0.0 for b, a in j_pairs]
    if mode != "progress_to_go":
        raise ValueError(
            f"episode bonuses need credit 'progress' or 'progress_to_go', got {mode!r}"
        )
    final = j_pairs[-1][1] if j_pairs else None
    return [final - b if final is not None and b is not None else 0.0 for b, _ in j_pairs]


def episode_bonuses(trajectory: Trajectory, mode: CreditMode) -> list[float]:
    """:func:`episode_bonus_values` of a collected trajectory's episodes.

    Example:
        >>> from agents.types import EpisodeRecord
        >>> t = Trajectory("p", 0, "q", [])
        >>> t.episodes = [EpisodeRecord(0, 0, "", 0.0, 0.25, 0.5, 1),
        ...               EpisodeRecord(0, 0, "", 1.0, 0.5, 1.0, 1)]
        >>> episode_bonuses(t, "progress"), episode_bonuses(t, "progress_to_go")
        ([0.25, 0.5], [0.75, 0.5])
    """
    return episode_bonus_values([(e.j_before, e.j_after) for e in trajectory.episodes], mode)


def episode_token_advantages(
    length: int,
    spans: Sequence[tuple[int, int]],
    bonuses: Sequence[float],
    base: float,
    alpha: float,
    scale: float = 1.0,
) -> np.ndarray:
    """Token advantages of one trajectory: ``(base_raw + alpha * bonus) / scale`` per episode.

    ``base`` is the already-scaled outcome advantage (``(R - mean) / scale``), so every token
    of episode ``j`` gets ``base + alpha * bonuses[j] / scale``; tokens outside every span get
    0.

    Example:
        >>> episode_token_advantages(4, [(0, 1), (1, 4)], [0.5, -0.5], 1.0, 2.0, 2.0).tolist()
        [1.5, 0.5, 0.5, 0.5]
    """
    tokens = np.zeros(length, dtype=np.float32)
    for (start, end), bonus in zip(spans, bonuses, strict=True):
        tokens[start:end] = float(base) + alpha * bonus / scale
    return tokens


def per_episode_credit(
    rewards: Sequence[float] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    j_pairs: Sequence[Sequence[JPair]],
    spans: Sequence[Sequence[tuple[int, int]]],
    lengths: Sequence[int],
    *,
    alpha: float,
    mode: CreditMode,
    normalize_std: bool = True,
) -> list[np.ndarray]:
    """MRT's per-episode credit of a batch, per response token (the shared definition).

    Each episode's tokens get ``(R - mean_group(R) + alpha * bonus) / scale`` where ``scale``
    is the group's reward spread (:func:`agents.grpo.group_scales`): outcome and progress are
    normalised by the same number, so ``alpha`` means the same in every group.

    Args:
        rewards: Reward of each trajectory.
        groups: Group of each trajectory.
        j_pairs: Per trajectory, the ``(J before, J after)`` of each episode.
        spans: Per trajectory, each episode's ``(start, end)`` token span in the response.
        lengths: Response length (tokens) of each trajectory.
        alpha: Weight of the progress term.
        mode: ``"progress"`` or ``"progress_to_go"``.
        normalize_std: Divide by the group's standard deviation.

    Example:
        >>> [a, b] = per_episode_credit([1, 0], [0, 0], [[(0.5, 1.0)], [(0.5, 0.0)]],
        ...                             [[(0, 2)], [(0, 1)]], [2, 1], alpha=1.0,
        ...                             mode="progress", normalize_std=False)
        >>> a.tolist(), b.tolist()
        ([1.0, 1.0], [-1.0])
    """
    outcome = outcome_advantages(rewards, groups, normalize_std)
    scales = group_scales(rewards, groups, normalize_std)
    return [
        episode_token_advantages(
            length, span, episode_bonus_values(pairs, mode), base, alpha, scale
        )
        for length, span, pairs, base, scale in zip(
            lengths, spans, j_pairs, outcome, scales, strict=True
        )
    ]


def per_episode_advantages(
    trajectories: Sequence[Trajectory],
    outcome_advantage: Sequence[float] | np.ndarray,
    alpha: float,
    mode: CreditMode,
    scales: Sequence[float] | np.ndarray | None = None,
) -> list[np.ndarray]:
    """Token advantages: trajectory outcome advantage + ``alpha`` * the episode's bonus / scale.

    Args:
        trajectories: Collected trajectories with per-episode J values.
        outcome_advantage: One outcome advantage per trajectory (e.g. GRPO's).
        alpha: Weight of the progress term.
        mode: ``"progress"`` or ``"progress_to_go"``.
        scales: Per trajectory, what the progress term is divided by (the outcome's group
            scale); 1 when ``None``.

    Returns:
        One array per trajectory with an advantage per response token.
    """
    scales = np.ones(len(trajectories)) if scales is None else scales
    return [
        episode_token_advantages(
            len(t.response_ids),
            [(e.token_start, e.token_end) for e in t.episodes],
            episode_bonuses(t, mode),
            float(base),
            alpha,
            float(scale),
        )
        for t, base, scale in zip(trajectories, outcome_advantage, scales, strict=True)
    ]


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


def released_credit(
    outcomes: Sequence[float] | np.ndarray,
    prefix_j: Sequence[float] | np.ndarray,
    prefix_tokens: Sequence[int],
    lengths: Sequence[int],
) -> list[np.ndarray]:
    """The released recipe per response token: ``R - J(prefix)`` on the continuation's tokens.

    The first ``prefix_tokens[i]`` tokens of response ``i`` are the replayed prefix: they get
    0 (and no gradient: both engines mask them out of the loss). This is the one definition
    both training engines use.

    Example:
        >>> [a] = released_credit([1.0], [0.25], [2], [4])
        >>> a.tolist()
        [0.0, 0.0, 0.75, 0.75]
    """
    advantage = termination_baseline_advantages(outcomes, prefix_j)
    result = []
    for value, prefix, length in zip(advantage, prefix_tokens, lengths, strict=True):
        if not 0 <= prefix <= length:
            raise ValueError(f"prefix of {prefix} tokens outside a response of {length}")
        tokens = np.full(length, value, dtype=np.float32)
        tokens[:prefix] = 0.0
        result.append(tokens)
    return result


def prefix_tokens(trajectory: Trajectory) -> int:
    """Response tokens before the first trainable episode (the replayed prefix)."""
    for episode in trajectory.episodes:
        if episode.trainable:
            return episode.token_start
    return len(trajectory.response_ids)


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


def check_reward_source(config: MRTConfig, reward: str) -> None:
    """Reject reward sources the credit mode cannot use.

    The released recipe's baseline ``J(prefix)`` is a probability of a correct 0/1 outcome, so
    its advantage ``R - J(prefix)`` needs ``R`` to be the outcome; ``reward="return"`` (summed
    env rewards) would silently subtract a probability from a different quantity.

    Example:
        >>> check_reward_source(MRTConfig(credit="released"), "return")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --credit released needs --reward outcome ...
    """
    if config.credit == "released" and reward != "outcome":
        raise ValueError(
            "--credit released needs --reward outcome (R - J(prefix) compares the 0/1 outcome "
            f"with a probability of success); got --reward {reward!r}"
        )


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
        """Per-episode credit (:func:`per_episode_credit`) of ``rewards`` and the J values."""
        return per_episode_credit(
            rewards,
            [t.group for t in trajectories],
            [[(e.j_before, e.j_after) for e in t.episodes] for t in trajectories],
            [[(e.token_start, e.token_end) for e in t.episodes] for t in trajectories],
            [len(t.response_ids) for t in trajectories],
            alpha=self.config.alpha,
            mode=self.config.credit,
            normalize_std=self.config.normalize_std,
        )

    def train_step(self, session: TrainSession, seed: int) -> dict[str, float]:
        """Rollouts, advantages and one policy-gradient update; returns the step's metrics."""
        check_reward_source(self.config, session.config.reward)
        if self.config.credit == "released":
            trajectories, baselines = collect_continuations(session, seed)
            tokens = released_credit(
                [t.outcome for t in trajectories],
                baselines,
                [prefix_tokens(t) for t in trajectories],
                [len(t.response_ids) for t in trajectories],
            )
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
        prover = session.collector.components.prover
        metrics["prover/learned"] = float(getattr(prover, "source", "sampled") == "learned")
        update = getattr(prover, "update", None)  # a hybrid μ's online head update
        if callable(update):
            metrics.update(update())
        return {**session.rollout_metrics(trajectories), **metrics}
