"""Segmenters: the official split rules, losslessness, presets and the protocol."""

from __future__ import annotations

import doctest
import re
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrt_env import paragraphs as paragraph_module
from mrt_env import segmenter_spec, segmenters
from mrt_env.segmenters import (
    DEFAULT_MARKERS,
    MarkerSegmenter,
    ParagraphSegmenter,
    Segmenter,
    TokenChunkSegmenter,
    split_paragraphs,
    thinking_part,
)


def paragraphs(*items: str) -> str:
    """Join paragraphs with the canonical blank-line separator."""
    return "\n\n".join(items)


def paragraphs_per_episode(episodes: list[str]) -> list[list[str]]:
    """Each episode's paragraphs, without separators, for readable expectations."""
    return [e.removeprefix("\n\n").split("\n\n") for e in episodes]


# (segmenter, paragraphs of the text, expected paragraphs per episode)
MARKER_CASES = [
    # no marker at all: one episode
    (MarkerSegmenter(), ["a", "b", "c", "d"], [["a", "b", "c", "d"]]),
    # marker at paragraph 3: 3 paragraphs since the start boundary (paragraph 0) -> split
    (MarkerSegmenter(), ["a", "b", "c", "Wait d", "e"], [["a", "b", "c"], ["Wait d", "e"]]),
    # marker at paragraph 2: only 2 paragraphs back from the start -> no split
    (MarkerSegmenter(), ["a", "b", "Wait c", "d"], [["a", "b", "Wait c", "d"]]),
    # marker at paragraph 1: 1 paragraph back -> no split
    (MarkerSegmenter(), ["a", "Wait b", "c", "d"], [["a", "Wait b", "c", "d"]]),
    # marker at paragraph 0 is the start itself: never a boundary
    (MarkerSegmenter(), ["Wait a", "b", "c", "d"], [["Wait a", "b", "c", "d"]]),
    # a skipped marker (paragraph 2) does not move the previous boundary: paragraph 3 splits
    (
        MarkerSegmenter(),
        ["a", "b", "Wait c", "Wait d", "e"],
        [["a", "b", "Wait c"], ["Wait d", "e"]],
    ),
    # after a boundary at 3, markers at 4 and 5 are too close; 6 is 3 back -> split
    (
        MarkerSegmenter(),
        ["a", "b", "c", "Wait d", "Wait e", "Wait f", "Wait g"],
        [["a", "b", "c"], ["Wait d", "Wait e", "Wait f"], ["Wait g"]],
    ),
    # a marker inside a paragraph (not at its start) does not split
    (MarkerSegmenter(), ["a", "b", "c", "so Wait d", "e"], [["a", "b", "c", "so Wait d", "e"]]),
    # markers are case-sensitive exact prefixes ("wait" is not "Wait")
    (MarkerSegmenter(), ["a", "b", "c", "wait d"], [["a", "b", "c", "wait d"]]),
    # a marker preceded by indentation is not at the paragraph start (official startswith)
    (MarkerSegmenter(), ["a", "b", "c", "  Wait d"], [["a", "b", "c", "  Wait d"]]),
    # "Waiting" starts with "Wait": the official rule is a plain prefix test, so it splits
    (MarkerSegmenter(), ["a", "b", "c", "Waiting d"], [["a", "b", "c"], ["Waiting d"]]),
    # max_steps=1: one boundary accepted, the later marker is ignored
    (
        MarkerSegmenter(max_steps=1),
        ["a", "b", "c", "Wait d", "e", "f", "Wait g"],
        [["a", "b", "c"], ["Wait d", "e", "f", "Wait g"]],
    ),
    # max_steps=2: two boundaries -> three episodes
    (
        MarkerSegmenter(max_steps=2),
        ["a", "b", "c", "Wait d", "e", "f", "Wait g", "h", "i", "Wait j"],
        [["a", "b", "c"], ["Wait d", "e", "f"], ["Wait g", "h", "i", "Wait j"]],
    ),
    # group_size=2: four raw episodes merged into two
    (
        MarkerSegmenter(min_paragraphs=1, group_size=2),
        ["a", "Wait b", "Wait c", "Wait d"],
        [["a", "Wait b"], ["Wait c", "Wait d"]],
    ),
    # group_size=3 with four raw episodes: the last group is shorter
    (
        MarkerSegmenter(min_paragraphs=1, group_size=3),
        ["a", "Wait b", "Wait c", "Wait d"],
        [["a", "Wait b", "Wait c"], ["Wait d"]],
    ),
    # min_paragraphs=1: every marker paragraph after the first paragraph splits
    (
        MarkerSegmenter(min_paragraphs=1),
        ["a", "Wait b", "Wait c"],
        [["a"], ["Wait b"], ["Wait c"]],
    ),
    # custom markers replace the default ones
    (
        MarkerSegmenter(min_paragraphs=1, markers=("Hmm",)),
        ["a", "Wait b", "Hmm c"],
        [["a", "Wait b"], ["Hmm c"]],
    ),
]


