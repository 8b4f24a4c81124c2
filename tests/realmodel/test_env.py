"""MRTMath-v0 on MATH-500 with SmolLM2 as policy and meta-prover, template="chat"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import mrt_env  # noqa: F401  (registers MRTMath-v0)
from agents.config import PolicyConfig
from agents.policy import LLMPolicy
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.replay import replay
from mrt_env.segmenters import MarkerSegmenter

pytestmark = pytest.mark.realmodel

SMALL = {"k": 2, "max_answer_tokens": 6, "token_budget": 24, "max_episodes": 2}
"""Settings that keep a real-model trajectory to a few seconds on CPU."""


def make_env(lm: Any, math500: Path, **overrides: Any) -> gym.Env:
    kwargs: dict[str, Any] = {"problems": str(math500), "lm": lm, "template": "chat", **SMALL}
    return gym.make("MRTMath-v0", **{**kwargs, **overrides})


def run_trajectory(env: gym.Env, policy: LLMPolicy, seed: int) -> list[dict[str, Any]]:
    observation, info = env.reset(seed=seed, options={"index": 0})
    infos = [info]
    for index in range(10):
        [episode] = policy.act([observation], seeds=[seed * 100 + index])
        observation, _, terminated, truncated, info = env.step(episode.text)
        infos.append(info)
        if terminated or truncated:
            return infos
    raise AssertionError("the trajectory did not end within 10 steps")


def test_gym_make_with_a_model_path_and_the_chat_template(engine_spec: str, math500: Path) -> None:
    env = make_env(engine_spec, math500, prover="none")
    observation, info = env.reset(seed=0, options={"index": 0})
    assert observation.startswith("<|im_start|>system\n")
    assert observation.endswith("<|im_start|>assistant\n")
    assert "\\boxed{}" in observation and info["problem_id"]
    assert env.unwrapped.core.components.template.name == "chat"


def test_trajectory_with_the_real_model_as_policy_and_meta_prover(
    real_lm: Any, math500: Path
) -> None:
    env = make_env(real_lm, math500)
    prover = env.unwrapped.core.components.prover
    assert isinstance(prover, SampledMetaProver) and prover.lm is real_lm
    policy = LLMPolicy.for_env(
        real_lm,
        PolicyConfig(temperature=0.7, max_trajectory_tokens=24, max_episode_tokens=12),
        env.unwrapped.core.components,
        SMALL["token_budget"],
    )
    first = run_trajectory(env, policy, seed=1)
    assert first[0]["j"] is not None and 0.0 <= first[0]["j"] <= 1.0
    last = first[-1]
    assert last["outcome"] in (0.0, 1.0)
    assert all(0.0 <= info["j_after"] <= 1.0 for info in first[1:])
    assert 0 < last["total_tokens"] <= SMALL["token_budget"]
    assert [i["episode_index"] for i in first[1:]] == list(range(len(first) - 1))


def test_check_env(real_lm: Any, math500: Path) -> None:
    check_env(make_env(real_lm, math500, max_answer_tokens=2).unwrapped, skip_render_check=True)


def test_vector_env_steps_every_copy_with_one_model(real_lm: Any, math500: Path) -> None:
    envs = gym.make_vec(
        "MRTMath-v0", num_envs=2, problems=str(math500), lm=real_lm, template="chat", **SMALL
    )
    observations, info = envs.reset(seed=3)
    assert len(observations) == 2 and all(o.endswith("assistant\n") for o in observations)
    episodes = ["Let me think about the problem step by step.", "First, read the problem."]
    observations, rewards, terminated, _, info = envs.step(episodes)
    assert all(o.endswith(e) for o, e in zip(observations, episodes, strict=True))
    assert rewards.shape == (2,) and not terminated.any()
    assert ((info["j_after"] >= 0) & (info["j_after"] <= 1)).all()
    envs.close()


def test_replay_of_a_written_response_grades_its_boxed_answer(real_lm: Any, math500: Path) -> None:
    segmenter = MarkerSegmenter(min_paragraphs=1)
    env = make_env(real_lm, math500, token_budget=256, max_episodes=4, segmenter=segmenter)
    env.reset(seed=0, options={"index": 0})
    problem = env.unwrapped.problem
    response = (
        "We convert the point to polar coordinates.\n\n"
        "Wait, let me check the angle again.\n\n"
        f"The answer is $\\boxed{{{problem.answer}}}$."
    )
    trajectory = replay(env, response, problem=problem, seed=0)
    assert trajectory.terminated and trajectory.outcome == 1.0
    assert trajectory.verification == "correct"
    # the reply's first \boxed{ ends its thinking: the last episode holds the answer
    assert len(trajectory.episodes) == 2 and "\\boxed{" in trajectory.episodes[-1]
    assert len(trajectory.j) == 3
    assert all(j is not None and 0.0 <= j <= 1.0 for j in trajectory.j)


@pytest.mark.parametrize("template", ["plain", "r1-distill"])
def test_fixed_presets_still_work_on_the_real_model(
    real_lm: Any, math500: Path, template: str
) -> None:
    env = make_env(real_lm, math500, template=template, prover="none")
    observation, _ = env.reset(seed=0, options={"index": 0})
    assert observation.endswith("<think>\n")


def test_meta_prover_through_each_engine_reads_j_after_every_episode(
    engine_spec: str, math500: Path
) -> None:
    """μ = SmolLM2 (in-process or served): J after each written episode, then the outcome."""
    env = make_env(engine_spec, math500, token_budget=256, max_episodes=4)
    _, info = env.reset(seed=0, options={"index": 0})
    assert info["j"] is not None and 0.0 <= info["j"] <= 1.0
    for episode in ("Let me think about the problem.", "\n\nWait, let me check it again."):
        _, _, terminated, truncated, info = env.step(episode)
        assert not (terminated or truncated)
        assert 0.0 <= info["j_after"] <= 1.0 and info["j_source"] == "prover"
    _, _, terminated, _, info = env.step("\n\nSo the answer is \\boxed{10}.")
    assert terminated and info["verification"] in ("correct", "wrong")


def test_a_reply_that_states_its_answer_without_a_box_is_graded(
    real_lm: Any, math500: Path
) -> None:
    """SmolLM2 ends with "So, the answer is X." (no box): the chat default reads it; ``()`` is
    the paper's boxed-only rule. Problem 0's own gold answer, so no answer is made up."""
    from mrt_env.spaces import FinalEpisode
    from rewards.extraction import ANSWER_IS_PATTERN

    outcomes = []
    for overrides in ({}, {"answer_patterns": ()}):
        env = make_env(real_lm, math500, token_budget=256, prover="none", **overrides)
        env.reset(seed=0, options={"index": 0})
        gold = env.unwrapped.problem.answer
        reply = f"Let me work it out.\n\nSo, the answer is ${gold}$."
        _, _, terminated, _, info = env.step(FinalEpisode(reply))
        assert terminated
        outcomes.append((info["outcome"], info["verification"]))
        patterns = env.unwrapped.core.components.answer_patterns
        assert patterns == (() if overrides else (ANSWER_IS_PATTERN,))
    assert outcomes == [(1.0, "correct"), (0.0, "no_answer")]
