"""The served env's memory is bounded: closed sessions are freed, shared caches are capped.

The first tests drive the server's own session objects (:class:`ServerRuntime`,
:class:`MRTServerEnvironment`, the real model worker and tiny LM) without the network; the last
one opens and closes sessions over WebSockets on the real server and asks ``/mrt/memory``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
import time
import urllib.request
import weakref
from typing import Any

import pytest

pytest.importorskip("openenv")

from mrt_env.env import MRTMathEnv
from mrt_env.openenv.memory import lm_options, release_free_memory
from mrt_env.openenv.models import MRTAction
from mrt_env.openenv.server import ServerRuntime
from mrt_env.openenv.settings import ServeSettings
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.tinymath.scripted import scripted_episodes

SETTINGS = {"k": 2, "token_budget": 64}


plan = scripted_episodes


async def _trajectory(env: Any, seed: int) -> list[dict[str, Any]]:
    """Reset and step one session through :func:`plan`; every info dict (reset's first)."""
    observation = await env.reset_async(seed=seed)
    infos = [observation.info]
    for episode in plan(observation.text):
        observation = await env.step_async(MRTAction(text=episode))
        infos.append(observation.info)
        if observation.done:
            break
    return infos


def _gone(refs: list[weakref.ref[Any]], timeout: float = 10.0) -> bool:
    """Whether every referent is collected (the worker may still be finishing its round)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        if all(ref() is None for ref in refs) or time.monotonic() > deadline:
            return all(ref() is None for ref in refs)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def runtime() -> Any:
    """A server runtime (tiny LM μ, real model worker) whose J cache keeps 4 estimates."""
    runtime = ServerRuntime(ServeSettings(defaults=SETTINGS, j_cache_size=4))
    yield runtime
    runtime.close()


def test_closed_sessions_and_their_trajectories_are_freed(runtime: ServerRuntime) -> None:
    refs: list[weakref.ref[Any]] = []

    async def sessions() -> None:
        for seed in range(3):
            env = runtime.open_session()
            await _trajectory(env, seed)
            refs.extend([weakref.ref(env), weakref.ref(env._trajectory)])
            env.close()

    asyncio.run(sessions())
    assert runtime.sessions_opened - runtime.sessions_closed == 0
    assert _gone(refs), "a closed session's environment or trajectory is still referenced"
    assert len(runtime.sessions) == 0
    assert runtime.memory()["session_objects"] == 0


def test_j_cache_stays_within_its_bound(runtime: ServerRuntime) -> None:
    async def sessions() -> list[int]:
        sizes = []
        for seed in range(10, 16):  # 6 trajectories, about 4 distinct prefixes each
            env = runtime.open_session()
            await _trajectory(env, seed)
            env.close()
            sizes.append(runtime.memory()["j_cache_entries"])
        return sizes

    sizes = asyncio.run(sessions())
    prover = runtime.core("tinymath", {}).components.prover
    assert isinstance(prover, SampledMetaProver)
    assert prover.stats.unique_prefixes > 4  # more J estimates than the cache keeps
    assert max(sizes) == 4 == prover.cache_entries


def test_a_cache_hit_returns_the_same_j_as_a_fresh_estimate(runtime: ServerRuntime) -> None:
    """The same trajectory twice: the second is answered from the J cache and equals both the
    first and an in-process env's (its own, empty cache)."""
    prover = runtime.core("tinymath", {}).components.prover
    assert isinstance(prover, SampledMetaProver)

    async def once() -> list[Any]:
        env = runtime.open_session()
        try:
            return await _trajectory(env, 43)
        finally:
            env.close()

    async def twice() -> tuple[list[Any], list[Any], int]:
        first = await once()
        hits = prover.stats.cache_hits
        second = await once()
        return first, second, prover.stats.cache_hits - hits

    first, second, hits = asyncio.run(twice())
    local = MRTMathEnv(**SETTINGS)
    observation, info = local.reset(seed=43)
    expected = [info]
    for episode in plan(observation):
        observation, _, terminated, truncated, info = local.step(episode)
        expected.append(info)
        if terminated or truncated:
            break
    expected = json.loads(json.dumps(expected))
    curves = [[info.get("j_after") for info in infos] for infos in (first, second, expected)]
    assert any(j for j in curves[2] if j), "μ's J never moved: nothing was compared"
    assert hits >= 3  # the second trajectory's J estimates came from the cache
    assert curves[0] == curves[1] == curves[2]
    assert first == second == expected


@pytest.mark.skipif(sys.platform != "linux", reason="glibc malloc_trim")
def test_free_memory_goes_back_to_the_system_on_linux() -> None:
    assert release_free_memory() is True


def test_prefix_cache_cap_reaches_a_local_model_only() -> None:
    assert lm_options(ServeSettings(prefix_cache_mb=1.5)) == {"prefix_cache_max_bytes": 1572864}
    mine = ServeSettings(
        prefix_cache_mb=1, defaults={"lm_options": {"prefix_cache_max_bytes": 7, "x": 1}}
    )
    assert lm_options(mine) == {"prefix_cache_max_bytes": 7, "x": 1}  # the operator's wins
    assert lm_options(ServeSettings(lm="openai:http://127.0.0.1:1/v1", prefix_cache_mb=1)) == {}
    assert lm_options(ServeSettings()) == {}  # None: the backend's own cap
    for bad in ({"j_cache_size": -1}, {"max_cores": 0}, {"prefix_cache_mb": float("inf")}):
        with pytest.raises(ValueError):
            ServeSettings(**bad)


def test_served_sessions_leave_no_objects_behind(mrt_env_server: Any) -> None:
    """8 WebSocket sessions (4 at a time) open, step and close: none stays in memory."""
    from mrt_env.openenv.client import MRTMathRemoteEnv

    errors: list[BaseException] = []

    def one(seed: int) -> None:
        # settings no other test uses: this test's J estimates go to a step core of its own
        remote = MRTMathRemoteEnv(mrt_env_server.base_url, k=2, token_budget=72)
        try:
            observation, _ = remote.reset(seed=seed)
            for episode in plan(observation)[:2]:
                remote.step(episode)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            remote.close()

    before = mrt_env_server.stats()["sessions_opened"]
    for first in (500, 504):
        threads = [threading.Thread(target=one, args=(first + i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not errors, errors
    stats = mrt_env_server.wait_for("sessions_live", 0)
    assert stats["sessions_opened"] - before == 8
    url = f"{mrt_env_server.base_url}/mrt/memory"
    # the μ worker drops a round's jobs right after answering them, so the last round's
    # sessions may still be referenced for a moment after their clients have left: poll
    # (a leak never reaches 0)
    deadline = time.monotonic() + 20.0
    while True:
        with urllib.request.urlopen(url, timeout=30) as answer:
            memory = json.loads(answer.read())
        if memory["session_objects"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert memory["session_objects"] == stats["sessions_live"] == 0
    assert 0 < memory["j_cache_entries"] <= 4096 * memory["cores"]
