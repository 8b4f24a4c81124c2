"""Segmenters: split a thinking text into episodes (one env step each).

Every segmenter is lossless: ``"".join(seg.split(text)) == text``. Each episode after the first
begins with the blank-line separator that precedes its first paragraph, so an episode is
exactly the action a policy would have produced when it stopped at one of ``seg.boundaries``
(the env's stop strings for the policy). Segmenters never return empty episodes; an empty text
gives ``[]``.

Segmenters split *thinking* text. A full response may carry the final answer after the
end-of-thinking marker; split only the thinking part (see :func:`thinking_part`), and keep the
rest for verification.

The paragraph primitives (:func:`thinking_part`, :func:`split_paragraphs`) live in
:mod:`mrt_env.paragraphs` and the spec parser (:func:`segmenter_from_spec`) in
:mod:`mrt_env.segmenter_spec`; both are also names of this module.

Example:
    >>> seg = MarkerSegmenter(min_paragraphs=1)
    >>> seg.split("Let x = 2.\\n\\nWait, x = 3.")
    ['Let x = 2.', '\\n\\nWait, x = 3.']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mrt_env.paragraphs import (
    PARAGRAPH_RULES,
    PARAGRAPH_SEPARATOR,
    ParagraphRule,
    check_paragraph_rule,
    paragraph_body,
    split_paragraphs,
    thinking_part,
)
from mrt_env.segmenter_spec import bind_segmenter, segmenter_from_spec

__all__ = [  # the paragraph primitives and the spec parser are names of this module too
    "DEFAULT_MARKERS",
    "PARAGRAPH_RULES",
    "PARAGRAPH_SEPARATOR",
    "SEGMENTER_PRESETS",
    "FallbackSegmenter",
    "MarkerSegmenter",
    "ParagraphRule",
    "ParagraphSegmenter",
    "Segmenter",
    "TokenChunkSegmenter",
    "bind_segmenter",
    "segmenter_from_spec",
    "split_paragraphs",
    "thinking_part",
]

DEFAULT_MARKERS: tuple[str, ...] = (
    "Wait",
    "But wait",
    "Alternatively",
    "Is there another way to think about this?",
    "But let me double-check",
    "But hold on",
)
"""Paragraph openings that start a new episode (the official analysis rules)."""

SEGMENTER_PRESETS: dict[str, tuple[int, int]] = {
    "aime2024": (45, 3),
    "omni-math": (49, 5),
    "regret-comparison": (99, 10),
}
"""Paper settings as ``name -> (max_steps, group_size)`` for :meth:`MarkerSegmenter.preset`.

