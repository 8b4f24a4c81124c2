"""Prefill planning: waves of growing prompts and length buckets (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from mrt_env.lm.planning import common_prefix_length, plan_buckets, plan_waves


@pytest.mark.parametrize(
    ("prompts", "cached", "expected"),
    [
        # a chain of growing prompts: one wave per link
        ([[1, 2, 3, 4, 5], [1, 2, 3], [1, 2]], 0, [[2], [1], [0]]),
        # unrelated prompts: all in the first wave
        ([[1, 2, 3], [4, 5, 6], [7, 8]], 0, [[0, 1, 2]]),
        # the shared part is already cached: no reason to wait
        ([[1, 2, 3, 4, 5], [1, 2, 3]], 4, [[0, 1]]),
        # two prompts extend the same shorter one: both in the second wave
        ([[9, 9, 1], [9, 9], [9, 9, 2]], 0, [[1], [0, 2]]),
    ],
)
def test_plan_waves(prompts: list[list[int]], cached: int, expected: list[list[int]]) -> None:
    assert plan_waves(prompts, lambda ids: cached, min_shared_tokens=2) == expected


@pytest.mark.parametrize(
    ("new_tokens", "tolerance", "slack", "max_tokens", "expected"),
    [
        ([5, 5, 5], 0.0, 0, 100, [[0, 1, 2]]),  # equal lengths: no padding, one bucket
        ([1, 400, 3], 0.25, 256, 4096, [[0, 2], [1]]),  # small waste is absorbed by the slack
        ([1, 400, 3], 0.0, 0, 4096, [[0], [2], [1]]),  # no padding allowed
        ([10, 10, 10], 1.0, 0, 20, [[0, 1], [2]]),  # capped by positions per forward pass
        ([], 0.0, 0, 10, []),  # nothing to plan
    ],
)
def test_plan_buckets(
    new_tokens: list[int], tolerance: float, slack: int, max_tokens: int, expected: list
) -> None:
    assert plan_buckets(new_tokens, tolerance, slack, max_tokens) == expected


def test_common_prefix_length_respects_limit() -> None:
    a, b = np.array([1, 2, 3]), np.array([1, 2, 3, 4])
    assert common_prefix_length(a, b) == 3
    assert common_prefix_length(a, b, limit=2) == 2
    assert common_prefix_length(np.array([5]), b) == 0
