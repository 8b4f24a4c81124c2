"""Segmenters against hand-split texts, written to kill mutants (see tests/README.md).

Every expected split is written out by hand from the rules in PAPER.md ("episodes": a paragraph
opening with a marker starts an episode, at least ``min_paragraphs`` after the previous one, at
most ``max_steps`` boundaries, merged in groups of ``group_size``).
"""

from __future__ import annotations

import pytest

from mrt_env.segmenters import (
    DEFAULT_MARKERS,
    MarkerSegmenter,
    ParagraphSegmenter,
    TokenChunkSegmenter,
    segmenter_from_spec,
    split_paragraphs,
    thinking_part,
)

TEXT = "A\n\nWait, B\n\nC\n\nWait, D\n\nE\n\nBut wait, F"
# paragraphs 0..5: A | Wait, B | C | Wait, D | E | But wait, F (markers at 1, 3 and 5)


@pytest.mark.parametrize(
    ("segmenter", "expected"),
    [
        (
            MarkerSegmenter(min_paragraphs=1),
            ["A", "\n\nWait, B\n\nC", "\n\nWait, D\n\nE", "\n\nBut wait, F"],
        ),
        # 1 is only one paragraph in; 3 is three in; 5 is two after 3
        (
            MarkerSegmenter(min_paragraphs=2),
            ["A\n\nWait, B\n\nC", "\n\nWait, D\n\nE", "\n\nBut wait, F"],
        ),
        (MarkerSegmenter(), ["A\n\nWait, B\n\nC", "\n\nWait, D\n\nE\n\nBut wait, F"]),
        (MarkerSegmenter(min_paragraphs=4), [TEXT[:-13], TEXT[-13:]]),  # 3 skipped, 5 taken
        (MarkerSegmenter(min_paragraphs=6), [TEXT]),
        (MarkerSegmenter(min_paragraphs=1, max_steps=1), ["A", TEXT[1:]]),
        (
            MarkerSegmenter(min_paragraphs=1, max_steps=2),
            ["A", "\n\nWait, B\n\nC", "\n\nWait, D\n\nE\n\nBut wait, F"],
        ),
        (
            MarkerSegmenter(min_paragraphs=1, max_steps=3),
            ["A", "\n\nWait, B\n\nC", "\n\nWait, D\n\nE", "\n\nBut wait, F"],
        ),
        (
            MarkerSegmenter(min_paragraphs=1, group_size=2),
            ["A\n\nWait, B\n\nC", "\n\nWait, D\n\nE\n\nBut wait, F"],
        ),
        (
            MarkerSegmenter(min_paragraphs=1, group_size=3),
            ["A\n\nWait, B\n\nC\n\nWait, D\n\nE", "\n\nBut wait, F"],
        ),
        (MarkerSegmenter(min_paragraphs=1, markers=("But wait",)), [TEXT[:-13], TEXT[-13:]]),
        (ParagraphSegmenter(), ["A", "\n\nWait, B", "\n\nC", "\n\nWait, D", "\n\nE", TEXT[-13:]]),
        (
            ParagraphSegmenter(group_size=4),
            ["A\n\nWait, B\n\nC\n\nWait, D", "\n\nE\n\nBut wait, F"],
        ),
    ],
)
def test_splits(segmenter: MarkerSegmenter | ParagraphSegmenter, expected: list[str]) -> None:
    assert segmenter.split(TEXT) == expected


def test_markers_count_only_at_a_paragraph_start_and_case_sensitively() -> None:
    seg = MarkerSegmenter(min_paragraphs=1)
    assert seg.split("A\n\nSo, Wait.\n\nwait, no") == ["A\n\nSo, Wait.\n\nwait, no"]
    assert seg.split("") == []
    assert seg.split("A") == ["A"]


def test_a_text_that_opens_with_a_separator_has_no_empty_episode() -> None:
    assert split_paragraphs("\n\nWait, A") == ["", "\n\nWait, A"]
    assert MarkerSegmenter(min_paragraphs=1).split("\n\nWait, A") == ["\n\nWait, A"]
    assert ParagraphSegmenter().split("\n\nB") == ["\n\nB"]


def test_paragraph_rules() -> None:
    text = "A\r\n\r\nWait, B\n \nWait, C\n\n\nWait, D"
    official = MarkerSegmenter(min_paragraphs=1)
    blank = MarkerSegmenter(min_paragraphs=1, paragraph_rule="blank_lines")
    # officially only the "\n\n" of "\n\n\n" separates, leaving "\nWait, D": no marker
    assert official.split(text) == [text]
    assert blank.split(text) == ["A", "\r\n\r\nWait, B", "\n \nWait, C", "\n\n\nWait, D"]
    assert split_paragraphs("a\n\n\nb") == ["a", "\n\n\nb"]
    assert split_paragraphs("a\n\n\nb", "blank_lines") == ["a", "\n\n\nb"]
    assert split_paragraphs("a\r\n\r\nb", "official") == ["a\r\n\r\nb"]
    assert ParagraphSegmenter(paragraph_rule="blank_lines").split("a\n \nb") == ["a", "\n \nb"]