``aime2024``: AIME 2024 analysis; ``omni-math``: the Omni-MATH subset; ``regret-comparison``:
the normalized-regret comparison.
"""


@runtime_checkable
class Segmenter(Protocol):
    """Splits a thinking text into episodes.

    ``boundaries`` are the strings that open a new episode (the policy's stop strings in the
    env); ``split`` is lossless and returns no empty episodes.
    """

    @property
    def boundaries(self) -> tuple[str, ...]: ...

    def split(self, text: str) -> list[str]: ...


def _group(episodes: Sequence[str], group_size: int) -> list[str]:
    """Concatenate consecutive episodes in groups of ``group_size``; drop empty results."""
    grouped = ["".join(episodes[i : i + group_size]) for i in range(0, len(episodes), group_size)]
    return [episode for episode in grouped if episode]


def _check_positive(name: str, value: int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class MarkerSegmenter:
    """The official split rules: an episode starts at a paragraph opening with a marker.

    Rules (applied to paragraphs ``p_0, p_1, ...`` of the thinking text, split on blank lines):

    1. Paragraph ``p_i`` (``i >= 1``) that *starts with* one of ``markers`` (exact prefix,
       case-sensitive; a marker elsewhere in a paragraph does nothing) is a candidate boundary.
    2. The *previous boundary* starts at paragraph 0 (the start of the text) and moves to each
       accepted boundary. A candidate at ``i`` is accepted only when
       ``i - previous >= min_paragraphs``, so with the default of 3 a candidate 0, 1 or 2
       paragraphs after the previous boundary is skipped and every episode but the last has at
       least 3 paragraphs. A skipped candidate does not move the previous boundary: the first
       marker paragraph can only open an episode when it is paragraph 3 or later.
    3. After ``max_steps`` accepted boundaries, splitting stops (so there are at most
       ``max_steps + 1`` episodes before grouping); ``None`` means no cap.
    4. Consecutive episodes are merged in groups of ``group_size`` (the last group may be
       shorter).

    With ``min_paragraphs=3`` and ``paragraph_rule="official"`` (the defaults) this reproduces
    the official analysis code except that episodes keep their separators (lossless).
    ``min_paragraphs=1`` splits at every marker paragraph (useful for short traces of small
    models); ``paragraph_rule="blank_lines"`` also splits at CRLF, whitespace-only and
    multiple blank lines.

    Attributes:
        max_steps: Maximum number of accepted boundaries; ``None`` for no cap.
        group_size: Number of consecutive episodes merged into one.
        markers: Paragraph openings that start a new episode.
        min_paragraphs: Minimum paragraphs between boundaries (3 in the official rules).
        paragraph_rule: How paragraphs are cut (:data:`ParagraphRule`).

    Example:
        >>> text = "A\\n\\nB\\n\\nWait, C\\n\\nD\\n\\nWait, E"
        >>> MarkerSegmenter().split(text)  # the first "Wait" is only 2 paragraphs in
        ['A\\n\\nB\\n\\nWait, C\\n\\nD', '\\n\\nWait, E']
        >>> MarkerSegmenter.preset("aime2024").group_size
        3
    """

    max_steps: int | None = None
    group_size: int = 1
    markers: tuple[str, ...] = DEFAULT_MARKERS
    min_paragraphs: int = 3
    paragraph_rule: ParagraphRule = "official"

    def __post_init__(self) -> None:
        _check_positive("max_steps", self.max_steps, allow_none=True)
        _check_positive("group_size", self.group_size)
        _check_positive("min_paragraphs", self.min_paragraphs)
        check_paragraph_rule(self.paragraph_rule)
        if isinstance(self.markers, str) or not self.markers:
            raise ValueError(f"markers must be a non-empty tuple of strings, got {self.markers!r}")
        if any(not isinstance(m, str) or not m for m in self.markers):
            raise ValueError(f"every marker must be a non-empty string, got {self.markers!r}")
        object.__setattr__(self, "markers", tuple(self.markers))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MarkerSegmenter:
        """Build the segmenter of a paper setting (see :data:`SEGMENTER_PRESETS`).

        Args:
            name: ``"aime2024"`` (45/3), ``"omni-math"`` (49/5) or ``"regret-comparison"``
                (99/10).
            **overrides: Other fields (``markers``, ``min_paragraphs``).

        Returns:
            The configured segmenter.
        """
        if name not in SEGMENTER_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(SEGMENTER_PRESETS)}")
        max_steps, group_size = SEGMENTER_PRESETS[name]
        return cls(max_steps=max_steps, group_size=group_size, **overrides)

    @property
    def boundaries(self) -> tuple[str, ...]:
        """``"\\n\\n" + marker`` for each marker: the policy's stop strings."""
        return tuple(PARAGRAPH_SEPARATOR + marker for marker in self.markers)

    def split(self, text: str) -> list[str]:
        """Split a thinking text into episodes (lossless, no empty episodes)."""
        pieces = split_paragraphs(text, self.paragraph_rule)
        starts = [0]
        for index in range(1, len(pieces)):
            if self.max_steps is not None and len(starts) - 1 >= self.max_steps:
                break
            if index - starts[-1] < self.min_paragraphs:
                continue
            if paragraph_body(pieces[index], self.paragraph_rule).startswith(self.markers):
                starts.append(index)
        ends = [*starts[1:], len(pieces)]
        episodes = ["".join(pieces[start:end]) for start, end in zip(starts, ends, strict=True)]
        return _group(episodes, self.group_size)


