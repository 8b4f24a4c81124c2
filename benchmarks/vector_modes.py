"""Speed of MRTMath-v0's three vector modes: native batched, sync and async (worker processes).

Every mode steps `num_envs` copies of the env with the same scripted episode texts (no
policy), so the cost measured is the env's own: token counting, the meta-prover's K forced
answers per step (shipped tiny LM) and verification. Each mode runs the same seeded
trajectories; the script checks that sync and async observe the same texts and rewards.

    .venv/bin/python benchmarks/vector_modes.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from _common import parse_args

import mrt_env  # noqa: F401  (registers MRTMath-v0)


@dataclass(frozen=True)
class Args:
    """Steps per second of the native, sync and async vector envs."""

    num_envs: int = 2
    """sub-environments (worker processes in async mode)"""
    steps: int = 24
    """timed vector steps per mode (after one untimed reset)"""
    k: int = 4
    """forced answers per J estimate"""
    threads: int = 1
    """torch CPU threads in this process (async workers run one thread each)"""
    seed: int = 0
    """seed of the resets"""


EPISODES = ["Let me compute it.\n\n", "First, 3+4=7.\n\n", "Check: 7-4=3.\n\n", "So 7.\n\n"]

args = parse_args(Args)
torch.set_num_threads(args.threads)
kwargs = dict(lm="tiny", k=args.k, token_budget=256, max_episodes=len(EPISODES) + 1)
results: dict[str, tuple[float, list]] = {}
for mode in ("vector_entry_point", "sync", "async"):
    envs = gym.make_vec("MRTMath-v0", num_envs=args.num_envs, vectorization_mode=mode, **kwargs)
    envs.reset(seed=args.seed)
    trace = []
    started = time.perf_counter()
    for step in range(args.steps):
        observations, rewards, *_ = envs.step([EPISODES[step % len(EPISODES)]] * args.num_envs)
        trace.append((tuple(observations), np.round(rewards, 9).tolist()))
    seconds = time.perf_counter() - started
    envs.close()
    results[mode] = (args.steps / seconds, trace)
    print(f"{mode:>18}: {args.steps / seconds:6.2f} vector steps/s ({seconds:.1f} s)")

assert results["sync"][1] == results["async"][1], "sync and async observed different texts"
speedup = results["async"][0] / results["sync"][0]
print(f"async / sync: {speedup:.2f}x with {args.num_envs} envs; same observations and rewards")