def test_split_paragraphs_rejects_an_unknown_rule() -> None:
    with pytest.raises(ValueError, match=r"unknown paragraph rule 'x'; choose from \('official'"):
        split_paragraphs("a", "x")  # type: ignore[arg-type]


def test_thinking_part() -> None:
    assert thinking_part("a</think>b</think>c") == ("a", "</think>b</think>c")
    assert thinking_part("no end") == ("no end", "")
    assert thinking_part("x<END>y", end_think="<END>") == ("x", "<END>y")
    assert thinking_part("</think>y") == ("", "</think>y")
    with pytest.raises(ValueError, match=r"^end_think must be a non-empty string$"):
        thinking_part("x", end_think="")


def test_boundaries() -> None:
    assert MarkerSegmenter().boundaries == tuple("\n\n" + m for m in DEFAULT_MARKERS)
    assert MarkerSegmenter(markers=("Hmm",)).boundaries == ("\n\nHmm",)
    assert ParagraphSegmenter().boundaries == ("\n\n",)
    assert TokenChunkSegmenter(3, len).boundaries == ()


def test_presets() -> None:
    assert MarkerSegmenter.preset("aime2024") == MarkerSegmenter(max_steps=45, group_size=3)
    assert MarkerSegmenter.preset("omni-math") == MarkerSegmenter(max_steps=49, group_size=5)
    regret = MarkerSegmenter.preset("regret-comparison", min_paragraphs=1)
    assert regret == MarkerSegmenter(max_steps=99, group_size=10, min_paragraphs=1)
    with pytest.raises(ValueError, match=r"unknown preset 'x'; choose from \['aime2024', 'omni"):
        MarkerSegmenter.preset("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_steps": 0}, r"max_steps must be a positive int, got 0"),
        ({"max_steps": True}, r"max_steps must be a positive int, got True"),
        ({"group_size": None}, r"group_size must be a positive int, got None"),
        ({"group_size": 0}, r"group_size must be a positive int, got 0"),
        ({"group_size": 1.5}, r"group_size must be a positive int, got 1.5"),
        ({"min_paragraphs": 0}, r"min_paragraphs must be a positive int, got 0"),
        ({"paragraph_rule": "x"}, r"paragraph_rule must be one of \('official', 'blank_l"),
        ({"markers": "Wait"}, r"markers must be a non-empty tuple of strings, got 'Wait'"),
        ({"markers": ()}, r"markers must be a non-empty tuple of strings, got \(\)"),
        ({"markers": ("Wait", "")}, r"every marker must be a non-empty string, got"),
        ({"markers": ("Wait", 3)}, r"every marker must be a non-empty string, got"),
    ],
)
def test_marker_segmenter_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarkerSegmenter(**kwargs)


def test_marker_segmenter_accepts_the_smallest_settings_and_a_marker_list() -> None:
    seg = MarkerSegmenter(max_steps=1, group_size=1, min_paragraphs=1, markers=["Hmm"])  # type: ignore[arg-type]
    assert seg.markers == ("Hmm",)
    assert seg.split("a\n\nHmm b") == ["a", "\n\nHmm b"]
    assert MarkerSegmenter(max_steps=None).max_steps is None


def test_paragraph_segmenter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"group_size must be a positive int, got 0"):
        ParagraphSegmenter(group_size=0)
    with pytest.raises(ValueError, match=r"paragraph_rule must be one of"):
        ParagraphSegmenter(paragraph_rule="x")  # type: ignore[arg-type]


# --- token chunks -------------------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("chunk", "count", "text", "expected"),
    [
        (3, len, "abcdefgh", ["abc", "def", "gh"]),
        (3, len, "abc", ["abc"]),
        (8, len, "abc", ["abc"]),
        (1, len, "abc", ["a", "b", "c"]),
        (2, _words, "one two three four five", ["one two ", "three four ", "five"]),
        (1, _words, "aa bb cc", ["aa ", "bb ", "cc"]),
        # a character worth more than a chunk still makes progress, one at a time
        (2, lambda s: 5 * len(s), "abc", ["a", "b", "c"]),
        # not additive: tokens = len // 2; the chunk after offset s is measured from count(s)
        (1, lambda s: len(s) // 2, "abcdefg", ["abc", "de", "fg"]),
        (4, len, "", []),
    ],
)
def test_token_chunks(chunk: int, count: object, text: str, expected: list[str]) -> None:
    assert TokenChunkSegmenter(chunk, count).split(text) == expected  # type: ignore[arg-type]