@dataclass(frozen=True)
class ParagraphSegmenter:
    """Every blank-line paragraph is an episode, optionally merged in groups.

    Attributes:
        group_size: Number of consecutive paragraphs merged into one episode.
        paragraph_rule: How paragraphs are cut (:data:`ParagraphRule`).

    Example:
        >>> ParagraphSegmenter().split("a\\n\\nb\\n\\nc")
        ['a', '\\n\\nb', '\\n\\nc']
        >>> ParagraphSegmenter(group_size=2).split("a\\n\\nb\\n\\nc")
        ['a\\n\\nb', '\\n\\nc']
    """

    group_size: int = 1
    paragraph_rule: ParagraphRule = "official"

    def __post_init__(self) -> None:
        _check_positive("group_size", self.group_size)
        check_paragraph_rule(self.paragraph_rule)

    @property
    def boundaries(self) -> tuple[str, ...]:
        """The blank-line separator: the policy stops at every new paragraph."""
        return (PARAGRAPH_SEPARATOR,)

    def split(self, text: str) -> list[str]:
        """Split a thinking text into paragraph episodes (lossless, no empty episodes)."""
        return _group(split_paragraphs(text, self.paragraph_rule), self.group_size)


@dataclass(frozen=True)
class TokenChunkSegmenter:
    """Fixed-size token chunks: each episode holds at most ``chunk_tokens`` tokens.

    Cuts are character offsets, so the split is lossless whatever the tokenizer does. The cut
    after a chunk starting at offset ``s`` is the largest ``c > s`` with
    ``count_tokens(text[:c]) - count_tokens(text[:s]) <= chunk_tokens`` (the env's episode-token
    convention), found by binary search; at least one character is taken per episode, so a
    single character worth more than ``chunk_tokens`` tokens still makes progress.

    ``boundaries`` is empty: in the env, cap each episode with ``max_new_tokens=chunk_tokens``.

    Attributes:
        chunk_tokens: Token budget of one episode.
        count_tokens: Counts tokens of a text, e.g. ``lm.count_tokens`` of the policy's model.

    Example:
        >>> seg = TokenChunkSegmenter(chunk_tokens=2, count_tokens=lambda s: len(s.split()))
        >>> seg.split("one two three four five")
        ['one two ', 'three four ', 'five']
    """

    chunk_tokens: int
    count_tokens: Callable[[str], int]

    def __post_init__(self) -> None:
        _check_positive("chunk_tokens", self.chunk_tokens)
        if not callable(self.count_tokens):
            raise TypeError(f"count_tokens must be callable, got {type(self.count_tokens)}")

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, chunk_tokens: int) -> TokenChunkSegmenter:
        """Build from a Hugging Face tokenizer (special tokens are not counted).

        Args:
            tokenizer: An object with ``encode(text, add_special_tokens=False)``.
            chunk_tokens: Token budget of one episode.

        Returns:
            The segmenter.
        """

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

        return cls(chunk_tokens=chunk_tokens, count_tokens=count)

    @property
    def boundaries(self) -> tuple[str, ...]:
        """No boundary strings: episodes end at the token cap."""
        return ()

    def split(self, text: str) -> list[str]:
        """Split a thinking text into token chunks (lossless, no empty episodes)."""
        episodes: list[str] = []
        start = 0
        while start < len(text):
            end = self._chunk_end(text, start)
            episodes.append(text[start:end])
            start = end
        return episodes

    def _chunk_end(self, text: str, start: int) -> int:
        """Largest cut ``c > start`` whose chunk fits ``chunk_tokens`` (at least ``start + 1``)."""
        base = self.count_tokens(text[:start])

        def fits(cut: int) -> bool:
            return self.count_tokens(text[:cut]) - base <= self.chunk_tokens

        if fits(len(text)):
            return len(text)
        low, high = start + 1, len(text)  # invariant: answer in [low, high); high does not fit
        if not fits(low):
            return low
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return low


