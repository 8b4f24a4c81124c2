"""Normalise what math-verify misses before it compares two answers, and detect hedged lists.

Only surface forms are rewritten, never values: LaTeX thousands separators (``10{,}000``,
``1\\,000``, a plain ``1,234,567``), degree signs, percent signs, multiple-choice wrappers
(``\\text{(A)}`` → ``A``), a leading ``\\$``, trailing unit text (``5\\text{ cm}``, ``12 inches``),
``\\dfrac``/``\\tfrac``, leading zeros (AIME's ``025``) and runs of whitespace (one space, as TeX
reads them). Everything else is math-verify's job. Every function here is linear in its input.
"""

from __future__ import annotations

import re

_THOUSANDS_BRACED = re.compile(r"(?<=\d)(?:\{,\}|\\,|\\!|\\ )(?=\d{3}(?!\d))")
_THOUSANDS_PLAIN = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DEGREES = re.compile(r"\^\s*(?:\{\s*)?\\circ(?:\s*\})?|°|\\degree(?![A-Za-z])")
_CHOICE = re.compile(
    r"(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?\(?\s*([A-E])\s*\)?(?:\s*\})?",
)
#: Longer answers are never multiple-choice letters (the letter pattern is not tried on them).
_MAX_CHOICE_CHARS = 64
_TEXT_BLOCK = r"\\(?:text|mbox|mathrm|textrm|textnormal|operatorname)\s*\{[^{}]*\}"
_UNIT_WORDS = (
    "units?|cm|mm|km|meters?|metres?|centimeters?|kilometers?|inch(?:es)?|feet|foot|ft|"
    "miles?|yards?|kg|grams?|kilograms?|pounds?|lbs?|seconds?|minutes?|hours?|hrs?|"
    "days?|weeks?|years?|dollars?|cents?|degrees?|square|sq|cubic|liters?|litres?|mph|"
    "people|students|ways|points?"
)
# Each pattern starts with a token that is not optional, and leading/trailing whitespace is
# stripped in code, so a search costs time linear in the text (no quadratic retries over spaces).
_TRAILING_UNIT = re.compile(
    rf"(?:{_TEXT_BLOCK}|\b(?:{_UNIT_WORDS})\b)(?:\s*\^\s*(?:\{{\s*\d\s*\}}|\d))?\s*$"
)
#: At most this many trailing unit texts are removed (``5\\text{ m}^2\\text{ s}`` needs two).
_MAX_UNIT_WORDS = 4
_UNIT_SEPARATORS = ("\\ ", "\\,", "\\;", "\\!")
_LEADING_ZEROS = re.compile(r"-?0\d+", re.ASCII)
_WRAPPERS = ("$", "\\(", "\\)", "\\[", "\\]")
_WHITESPACE = re.compile(r"\s+")
_LIST_WORDS = re.compile(
    r"\\text\s*\{\s*(?:or|and)\s*\}|\bor\b|\\lor(?![A-Za-z])|\\vee(?![A-Za-z])"
)
_OPENERS = "([{"
_CLOSERS = ")]}"


def _strip_wrappers(answer: str) -> str:
    text = _WHITESPACE.sub(" ", answer.strip())  # TeX reads a run of spaces as one
    text = text.replace("\\$", "")  # a dollar sign, not a math delimiter
    for wrapper in _WRAPPERS:
        text = text.replace(wrapper, "")
    text = text.replace("\\displaystyle", "").replace("\\dfrac", "\\frac")
    text = text.replace("\\tfrac", "\\frac").strip().rstrip(".").strip()
    return _strip_outer_braces(text)


def _strip_outer_braces(text: str) -> str:
    """``{76^\\circ}`` → ``76^\\circ``: drop braces that enclose the whole answer (linear time)."""
    closing = _closing_braces(text)
    start, end = 0, len(text) - 1
    while start < end and text[start] == "{" and closing.get(start) == end:
        start, end = start + 1, end - 1
        while start <= end and text[start].isspace():
            start += 1
        while end >= start and text[end].isspace():
            end -= 1
    return text[start : end + 1]


def _closing_braces(text: str) -> dict[int, int]:
    """Index of each ``{`` → index of its ``}`` (escaped braces skipped), in one pass."""
    pairs: dict[int, int] = {}
    opened: list[int] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            opened.append(i)
        elif char == "}" and opened:
            pairs[opened.pop()] = i
        i += 1
    return pairs


def _strip_percent(text: str) -> str:
    """``17.5\\%`` → ``17.5``."""
    text = text.rstrip()
    if text.endswith("%"):
        text = text[:-1]
        text = text[:-1] if text.endswith("\\") else text
    return text.rstrip()


def _strip_unit_separators(text: str) -> str:
    """Drop trailing whitespace and TeX spacing commands (``\\ ``, ``\\,``, ``\\;``, ``\\!``)."""
    while True:
        text = text.rstrip()
        if not text.endswith(_UNIT_SEPARATORS):
            return text
        text = text[:-2]


def _strip_trailing_units(text: str) -> str:
    """Drop unit text after a value (``5\\text{ cm}^2`` → ``5``); keep text-only answers."""
    for _ in range(_MAX_UNIT_WORDS):
        match = _TRAILING_UNIT.search(text)
        if match is None:
            return text
        head = _strip_unit_separators(text[: match.start()])
        if not head or head[-1] not in "0123456789})":
            return text
        text = head
    return text


def normalize_answer(answer: str) -> str:
    """Rewrite ``answer`` into a form math-verify compares correctly.

    Example:
        >>> examples = ["10{,}000", "30^\\\\circ", "17.5\\\\%", "\\\\text{(B)}", "025"]
        >>> [normalize_answer(example) for example in examples]
        ['10000', '30', '17.5', 'B', '25']
    """
    text = _strip_wrappers(answer)
    text = _THOUSANDS_BRACED.sub("", text)
    text = _DEGREES.sub("", text)
    text = _strip_percent(text)
    text = _strip_outer_braces(_strip_trailing_units(text).strip())
    if _THOUSANDS_PLAIN.fullmatch(text):
        text = text.replace(",", "")
    choice = _CHOICE.fullmatch(text) if len(text) <= _MAX_CHOICE_CHARS else None
    if choice is not None and ("(" in text or "\\" in text):
        text = choice.group(1)
    if _LEADING_ZEROS.fullmatch(text):
        negative = text.startswith("-")
        text = ("-" if negative else "") + (text.lstrip("-").lstrip("0") or "0")
    return text


def top_level_parts(answer: str) -> list[str]:
    """Split ``answer`` at commas, semicolons and "or"/"and" words outside any brackets.

    Example:
        >>> top_level_parts("3, 5")
        ['3', '5']
        >>> top_level_parts("(1, 2)")
        ['(1, 2)']
    """
    text = _LIST_WORDS.sub(",", answer)
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
        if depth == 0 and char in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def is_hedged_list(answer: str, gold: str) -> bool:
    """Whether ``answer`` lists several candidates although ``gold`` is a single answer.

    Example:
        >>> is_hedged_list("3 \\\\text{ or } 5", "5"), is_hedged_list("3, 5", "3, 5")
        (True, False)
    """
    return len(top_level_parts(gold)) <= 1 and len(top_level_parts(answer)) > 1
