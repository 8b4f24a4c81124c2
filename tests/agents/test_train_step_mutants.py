"""One GRPO / MRT training step through a session double, written to kill mutants.

``_Session`` is a test double of :class:`agents.session.TrainSession` (scripted trajectories, a
learner that records what it is given): it checks the step's wiring (which problems, seeds and
requests, which advantages reach the learner) against values worked out by hand. Random draws
are replayed here with numpy's generator from the same seed. The real session is exercised by
the training tests of ``make test``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agents.config import GRPOConfig, MRTConfig
from agents.grpo import GRPO
from agents.mrt import MRT
from agents.rollout import RolloutRequest
from agents.session import TrainSession
from agents.types import EpisodeRecord, Trajectory

SCALE = 0.5 + 1e-6  # the group scale of rewards [1, 0]


def _trajectory(
    problem: str, group: int, spans: list[tuple[int, int]], j: list[float | None], outcome: float
) -> Trajectory:
    trajectory = Trajectory(problem, group, "prompt", [0], list(range(spans[-1][1])))
    for i, (start, end) in enumerate(spans):
        trajectory.episodes.append(
            EpisodeRecord(start, end, f"e{i}", 0.0, j[i], j[i + 1], end - start)
        )
    trajectory.outcome = outcome
    return trajectory


class _Learner:
    def __init__(self) -> None:
        self.calls: list[tuple[list[Trajectory], list[np.ndarray]]] = []

    def policy_gradient(self, trajectories: list[Trajectory], tokens: list[np.ndarray]) -> dict:
        self.calls.append((list(trajectories), [np.asarray(t) for t in tokens]))
        return {"loss/policy": 0.0}


class _Session:
    """TrainSession double: ``script(request, index, call)`` makes each collected trajectory
    (``call`` counts the session's ``collect`` calls from 0)."""

    rollout_metrics = staticmethod(TrainSession.rollout_metrics)

    def __init__(
        self,
        script: Callable[[RolloutRequest, int, int], Trajectory],
        problems: list[str],
        per_step: int,
        group_size: int,
        reward: str = "outcome",
    ) -> None:
        self.config = SimpleNamespace(
            problems_per_step=per_step, group_size=group_size, reward=reward
        )
        self.problems = problems
        self.script = script
        self.learner = _Learner()
        self.collected: list[tuple[list[RolloutRequest], int]] = []
        # no μ object: the trajectories come with their J already (a sampled μ's defaults)
        self.collector = SimpleNamespace(components=SimpleNamespace(prover=None))

    def sample_problems(self, rng: np.random.Generator) -> list[Any]:
        chosen = rng.choice(len(self.problems), size=self.config.problems_per_step, replace=False)
        return [self.problems[int(i)] for i in chosen]

    def collect(self, requests: list[RolloutRequest], seed: int) -> list[Trajectory]:
        call = len(self.collected)
        self.collected.append((list(requests), seed))
        return [self.script(request, i, call) for i, request in enumerate(requests)]

    def reward_of(self, trajectory: Trajectory) -> float:
        return trajectory.outcome


def _replayed_rng(seed: int, problems: int, per_step: int) -> tuple[list[int], int]:
    rng = np.random.default_rng(seed)
    chosen = [int(i) for i in rng.choice(problems, size=per_step, replace=False)]
    return chosen, int(rng.integers(2**31 - 1))


def _grpo_script(request: RolloutRequest, index: int, call: int) -> Trajectory:
    # group 0: outcomes 1, 0 (lengths 2, 3); group 1: 1, 1 (lengths 1, 2)
    outcome = [1.0, 0.0, 1.0, 1.0][index]
    length = [2, 3, 1, 2][index]
    return _trajectory(request.problem, request.group, [(0, length)], [None, None], outcome)


@pytest.mark.parametrize("normalize", [True, False])
def test_grpo_step(normalize: bool) -> None:
    session = _Session(_grpo_script, ["p0", "p1", "p2"], per_step=2, group_size=2)
    metrics = GRPO(GRPOConfig(normalize_std=normalize)).train_step(session, seed=7)  # type: ignore[arg-type]
    chosen, seed = _replayed_rng(7, 3, 2)
    [(requests, used_seed)] = session.collected
    assert used_seed == seed
    assert [(r.problem, r.group, r.prefix) for r in requests] == [
        (f"p{chosen[0]}", 0, ()),
        (f"p{chosen[0]}", 0, ()),
        (f"p{chosen[1]}", 1, ()),
        (f"p{chosen[1]}", 1, ()),
    ]
    [(trajectories, tokens)] = session.learner.calls
    assert [t.outcome for t in trajectories] == [1.0, 0.0, 1.0, 1.0]
    a = 0.5 / SCALE if normalize else 0.5
    expected = [[a, a], [-a, -a, -a], [0.0], [0.0, 0.0]]
    for got, want in zip(tokens, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert metrics["charts/advantage_abs"] == pytest.approx(2 * a / 4, rel=1e-6)
    assert metrics["loss/policy"] == 0.0
    assert metrics["reward/outcome"] == 0.75


def test_grpo_defaults() -> None:
    assert GRPO().config == GRPOConfig()
    assert GRPO.name == "grpo" and GRPO.needs_prover is False


def _mrt_script(request: RolloutRequest, index: int, call: int) -> Trajectory:
    # A: outcome 1, J 0 -> 0.5 -> 1 over spans (0, 1), (1, 3); B: outcome 0, J 0 -> 0.25
    if index == 0:
        return _trajectory(request.problem, 0, [(0, 1), (1, 3)], [0.0, 0.5, 1.0], 1.0)
    return _trajectory(request.problem, 0, [(0, 2)], [0.0, 0.25], 0.0)


def test_mrt_progress_step() -> None:
    session = _Session(_mrt_script, ["p0"], per_step=1, group_size=2)
    metrics = MRT(MRTConfig(credit="progress", alpha=1.0)).train_step(session, seed=3)  # type: ignore[arg-type]
    _, seed = _replayed_rng(3, 1, 1)
    [(requests, used_seed)] = session.collected
    assert used_seed == seed and [(r.group, r.prefix) for r in requests] == [(0, ()), (0, ())]
    [(_, tokens)] = session.learner.calls
    # A: (0.5 + 0.5) / scale on its 3 tokens; B: (-0.5 + 0.25) / scale on its 2 tokens
    np.testing.assert_allclose(tokens[0], [1 / SCALE] * 3, rtol=1e-6)
    np.testing.assert_allclose(tokens[1], [-0.25 / SCALE] * 2, rtol=1e-6)
    assert metrics["charts/advantage_abs"] == pytest.approx((3 + 0.5) / SCALE / 5, rel=1e-6)
    assert metrics["loss/policy"] == 0.0


def test_mrt_released_needs_the_outcome_reward() -> None:
    session = _Session(_mrt_script, ["p0"], per_step=1, group_size=2, reward="return")
    with pytest.raises(ValueError, match=r"--credit released needs --reward outcome"):
        MRT(MRTConfig(credit="released")).train_step(session, seed=0)  # type: ignore[arg-type]
    assert session.collected == []


def _released_script(request: RolloutRequest, index: int, call: int) -> Trajectory:
    """Sources: 3 episodes over spans (0, 1), (1, 2), (2, 4), J 0.25 -> 0.5 -> 0.75 -> 1,
    outcome 1. A continuation replays the prefix (not trainable) and adds one episode of 2
    tokens with outcome 0."""
    if call == 0:
        return _trajectory(
            request.problem, request.group, [(0, 1), (1, 2), (2, 4)], [0.25, 0.5, 0.75, 1.0], 1.0
        )
    cut = len(request.prefix)
    spans = [(i, i + 1) for i in range(cut)] + [(cut, cut + 2)]
    trajectory = _trajectory(request.problem, request.group, spans, [0.0] * (cut + 2), 0.0)
    if not cut:
        return trajectory
    trajectory.episodes = [
        EpisodeRecord(e.token_start, e.token_end, e.text, 0.0, None, None, 1, trainable=False)
        if i < cut
        else e
        for i, e in enumerate(trajectory.episodes)
    ]
    return trajectory


def _replayed_released(
    seed: int, problems: int, per_step: int
) -> tuple[list[int], int, list[int], int]:
    rng = np.random.default_rng(seed)
    chosen = [int(i) for i in rng.choice(problems, size=per_step, replace=False)]
    source_seed = int(rng.integers(2**31 - 1))
    cuts = [int(rng.integers(3)) for _ in chosen]
    return chosen, source_seed, cuts, int(rng.integers(2**31 - 1))


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_mrt_released_step(seed: int) -> None:
    session = _Session(_released_script, ["p0", "p1", "p2"], per_step=2, group_size=3)
    metrics = MRT(MRTConfig(credit="released")).train_step(session, seed=seed)  # type: ignore[arg-type]
    chosen, source_seed, cuts, continue_seed = _replayed_released(seed, 3, 2)
    (sources, s1), (continued, s2) = session.collected
    assert (s1, s2) == (source_seed, continue_seed)
    assert [(r.problem, r.group, r.prefix) for r in sources] == [
        (f"p{chosen[0]}", 0, ()),
        (f"p{chosen[1]}", 1, ()),
    ]
    texts = ("e0", "e1", "e2")
    assert [(r.problem, r.group, r.prefix) for r in continued] == [
        (f"p{chosen[g]}", g, texts[: cuts[g]]) for g in (0, 1) for _ in range(2)
    ]
    [(trajectories, tokens)] = session.learner.calls
    assert [t.group for t in trajectories] == [0, 0, 0, 1, 1, 1]
    j_values = [0.25, 0.5, 0.75]
    starts = [0, 1, 2]  # token start of each source episode
    for g in (0, 1):
        cut, baseline = cuts[g], j_values[cuts[g]]
        source = trajectories[3 * g]
        assert [e.trainable for e in source.episodes] == [i >= cut for i in range(3)]
        # the source: its prefix gets 0, the rest 1 - J(prefix)
        expected = [0.0] * starts[cut] + [1.0 - baseline] * (4 - starts[cut])
        np.testing.assert_allclose(tokens[3 * g], expected, rtol=1e-6)
        for k in (1, 2):  # continuations: 0 on the replayed prefix, 0 - J(prefix) after
            np.testing.assert_allclose(tokens[3 * g + k], [0.0] * cut + [-baseline] * 2, rtol=1e-6)
    # mean |advantage| over every token of the batch, prefixes included
    total = sum(
        starts_abs
        for g in (0, 1)
        for starts_abs in (
            (4 - starts[cuts[g]]) * (1.0 - j_values[cuts[g]]),
            2 * 2 * j_values[cuts[g]],
        )
    )
    count = sum(4 + 2 * (cuts[g] + 2) for g in (0, 1))
    assert metrics["charts/advantage_abs"] == pytest.approx(total / count, rel=1e-6)


def test_mrt_released_step_with_groups_of_one() -> None:
    session = _Session(_released_script, ["p0"], per_step=1, group_size=1)
    MRT(MRTConfig(credit="released")).train_step(session, seed=4)  # type: ignore[arg-type]
    assert len(session.collected) == 1  # no continuation is collected
    [(trajectories, _)] = session.learner.calls
    assert len(trajectories) == 1


def test_mrt_released_needs_a_meta_prover() -> None:
    def no_j(request: RolloutRequest, index: int, call: int) -> Trajectory:
        return _trajectory(request.problem, request.group, [(0, 1)], [None, None], 1.0)

    session = _Session(no_j, ["p0"], per_step=1, group_size=2)
    with pytest.raises(
        ValueError, match=r"^the released MRT recipe needs J\(prefix\): give the env a meta-prover$"
    ):
        MRT(MRTConfig(credit="released")).train_step(session, seed=0)  # type: ignore[arg-type]


def test_a_batch_without_response_tokens_reports_zero_advantage() -> None:
    def empty(request: RolloutRequest, index: int, call: int) -> Trajectory:
        trajectory = Trajectory(request.problem, request.group, "prompt", [0])
        trajectory.outcome = float(index % 2)
        return trajectory

    session = _Session(empty, ["p0"], per_step=1, group_size=2)
    metrics = MRT(MRTConfig(credit="progress")).train_step(session, seed=0)  # type: ignore[arg-type]
    assert metrics["charts/advantage_abs"] == 0.0
    [(_, tokens)] = session.learner.calls
    assert [len(t) for t in tokens] == [0, 0]


def test_a_released_source_without_episodes_has_no_j_prefix() -> None:
    def empty(request: RolloutRequest, index: int, call: int) -> Trajectory:
        return Trajectory(request.problem, request.group, "prompt", [0])

    session = _Session(empty, ["p0"], per_step=1, group_size=2)
    with pytest.raises(ValueError, match=r"^the released MRT recipe needs J\(prefix\)"):
        MRT(MRTConfig(credit="released")).train_step(session, seed=0)  # type: ignore[arg-type]


def test_a_collector_that_loses_a_source_is_an_error() -> None:
    class _Lossy(_Session):
        def collect(self, requests: list[RolloutRequest], seed: int) -> list[Trajectory]:
            return super().collect(requests, seed)[:-1]

    session = _Lossy(_released_script, ["p0", "p1"], per_step=2, group_size=2)
    with pytest.raises(ValueError):
        MRT(MRTConfig(credit="released")).train_step(session, seed=0)  # type: ignore[arg-type]


class _HybridProverDouble:
    """A μ double that says it is learned and hands back its online-update metrics."""

    source = "learned"

    def __init__(self) -> None:
        self.updates = 0

    def update(self) -> dict[str, float]:
        self.updates += 1
        return {"prover/brier_online": 0.125, "prover/drift": -0.25}


@pytest.mark.parametrize("prover", [None, "sampled-like", "hybrid"])
def test_mrt_step_logs_which_mu_it_used_and_runs_a_hybrid_update(prover: str | None) -> None:
    session = _Session(_mrt_script, ["p0"], per_step=1, group_size=2)
    double: Any = None
    if prover == "sampled-like":
        double = SimpleNamespace(source="sampled")  # no update method: nothing else is called
    elif prover == "hybrid":
        double = _HybridProverDouble()
    session.collector = SimpleNamespace(components=SimpleNamespace(prover=double))
    metrics = MRT(MRTConfig(credit="progress", alpha=1.0)).train_step(session, seed=3)  # type: ignore[arg-type]
    assert metrics["prover/learned"] == (1.0 if prover == "hybrid" else 0.0)
    if prover == "hybrid":
        assert double.updates == 1  # once per optimizer step
        assert metrics["prover/brier_online"] == 0.125 and metrics["prover/drift"] == -0.25
    else:
        assert "prover/drift" not in metrics and "prover/brier_online" not in metrics
