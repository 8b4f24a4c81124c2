"""The served MRTMath-v0 (real OpenEnv server under uvicorn on loopback) equals the in-process env.

Trajectories are compared field by field (observation text, reward, flags, the whole info dict
as JSON) for the same seeds and settings; μ is the tiny LM on both sides, so any difference in
problem choice, μ's seeds, batching or serialization shows up as a different J, curve or text.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import gymnasium as gym
import pytest

pytest.importorskip("openenv")

from mrt_env.env import MRTMathEnv
from mrt_env.spaces import FinalEpisode
from mrt_env.tinymath.scripted import scripted_episodes

ACTIONS = (
    "First, multiply the numbers.\n\n",
    "Wait, let me check the digits again.\n\n",
    "So the answer follows.\n\n",
    "</think> \\boxed{42}",
)


def plan(observation: str) -> list[str]:
    """Episodes for a TinyMath prompt: a wrong result, the right one, a restatement, then the
    answer, so μ's J moves and its sampling seeds matter."""
    return scripted_episodes(observation, restate=True)


def _moved(records: list[Any]) -> bool:
    """Whether μ found some prefix's J above 0 (its sampled answers were compared, not only
    a constant zero)."""
    return any((step[-1].get("j_after") or 0) > 0 for record in records for step in record[1:])


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _run(env: Any, seed: int, options: dict[str, Any] | None, actions: Any = plan) -> list:
    """One trajectory: the reset and every step's return values (as JSON)."""
    observation, info = env.reset(seed=seed, options=options)
    record: list[Any] = [[observation, _json(info)]]
    for action in actions(observation) if callable(actions) else actions:
        observation, reward, terminated, truncated, info = env.step(action)
        record.append([observation, reward, terminated, truncated, _json(info)])
        if terminated or truncated:
            break
    return record


def _remote(server: Any, **options: Any) -> Any:
    from mrt_env.openenv.client import MRTMathRemoteEnv

    return MRTMathRemoteEnv(server.base_url, **options)


def test_one_session_equals_in_process(mrt_env_server: Any) -> None:
    local = MRTMathEnv(k=2, token_budget=64)
    remote = _remote(mrt_env_server)
    try:
        runs = []
        for seed in (1, 3, 11):
            expected = _run(local, seed, None)
            assert _run(remote, seed, None) == expected
            runs.append(expected)
        assert _moved(runs)  # μ's estimates are compared, not only zeros
        assert expected[-1][2] or expected[-1][3]  # the last step ended the trajectory
    finally:
        remote.close()


def test_final_episode_and_truncation_equal_in_process(mrt_env_server: Any) -> None:
    """A FinalEpisode ends the trajectory; a long episode is cut at the budget (forced answer)."""
    local = MRTMathEnv(k=2, token_budget=24, max_episodes=3)
    remote = _remote(mrt_env_server, token_budget=24, max_episodes=3)
    try:
        final = (FinalEpisode("The product is \\boxed{430}"),)
        assert _run(remote, 5, None, final) == _run(local, 5, None, final)
        long = ("Let me multiply digit by digit and carry. " * 8,)
        expected = _run(local, 6, None, long)
        assert expected[-1][3] is True  # truncated at the budget
        assert _run(remote, 6, None, long) == expected
    finally:
        remote.close()


def test_four_concurrent_sessions_equal_in_process(mrt_env_server: Any) -> None:
    """4 sessions stepping at once (μ batched across them) equal 4 in-process trajectories."""
    local = MRTMathEnv(k=3, token_budget=64)
    expected = [_run(local, 100 + i, {"index": i}) for i in range(4)]
    assert _moved(expected)
    served: list[Any] = [None] * 4
    errors: list[BaseException] = []
    start = threading.Barrier(4, timeout=60)

    def session(i: int) -> None:
        remote = _remote(mrt_env_server, k=3)
        try:
            start.wait()
            observation, info = remote.reset(seed=100 + i, options={"index": i})
            record: list[Any] = [[observation, info]]
            for action in plan(observation):
                observation, reward, terminated, truncated, info = remote.step(action)
                record.append([observation, reward, terminated, truncated, info])
                if terminated or truncated:
                    break
            served[i] = record
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            remote.close()

    before = mrt_env_server.stats()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for i in range(4):
        assert served[i] == expected[i], f"session {i}"
    after = mrt_env_server.stats()
    jobs = after["worker_jobs"] - before["worker_jobs"]
    rounds = after["worker_rounds"] - before["worker_rounds"]
    assert jobs == sum(len(record) for record in expected)
    assert rounds < jobs  # μ calls of different sessions shared rounds (one model call each)