@pytest.mark.parametrize(("segmenter", "items", "expected"), MARKER_CASES)
def test_marker_segmenter_rules(
    segmenter: MarkerSegmenter, items: list[str], expected: list[list[str]]
) -> None:
    text = paragraphs(*items)
    episodes = segmenter.split(text)
    assert "".join(episodes) == text
    assert paragraphs_per_episode(episodes) == expected


@pytest.mark.parametrize("marker", DEFAULT_MARKERS)
def test_each_default_marker_opens_an_episode(marker: str) -> None:
    # every one of the six official markers splits at paragraph 3
    text = paragraphs("a", "b", "c", f"{marker} then d")
    assert MarkerSegmenter().split(text) == ["a\n\nb\n\nc", f"\n\n{marker} then d"]


def test_episodes_after_the_first_begin_with_the_separator() -> None:
    text = paragraphs("a", "b", "c", "Wait d", "e", "f", "But wait g")
    episodes = MarkerSegmenter().split(text)
    assert len(episodes) == 3
    assert all(e.startswith("\n\n") for e in episodes[1:])


def test_boundaries_are_separator_plus_marker() -> None:
    assert MarkerSegmenter().boundaries == tuple("\n\n" + m for m in DEFAULT_MARKERS)
    assert ParagraphSegmenter().boundaries == ("\n\n",)
    assert TokenChunkSegmenter(4, len).boundaries == ()


# (text, expected episodes) for separators other than a single "\n\n"
SEPARATOR_CASES = [
    # Windows line endings: "\r\n\r\n" is a blank line
    ("a\r\n\r\nb\r\n\r\nc\r\n\r\nWait d", ["a\r\n\r\nb\r\n\r\nc", "\r\n\r\nWait d"]),
    # several blank lines are one separator, kept whole at the start of the next episode
    ("a\n\n\n\nb\n\nc\n\n\nWait d", ["a\n\n\n\nb\n\nc", "\n\n\nWait d"]),
    # a whitespace-only line counts as blank
    ("a\n  \nb\n\nc\n\t\nWait d", ["a\n  \nb\n\nc", "\n\t\nWait d"]),
    # a single line break is not a paragraph break
    ("a\nb\nc\nWait d", ["a\nb\nc\nWait d"]),
]


@pytest.mark.parametrize(("text", "expected"), SEPARATOR_CASES)
def test_marker_segmenter_blank_line_separators(text: str, expected: list[str]) -> None:
    assert MarkerSegmenter(paragraph_rule="blank_lines").split(text) == expected


# (text, expected episodes) of the official rule, text.split("\n\n"), on the same texts
OFFICIAL_SEPARATOR_CASES = [
    # "\r\n\r\n" contains no "\n\n": one paragraph, no split
    ("a\r\n\r\nb\r\n\r\nc\r\n\r\nWait d", ["a\r\n\r\nb\r\n\r\nc\r\n\r\nWait d"]),
    # "\n\n\nWait" leaves the paragraph "\nWait d", which does not start with a marker
    ("a\n\n\n\nb\n\nc\n\n\nWait d", ["a\n\n\n\nb\n\nc\n\n\nWait d"]),
    # an empty paragraph ("\n\n\n\n") counts towards min_paragraphs
    ("a\n\n\n\nb\n\nWait d", ["a\n\n\n\nb", "\n\nWait d"]),
    # a whitespace-only line is a paragraph's text, not a separator
    ("a\n  \nb\n\nc\n\nd\n\t\nWait e", ["a\n  \nb\n\nc\n\nd\n\t\nWait e"]),
]


@pytest.mark.parametrize(("text", "expected"), OFFICIAL_SEPARATOR_CASES)
def test_marker_segmenter_official_separators(text: str, expected: list[str]) -> None:
    assert MarkerSegmenter().split(text) == expected


def test_unknown_paragraph_rule_is_rejected() -> None:
    with pytest.raises(ValueError, match="paragraph_rule"):
        MarkerSegmenter(paragraph_rule="lines")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="paragraph rule"):
        split_paragraphs("a", rule="lines")  # type: ignore[arg-type]


