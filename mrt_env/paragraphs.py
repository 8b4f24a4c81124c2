"""Cutting a response's text: its thinking part and its paragraphs.

The text primitives under :mod:`mrt_env.segmenters`. :func:`thinking_part` separates the
thinking text from the answer after the end-of-thinking marker; :func:`split_paragraphs` cuts a
text into paragraph pieces under a :data:`ParagraphRule`, each piece after the first led by the
separator before it. Both are lossless: the pieces concatenate to the input.

Example:
    >>> thinking, rest = thinking_part("Let x = 2.\\n\\nWait, x = 3.</think>3")
    >>> split_paragraphs(thinking), rest
    (['Let x = 2.', '\\n\\nWait, x = 3.'], '</think>3')
"""

from __future__ import annotations

import re
from typing import Literal

PARAGRAPH_SEPARATOR = "\n\n"
"""The canonical blank-line separator; boundaries are this string followed by a marker."""

ParagraphRule = Literal["official", "blank_lines"]
"""How a text is cut into paragraphs: ``"official"`` is the official analysis code's
``text.split("\\n\\n")`` (every ``"\\n\\n"``, left to right, is one separator, so three
newlines leave a paragraph starting with ``"\\n"`` and ``"\\r\\n\\r\\n"`` or a whitespace-only
line separate nothing); ``"blank_lines"`` treats any run of blank lines (CRLF and
whitespace-only lines included) as one separator."""

PARAGRAPH_RULES: tuple[str, ...] = ("official", "blank_lines")

_SEPARATOR_RES: dict[str, re.Pattern[str]] = {
    "official": re.compile(re.escape(PARAGRAPH_SEPARATOR)),
    "blank_lines": re.compile(r"\r?\n(?:[ \t]*\r?\n)+"),
}
"""The separator of each :data:`ParagraphRule`."""


def thinking_part(response: str, end_think: str = "</think>") -> tuple[str, str]:
    """Split a response into its thinking text and the rest.

    Args:
        response: A model response, possibly containing ``end_think`` and an answer after it.
        end_think: The end-of-thinking marker.

    Returns:
        ``(thinking, rest)`` with ``thinking + rest == response``. ``rest`` starts at the first
        ``end_think`` (inclusive); it is ``""`` when the response never ends thinking.

    Example:
        >>> thinking_part("x = 2.\\n</think>\\nThe answer is \\\\boxed{2}.")
        ('x = 2.\\n', '</think>\\nThe answer is \\\\boxed{2}.')
    """
    if not end_think:
        raise ValueError("end_think must be a non-empty string")
    cut = response.find(end_think)
    if cut < 0:
        return response, ""
    return response[:cut], response[cut:]


def split_paragraphs(text: str, rule: ParagraphRule = "official") -> list[str]:
    """Split ``text`` into paragraph pieces, each (after the first) led by its separator.

    Args:
        text: Any text.
        rule: ``"official"`` (``text.split("\\n\\n")``) or ``"blank_lines"`` (see
            :data:`ParagraphRule`).

    Returns:
        Pieces whose concatenation is ``text``. Piece 0 is the first paragraph (possibly
        ``""`` when ``text`` starts with a separator); piece ``i >= 1`` is the separator before
        paragraph ``i`` followed by that paragraph. ``[]`` for an empty text.

    Example:
        >>> split_paragraphs("a\\n\\nb\\n\\n\\nc")
        ['a', '\\n\\nb', '\\n\\n\\nc']
        >>> split_paragraphs("a\\n\\nb\\r\\n\\r\\nc", rule="blank_lines")
        ['a', '\\n\\nb', '\\r\\n\\r\\nc']
    """
    if rule not in _SEPARATOR_RES:
        raise ValueError(f"unknown paragraph rule {rule!r}; choose from {PARAGRAPH_RULES}")
    if not text:
        return []
    starts = [0] + [match.start() for match in _SEPARATOR_RES[rule].finditer(text)]
    ends = [*starts[1:], len(text)]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


def paragraph_body(piece: str, rule: ParagraphRule) -> str:
    """The paragraph text of a piece, without its leading separator."""
    match = _SEPARATOR_RES[rule].match(piece)
    return piece[match.end() :] if match else piece


def check_paragraph_rule(rule: str) -> None:
    """Raise ``ValueError`` unless ``rule`` is one of :data:`PARAGRAPH_RULES`."""
    if rule not in PARAGRAPH_RULES:
        raise ValueError(f"paragraph_rule must be one of {PARAGRAPH_RULES}, got {rule!r}")