def test_check_env_through_the_gymnasium_wrapper(mrt_env_server: Any) -> None:
    from gymnasium.utils.env_checker import check_env

    import mrt_env  # noqa: F401  (registers the ids)

    env = gym.make("MRTMathRemote-v0", base_url=mrt_env_server.base_url, k=1)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        observation, info = env.reset(seed=0)
        assert env.observation_space.contains(observation)
        assert info["problem_id"] == env.unwrapped.state().problem_id
    finally:
        env.close()


def test_async_client_and_state(mrt_env_server: Any) -> None:
    import asyncio

    from mrt_env.openenv.client import MRTMathEnv as Client
    from mrt_env.openenv.models import MRTAction

    async def run() -> tuple[Any, Any, Any]:
        async with Client(base_url=mrt_env_server.base_url) as env:
            first = await env.reset(seed=7, k=1)
            step = await env.step(MRTAction(text=ACTIONS[0]))
            state = await env.state()
            return first, step, state

    first, step, state = asyncio.run(run())
    assert first.observation.text.endswith("<think>\n")
    assert step.observation.episode_index == 0 and step.done is False
    assert state.step_count == 1 and state.episode_index == 1
    assert state.problem_id == first.observation.problem_id
    assert [list(p) for p in state.j_curve] == step.observation.info["curve"]
    assert "answer" not in state.model_dump_json()  # never the gold answer


def test_remote_vector_env_equals_the_in_process_vector_env(mrt_env_server: Any) -> None:
    """The trainer's view: N sessions stepped at once equal MRTMathVectorEnv (same seeds)."""
    import numpy as np

    from mrt_env.openenv.remote_vector import RemoteVectorEnv
    from mrt_env.problems import Problem
    from mrt_env.vector import MRTMathVectorEnv

    local = MRTMathVectorEnv(3, k=2, token_budget=40, max_episodes=3)
    remote = RemoteVectorEnv(
        3, mrt_env_server.base_url, options={"token_budget": 40, "max_episodes": 3}
    )
    try:
        options = {
            "problem": Problem("sum", "17+25", "42"),
            "reset_mask": np.array([True, True, False]),
        }
        pairs = [local.reset(seed=[5, 6, 7]), remote.reset(seed=[5, 6, 7])]
        assert pairs[0][0] == pairs[1][0]
        pairs = [
            local.reset(seed=[8, 9, 10], options=dict(options)),
            remote.reset(seed=[8, 9, 10], options=dict(options)),
        ]
        assert pairs[0][0] == pairs[1][0]
        for actions in (ACTIONS[:3], ACTIONS[1:], ACTIONS[2:] + ACTIONS[:1]):
            expected, served = local.step(list(actions)), remote.step(list(actions))
            assert served[0] == expected[0]
            for got, want in zip(served[1:4], expected[1:4], strict=True):
                np.testing.assert_array_equal(got, want)
            assert _vector_info(served[4]) == _vector_info(expected[4])
    finally:
        remote.close()


def _vector_info(infos: dict[str, Any]) -> Any:
    """A vector env's info dict as JSON (arrays as lists, tuples as lists)."""
    return {
        key: _vector_info(value) if isinstance(value, dict) else _json(value.tolist())
        for key, value in infos.items()
    }


@pytest.mark.slow
@pytest.mark.server
def test_mu_on_an_openai_compatible_server(tiny_lm_server: Any) -> None:
    """`mrt-gym serve --lm openai:URL`: μ is a real completions server (transformers serve)."""
    from tests.openenv_servers import serve_env

    spec = f"openai:{tiny_lm_server.base_url}"
    args = ("--lm", spec, "--template", "tiny", "--k", "2", "--token-budget", "64")
    with serve_env(*args) as server:
        remote = _remote(server)
        try:
            record = _run(remote, 3, None)
        finally:
            remote.close()
        infos = [step[-1] for step in record[1:]]
        assert record[-1][2] or record[-1][3]  # ran to the end
        assert all(0 <= i["j_after"] <= 1 and i["j_source"] == "prover" for i in infos)
        assert server.stats()["worker_jobs"] == len(record)
