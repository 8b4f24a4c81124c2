"""MRTStrategy-v0: the numeric twin's contract, dynamics, rewards and regret."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mrt_env  # noqa: F401 - registers the ids
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.strategy import ATTEMPT, RECHECK, STOP, MRTStrategyEnv, StrategyConfig
from mrt_env.strategy.dynamics import (
    DEFAULT_RECORDING,
    ParametricDynamics,
    RecordedDynamics,
    RecordedEpisode,
    RecordedTrajectory,
    Recording,
    TwinState,
)
from mrt_env.strategy.record import RecordSettings, classify_episode, record
from rewards.context import StepContext
from rewards.modules import LengthPenalty, OutcomeReward, ProgressBonus


def _rollout(env: gym.Env, seed: int, actions: list[int]) -> list[tuple]:
    observation, _ = env.reset(seed=seed)
    steps = [(observation.tolist(),)]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        steps.append((observation.tolist(), reward, terminated, truncated, info["regret"]))
        if terminated or truncated:
            break
    return steps


def _write_recording(path: Path) -> Path:
    recording = Recording(
        (
            RecordedTrajectory(
                "p0",
                0.0,
                (RecordedEpisode("attempt", 30, 0.5), RecordedEpisode("recheck", 10, 1.0)),
            ),
            RecordedTrajectory("p1", 0.25, (RecordedEpisode("attempt", 20, 0.0),)),
        ),
        settings={"source": "test"},
    )
    path.write_text(json.dumps(recording.to_json()))
    return path


def test_gym_make_registered_id() -> None:
    env = gym.make("MRTStrategy-v0", token_budget=64)
    assert isinstance(env.unwrapped, MRTStrategyEnv)
    assert env.unwrapped.config.token_budget == 64


@pytest.mark.parametrize("dynamics", ["parametric", "recorded"])
def test_passes_gymnasium_and_sb3_env_checkers(dynamics: str, tmp_path: Path) -> None:
    recording = str(_write_recording(tmp_path / "rec.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # render-mode notes only
        gym_check_env(MRTStrategyEnv(dynamics=dynamics, recording=recording))
        sb3_check_env(MRTStrategyEnv(dynamics=dynamics, recording=recording), warn=True)


@pytest.mark.parametrize("dynamics", ["parametric", "recorded"])
def test_same_seed_same_rollout_different_seed_differs(dynamics: str) -> None:
    actions = [ATTEMPT, RECHECK, ATTEMPT, RECHECK, RECHECK, ATTEMPT, STOP]
    first = _rollout(MRTStrategyEnv(dynamics=dynamics), 7, actions)
    second = _rollout(MRTStrategyEnv(dynamics=dynamics), 7, actions)
    assert first == second
    others = [_rollout(MRTStrategyEnv(dynamics=dynamics), s, actions) for s in range(8, 12)]
    assert any(other != first for other in others)


def test_reward_is_the_sum_of_the_reward_modules() -> None:
    env = MRTStrategyEnv(alpha=0.5, token_cost=0.01)
    env.reset(seed=3)
    outcome, progress, length = OutcomeReward(), ProgressBonus(alpha=0.5), LengthPenalty(0.01)
    for action in [ATTEMPT, RECHECK, STOP]:
        _, reward, terminated, _, info = env.step(action)
        status = None if info["outcome"] is None else ("correct" if info["outcome"] else "wrong")
        ctx = StepContext(
            problem="",
            gold="",
            prefix="",
            episode=info["episode_kind"],
            episode_index=info["episode_index"],
            episode_tokens=info["episode_tokens"],
            total_tokens=info["total_tokens"],
            terminal=terminated,
            response="" if terminated else None,
            j_before=info["j_before"],
            j_after=info["j_after"],
            metadata={"verification": status},
        )
        expected = {"outcome": outcome(ctx), "progress": progress(ctx), "length": length(ctx)}
        assert info["reward_terms"] == pytest.approx(expected)
        assert reward == pytest.approx(sum(expected.values()))
        assert info["reward_terms"]["progress"] == pytest.approx(0.5 * info["progress"])
        assert info["reward_terms"]["length"] == pytest.approx(-0.01 * info["episode_tokens"])


def test_regret_in_info_is_the_exact_cumulative_regret() -> None:
    env = MRTStrategyEnv()
    _, reset_info = env.reset(seed=11)
    j_values = [reset_info["j"]]
    for action in [ATTEMPT, RECHECK, RECHECK, ATTEMPT]:
        _, _, _, _, info = env.step(action)
        assert info["j_before"] == j_values[-1]
        j_values.append(info["j_after"])
        expected = sum(1.0 - j for j in j_values[:-1])  # Σ_{i<k} (1 − J(c_i))
        assert info["regret"] == pytest.approx(expected, abs=1e-12)
        assert info["j_curve"][-1] == (info["total_tokens"], info["j_after"])


def test_parametric_dynamics_follow_the_documented_model() -> None:
    dynamics = ParametricDynamics()
    # right candidate, no confirmation: 1 - (1 - 0.6) * 0.5**0
    assert dynamics.j_of(1.0, 0) == pytest.approx(0.6)
    # right candidate, two confirmations: 1 - 0.4 * 0.25
    assert dynamics.j_of(1.0, 2) == pytest.approx(0.9)
    # wrong candidate, one confirmation: 0.2 * 0.5
    assert dynamics.j_of(2.0, 1) == pytest.approx(0.1)
    # no candidate: the guess rate
    assert dynamics.j_of(0.0, 5) == pytest.approx(0.05)
    rng = np.random.default_rng(0)
    sure = ParametricDynamics(difficulty_a=1e6, difficulty_b=1e-6)  # q ≈ 1
    state, tokens = sure.transition(sure.initial(rng), "attempt", rng)
    assert state.j == pytest.approx(0.6) and 40 <= tokens <= 80
    state, tokens = sure.transition(state, "recheck", rng)
    assert state.j == pytest.approx(0.8) and 15 <= tokens <= 35


def test_recheck_without_a_candidate_changes_nothing() -> None:
    dynamics = ParametricDynamics()
    state = TwinState(j=0.05, latent=(0.0, 0.0, 0.5))
    new_state, _ = dynamics.transition(state, "recheck", np.random.default_rng(0))
    assert new_state.j == state.j and new_state.latent == state.latent


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token_budget": 0}, "token_budget"),  # no budget at all
        ({"max_episodes": 0}, "max_episodes"),  # no episode allowed
        ({"dynamics": "learned"}, "dynamics"),  # unknown dynamics model
        ({"token_cost": -1.0}, "token_cost"),  # a token bonus is not a cost
    ],
)
def test_bad_config_raises_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StrategyConfig(**kwargs)


def test_bad_actions_and_step_after_end_raise() -> None:
    env = MRTStrategyEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STOP)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)
    env.step(STOP)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ATTEMPT)


def test_budget_truncates_and_cuts_the_last_episode() -> None:
    env = MRTStrategyEnv(token_budget=100)
    env.reset(seed=1)
    truncated, info = False, {}
    while not truncated:
        _, _, terminated, truncated, info = env.step(ATTEMPT)
        assert not terminated
    assert info["total_tokens"] == 100
    assert info["outcome"] in (0.0, 1.0)


def test_episode_cap_truncates() -> None:
    env = MRTStrategyEnv(max_episodes=2, token_budget=10_000)
    env.reset(seed=0)
    assert env.step(RECHECK)[3] is False
    assert env.step(RECHECK)[3] is True


def test_token_scale_keeps_the_observation_meaning_at_longer_budgets() -> None:
    short = MRTStrategyEnv(token_budget=100)
    long = MRTStrategyEnv(token_budget=200, token_scale=100)
    assert long.observation_space.high[1] == pytest.approx(2.0)
    for env in (short, long):
        env.reset(seed=5)
    obs_short = short.step(ATTEMPT)[0]
    obs_long = long.step(ATTEMPT)[0]
    assert obs_short[1] == pytest.approx(obs_long[1])


def test_recorded_dynamics_resample_recorded_transitions(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "rec.json")
    dynamics = RecordedDynamics(Recording.load(path), num_bins=2)
    rng = np.random.default_rng(0)
    assert {dynamics.initial(rng).j for _ in range(50)} == {0.0, 0.25}
    # J before 0.0 or 0.25 (bin 0), attempt: the recorded attempts from bin 0
    outcomes = {dynamics.transition(TwinState(0.0), "attempt", rng) for _ in range(50)}
    assert outcomes == {(TwinState(0.5), 30), (TwinState(0.0), 20)}
    # J before 0.5 (bin 1), recheck: the one recorded recheck
    assert dynamics.transition(TwinState(0.5), "recheck", rng) == (TwinState(1.0), 10)
    # recheck from bin 0 was never recorded: nearest bin of the same kind
    assert dynamics.transition(TwinState(0.1), "recheck", rng) == (TwinState(1.0), 10)


def test_recording_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"strategy\.record"):
        Recording.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format_version": 1, "trajectories": []}))
    with pytest.raises(ValueError, match=r"bad\.json"):
        Recording.load(bad)


def test_shipped_recording_is_the_default_and_drives_the_env() -> None:
    assert DEFAULT_RECORDING.is_file(), "regenerate it: python -m mrt_env.strategy.record"
    assert Recording.load(DEFAULT_RECORDING).settings["model"] == "tiny:classic"
    env = MRTStrategyEnv()
    assert isinstance(env.dynamics, RecordedDynamics)
    _, info = env.reset(seed=0)
    assert 0.0 <= info["j"] <= 1.0
    _, _, _, _, info = env.step(ATTEMPT)
    assert info["episode_tokens"] >= 1 and 0.0 <= info["j_after"] <= 1.0


@pytest.mark.parametrize(
    ("episode", "index", "kind"),
    [
        ("47+38: 7+8=15, so 85.", 0, "attempt"),  # the first episode is an attempt
        ("\n\nAlternatively, 47+38: 85.", 2, "attempt"),  # a new solution attempt
        ("\n\nIs there another way to think about this? 85.", 1, "attempt"),  # ditto
        ("\n\nWait, check: 85-38=47. Yes.", 1, "recheck"),  # inverse check
        ("\n\nBut let me double-check: 38+47=85.", 3, "recheck"),  # recomputation
        ("\n\nBut hold on, check: 85-47=38.", 1, "recheck"),  # another check marker
    ],
)
def test_classify_episode(episode: str, index: int, kind: str) -> None:
    assert classify_episode(episode, index) == kind


def _recording_script(prompt: str, sample_index: int) -> str:
    if prompt.endswith("\\boxed{"):  # a forced answer: right once the thinking says "= 3"
        return "3}" if "= 3" in prompt else "5}"
    return "1+2 = 4.\n\nWait, check: 4-2 = 2. No.\n\nAlternatively, 1+2 = 3.</think>\\boxed{3}"


def test_record_replays_responses_through_the_real_env(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"id": "p0", "problem": "1+2", "answer": "3"}) + "\n")
    settings = RecordSettings(problems=str(problems), num_problems=1, samples=2, k=2)
    recording = record(settings, lm=ScriptedLM(_recording_script), progress=False)
    assert len(recording.trajectories) == 2
    trajectory = recording.trajectories[0]
    assert trajectory.j0 == 0.0  # empty thinking: the forced answer is 5
    kinds = [e.kind for e in trajectory.episodes]
    assert kinds == ["attempt", "recheck", "attempt"]
    assert [e.j for e in trajectory.episodes] == [0.0, 0.0, 1.0]  # J after the thinking only
    assert trajectory.episodes[0].tokens == len("1+2 = 4.")  # char tokens of the episode
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(recording.to_json()))
    assert Recording.load(path).trajectories == recording.trajectories
    assert Recording.load(path).settings["samples"] == 2
