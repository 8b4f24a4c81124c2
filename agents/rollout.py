"""Rollout collection: groups of trajectories per problem over the batched vector env.

All trajectories of a batch run in one :class:`~mrt_env.vector.MRTMathVectorEnv`, so every
vector step makes one batched meta-prover call for all of them; the policy samples each
trajectory's text in one continuous generation (see :mod:`agents.policy`). A group shares its
problem (``reset(options={"problem": ..., "reset_mask": ...})``). A request may carry prefix
episodes: they are replayed through the env (not sampled, not trained on) before the policy
continues — MRT's continuations from a cut prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policy import LLMPolicy, token_offsets
from agents.types import EpisodeRecord, EpisodeSample, Trajectory
from mrt_env.config import Components, EnvConfig
from mrt_env.problems import Problem
from mrt_env.prover.base import ProverRequest
from mrt_env.spaces import FinalEpisode
from mrt_env.vector import MRTMathVectorEnv

SEED_BOUND = 2**31 - 1


@dataclass(frozen=True)
class RolloutRequest:
    """One trajectory to collect.

    Attributes:
        problem: The problem (a group shares it).
        group: Index of the group within the batch.
        prefix: Episode texts replayed before the policy continues (not trained on).
    """

    problem: Problem
    group: int
    prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Step:
    """One sub-environment's view of a vector step."""

    observation: str
    next_observation: str
    reward: float
    row: int
    infos: dict[str, Any]


def group_requests(problems: Sequence[Problem], group_size: int) -> list[RolloutRequest]:
    """``group_size`` requests per problem, group ``g`` for ``problems[g]``."""
    return [
        RolloutRequest(problem, group)
        for group, problem in enumerate(problems)
        for _ in range(group_size)
    ]


def info_value(infos: dict[str, Any], key: str, index: int) -> Any:
    """Sub-environment ``index``'s value of a vector ``info`` key, or ``None`` if unset."""
    if key not in infos or not bool(infos.get(f"_{key}", np.ones(index + 1, bool))[index]):
        return None
    value = infos[key][index]
    return value.item() if isinstance(value, np.generic) else value


def _kept_tokens(lm: Any, sample: EpisodeSample, kept_text: str) -> tuple[int, ...]:
    """The longest start of ``sample.token_ids`` whose text fits in ``kept_text``."""
    if kept_text == sample.text:
        return sample.token_ids
    _, offsets = token_offsets(lm, sample.token_ids)
    count = max((i for i, offset in enumerate(offsets) if offset <= len(kept_text)), default=0)
    return sample.token_ids[:count]


def _check_groups(requests: Sequence[RolloutRequest]) -> None:
    """Requests of one group must share a problem."""
    problems: dict[int, str] = {}
    for request in requests:
        if problems.setdefault(request.group, request.problem.id) != request.problem.id:
            raise ValueError(f"group {request.group} mixes problems")