# (text, expected episodes) at the edges
EDGE_CASES = [
    # empty text: no episodes
    ("", []),
    # text that is only a separator: one episode, nothing lost
    ("\n\n", ["\n\n"]),
    # text starting with a separator: the empty first paragraph is not an episode of its own
    ("\n\nWait a", ["\n\nWait a"]),
    # trailing separator stays in the last episode
    ("a\n\nb\n\nc\n\nWait d\n\n", ["a\n\nb\n\nc", "\n\nWait d\n\n"]),
]


@pytest.mark.parametrize(("text", "expected"), EDGE_CASES)
def test_marker_segmenter_edges(text: str, expected: list[str]) -> None:
    assert MarkerSegmenter().split(text) == expected


def test_matches_the_official_split_on_a_long_trace() -> None:
    # reference: the official rule written out directly over "\n\n"-separated paragraphs
    items = ["x0", "Wait 1", "x2", "Alternatively 3", "x4", "x5", "But hold on 6"]
    items += ["Is there another way to think about this? 7", "x8", "x9"]
    items += ["But let me double-check 10", "x11", "But wait 12", "x13", "x14", "Wait 15"]
    text = paragraphs(*items)
    starts, previous = [0], 0
    for i, item in enumerate(items):
        if item.startswith(DEFAULT_MARKERS) and i - previous > 2:
            starts.append(i)
            previous = i
    expected = [
        paragraphs(*items[a:b]) for a, b in zip(starts, [*starts[1:], len(items)], strict=True)
    ]
    episodes = MarkerSegmenter().split(text)
    assert [e.removeprefix("\n\n") for e in episodes] == expected
    assert starts == [0, 3, 6, 10, 15]


@pytest.mark.parametrize(
    ("name", "max_steps", "group_size"),
    [
        ("aime2024", 45, 3),  # AIME 2024 analysis
        ("omni-math", 49, 5),  # Omni-MATH subset
        ("regret-comparison", 99, 10),  # normalized-regret comparison
    ],
)
def test_presets(name: str, max_steps: int, group_size: int) -> None:
    segmenter = MarkerSegmenter.preset(name)
    assert (segmenter.max_steps, segmenter.group_size) == (max_steps, group_size)
    assert segmenter.min_paragraphs == 3


def test_preset_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown preset 'aime'"):
        MarkerSegmenter.preset("aime")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_steps": 0},  # zero boundaries is not a cap, use min_paragraphs or no segmenter
        {"group_size": 0},  # groups must hold at least one episode
        {"min_paragraphs": 0},  # a boundary needs at least one paragraph
        {"markers": ()},  # no markers
        {"markers": "Wait"},  # a bare string, not a tuple
        {"markers": ("Wait", "")},  # an empty marker would match every paragraph
    ],
)
def test_marker_segmenter_rejects_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MarkerSegmenter(**kwargs)  # type: ignore[arg-type]


# (group_size, text, expected episodes) for the paragraph segmenter
PARAGRAPH_CASES = [
    # every paragraph is an episode
    (1, "a\n\nb\n\nc", ["a", "\n\nb", "\n\nc"]),
    # pairs, last group shorter
    (2, "a\n\nb\n\nc", ["a\n\nb", "\n\nc"]),
    # a leading separator is kept with the first real paragraph
    (1, "\n\na\n\nb", ["\n\na", "\n\nb"]),
    # one paragraph only
    (1, "just one", ["just one"]),
    # empty text
    (1, "", []),
]


@pytest.mark.parametrize(("group_size", "text", "expected"), PARAGRAPH_CASES)
def test_paragraph_segmenter(group_size: int, text: str, expected: list[str]) -> None:
    assert ParagraphSegmenter(group_size=group_size).split(text) == expected


def count_words(text: str) -> int:
    """A whitespace tokenizer for the token-chunk tests."""
    return len(text.split())


# (chunk_tokens, text, expected episodes) with a whitespace word count as the tokenizer
TOKEN_CASES = [
    # three chunks of <= 2 words
    (2, "one two three four five", ["one two ", "three four ", "five"]),
    # the whole text fits in one chunk
    (10, "one two", ["one two"]),
    # one word per chunk
    (1, "a b c", ["a ", "b ", "c"]),
    # empty text
    (3, "", []),
]


@pytest.mark.parametrize(("chunk_tokens", "text", "expected"), TOKEN_CASES)
def test_token_chunk_segmenter(chunk_tokens: int, text: str, expected: list[str]) -> None:
    episodes = TokenChunkSegmenter(chunk_tokens, count_words).split(text)
    assert episodes == expected


