"""MRTMathVectorEnv: make_vec, one batched prover call per step, next-step autoreset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode

from mrt_env.env import MRTMathEnv
from mrt_env.vector import MRTMathVectorEnv
from tests.mrt_env.env_doubles import SpyProver, env_kwargs


def make_vec(num_envs: int = 3, **overrides: Any) -> MRTMathVectorEnv:
    envs = gym.make_vec("MRTMath-v0", num_envs=num_envs, **env_kwargs(**overrides))
    assert isinstance(envs, MRTMathVectorEnv)
    return envs


def test_make_vec_uses_the_batched_vector_env() -> None:
    envs = make_vec(3)
    assert envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    observations, infos = envs.reset(seed=0)
    assert len(observations) == 3 and all(isinstance(o, str) for o in observations)
    assert observations in envs.observation_space
    assert infos["j"].shape == (3,) and infos["_j"].all()


def test_a_vector_step_makes_exactly_one_prover_call() -> None:
    prover = SpyProver()
    envs = make_vec(4, prover=prover)
    envs.reset(seed=0)
    assert len(prover.calls) == 1 and len(prover.calls[0]) == 4  # the resets, batched
    envs.step(["a=", "b", "c=", "d"])
    assert len(prover.calls) == 2 and len(prover.calls[1]) == 4
    assert [r.prefix for r in prover.calls[1]] == ["a=", "b", "c=", "d"]


def test_one_call_also_when_some_sub_envs_autoreset() -> None:
    prover = SpyProver()
    envs = make_vec(3, prover=prover)
    envs.reset(seed=0)
    _, _, terminated, _, _ = envs.step(["</think>\\boxed{1}", "x", "y"])
    assert terminated.tolist() == [True, False, False]
    assert len(prover.calls[-1]) == 3  # J of the natural end of the terminated one, too
    observations, rewards, terminated, truncated, infos = envs.step(["ignored", "x", "y"])
    assert len(prover.calls) == 3 and len(prover.calls[-1]) == 3  # reset J + two steps
    assert observations[0].endswith("<think>\n")  # sub-env 0 was reset (next-step mode)
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    assert infos["_episode_index"].tolist() == [False, True, True]
    assert infos["_j"].tolist() == [True, False, False]


def test_sub_env_i_replays_a_single_env_seeded_seed_plus_i() -> None:
    envs = make_vec(3)
    observations, _ = envs.reset(seed=10)
    actions = [["a=", "b=", "c"], [" d", " e=", " f"]]
    vector_steps = [envs.step(a) for a in actions]
    for i in range(3):
        env = MRTMathEnv(**env_kwargs())
        observation, _ = env.reset(seed=10 + i)
        assert observation == observations[i]
        for step, batch in zip(vector_steps, actions, strict=True):
            observation, reward, _, _, info = env.step(batch[i])
            assert observation == step[0][i]
            assert reward == step[1][i]
            assert info["j_after"] == step[4]["j_after"][i]
            assert info["regret"] == step[4]["regret"][i]


def test_infos_are_batched_with_masks() -> None:
    envs = make_vec(2)
    envs.reset(seed=0)
    _, _, _, _, infos = envs.step(["1=1", "</think>\\boxed{0}"])
    assert infos["episode_tokens"].tolist() == [3, 17]
    assert infos["_outcome"].tolist() == [False, True]  # unset (None) values are masked
    assert infos["reward_terms"]["progress"].shape == (2,)
    assert isinstance(infos["curve"][0], list)


def test_reset_mask_resets_only_selected_sub_envs() -> None:
    envs = make_vec(2)
    envs.reset(seed=0)
    observations, _, _, _, _ = envs.step(["a", "b"])
    mask = np.array([False, True])
    reset_observations, infos = envs.reset(options={"reset_mask": mask})
    assert reset_observations[0] == observations[0]
    assert reset_observations[1].endswith("<think>\n")
    assert infos["_problem_id"].tolist() == [False, True]


@pytest.mark.parametrize(
    ("actions", "error", "message"),
    [
        ("one string", TypeError, "sequence of 2 str"),  # a bare string
        (["a"], ValueError, "expected 2 actions"),  # wrong count
        (["a", 5], TypeError, r"actions\[1\] must be a str, got int"),  # a non-str action
    ],
)
def test_bad_actions_raise_and_change_nothing(actions: Any, error: type, message: str) -> None:
    prover = SpyProver()
    envs = make_vec(2, prover=prover)
    observations, _ = envs.reset(seed=0)
    with pytest.raises(error, match=message):
        envs.step(actions)
    assert len(prover.calls) == 1
    assert envs.step(["a", "b"])[0] == (observations[0] + "a", observations[1] + "b")


def test_step_before_reset_raises() -> None:
    with pytest.raises(ResetNeeded):
        make_vec(2).step(["a", "b"])


@pytest.mark.parametrize("num_envs", [0, -1, 1.5, True])
def test_num_envs_must_be_a_positive_int(num_envs: Any) -> None:
    with pytest.raises(ValueError, match="num_envs"):
        MRTMathVectorEnv(num_envs, **env_kwargs())


def test_real_path_one_generate_call_per_vector_step() -> None:
    from mrt_env.lm.testing import tiny_random_lm
    from mrt_env.prover.sampled import SampledMetaProver

    lm = tiny_random_lm(seed=0)
    generate_calls: list[int] = []
    real_generate = lm.generate

    def counting_generate(prompts: Any, params: Any, seeds: Any = None) -> Any:
        generate_calls.append(len(prompts))
        return real_generate(prompts, params, seeds)

    lm.generate = counting_generate  # type: ignore[method-assign]
    prover = SpyProver(inner=SampledMetaProver(lm, template="tiny", k=2, max_answer_tokens=2))
    envs = make_vec(3, lm=lm, prover=prover, token_budget=100)
    envs.reset(seed=0)
    before = len(generate_calls)
    envs.step(["1+", "2+", "3+"])
    assert len(prover.calls) == 2
    assert generate_calls[before:] == [3]  # three distinct prefixes, one batched call
