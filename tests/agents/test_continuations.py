"""MRT's released recipe: random cuts, frozen prefixes, J(prefix) baselines and groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from agents.mrt import collect_continuations
from agents.rollout import RolloutRequest
from agents.session import TrainSession
from agents.types import EpisodeRecord, Trajectory
from mrt_env.problems import Problem

PROBLEMS = [Problem("p0", "1+1?", "2"), Problem("p1", "2+3?", "5")]
J_VALUES = {"p0": [0.1, 0.2, 0.6, 0.9], "p1": [0.0, 0.5, 0.25, 1.0]}
"""J(c_0..c_3) of each source trajectory (three episodes)."""


def source(problem: Problem, group: int) -> Trajectory:
    j = J_VALUES[problem.id]
    episodes = [
        EpisodeRecord(2 * i, 2 * i + 2, f"{problem.id}-e{i}", 0.0, j[i], j[i + 1], 2)
        for i in range(3)
    ]
    return Trajectory(problem.id, group, problem.problem, [1], [7] * 6, episodes, outcome=1.0)


@dataclass
class SessionDouble:
    """A stand-in for TrainSession: fixed problems, hand-built sources, scripted continuations."""

    group_size: int = 3
    requests: list[list[RolloutRequest]] = field(default_factory=list)

    @property
    def config(self) -> Any:
        return type("Config", (), {"group_size": self.group_size})()

    def sample_problems(self, rng: np.random.Generator) -> list[Problem]:
        return list(PROBLEMS)

    def collect(self, requests: Sequence[RolloutRequest], seed: int) -> list[Trajectory]:
        self.requests.append(list(requests))
        if all(not r.prefix for r in requests) and len(self.requests) == 1:
            return [source(r.problem, r.group) for r in requests]
        return [  # continuations: the prefix replayed, then one new episode
            Trajectory(r.problem.id, r.group, r.problem.problem, [1], [8], outcome=0.0)
            for r in requests
        ]


def run(seed: int) -> tuple[SessionDouble, list[Trajectory], np.ndarray]:
    session = SessionDouble()
    trajectories, baselines = collect_continuations(cast(TrainSession, session), seed)
    return session, trajectories, baselines


def test_continuations_cut_freeze_and_baseline_on_a_hand_built_case() -> None:
    cuts_seen = set()
    for seed in range(6):
        session, trajectories, baselines = run(seed)
        sources, continuations = session.requests
        assert [r.prefix for r in sources] == [(), ()]
        assert len(continuations) == 2 * (session.group_size - 1)
        assert len(trajectories) == len(baselines) == 2 * session.group_size
        for group, problem in enumerate(PROBLEMS):
            members = trajectories[group * 3 : group * 3 + 3]
            # group membership: the source first, then its G - 1 continuations, one problem
            assert [t.group for t in members] == [group] * 3
            assert {t.problem_id for t in members} == {problem.id}
            prefixes = {r.prefix for r in continuations if r.group == group}
            assert len(prefixes) == 1  # every continuation of a group starts from one cut
            [prefix] = prefixes
            cut = len(prefix)
            cuts_seen.add(cut)
            assert 0 <= cut < 3
            # the prefix is the source's first `cut` episodes, verbatim
            assert prefix == tuple(f"{problem.id}-e{i}" for i in range(cut))
            # the source's prefix episodes are frozen, the rest trainable
            assert [e.trainable for e in members[0].episodes] == [i >= cut for i in range(3)]
            # every member's baseline is J(prefix) = the source's j_values[cut]
            expected = J_VALUES[problem.id][cut]
            np.testing.assert_allclose(baselines[group * 3 : group * 3 + 3], expected)
    assert cuts_seen == {0, 1, 2}  # the seeds exercise every cut