@dataclass(frozen=True)
class FallbackSegmenter:
    """The official marker rule, or paragraphs of a minimum token size when it finds no marker.

    Instruct models without R1-style thinking (SmolLM2, Llama instruct) rarely open a paragraph
    with a marker word, so :class:`MarkerSegmenter` leaves their whole reply as one episode and
    progress credit is empty. This segmenter splits a text with ``marker`` when that finds at
    least one boundary; otherwise it falls back to the official paragraph split
    (``text.split("\\n\\n")``) and merges consecutive paragraphs until each episode holds at
    least ``min_tokens`` tokens (a shorter tail joins the episode before it). A continuation
    is judged on its own, like any text given to :meth:`split`.

    ``count_tokens`` is the policy's token counter; the env binds its model's
    ``count_tokens`` when it is ``None`` (a segmenter built from a spec).

    Attributes:
        min_tokens: Minimum tokens of an episode in the paragraph fallback.
        count_tokens: Counts tokens of a text (``lm.count_tokens``); ``None`` until bound.
        marker: The marker rule tried first.

    Example:
        >>> words = lambda s: len(s.split())
        >>> seg = FallbackSegmenter(min_tokens=3, count_tokens=words)
        >>> seg.split("a b\\n\\nc d\\n\\ne f g\\n\\nh")  # no marker: paragraphs of >= 3 words
        ['a b\\n\\nc d', '\\n\\ne f g\\n\\nh']
        >>> seg.split("a\\n\\nb\\n\\nc\\n\\nWait, d")  # a marker boundary: the official rule
        ['a\\n\\nb\\n\\nc', '\\n\\nWait, d']
    """

    min_tokens: int = 48
    count_tokens: Callable[[str], int] | None = None
    marker: MarkerSegmenter = dataclasses.field(default_factory=MarkerSegmenter)

    def __post_init__(self) -> None:
        _check_positive("min_tokens", self.min_tokens)
        if self.count_tokens is not None and not callable(self.count_tokens):
            raise TypeError(f"count_tokens must be callable, got {type(self.count_tokens)}")
        if not isinstance(self.marker, MarkerSegmenter):
            raise TypeError(f"marker must be a MarkerSegmenter, got {self.marker!r}")

    def bind(self, count_tokens: Callable[[str], int]) -> FallbackSegmenter:
        """This segmenter counting tokens with ``count_tokens`` (unless it already has one)."""
        if self.count_tokens is not None:
            return self
        return dataclasses.replace(self, count_tokens=count_tokens)

    @property
    def boundaries(self) -> tuple[str, ...]:
        """The blank-line separator: an episode may start at any paragraph."""
        return (PARAGRAPH_SEPARATOR,)

    def split(self, text: str) -> list[str]:
        """Split a thinking text into episodes (lossless, no empty episodes)."""
        episodes = self.marker.split(text)
        if len(episodes) > 1:
            return episodes
        if self.count_tokens is None:
            raise ValueError(
                "FallbackSegmenter has no count_tokens: pass one (e.g. lm.count_tokens) or "
                "give the segmenter to the env, which binds its model's"
            )
        merged: list[str] = []
        size = 0
        for piece in split_paragraphs(text, self.marker.paragraph_rule):
            if merged and size < self.min_tokens:
                merged[-1] += piece
                size += self.count_tokens(piece)
            else:
                merged.append(piece)
                size = self.count_tokens(piece)
        if len(merged) > 1 and size < self.min_tokens:
            tail = merged.pop()
            merged[-1] += tail
        return [episode for episode in merged if episode]
