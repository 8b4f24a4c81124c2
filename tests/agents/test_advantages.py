"""Advantage computations against hand-computed values (one test per credit mode)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.grpo import STD_EPS, broadcast_advantages, outcome_advantages
from agents.mrt import (
    episode_bonuses,
    per_episode_advantages,
    termination_baseline_advantages,
)
from agents.types import EpisodeRecord, Trajectory


def _trajectory(group: int, spans: list[tuple[int, int]], j: list[float | None]) -> Trajectory:
    """A trajectory with episodes over ``spans`` and J values ``j`` (J(c_0), ..., J(c_k))."""
    trajectory = Trajectory("p", group, "prompt", [1, 2], list(range(spans[-1][1])))
    for index, (start, end) in enumerate(spans):
        trajectory.episodes.append(
            EpisodeRecord(start, end, "x" * (end - start), 0.0, j[index], j[index + 1], end - start)
        )
    return trajectory


@pytest.mark.parametrize(
    ("outcomes", "groups", "normalize", "expected"),
    [
        # one group, mean 0.5, population std 0.5: (1-0.5)/0.5 = 1, (0-0.5)/0.5 = -1
        ([1, 0, 0, 1], [0, 0, 0, 0], True, [1.0, -1.0, -1.0, 1.0]),
        # same without std: +-0.5
        ([1, 0, 0, 1], [0, 0, 0, 0], False, [0.5, -0.5, -0.5, 0.5]),
        # two groups; the all-correct group carries no signal
        ([1, 0, 1, 1], [0, 0, 1, 1], False, [0.5, -0.5, 0.0, 0.0]),
        # 1 of 4 correct: mean 0.25, std sqrt(3)/4
        ([1, 0, 0, 0], [3, 3, 3, 3], True, [0.75 / (3**0.5 / 4), *[-0.25 / (3**0.5 / 4)] * 3]),
        # three groups, three spreads, each divided by its own std (never the batch's, 0.49):
        # group 0: mean 0.75, std sqrt(3)/4; group 1: mean 0.5, std 0.5; group 2: all equal
        (
            [1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
            True,
            [
                *[v / (3**0.5 / 4) for v in (0.25, -0.75, 0.25, 0.25)],
                *[1.0, 1.0, -1.0, -1.0],
                *[0.0] * 4,
            ],
        ),
    ],
)
def test_grpo_outcome_advantages(
    outcomes: list[float], groups: list[int], normalize: bool, expected: list[float]
) -> None:
    result = outcome_advantages(outcomes, groups, normalize_std=normalize)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=STD_EPS * 10)


def test_grpo_broadcast_gives_every_response_token_the_trajectory_advantage() -> None:
    trajectory = _trajectory(0, [(0, 2), (2, 5)], [0.0, 0.0, 1.0])
    [tokens] = broadcast_advantages([trajectory], [0.5])
    np.testing.assert_array_equal(tokens, [0.5] * 5)


def test_mrt_progress_credit() -> None:
    # J: 0.25 -> 0.5 -> 0.25 -> 1.0 ; progress per episode: +0.25, -0.25, +0.75
    trajectory = _trajectory(0, [(0, 2), (2, 3), (3, 6)], [0.25, 0.5, 0.25, 1.0])
    assert episode_bonuses(trajectory, "progress") == pytest.approx([0.25, -0.25, 0.75])
    [tokens] = per_episode_advantages([trajectory], [0.5], alpha=2.0, mode="progress")
    # outcome advantage 0.5 + 2 * progress
    np.testing.assert_allclose(tokens, [1.0, 1.0, 0.0, 2.0, 2.0, 2.0])


def test_mrt_progress_to_go_credit() -> None:
    # J_final = 1.0; progress-to-go = 1 - J(c_j): 0.75, 0.5, 0.75
    trajectory = _trajectory(0, [(0, 2), (2, 3), (3, 6)], [0.25, 0.5, 0.25, 1.0])
    assert episode_bonuses(trajectory, "progress_to_go") == pytest.approx([0.75, 0.5, 0.75])
    [tokens] = per_episode_advantages([trajectory], [-1.0], alpha=1.0, mode="progress_to_go")
    np.testing.assert_allclose(tokens, [-0.25, -0.25, -0.5, -0.25, -0.25, -0.25])


def test_mrt_unknown_j_gives_no_bonus() -> None:
    # without a meta-prover J is None: the progress term abstains (0), the outcome remains
    trajectory = _trajectory(0, [(0, 1), (1, 2)], [None, None, None])
    [tokens] = per_episode_advantages([trajectory], [0.3], alpha=1.0, mode="progress")
    np.testing.assert_allclose(tokens, [0.3, 0.3])


def test_mrt_released_termination_baseline() -> None:
    # J(prefix) = 0.25 (1 of 4 stop-now answers correct): A = R - 0.25
    result = termination_baseline_advantages([1.0, 0.0, 1.0], [0.25, 0.25, 0.5])
    np.testing.assert_allclose(result, [0.75, -0.25, 0.5])


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="must be 1-D"):
        outcome_advantages([1.0, 0.0], [0])
    with pytest.raises(ValueError, match="differ"):
        termination_baseline_advantages([1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="credit"):
        episode_bonuses(_trajectory(0, [(0, 1)], [0.0, 1.0]), "released")
