"""How :class:`~mrt_env.lm.hf.HFLanguageModel` groups prompts for prefill (pure, no torch).

Waves order prompts so that one extending a shorter prompt of the same call is prefilled after
it and reuses its cached keys/values; buckets group prompts of similar new-token counts so that
padding stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def common_prefix_length(a: np.ndarray, b: np.ndarray, limit: int | None = None) -> int:
    """Length of the common prefix of two 1-D arrays (at most ``limit``).

    Example:
        >>> common_prefix_length(np.array([1, 2, 3]), np.array([1, 2, 4, 5]))
        2
    """
    span = min(len(a), len(b), len(b) if limit is None else limit)
    differ = np.flatnonzero(a[:span] != b[:span])
    return int(differ[0]) if differ.size else span


def plan_waves(
    prompts: Sequence[Sequence[int]],
    reusable_length: Callable[[Sequence[int]], int],
    min_shared_tokens: int,
) -> list[list[int]]:
    """Indices of ``prompts`` grouped in waves to prefill one after the other.

    A prompt joins the wave after the shorter prompt it shares the longest token prefix with,
    when that prefix beats what is already cached (``reusable_length``) by at least
    ``min_shared_tokens``; otherwise it goes in the first wave.

    Example:
        >>> plan_waves([[1, 2, 3, 4], [1, 2], [7]], lambda ids: 0, min_shared_tokens=2)
        [[1, 2], [0]]
    """
    arrays = [np.asarray(ids, dtype=np.int64) for ids in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    wave = [0] * len(prompts)
    for position, i in enumerate(order):
        best = reusable_length(prompts[i]) + min_shared_tokens - 1
        for j in order[:position]:
            shared = common_prefix_length(arrays[j], arrays[i], limit=len(arrays[i]) - 1)
            if shared > best:
                best, wave[i] = shared, wave[j] + 1
    waves: list[list[int]] = [[] for _ in range(max(wave, default=0) + 1)]
    for i in range(len(prompts)):
        waves[wave[i]].append(i)
    return waves


def plan_buckets(
    new_tokens: Sequence[int], tolerance: float, slack: int, max_tokens: int
) -> list[list[int]]:
    """Indices grouped into prefill batches of similar lengths.

    Prompts are taken shortest first; a bucket grows while its padded size (count x longest)
    stays within ``1 + tolerance`` times its real tokens or within ``slack`` padded
    positions, and within ``max_tokens`` positions.

    Example:
        >>> plan_buckets([1, 400, 3], tolerance=0.25, slack=256, max_tokens=4096)
        [[0, 2], [1]]
    """
    buckets: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in sorted(range(len(new_tokens)), key=new_tokens.__getitem__):
        padded = (len(current) + 1) * new_tokens[i]
        waste = padded - real - new_tokens[i]
        too_padded = padded > (1 + tolerance) * (real + new_tokens[i]) and waste > slack
        if current and (too_padded or padded > max_tokens):
            buckets.append(current)
            current, real = [], 0
        current.append(i)
        real += new_tokens[i]
    return [*buckets, current] if current else buckets


def decode_rows_for_memory(free_bytes: int, bytes_per_row: int, fraction: float) -> int:
    """Rows that fit ``fraction`` of ``free_bytes`` at ``bytes_per_row`` each (at least 1).

    Example:
        >>> decode_rows_for_memory(free_bytes=100 * 2**30, bytes_per_row=470 * 2**20, fraction=0.5)
        108
    """
    if bytes_per_row <= 0:
        raise ValueError(f"bytes_per_row must be > 0, got {bytes_per_row}")
    return max(1, int(free_bytes * fraction) // bytes_per_row)