def test_token_chunks_respect_the_budget_with_character_tokens() -> None:
    # one token per character: chunks are exactly chunk_tokens characters long
    text = "abcdefghij"
    episodes = TokenChunkSegmenter(3, len).split(text)
    assert episodes == ["abc", "def", "ghi", "j"]


def test_token_chunks_make_progress_when_one_character_exceeds_the_budget() -> None:
    # a tokenizer counting 5 tokens per character: each episode still takes one character
    episodes = TokenChunkSegmenter(2, lambda s: 5 * len(s)).split("xyz")
    assert episodes == ["x", "y", "z"]


def test_token_chunk_segmenter_from_tokenizer() -> None:
    class WordTokenizerDouble:
        """Test double with the Hugging Face ``encode`` signature."""

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            ids = [len(word) for word in text.split()]
            return [0, *ids] if add_special_tokens else ids

    segmenter = TokenChunkSegmenter.from_tokenizer(WordTokenizerDouble(), chunk_tokens=2)
    assert segmenter.split("a b c d") == ["a b ", "c d"]


def test_thinking_part() -> None:
    response = "think\n\nWait more\n</think>\n\\boxed{3} </think>"
    thinking, rest = thinking_part(response)
    assert (thinking, rest) == ("think\n\nWait more\n", "</think>\n\\boxed{3} </think>")
    assert thinking_part("no end") == ("no end", "")
    with pytest.raises(ValueError, match="end_think"):
        thinking_part("x", end_think="")


def test_segmenters_satisfy_the_protocol() -> None:
    for segmenter in (MarkerSegmenter(), ParagraphSegmenter(), TokenChunkSegmenter(3, len)):
        assert isinstance(segmenter, Segmenter)


text_pieces = st.lists(
    st.one_of(
        st.sampled_from(["\n\n", "\r\n\r\n", "\n", "\n\n\n", " ", "\n \n"]),
        st.sampled_from(DEFAULT_MARKERS),
        st.text(max_size=8),
    ),
    max_size=30,
)
all_segmenters = st.sampled_from(
    [
        MarkerSegmenter(),
        MarkerSegmenter(max_steps=2, group_size=2),
        MarkerSegmenter(min_paragraphs=1, group_size=3),
        MarkerSegmenter(min_paragraphs=1, paragraph_rule="blank_lines"),
        ParagraphSegmenter(),
        ParagraphSegmenter(paragraph_rule="blank_lines"),
        ParagraphSegmenter(group_size=2),
        TokenChunkSegmenter(3, count_words),
        TokenChunkSegmenter(2, len),
    ]
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(pieces=text_pieces, segmenter=all_segmenters)
def test_split_is_lossless_and_has_no_empty_episodes(
    pieces: list[str], segmenter: Segmenter
) -> None:
    text = "".join(pieces)
    episodes = segmenter.split(text)
    assert "".join(episodes) == text
    assert all(episodes)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(pieces=text_pieces)
def test_marker_episodes_after_the_first_start_with_a_boundary_paragraph(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    for episode in MarkerSegmenter(min_paragraphs=1).split(text)[1:]:
        assert episode.startswith("\n\n") and episode[2:].startswith(DEFAULT_MARKERS)
    blank_lines = MarkerSegmenter(min_paragraphs=1, paragraph_rule="blank_lines")
    for episode in blank_lines.split(text)[1:]:
        separator = re.match(r"\r?\n(?:[ \t]*\r?\n)+", episode)
        assert separator is not None
        assert episode[separator.end() :].startswith(DEFAULT_MARKERS)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(pieces=text_pieces)
def test_official_paragraphs_are_text_split_on_a_blank_line(pieces: list[str]) -> None:
    text = "".join(pieces) or "x"
    paragraphs = split_paragraphs(text)
    bodies = [paragraphs[0], *(p.removeprefix("\n\n") for p in paragraphs[1:])]
    assert bodies == text.split("\n\n")


@pytest.mark.parametrize("module", [segmenters, paragraph_module, segmenter_spec])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_split_paragraphs_keeps_separators_with_the_following_paragraph() -> None:
    blank_lines = split_paragraphs("a\n\nb\r\n\r\n\r\nc", rule="blank_lines")
    assert blank_lines == ["a", "\n\nb", "\r\n\r\n\r\nc"]
    assert split_paragraphs("a\n\nb\r\n\r\n\r\nc") == ["a", "\n\nb\r\n\r\n\r\nc"]
    assert split_paragraphs("\n\na") == ["", "\n\na"]
    assert split_paragraphs("") == []
