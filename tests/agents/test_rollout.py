"""Rollout collection over the vector env with a scripted policy and meta-prover."""

from __future__ import annotations

import itertools

import pytest

from agents.config import PolicyConfig
from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector, RolloutRequest, group_requests
from mrt_env.config import EnvConfig, build_components
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.problems import Problem
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.segmenters import MarkerSegmenter

TRACE = "Let me add: 3.\n\nWait, 1+1 is 2.\n\nWait, still 2.\n</think>\n\\boxed{2}"
PROBLEMS = [Problem("a", "1+1?", "2"), Problem("b", "0+2?", "2")]


def _script(prompt: str, sample: int) -> str:
    """Forced answers (after the termination suffix or the natural end of thinking) are right
    once the thinking said "Wait"; the policy writes TRACE."""
    if prompt.endswith("\\boxed{"):
        return "2}" if "Wait" in prompt else "3}"
    if prompt.endswith("</think>"):
        return "\n\\boxed{2}" if "Wait" in prompt else "\n\\boxed{3}"
    return TRACE


@pytest.fixture
def collector() -> RolloutCollector:
    lm = ScriptedLM(_script)
    prover = SampledMetaProver(lm, template="tiny", k=2)
    config = EnvConfig(problems=PROBLEMS, lm=lm, prover=prover, token_budget=200, max_episodes=6)
    components = build_components(config)
    policy = LLMPolicy.for_env(lm, PolicyConfig(), components, config.token_budget)
    return RolloutCollector(config, components, policy)


def test_groups_share_their_problem_and_record_spans_j_and_outcome(
    collector: RolloutCollector,
) -> None:
    trajectories = collector.collect(group_requests(PROBLEMS, 2), seed=0)
    assert [(t.problem_id, t.group) for t in trajectories] == [
        ("a", 0),
        ("a", 0),
        ("b", 1),
        ("b", 1),
    ]
    lm = collector.policy.lm
    for trajectory in trajectories:
        assert trajectory.response_text == TRACE
        assert lm.decode(trajectory.response_ids) == TRACE
        assert trajectory.prompt_ids == lm.encode(trajectory.prompt)
        spans = [(e.token_start, e.token_end) for e in trajectory.episodes]
        assert spans[0][0] == 0 and spans[-1][1] == len(trajectory.response_ids)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        # J(c_0) = 0 (no "Wait" yet), after episode 1 still 0, then 1; the final J is μ's
        # estimate from the natural end of thinking
        assert trajectory.j_values == [0.0, 0.0, 1.0, 1.0]
        assert [e.progress for e in trajectory.episodes] == [0.0, 1.0, 0.0]
        assert trajectory.outcome == 1.0 and trajectory.terminated
        assert trajectory.total_tokens == len(TRACE)
        assert len(trajectory.j_curve[0]) == 4


def test_prefix_requests_replay_without_training_on_the_prefix(
    collector: RolloutCollector,
) -> None:
    prefix = ("Let me add: 3.",)
    [trajectory] = collector.collect([RolloutRequest(PROBLEMS[0], 0, prefix)], seed=1)
    first = trajectory.episodes[0]
    assert first.text == prefix[0] and not first.trainable
    assert first.token_start == first.token_end == 0
    lm = collector.policy.lm
    assert trajectory.prompt_ids == lm.encode(trajectory.prompt + prefix[0])
    # the policy continued from prompt + prefix (the scripted model writes TRACE again)
    assert lm.decode(trajectory.response_ids).startswith(TRACE.split("\n\nWait")[0])
    assert all(e.trainable for e in trajectory.episodes[1:])


def test_mixed_problems_in_a_group_raise(collector: RolloutCollector) -> None:
    requests = [RolloutRequest(PROBLEMS[0], 0), RolloutRequest(PROBLEMS[1], 0)]
    with pytest.raises(ValueError, match="mixes problems"):
        collector.collect(requests, seed=0)


def test_the_policy_samples_the_same_with_or_without_a_meta_prover() -> None:
    from agents.config import TrainConfig
    from agents.grpo import collect_rollouts
    from agents.session import build_session
    from mrt_env.tinymath import TinyMathSource

    problems = TinyMathSource(split="train", size=20, seed=0)
    config = TrainConfig(problems_per_step=2, group_size=2, token_budget=32, prover_samples=2)
    responses = []
    for with_prover in (False, True):
        session = build_session(config, "random-tiny", problems, with_prover=with_prover)
        trajectories = collect_rollouts(session, seed=7)
        assert all((t.j_values[0] is not None) is with_prover for t in trajectories if t.episodes)
        responses.append([t.response_ids for t in trajectories])
    assert responses[0] == responses[1]  # common random numbers for GRPO vs MRT


def _collector(script: str, **env: object) -> RolloutCollector:
    lm = ScriptedLM([script])
    config = EnvConfig(problems=PROBLEMS, lm=lm, prover="none", **env)  # type: ignore[arg-type]
    components = build_components(config)
    policy = LLMPolicy.for_env(lm, PolicyConfig(), components, config.token_budget)
    return RolloutCollector(config, components, policy)


def test_eos_without_ending_thinking_terminates_and_grades_the_response() -> None:
    """A model without think tags: its EOS ends the trajectory, graded as it stands."""
    collector = _collector("1+1 is 2.\n\nWait, yes: \\boxed{2}", token_budget=200, max_episodes=50)
    [trajectory] = collector.collect([RolloutRequest(PROBLEMS[0], 0)], seed=0)
    assert [e.text for e in trajectory.episodes] == ["1+1 is 2.", "\n\nWait, yes: \\boxed{2}"]
    assert trajectory.terminated and trajectory.outcome == 1.0
    assert trajectory.episodes[-1].verification == "correct"


def test_default_caps_never_end_a_trajectory_before_the_token_budget() -> None:
    """mrt-train's defaults: no episode cap below --token-budget, no per-episode cap."""
    from agents.config import TrainConfig

    train = TrainConfig(token_budget=200)
    trace = "Start." + "".join(f"\n\nWait, step {i}." for i in range(40))  # > 200 tokens
    collector = _collector(trace, token_budget=train.token_budget, max_episodes=train.episode_cap)
    [trajectory] = collector.collect([RolloutRequest(PROBLEMS[0], 0)], seed=0)
    assert not trajectory.terminated
    assert trajectory.total_tokens == train.token_budget  # the budget ended it
    assert len(trajectory.episodes) > 8  # the old default episode cap would have ended it
    assert all(e.end != "episode_cap" for e in trajectory.episodes)


def test_training_shares_the_segmenter_and_grades_truncation_with_the_policy() -> None:
    """One segmenter object for the policy's episodes, the env and replay; truncated
    trajectories are graded on the policy's own forced answer while μ is a frozen copy."""
    from agents.config import TrainConfig
    from agents.session import build_session
    from mrt_env.tinymath import TinyMathSource

    segmenter = MarkerSegmenter(min_paragraphs=2)
    config = TrainConfig(
        problems_per_step=1,
        group_size=1,
        token_budget=16,
        prover_samples=1,
        prover_policy="frozen",
    )
    problems = TinyMathSource(split="train", size=5, seed=0)
    session = build_session(config, "random-tiny", problems, segmenter=segmenter)
    components = session.collector.components
    assert session.policy.segmenter is components.segmenter is segmenter
    assert components.truncation_lm is session.lm and components.lm is not session.lm
    assert session.collector.env_config.max_episodes == config.token_budget  # no cap below it
