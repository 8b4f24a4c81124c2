"""``gym.make_vec(..., vectorization_mode="async")``: the default call works, matches sync."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from mrt_env.spaces import (
    UnicodeText,
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)
from tests.mrt_env.env_doubles import env_kwargs

ACTIONS = [
    ["a=1.\n\n", "b\n\n", "\\boxed{12}</think>"],
    ["\\boxed{2}</think>", "c=d=\n\n", "e\n\n"],
    ["x", "y=\n\n", "z"],
]


def _run(mode: str, seed: int = 5) -> list[tuple[Any, ...]]:
    envs = gym.make_vec("MRTMath-v0", num_envs=3, vectorization_mode=mode, **env_kwargs())
    try:
        observations, _ = envs.reset(seed=seed)
        trace: list[tuple[Any, ...]] = [(tuple(observations),)]
        for actions in ACTIONS:
            observations, rewards, terminated, truncated, _ = envs.step(actions)
            trace.append(
                (tuple(observations), rewards.tolist(), terminated.tolist(), truncated.tolist())
            )
    finally:
        envs.close()
    return trace


def test_async_default_call_gives_the_sync_trajectories_and_closes_cleanly() -> None:
    envs = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode="async", **env_kwargs())
    processes = list(envs.processes)  # type: ignore[attr-defined]
    envs.close()
    assert all(not p.is_alive() and p.exitcode == 0 for p in processes)
    sync, async_ = _run("sync"), _run("async")
    assert async_ == sync
    assert any(True in step[2] for step in sync[1:])  # a sub-env terminated (and autoreset)
    assert len({step[0] for step in sync}) == len(sync)  # observations changed every step


def test_unicode_text_round_trips_through_shared_memory() -> None:
    space = UnicodeText(16)
    memory = create_shared_memory(space, n=3)
    view = read_from_shared_memory(space, memory, n=3)
    for index, text in enumerate(["x<∫中", "", "é" * 16]):
        write_to_shared_memory(space, index, text, memory)
    assert tuple(view) == ("x<∫中", "", "é" * 16)  # a live view
    snapshot = copy.deepcopy(view)
    write_to_shared_memory(space, 0, "new", memory)
    assert snapshot == ("x<∫中", "", "é" * 16) and view[0] == "new"


def test_async_workers_forked_after_torch_started_threads_do_not_hang(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import gymnasium as gym, torch
        import mrt_env
        from mrt_env.lm.testing import tiny_random_lm
        torch.set_num_threads(2)
        torch.ones(256, 256) @ torch.ones(256, 256)  # the parent's OpenMP pool is running
        kwargs = dict(problems=[{"problem": "1+1?", "answer": "2"}], lm=tiny_random_lm(0),
                      k=2, max_answer_tokens=4, token_budget=32, max_episodes=2)
        envs = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode="async", **kwargs)
        observations, infos = envs.reset(seed=0)
        observations = envs.step(["Let 1+1=2.", "Hmm."])[0]
        assert all(o.endswith(("Let 1+1=2.", "Hmm.")) for o in observations), observations
        envs.close()
        print("ok")
        """
    )
    path = tmp_path / "fork_after_torch.py"
    path.write_text(script)
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_sync_and_async_agree_on_the_reset_infos() -> None:
    infos = []
    for mode in ("sync", "async"):
        envs = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode=mode, **env_kwargs())
        infos.append(envs.reset(seed=1)[1])
        envs.close()
    assert infos[0]["problem_id"].tolist() == infos[1]["problem_id"].tolist()
    assert np.allclose(infos[0]["j"], infos[1]["j"])