class RolloutCollector:
    """Collects trajectories for rollout requests with an :class:`LLMPolicy`.

    Args:
        env_config: The env settings (problem source, μ, budgets, rewards).
        components: Built components shared by every vector env made here.
        policy: The policy (its ``lm`` is the trained model).

    Example:
        See :func:`agents.trainer.build_collector`, which builds one from a
        :class:`~agents.config.TrainConfig`.
    """

    def __init__(self, env_config: EnvConfig, components: Components, policy: LLMPolicy) -> None:
        self.env_config = env_config
        self.components = components
        self.policy = policy
        self._envs: dict[int, MRTMathVectorEnv] = {}
        self.env_steps = 0

    def envs(self, num_envs: int) -> MRTMathVectorEnv:
        """A vector env of ``num_envs`` sub-environments (cached by size)."""
        if num_envs not in self._envs:
            self._envs[num_envs] = MRTMathVectorEnv(
                num_envs, self.env_config, components=self.components
            )
        return self._envs[num_envs]

    def collect(
        self,
        requests: Sequence[RolloutRequest],
        seed: int,
        progress: Callable[[int], None] | None = None,
    ) -> list[Trajectory]:
        """Run every request to the end of its trajectory.

        Args:
            requests: One per trajectory; requests with the same ``group`` must share a problem.
            seed: Determines env (μ) and policy sampling for the whole batch.
            progress: Called after every vector step with the number of trajectories that
                ended in it (e.g. a progress bar's ``update``).

        Returns:
            One :class:`Trajectory` per request, in order.
        """
        if not requests:
            return []
        _check_groups(requests)
        envs = self.envs(len(requests))
        rng = np.random.default_rng(seed)
        # a stream of its own: with or without a meta-prover the policy samples the same
        self._prewarm_prover(requests, np.random.default_rng([seed, 1]))
        observations = self._reset_rows(envs, requests, range(len(requests)), rng)
        trajectories = [
            Trajectory(r.problem.id, r.group, obs, self.policy.lm.encode(obs))
            for r, obs in zip(requests, observations, strict=True)
        ]
        keys = [(seed, row) for row in range(len(requests))]
        live = list(range(len(requests)))
        while live:
            self._park(envs, requests, live, rng)
            actions = [""] * len(requests)
            samples = self._actions(requests, trajectories, observations, live, keys, rng, actions)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            self.env_steps += 1
            for row in live:
                step = _Step(observations[row], next_obs[row], float(rewards[row]), row, infos)
                self._record(trajectories[row], requests[row], step, samples.get(row))
                trajectories[row].terminated = bool(terminated[row])
            observations = list(next_obs)
            still = [row for row in live if not (terminated[row] or truncated[row])]
            if progress is not None:
                progress(len(live) - len(still))
            live = still
        self.policy.reset(keys)
        return trajectories

    def _prewarm_prover(self, requests: Sequence[RolloutRequest], rng: np.random.Generator) -> None:
        """Estimate J(empty thinking) of every problem in one batched meta-prover call.

        The per-problem resets that follow are then cache hits instead of one call each.
        """
        prover = self.components.prover
        if prover is None:
            return
        problems = {r.problem.id: r.problem for r in requests}
        template = self.components.template
        prover.estimate(
            [
                ProverRequest(
                    p.id,
                    template.render_prompt(p.problem),
                    p.answer,
                    "",
                    int(rng.integers(SEED_BOUND)),
                )
                for p in problems.values()
            ]
        )

    def _reset_rows(
        self,
        envs: MRTMathVectorEnv,
        requests: Sequence[RolloutRequest],
        rows: Sequence[int],
        rng: np.random.Generator,
    ) -> list[str]:
        """Reset ``rows`` on their requests' problems (one ``reset`` call per problem)."""
        observations = [""] * len(requests)
        seeds = [int(s) for s in rng.integers(SEED_BOUND, size=len(requests))]
        by_problem: dict[str, list[int]] = {}
        for row in rows:
            by_problem.setdefault(requests[row].problem.id, []).append(row)
        for members in by_problem.values():
            problem = requests[members[0]].problem
            if any(requests[row].problem != problem for row in members):
                raise ValueError(f"two different problems share the id {problem.id!r}")
            mask = np.zeros(len(requests), dtype=bool)
            mask[members] = True
            obs, _ = envs.reset(seed=seeds, options={"problem": problem, "reset_mask": mask})
            for row in members:
                observations[row] = obs[row]
        return observations

    def _park(
        self,
        envs: MRTMathVectorEnv,
        requests: Sequence[RolloutRequest],
        live: Sequence[int],
        rng: np.random.Generator,
    ) -> None:
        """Reset finished rows on their own problem before the next vector step.

        A finished row must still take an action (``""``). Reset on its own problem, its
        J(empty thinking) is a meta-prover cache hit and its empty episode needs no model call,
        whereas the vector env's autoreset would draw a new problem and estimate J for it.
        """
        finished = sorted(set(range(len(requests))) - set(live))
        if finished:
            self._reset_rows(envs, requests, finished, rng)

    def _actions(
        self,
        requests: Sequence[RolloutRequest],
        trajectories: Sequence[Trajectory],
        observations: Sequence[str],
        live: Sequence[int],
        keys: Sequence[tuple[int, int]],
        rng: np.random.Generator,
        actions: list[str],
    ) -> dict[int, EpisodeSample]:
        """Fill ``actions`` for live rows: prefix replay or the policy's next episode."""
        sampled = []
        for row in live:
            done = len(trajectories[row].episodes)
            if done < len(requests[row].prefix):
                actions[row] = requests[row].prefix[done]
            else:
                sampled.append(row)
        seeds = [int(s) for s in rng.integers(SEED_BOUND, size=len(sampled))]
        episodes = (
            self.policy.act(
                [observations[row] for row in sampled], seeds, [keys[row] for row in sampled]
            )
            if sampled
            else []
        )
        for row, episode in zip(sampled, episodes, strict=True):
            # the model's output ended (EOS) without ending thinking: the response is finished
            actions[row] = FinalEpisode(episode.text) if episode.end == "eos" else episode.text
        return dict(zip(sampled, episodes, strict=True))

    def _record(
        self,
        trajectory: Trajectory,
        request: RolloutRequest,
        step: _Step,
        sample: EpisodeSample | None,
    ) -> None:
        """Append the step's episode record (token span, reward, J) to ``trajectory``."""
        before, after, row, infos = step.observation, step.next_observation, step.row, step.infos
        kept_text = after[len(before) :] if after.startswith(before) else ""
        start = len(trajectory.response_ids)
        if sample is not None:
            trajectory.response_ids.extend(_kept_tokens(self.policy.lm, sample, kept_text))
        trajectory.episodes.append(
            EpisodeRecord(
                token_start=start,
                token_end=len(trajectory.response_ids),
                text=kept_text,
                reward=step.reward,
                j_before=info_value(infos, "j_before", row),
                j_after=info_value(infos, "j_after", row),
                episode_tokens=int(info_value(infos, "episode_tokens", row) or 0),
                trainable=sample is not None,
                end=None if sample is None else sample.end,
                verification=info_value(infos, "verification", row),
            )
        )
        if sample is None and len(trajectory.episodes) == len(request.prefix):
            # The policy continues from prompt + prefix: that is its context from now on.
            trajectory.prompt_ids = self.policy.lm.encode(after)
        outcome = info_value(infos, "outcome", row)
        if outcome is not None:
            trajectory.outcome = float(outcome)
        trajectory.total_tokens = int(info_value(infos, "total_tokens", row) or 0)
        trajectory.j_source = info_value(infos, "j_source", row)
        regret = info_value(infos, "regret", row)
        trajectory.regret = float(regret) if regret is not None else trajectory.regret
        curve = info_value(infos, "curve", row)
        if curve:
            tokens, values = zip(*curve, strict=True)
            trajectory.j_curve = (tuple(map(float, tokens)), tuple(map(float, values)))
