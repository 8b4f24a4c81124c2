"""Completions split into episodes: token spans, thinking prefixes and μ's requests.

The TRL engine sees whole completions (token ids). :func:`split_completion` cuts one into the
env's episodes with the env's segmenter (the thinking text; the end of thinking and the answer
belong to the last episode, as in :func:`mrt_env.replay.replay`) and maps the character
boundaries to token spans (a token belongs to the episode its text starts in).

Example:
    >>> from mrt_env.lm.testing import tiny_random_lm
    >>> from mrt_env.segmenters import MarkerSegmenter
    >>> lm = tiny_random_lm(0)
    >>> ids = lm.encode("a.\\n\\nWait, b.</think>\\\\boxed{1}")
    >>> split = split_completion(lm, ids, MarkerSegmenter(min_paragraphs=1), "</think>")
    >>> split.prefixes, split.ended_thinking
    (('', 'a.'), True)
    >>> split.spans[0][0], split.spans[-1][1] == len(ids)
    (0, True)
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.policy import token_offsets
from mrt_env.segmenters import Segmenter, thinking_part

SEED_BOUND = 2**31 - 1


@dataclass(frozen=True)
class CompletionEpisodes:
    """One completion cut into episodes.

    Attributes:
        spans: ``(start, end)`` token span of each episode (they tile the completion).
        prefixes: Thinking text before each episode (``prefixes[0] == ""``): the prefixes
            whose J is ``J(c_0), ..., J(c_{k-1})``.
        thinking: The whole thinking text (the prefix after the last episode).
        ended_thinking: The completion closed its thinking (it is finished, as in the env).
        text: The whole completion text (thinking, end of thinking and answer): μ's prefix for
            J after a finished completion (the natural end of thinking, as in the env).
    """

    spans: tuple[tuple[int, int], ...]
    prefixes: tuple[str, ...]
    thinking: str
    ended_thinking: bool
    text: str = ""


def split_completion(
    lm: Any, token_ids: Sequence[int], segmenter: Segmenter, end_think: str
) -> CompletionEpisodes:
    """Episodes of a completion (see the module docs); one empty-text episode if it is empty."""
    text, offsets = token_offsets(lm, list(token_ids))
    thinking, rest = thinking_part(text, end_think)
    pieces = segmenter.split(thinking) if thinking else []
    if not pieces:
        pieces = [""]
    starts, position = [], 0
    for piece in pieces:
        starts.append(position)
        position += len(piece)
    token_starts = [_first_token_at(offsets, char) for char in starts]
    token_starts[0] = 0
    ends = [*token_starts[1:], len(token_ids)]
    return CompletionEpisodes(
        spans=tuple(zip(token_starts, ends, strict=True)),
        prefixes=tuple(thinking[:start] for start in starts),
        thinking=thinking,
        ended_thinking=bool(rest),
        text=text,
    )


def _first_token_at(offsets: Sequence[int], char: int) -> int:
    """The first token whose text starts at or after character ``char``."""
    for index, offset in enumerate(offsets[:-1]):
        if offset >= char:
            return index
    return len(offsets) - 1


def prefix_seed(seed: int, version: int, problem_id: str, prefix: str) -> int:
    """The seed of μ's forced answers from one prefix (common random numbers).

    It depends only on the run seed, the weights version and the prefix itself, so every
    trajectory sharing a prefix gets the same J samples, whatever else is in the batch.

    Example:
        >>> a, b = prefix_seed(0, 3, "p", "x"), prefix_seed(0, 4, "p", "x")
        >>> a == prefix_seed(0, 3, "p", "x") != b
        True
    """
    key = f"{seed}\0{version}\0{problem_id}\0{prefix}".encode()
    return zlib.crc32(key) % SEED_BOUND
