"""FallbackSegmenter: the marker rule, else paragraphs of a minimum token size; the env default."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrt_env.config import EnvConfig, build_components, default_segmenter
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.segmenters import (
    FallbackSegmenter,
    MarkerSegmenter,
    bind_segmenter,
    segmenter_from_spec,
)
from mrt_env.templates import TEMPLATES, ChatTemplate


def words(text: str) -> int:
    """A token counter for the tests: one token per whitespace-separated word."""
    return len(text.split())


def test_without_a_marker_paragraphs_merge_until_each_episode_has_min_tokens() -> None:
    # paragraphs of 2, 1, 3, 4 and 1 words; min 3: [2+1], [3], [4+1 (tail joins)]
    text = "a b\n\nc\n\nd e f\n\ng h i j\n\nk"
    episodes = FallbackSegmenter(min_tokens=3, count_tokens=words).split(text)
    assert episodes == ["a b\n\nc", "\n\nd e f", "\n\ng h i j\n\nk"]


def test_a_short_tail_joins_the_episode_before_it() -> None:
    text = "a b c\n\nd"
    assert FallbackSegmenter(min_tokens=3, count_tokens=words).split(text) == [text]


def test_a_text_shorter_than_min_tokens_is_one_episode() -> None:
    seg = FallbackSegmenter(min_tokens=50, count_tokens=words)
    assert seg.split("a\n\nb\n\nc") == ["a\n\nb\n\nc"]
    assert seg.split("") == []


def test_the_marker_rule_wins_when_it_finds_a_boundary() -> None:
    text = "a\n\nb\n\nc\n\nWait, d\n\ne"
    seg = FallbackSegmenter(min_tokens=1, count_tokens=words)
    assert seg.split(text) == ["a\n\nb\n\nc", "\n\nWait, d\n\ne"]
    # a marker the official rule skips (paragraph 1 < 3) leaves the fallback in charge
    early = "a\n\nWait, b\n\nc"
    assert seg.split(early) == ["a", "\n\nWait, b", "\n\nc"]


def test_counts_tokens_with_the_given_counter() -> None:
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return 100

    assert FallbackSegmenter(min_tokens=100, count_tokens=count).split("x\n\ny") == ["x", "\n\ny"]
    assert calls  # the counter decided


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="ab \nW", max_size=12), max_size=8),
    st.integers(min_value=1, max_value=6),
)
def test_split_is_lossless_and_every_episode_but_a_lone_one_has_min_tokens(
    pieces: list[str], min_tokens: int
) -> None:
    text = "\n\n".join(pieces)
    seg = FallbackSegmenter(min_tokens=min_tokens, count_tokens=len, marker=MarkerSegmenter())
    episodes = seg.split(text)
    assert "".join(episodes) == text and all(episodes)
    if len(MarkerSegmenter().split(text)) <= 1 and len(episodes) > 1:
        assert all(len(e) >= min_tokens for e in episodes)


def test_unbound_segmenter_says_how_to_bind_and_env_binds_its_models_counter() -> None:
    seg = segmenter_from_spec("fallback:7")
    assert isinstance(seg, FallbackSegmenter) and seg.min_tokens == 7
    with pytest.raises(ValueError, match="count_tokens"):
        seg.split("a\n\nb")
    lm = ScriptedLM(["2}"])
    components = build_components(EnvConfig(lm=lm, prover="none", segmenter=seg))
    bound = components.segmenter
    assert bound.min_tokens == 7 and bound.count_tokens == lm.count_tokens
    assert bind_segmenter(MarkerSegmenter(), len) == MarkerSegmenter()


def test_spec_with_a_paragraph_rule_reaches_the_marker_rule() -> None:
    seg = segmenter_from_spec("fallback+blank_lines")
    assert seg.min_tokens == 48 and seg.marker.paragraph_rule == "blank_lines"
    with pytest.raises(ValueError, match="min_tokens"):
        FallbackSegmenter(min_tokens=0)


def test_default_is_the_fallback_only_for_chat_models_without_thinking_tags() -> None:
    lm = ScriptedLM(["2}"])
    direct = ChatTemplate("chat", "{problem}", "\\boxed{", "The final answer is \\boxed{")
    thinking = ChatTemplate("chat", "{problem}<think>\n", "</think>", "</think>\\boxed{")
    seg = default_segmenter(direct, lm)
    assert isinstance(seg, FallbackSegmenter) and seg.count_tokens == lm.count_tokens
    assert default_segmenter(thinking, lm) == MarkerSegmenter()
    assert default_segmenter(TEMPLATES["r1-distill"], lm) == MarkerSegmenter()
    assert default_segmenter(TEMPLATES["tiny"], lm) == MarkerSegmenter(min_paragraphs=1)
