"""Speed of MRTMath-v0's three vector modes: native batched, sync and async (worker processes).

Every mode steps `num_envs` copies of the env with the same scripted episode texts (no
policy), so the cost measured is the env's own: token counting, the meta-prover's K forced
answers per step (``--model``: the shipped tiny LM by default) and verification. Each mode
runs the same seeded trajectories; the script checks that sync and async observe the same
texts and rewards.
Every mode is timed ``--repeats`` times in rounds of rotated order; printed: steps/s per mode
and the per-round async/sync ratio as median [min, max], with the machine's load.

    .venv/bin/python benchmarks/vector_modes.py
    .venv/bin/python benchmarks/vector_modes.py --model tiny:classic   # the classic tiny LM
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from _common import fmt_load, fmt_spread, machine_load, parse_args

import mrt_env  # noqa: F401  (registers MRTMath-v0)


@dataclass(frozen=True)
class Args:
    """Steps per second of the native, sync and async vector envs."""

    model: str = "tiny"
    """μ's model (the env's lm): tiny, tiny:VARIANT (e.g. tiny:classic) or a model folder"""
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
    repeats: int = 5
    """rounds; each round times every mode once, in an order rotated every round"""


EPISODES = ["Let me compute it.\n\n", "First, 3+4=7.\n\n", "Check: 7-4=3.\n\n", "So 7.\n\n"]

args = parse_args(Args)
torch.set_num_threads(args.threads)
kwargs = dict(lm=args.model, k=args.k, token_budget=256, max_episodes=len(EPISODES) + 1)
MODES = ("vector_entry_point", "sync", "async")
rates: dict[str, list[float]] = {mode: [] for mode in MODES}
traces: dict[str, list] = {}
load_before = machine_load()
print(f"before measuring: {fmt_load(load_before)}")
for repeat in range(args.repeats):
    order = MODES[repeat % len(MODES) :] + MODES[: repeat % len(MODES)]  # rotated every round
    for mode in order:
        envs = gym.make_vec("MRTMath-v0", num_envs=args.num_envs, vectorization_mode=mode, **kwargs)
        envs.reset(seed=args.seed)
        trace = []
        started = time.perf_counter()
        for step in range(args.steps):
            actions = [EPISODES[step % len(EPISODES)]] * args.num_envs
            observations, rewards, *_ = envs.step(actions)
            trace.append((tuple(observations), np.round(rewards, 9).tolist()))
        seconds = time.perf_counter() - started
        envs.close()
        rates[mode].append(args.steps / seconds)
        traces.setdefault(mode, trace)
        print(f"round {repeat + 1} {mode:>18}: {args.steps / seconds:6.2f} vector steps/s")

assert traces["sync"] == traces["async"], "sync and async observed different texts"
print(f"vector steps/s, median [min, max] over {args.repeats} rounds in rotated order:")
for mode in MODES:
    print(f"{mode:>18}: {fmt_spread(rates[mode])}")
ratios = [a / s for a, s in zip(rates["async"], rates["sync"], strict=True)]
print(f"async / sync per round: {fmt_spread(ratios)} with {args.num_envs} envs; same observations")
print(f"load: before {fmt_load(load_before)}; after {fmt_load()}")
