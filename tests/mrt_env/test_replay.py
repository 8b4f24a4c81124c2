"""replay / replay_many: finished responses stepped through the env episode by episode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mrt_env.env import MRTMathEnv
from mrt_env.replay import Trajectory, curves_by_problem, replay, replay_many, split_response
from mrt_env.segmenters import MarkerSegmenter
from tests.mrt_env.env_doubles import SpyProver, env_kwargs

RESPONSE = "1+1=2.\n\nWait, 1+1=2 again.\n\nAlternatively, 2.</think>\nThe answer is \\boxed{2}."


def make_env(**overrides: Any) -> MRTMathEnv:
    overrides.setdefault("segmenter", MarkerSegmenter(min_paragraphs=1))
    overrides.setdefault("token_budget", 1000)
    overrides.setdefault("max_episodes", 50)
    return MRTMathEnv(**env_kwargs(**overrides))


def test_split_response_keeps_the_answer_on_the_last_episode() -> None:
    episodes = split_response(make_env(), RESPONSE)
    assert episodes == [
        "1+1=2.",
        "\n\nWait, 1+1=2 again.",
        "\n\nAlternatively, 2.</think>\nThe answer is \\boxed{2}.",
    ]
    assert "".join(episodes) == RESPONSE


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("", [""]),  # nothing at all: one empty episode
        ("</think>\\boxed{2}", ["</think>\\boxed{2}"]),  # no thinking, only the answer
        ("a\n\nWait, b", ["a", "\n\nWait, b"]),  # never ends thinking
    ],
)
def test_split_response_edge_cases(response: str, expected: list[str]) -> None:
    assert split_response(make_env(), response) == expected


def test_replay_reports_the_trajectory() -> None:
    trajectory = replay(make_env(), RESPONSE, problem=0, seed=0)
    assert isinstance(trajectory, Trajectory)
    assert trajectory.problem_id == "add"
    assert len(trajectory.episodes) == 3 and "".join(trajectory.episodes) == RESPONSE
    assert trajectory.total_tokens[-1] == len(RESPONSE)  # char tokens
    assert trajectory.episode_tokens == tuple(len(e) for e in trajectory.episodes)
    # J = 0.25 per "=" in the thinking so far, also at the natural end (μ's J(final))
    assert trajectory.j == (0.0, 0.25, 0.5, 0.5)
    assert trajectory.progress == (0.25, 0.25, 0.0)
    assert trajectory.regret == (1.0, 1.75, 2.25)
    assert (trajectory.outcome, trajectory.verification) == (1.0, "correct")
    assert (trajectory.terminated, trajectory.truncated) == (True, False)
    assert trajectory.rewards == (0.25, 0.25, 1.0)
    tokens, j = trajectory.curve_arrays()
    assert j.tolist() == [0.0, 0.25, 0.5, 0.5]
    outcome_j = replay(make_env(final_j="outcome"), RESPONSE, problem=0, seed=0)
    assert outcome_j.j == (0.0, 0.25, 0.5, 1.0) and outcome_j.rewards == (0.25, 0.25, 1.5)
    assert np.all(np.diff(tokens) > 0)


@pytest.mark.parametrize(
    "response",
    [
        "1+1=2.\n\nWait, so the answer is \\boxed{2}.",  # no think tags at all
        "1+1=2, so \\boxed{2}",  # one episode
    ],
)
def test_a_response_without_think_tags_is_graded_on_its_final_answer(response: str) -> None:
    trajectory = replay(make_env(), response, problem=0, seed=0)
    assert (trajectory.terminated, trajectory.truncated) == (True, False)
    assert (trajectory.outcome, trajectory.verification) == (1.0, "correct")
    assert "".join(trajectory.episodes) == response


def test_replay_accepts_problem_objects_ids_and_dicts() -> None:
    env = make_env()
    assert replay(env, "x", problem="mul").problem_id == "mul"
    assert replay(env, "x", problem={"id": "q", "problem": "2+2?", "answer": "4"}).problem_id == "q"


def test_replay_stops_when_the_env_truncates() -> None:
    trajectory = replay(make_env(max_episodes=2), RESPONSE, problem=0)
    assert len(trajectory.episodes) == 2
    assert trajectory.truncated and not trajectory.terminated
    assert trajectory.outcome is not None  # the forced answer's outcome


def test_replay_does_not_touch_the_env_trajectory() -> None:
    env = make_env()
    observation, _ = env.reset(seed=0)
    replay(env, RESPONSE, problem=0)
    assert env.trajectory.thinking == "" and env.render() is None
    assert env.step("z")[0] == observation + "z"


def test_replay_many_matches_replay_and_batches_prover_calls() -> None:
    prover = SpyProver()
    env = make_env(prover=prover)
    responses = [RESPONSE, "a=\n\nWait, b</think>\\boxed{12}", "no end"]
    problems = [0, 1, 2]
    many = replay_many(env, responses, problems, seed=3)
    # one call for the resets, then one per round of episodes (an episode that ends
    # thinking needs μ's J of the natural end too)
    assert [len(batch) for batch in prover.calls] == [3, 3, 2, 1]
    singles = [replay(make_env(), r, p, seed=3) for r, p in zip(responses, problems, strict=True)]
    assert [t.j for t in many] == [t.j for t in singles]
    assert many[1].outcome == 1.0
    # a finished response without the end marker is graded as it stands (no answer: wrong)
    assert (many[2].outcome, many[2].verification, many[2].terminated) == (0.0, "no_answer", True)


def test_replay_many_in_small_batches() -> None:
    prover = SpyProver()
    env = make_env(prover=prover)
    result = replay_many(env, ["a", "b", "c"], [0, 1, 2], batch_size=2)
    assert len(result) == 3
    # per batch: the resets, then μ's J of each response's natural end (one final episode each)
    assert [len(batch) for batch in prover.calls] == [2, 2, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"responses": ["a"], "problems": [0, 1]}, ValueError, "1 responses but 2"),
        ({"responses": [3], "problems": [0]}, TypeError, "response must be a str"),
        ({"responses": ["a"], "problems": [0], "batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_replay_many_rejects_bad_input(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        replay_many(make_env(), **kwargs)


def test_replay_needs_an_mrt_env() -> None:
    import gymnasium as gym

    with pytest.raises(TypeError, match="MRTMath-v0"):
        replay(gym.make("CartPole-v1"), "x", problem=0)


def test_regret_and_curve_agree_with_the_regret_metrics() -> None:
    from mrt_env.regret import cumulative_regret, normalized_regret

    trajectory = replay(make_env(), RESPONSE, problem=0, seed=0)
    expected = cumulative_regret([j for j in trajectory.j if j is not None])
    assert list(trajectory.regret) == pytest.approx(expected[1 : len(trajectory.episodes) + 1])
    tokens, j = trajectory.curve_arrays()
    value = normalized_regret([[(tokens, j)]], budget=float(tokens[-1]))
    assert 0.0 < value < 1.0


def test_curve_tokens_never_decrease() -> None:
    # forced answers of 50 tokens, then a final answer much shorter than that
    env = make_env(prover=SpyProver(answer_tokens=50.0))
    trajectory = replay(env, "a=\n\nWait, b</think>\\boxed{2}", problem=0)
    tokens, _ = trajectory.curve_arrays()
    assert np.all(np.diff(tokens) >= 0)


def test_curves_by_problem_groups_traces_in_first_seen_order() -> None:
    env = make_env()
    trajectories = replay_many(env, ["a", "b", "c"], ["mul", "add", "mul"], seed=0)
    groups = curves_by_problem(trajectories)
    assert [len(group) for group in groups] == [2, 1]
    tokens, j = groups[1][0]
    assert np.array_equal(tokens, trajectories[1].curve_arrays()[0])
    assert np.array_equal(j, trajectories[1].curve_arrays()[1])


def test_replay_many_reports_each_response_as_its_replay_ends() -> None:
    responses = [RESPONSE, "a=\n\nWait, b</think>\\boxed{12}", "no end"]  # 3, 2 and 1 episodes
    told: list[list[int]] = []
    many = replay_many(make_env(), responses, [0, 1, 2], seed=3, progress=told.append)
    assert told == [[2], [1], [0]]  # after round 1 "no end", after round 2 the second, ...
    quiet = replay_many(make_env(), responses, [0, 1, 2], seed=3)
    assert [t.j for t in many] == [t.j for t in quiet]  # the callback changes nothing
    told.clear()
    replay_many(make_env(), ["a", "b", "c"], [0, 1, 2], batch_size=2, progress=told.append)
    assert told == [[0, 1], [2]]  # indices into the whole list, across batches
