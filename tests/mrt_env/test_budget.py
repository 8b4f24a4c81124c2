"""Budget cutting and incremental token counting: exact counts, near-linear time."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np
import pytest

from mrt_env.budget import WINDOW_CHARS, count_appended, fit_episode

PIECES = [
    "Let ",
    "x = ",
    "12",
    " + 7",
    ", so ",
    "19.",
    "\n\n",
    "Wait",
    " é",
    "中",
    "  ",
    "\\frac{1}{2}",
]


@cache
def _lm(name: str) -> Any:
    if name == "tiny":
        from mrt_env.tinymath import load_tiny_lm

        return load_tiny_lm("base")
    from mrt_env.lm.testing import tiny_random_lm

    return tiny_random_lm(0)


def _text(rng: np.random.Generator, pieces: int) -> str:
    return "".join(PIECES[i] for i in rng.integers(len(PIECES), size=pieces))


@pytest.mark.parametrize("name", ["tiny", "random-tiny"])
def test_incremental_counts_equal_full_counts(name: str) -> None:
    lm, rng = _lm(name), np.random.default_rng(0)
    for _ in range(20):
        thinking = _text(rng, int(rng.integers(WINDOW_CHARS, 2 * WINDOW_CHARS)))  # > 2 windows
        episode = _text(rng, int(rng.integers(0, 40)))
        tokens = lm.count_tokens(thinking)
        assert count_appended(lm, thinking, tokens, episode) == lm.count_tokens(thinking + episode)


@pytest.mark.parametrize("name", ["tiny", "random-tiny"])
def test_the_cut_is_the_longest_start_that_fits(name: str) -> None:
    lm, rng = _lm(name), np.random.default_rng(1)
    for _ in range(20):
        thinking = _text(rng, int(rng.integers(0, 2000)))
        episode = _text(rng, int(rng.integers(1, 400)))
        tokens = lm.count_tokens(thinking)
        budget = tokens + int(rng.integers(0, 200))
        kept, total, cut = fit_episode(lm, thinking, tokens, episode, budget)
        assert episode.startswith(kept) and cut == (kept != episode)
        assert total == lm.count_tokens(thinking + kept) <= budget
        if cut:
            assert lm.count_tokens(thinking + episode[: len(kept) + 1]) > budget


@pytest.mark.parametrize("megabytes", [1, 10])
def test_huge_episodes_are_cut_in_near_linear_time(megabytes: int) -> None:
    lm = _lm("tiny")
    thinking = "Let x = 12 + 7, so x = 19.\n\n" * 2000  # a long response so far
    tokens = lm.count_tokens(thinking)
    episode = ("Then 19 + 1 = 20. " * (megabytes * 2**20 // 18))[: megabytes * 2**20]
    started = time.perf_counter()
    kept, total, cut = fit_episode(lm, thinking, tokens, episode, budget=tokens + 512)
    seconds = time.perf_counter() - started
    assert cut and total == lm.count_tokens(thinking + kept) <= tokens + 512
    assert seconds < 1.0, f"{megabytes} MB took {seconds:.2f}s"  # 11.5 s for 1 MB before


def test_a_megabyte_action_steps_the_env_quickly_outside_model_calls() -> None:
    from mrt_env.env import MRTMathEnv

    env = MRTMathEnv(
        lm=_lm("tiny"),
        prover="none",
        token_budget=256,
        truncation_outcome="forced_answer",
        max_observation_chars=2_000_000,
    )
    env.reset(seed=0)
    started = time.perf_counter()
    _, _, terminated, truncated, info = env.step("So 3 + 4 = 7. " * 75_000)
    outside = time.perf_counter() - started - env.timings["step_model_s"]
    assert truncated and not terminated and info["episode_cut"] and info["total_tokens"] <= 256
    assert outside < 1.0, f"{outside:.2f}s outside model calls"
    env.reset(seed=0)  # and the env goes on working
    assert env.step("x = 1.\n\n")[4]["total_tokens"] > 0
