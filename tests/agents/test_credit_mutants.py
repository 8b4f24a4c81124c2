"""Credit and advantages against hand-computed values, written to kill mutants.

Every expected value is computed here from the definitions (PAPER.md "Training": GRPO's
group-relative outcome advantage, MRT's per-episode progress bonus, the released recipe's
``R - J(prefix)``) with plain Python arithmetic, never by calling the function under test.
``make mutate`` runs these tests against mutated copies of ``agents/grpo.py`` and
``agents/mrt.py`` (see tests/README.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.config import MRTConfig
from agents.grpo import (
    STD_EPS,
    broadcast_advantages,
    group_scales,
    outcome_advantages,
)
from agents.mrt import (
    MRT,
    _cut,
    _freeze_prefix,
    check_reward_source,
    episode_bonus_values,
    episode_token_advantages,
    per_episode_advantages,
    per_episode_credit,
    prefix_tokens,
    released_credit,
    termination_baseline_advantages,
)
from agents.types import EpisodeRecord, Trajectory


def _population_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


# Three interleaved groups with different spreads: 7 -> [1, 0, 0, 0] (std sqrt(3)/4),
# 2 -> [1, 0] (std 1/2), 5 -> [1, 1] (std 0: scale 1, outcome advantage 0).
REWARDS = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
GROUPS = [7, 2, 7, 7, 2, 7, 5, 5]
SCALE_7 = math.sqrt(3) / 4 + 1e-6
SCALE_2 = 0.5 + 1e-6


def test_std_eps_is_one_millionth() -> None:
    assert STD_EPS == 1e-6


def test_group_scales_use_each_groups_own_spread() -> None:
    expected = [SCALE_7, SCALE_2, SCALE_7, SCALE_7, SCALE_2, SCALE_7, 1.0, 1.0]
    result = group_scales(REWARDS, GROUPS)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=0)
    # The whole batch's std (sqrt(15)/8) would be a wrong scale for every group.
    batch_std = _population_std(REWARDS)
    assert not np.isclose(result[0], batch_std)


def test_group_scales_without_normalisation_are_ones() -> None:
    result = group_scales(REWARDS, GROUPS, normalize_std=False)
    np.testing.assert_array_equal(result, np.ones(8))
    assert group_scales(REWARDS, GROUPS, False).tolist() == [1.0] * 8


def test_group_scales_default_normalises() -> None:
    assert group_scales([1.0, 0.0], [0, 0])[0] == pytest.approx(0.5 + 1e-6, rel=1e-12)


def test_group_scale_of_a_spread_just_above_eps_adds_eps() -> None:
    # rewards 0 and 4e-6: mean 2e-6, std 2e-6 > STD_EPS -> scale 3e-6 (not 1, not 1e-6)
    result = group_scales([0.0, 4e-6], [0, 0])
    np.testing.assert_allclose(result, [3e-6, 3e-6], rtol=1e-9)


def test_group_scale_of_a_spread_below_eps_is_one() -> None:
    # std 5e-7 <= STD_EPS: treated as equal rewards
    np.testing.assert_array_equal(group_scales([0.0, 1e-6], [0, 0]), [1.0, 1.0])
    # std exactly STD_EPS (0 and 2e-6: the float std is 1e-6 to the last bit) is not above it
    np.testing.assert_array_equal(group_scales([0.0, 2e-6], [0, 0]), [1.0, 1.0])


def test_group_scales_of_integer_rewards_are_float() -> None:
    result = group_scales([1, 0, 1, 1], [0, 0, 1, 1])
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, [0.5 + 1e-6, 0.5 + 1e-6, 1.0, 1.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("outcomes", "groups"),
    [([1.0, 0.0], [0]), ([[1.0, 0.0]], [[0, 0]]), ([1.0], [0, 0])],
)
def test_group_scales_reject_mismatched_or_2d_input(
    outcomes: list[float], groups: list[int]
) -> None:
    with pytest.raises(ValueError, match=r"must be 1-D, equal"):
        group_scales(outcomes, groups)
    with pytest.raises(ValueError, match=r"must be 1-D, equal"):
        outcome_advantages(outcomes, groups)


def test_outcome_advantages_of_several_groups_with_different_spreads() -> None:
    mean_7, mean_2 = 0.25, 0.5
    expected = [
        (1 - mean_7) / SCALE_7,
        (1 - mean_2) / SCALE_2,
        (0 - mean_7) / SCALE_7,
        (0 - mean_7) / SCALE_7,
        (0 - mean_2) / SCALE_2,
        (0 - mean_7) / SCALE_7,
        0.0,
        0.0,
    ]
    result = outcome_advantages(REWARDS, GROUPS)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-15)
    raw = outcome_advantages(REWARDS, GROUPS, normalize_std=False)
    np.testing.assert_allclose(raw, [0.75, 0.5, -0.25, -0.25, -0.5, -0.25, 0.0, 0.0], atol=1e-15)


def test_outcome_advantages_of_non_binary_rewards() -> None:
    # group [3, 1, 2]: mean 2, population std sqrt(2/3)
    scale = math.sqrt(2 / 3) + 1e-6
    result = outcome_advantages([3.0, 1.0, 2.0], [4, 4, 4])
    np.testing.assert_allclose(result, [1 / scale, -1 / scale, 0.0], rtol=1e-12, atol=1e-15)


def test_broadcast_gives_each_trajectory_its_own_advantage() -> None:
    first = Trajectory("a", 0, "q", [], [1, 2, 3])
    second = Trajectory("b", 0, "q", [], [4])
    tokens = broadcast_advantages([first, second], [0.25, -1.5])
    assert [t.dtype for t in tokens] == [np.float32, np.float32]
    assert [t.tolist() for t in tokens] == [[0.25, 0.25, 0.25], [-1.5]]
    with pytest.raises(ValueError):
        broadcast_advantages([first], [0.25, 1.0])


# --- per-episode bonuses ------------------------------------------------------------------


def test_progress_bonus_is_j_after_minus_j_before() -> None:
    pairs = [(0.25, 0.75), (0.75, 0.5), (None, 0.5), (0.5, None)]
    assert episode_bonus_values(pairs, "progress") == [0.5, -0.25, 0.0, 0.0]


def test_progress_to_go_uses_the_final_j() -> None:
    pairs = [(0.0, 0.25), (0.25, 0.5), (None, 0.5), (0.5, 0.875)]
    assert episode_bonus_values(pairs, "progress_to_go") == [0.875, 0.625, 0.0, 0.375]


def test_progress_to_go_without_a_final_j_abstains() -> None:
    assert episode_bonus_values([(0.25, 0.5), (0.5, None)], "progress_to_go") == [0.0, 0.0]
    assert episode_bonus_values([], "progress_to_go") == []
    assert episode_bonus_values([], "progress") == []


@pytest.mark.parametrize("mode", ["released", "outcome", ""])
def test_bonuses_need_a_per_episode_mode(mode: str) -> None:
    with pytest.raises(ValueError, match=r"need credit 'progress' or 'progress_to_go', got"):
        episode_bonus_values([(0.0, 1.0)], mode)  # type: ignore[arg-type]


def test_episode_token_advantages_per_span() -> None:
    # base 0.5, alpha 2, scale 4: episode j gets 0.5 + 2 * bonus_j / 4; gaps get 0
    result = episode_token_advantages(7, [(1, 3), (4, 6)], [1.0, -0.5], 0.5, 2.0, 4.0)
    assert result.dtype == np.float32
    assert result.tolist() == [0.0, 1.0, 1.0, 0.0, 0.25, 0.25, 0.0]


def test_episode_token_advantages_default_scale_is_one() -> None:
    result = episode_token_advantages(2, [(0, 2)], [0.25], -1.0, 2.0)
    assert result.tolist() == [-0.5, -0.5]


def test_episode_token_advantages_need_one_bonus_per_span() -> None:
    with pytest.raises(ValueError):
        episode_token_advantages(3, [(0, 1), (1, 3)], [0.5], 0.0, 1.0)


def test_per_episode_credit_of_several_groups() -> None:
    # Group 7 -> rewards [1, 0, 0] (mean 1/3, std sqrt(2)/3); group 2 -> [1, 1] (scale 1).
    rewards = [1.0, 1.0, 0.0, 1.0, 0.0]
    groups = [7, 2, 7, 2, 7]
    j_pairs = [
        [(0.25, 0.5), (0.5, 1.0)],
        [(0.5, 0.75)],
        [(0.5, 0.25)],
        [(0.0, 0.5), (0.5, 0.25), (0.25, 1.0)],
        [(None, None)],
    ]
    spans = [[(0, 2), (2, 3)], [(0, 1)], [(0, 2)], [(0, 1), (1, 2), (2, 4)], [(0, 1)]]
    lengths = [3, 2, 3, 4, 1]
    alpha = 0.5
    scale_7 = math.sqrt(2) / 3 + 1e-6
    base = [(1 - 1 / 3) / scale_7, 0.0, (0 - 1 / 3) / scale_7, 0.0, (0 - 1 / 3) / scale_7]
    scales = [scale_7, 1.0, scale_7, 1.0, scale_7]

    def expected(i: int, bonuses: list[float]) -> list[float]:
        """Tokens of trajectory ``i``: (R - mean + alpha * bonus) / scale per span, 0 elsewhere."""
        tokens = [0.0] * lengths[i]
        for (start, end), bonus in zip(spans[i], bonuses, strict=True):
            for t in range(start, end):
                tokens[t] = base[i] + alpha * bonus / scales[i]
        return tokens

    progress = per_episode_credit(
        rewards, groups, j_pairs, spans, lengths, alpha=alpha, mode="progress"
    )
    want = [
        expected(0, [0.25, 0.5]),
        expected(1, [0.25]),
        expected(2, [-0.25]),
        expected(3, [0.5, -0.25, 0.75]),
        expected(4, [0.0]),
    ]
    for got, exp in zip(progress, want, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-7)
    to_go = per_episode_credit(
        rewards, groups, j_pairs, spans, lengths, alpha=alpha, mode="progress_to_go"
    )
    want_to_go = [
        expected(0, [0.75, 0.5]),
        expected(1, [0.25]),
        expected(2, [-0.25]),
        expected(3, [1.0, 0.5, 0.75]),
        expected(4, [0.0]),
    ]
    for got, exp in zip(to_go, want_to_go, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-7)


def test_per_episode_credit_without_std_normalisation() -> None:
    # rewards [1, 0] in one group: outcome terms +-0.5, progress undivided
    [a, b] = per_episode_credit(
        [1.0, 0.0],
        [0, 0],
        [[(0.25, 0.75)], [(0.5, 0.25)]],
        [[(0, 2)], [(0, 1)]],
        [2, 1],
        alpha=2.0,
        mode="progress",
        normalize_std=False,
    )
    np.testing.assert_allclose(a, [1.5, 1.5])
    np.testing.assert_allclose(b, [-1.0])


def test_per_episode_credit_normalises_by_default() -> None:
    # rewards [1, 0]: scale 0.5 + 1e-6; progress 0.5 with alpha 1 -> (0.5 + 0.5) / scale
    [a, _] = per_episode_credit(
        [1.0, 0.0],
        [0, 0],
        [[(0.25, 0.75)], [(0.5, 0.5)]],
        [[(0, 1)], [(0, 1)]],
        [1, 1],
        alpha=1.0,
        mode="progress",
    )
    np.testing.assert_allclose(a, [1.0 / (0.5 + 1e-6)], rtol=1e-6)


def _trajectory(group: int, spans: list[tuple[int, int]], j: list[float | None]) -> Trajectory:
    trajectory = Trajectory("p", group, "prompt", [1, 2], list(range(spans[-1][1])))
    for index, (start, end) in enumerate(spans):
        trajectory.episodes.append(
            EpisodeRecord(start, end, "x" * (end - start), 0.0, j[index], j[index + 1], end - start)
        )
    return trajectory


def test_per_episode_advantages_divide_progress_by_the_given_scales() -> None:
    first = _trajectory(0, [(0, 1), (1, 3)], [0.0, 0.5, 0.25])
    second = _trajectory(1, [(0, 2)], [0.5, 1.0])
    result = per_episode_advantages([first, second], [1.0, -0.5], 2.0, "progress", [4.0, 0.5])
    # first: 1 + 2 * 0.5 / 4 = 1.25, 1 + 2 * (-0.25) / 4 = 0.875; second: -0.5 + 2 * 0.5 / 0.5
    np.testing.assert_allclose(result[0], [1.25, 0.875, 0.875])
    np.testing.assert_allclose(result[1], [1.5, 1.5])
    unscaled = per_episode_advantages([first, second], [1.0, -0.5], 2.0, "progress_to_go")
    # to go: J_final 0.25 (first) and 1.0 (second)
    np.testing.assert_allclose(unscaled[0], [1.5, 0.5, 0.5])
    np.testing.assert_allclose(unscaled[1], [0.5, 0.5])


def test_per_episode_advantages_need_one_advantage_and_scale_per_trajectory() -> None:
    trajectory = _trajectory(0, [(0, 1)], [0.0, 0.5])
    with pytest.raises(ValueError):
        per_episode_advantages([trajectory], [1.0, 2.0], 1.0, "progress")
    with pytest.raises(ValueError):
        per_episode_advantages([trajectory], [1.0], 1.0, "progress", [1.0, 2.0])


def test_mrt_advantages_follow_its_config() -> None:
    trajectories = [
        _trajectory(3, [(0, 1), (1, 2)], [0.25, 0.75, 0.5]),
        _trajectory(3, [(0, 2)], [0.25, 0.0]),
    ]
    rewards = [1.0, 0.0]
    scale = 0.5 + 1e-6
    mrt = MRT(MRTConfig(credit="progress_to_go", alpha=0.5, normalize_std=True))
    first, second = mrt.advantages(trajectories, rewards)
    np.testing.assert_allclose(
        first, [(0.5 + 0.5 * 0.25) / scale, (0.5 + 0.5 * -0.25) / scale], rtol=1e-6
    )
    np.testing.assert_allclose(second, [(-0.5 + 0.5 * -0.25) / scale] * 2, rtol=1e-6)
    raw = MRT(MRTConfig(credit="progress", alpha=2.0, normalize_std=False))
    first, second = raw.advantages(trajectories, rewards)
    np.testing.assert_allclose(first, [0.5 + 2 * 0.5, 0.5 + 2 * -0.25])
    np.testing.assert_allclose(second, [-0.5 + 2 * -0.25] * 2)
    assert MRT().config == MRTConfig()
    assert MRT.name == "mrt" and MRT.needs_prover is True


# --- the released recipe --------------------------------------------------------------------


def test_termination_baseline_is_outcome_minus_prefix_j() -> None:
    result = termination_baseline_advantages([1, 0, 1], [0.25, 0.625, 1.0])
    assert result.dtype == np.float64
    assert result.tolist() == [0.75, -0.625, 0.0]
    with pytest.raises(ValueError, match=r"outcomes \(2,\) and prefix_j \(1,\) differ"):
        termination_baseline_advantages([1.0, 0.0], [0.5])


def test_released_credit_zeroes_the_replayed_prefix() -> None:
    result = released_credit([1.0, 0.0, 1.0], [0.25, 0.5, 0.75], [2, 0, 3], [4, 2, 3])
    assert [r.dtype for r in result] == [np.float32] * 3
    assert [r.tolist() for r in result] == [[0.0, 0.0, 0.75, 0.75], [-0.5, -0.5], [0, 0, 0]]


@pytest.mark.parametrize(("prefix", "length"), [(-1, 3), (4, 3)])
def test_released_credit_rejects_a_prefix_outside_the_response(prefix: int, length: int) -> None:
    with pytest.raises(ValueError, match=rf"prefix of {prefix} tokens outside a response of"):
        released_credit([1.0], [0.5], [prefix], [length])


def test_released_credit_needs_one_prefix_per_response() -> None:
    with pytest.raises(ValueError):
        released_credit([1.0, 0.0], [0.5, 0.5], [0], [1, 1])


def test_prefix_tokens_is_the_first_trainable_episodes_start() -> None:
    trajectory = _trajectory(0, [(0, 2), (2, 5), (5, 6)], [0.0, 0.0, 0.0, 0.0])
    assert prefix_tokens(trajectory) == 0
    frozen = _freeze_prefix(trajectory, 2)
    assert prefix_tokens(frozen) == 5
    all_frozen = _freeze_prefix(trajectory, 3)
    assert prefix_tokens(all_frozen) == 6  # nothing trainable: the whole response


def test_freeze_prefix_freezes_exactly_the_first_cut_episodes() -> None:
    trajectory = _trajectory(0, [(0, 1), (1, 2), (2, 3)], [0.0, 0.25, 0.5, 0.75])
    frozen = _freeze_prefix(trajectory, 1)
    assert [e.trainable for e in frozen.episodes] == [False, True, True]
    assert [e.trainable for e in trajectory.episodes] == [True, True, True]  # a copy
    assert frozen.episodes[0].j_after == 0.25 and frozen.episodes[2].j_after == 0.75
    assert [e.trainable for e in _freeze_prefix(trajectory, 0).episodes] == [True] * 3


def test_cut_is_a_seeded_draw_over_the_episodes() -> None:
    trajectory = _trajectory(0, [(0, 1), (1, 2), (2, 3), (3, 4)], [0.0] * 5)
    draws = [_cut(trajectory, np.random.default_rng(seed)) for seed in range(40)]
    assert draws == [int(np.random.default_rng(seed).integers(4)) for seed in range(40)]
    assert set(draws) == {0, 1, 2, 3}
    assert _cut(Trajectory("p", 0, "q", []), np.random.default_rng(0)) == 0


def test_released_credit_needs_the_outcome_reward() -> None:
    message = (
        r"^--credit released needs --reward outcome \(R - J\(prefix\) compares the 0/1 outcome "
        r"with a probability of success\); got --reward 'return'$"
    )
    with pytest.raises(ValueError, match=message):
        check_reward_source(MRTConfig(credit="released"), "return")
    check_reward_source(MRTConfig(credit="released"), "outcome")
    check_reward_source(MRTConfig(credit="progress"), "return")


def test_per_episode_credit_needs_one_entry_per_trajectory() -> None:
    with pytest.raises(ValueError):
        per_episode_credit(
            [1.0, 0.0],
            [0, 0],
            [[(0.0, 1.0)], [(0.0, 0.5)]],
            [[(0, 1)], [(0, 1)]],
            [1],
            alpha=1.0,
            mode="progress",
        )


def test_termination_baseline_of_integer_inputs_is_float() -> None:
    result = termination_baseline_advantages([1, 0], [0, 1])
    assert result.dtype == np.float64 and result.tolist() == [1.0, -1.0]