def test_token_chunks_take_the_largest_fitting_cut() -> None:
    # counts: every character is a token, except that "xy" together is one token
    def count(text: str) -> int:
        return len(text) - text.count("xy")

    assert TokenChunkSegmenter(2, count).split("axyb") == ["axy", "b"]
    assert TokenChunkSegmenter(3, count).split("abcdxyefg") == ["abc", "dxye", "fg"]


class _Tokenizer:
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [0] * (len(text) + (1 if add_special_tokens else 0))


def test_token_chunks_from_a_tokenizer_do_not_count_special_tokens() -> None:
    seg = TokenChunkSegmenter.from_tokenizer(_Tokenizer(), chunk_tokens=2)
    assert seg.chunk_tokens == 2
    assert seg.split("abcde") == ["ab", "cd", "e"]


def test_token_chunk_segmenter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"chunk_tokens must be a positive int, got 0"):
        TokenChunkSegmenter(0, len)
    with pytest.raises(TypeError, match=r"count_tokens must be callable, got <class 'int'>"):
        TokenChunkSegmenter(2, 5)  # type: ignore[arg-type]


# --- specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "template", "expected"),
    [
        (None, "tiny", MarkerSegmenter(min_paragraphs=1)),
        ("", "tiny", MarkerSegmenter(min_paragraphs=1)),
        (None, "r1-distill", MarkerSegmenter()),
        (None, "", MarkerSegmenter()),
        ("marker", "tiny", MarkerSegmenter(min_paragraphs=3)),
        ("marker:2", "", MarkerSegmenter(min_paragraphs=2)),
        ("marker+blank_lines", "", MarkerSegmenter(paragraph_rule="blank_lines")),
        ("marker:1+official", "", MarkerSegmenter(min_paragraphs=1)),
        ("preset:omni-math", "", MarkerSegmenter(max_steps=49, group_size=5)),
        ("paragraph", "tiny", ParagraphSegmenter()),
        ("paragraph+blank_lines", "", ParagraphSegmenter(paragraph_rule="blank_lines")),
    ],
)
def test_segmenter_from_spec(spec: str | None, template: str, expected: object) -> None:
    assert segmenter_from_spec(spec, template) == expected


def test_segmenter_from_spec_defaults_to_the_official_rule() -> None:
    assert segmenter_from_spec("marker:1") == MarkerSegmenter(min_paragraphs=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("marker+xyz", r"unknown paragraph rule 'xyz'; use \+blank_lines or \+official"),
        ("tokens:5", r"^tokens:N needs the policy's tokenizer; build TokenChunkSegmenter$"),
        (
            "words",
            r"unknown segmenter 'words'; use marker\[:MIN\], preset:NAME, paragraph or "
            r"fallback\[:MIN_TOKENS\]",
        ),
        ("preset:x", r"unknown preset 'x'"),
    ],
)
def test_segmenter_from_spec_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segmenter_from_spec(spec)


def _words(text: str) -> int:
    return len(text.split())


def test_fallback_follows_its_marker_rule_for_paragraphs() -> None:
    from mrt_env.segmenters import FallbackSegmenter, MarkerSegmenter

    text = "a b c\n \nd e f"  # a whitespace-only line: a paragraph break under blank_lines only
    official = FallbackSegmenter(min_tokens=2, count_tokens=_words)
    assert official.split(text) == [text]
    blank = FallbackSegmenter(
        min_tokens=2, count_tokens=_words, marker=MarkerSegmenter(paragraph_rule="blank_lines")
    )
    assert blank.split(text) == ["a b c", "\n \nd e f"]


def test_fallback_errors_name_what_is_wrong() -> None:
    from mrt_env.segmenters import FallbackSegmenter

    with pytest.raises(ValueError, match=r"^min_tokens must be "):
        FallbackSegmenter(min_tokens=0)
    with pytest.raises(TypeError, match=r"^count_tokens must be callable, got <class 'int'>$"):
        FallbackSegmenter(count_tokens=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^marker must be a MarkerSegmenter, got 'x'$"):
        FallbackSegmenter(marker="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError) as error:
        FallbackSegmenter().split("no marker here\n\nat all")
    assert str(error.value) == (
        "FallbackSegmenter has no count_tokens: pass one (e.g. lm.count_tokens) or give the "
        "segmenter to the env, which binds its model's"
    )
