"""Normalise what math-verify misses before it compares two answers, and detect hedged lists.

Only surface forms are rewritten, never values: LaTeX thousands separators (``10{,}000``,
``1\\,000``, a plain ``1,234,567``), degree signs, percent signs, multiple-choice wrappers
(``\\text{(A)}`` → ``A``), a leading ``\\$``, trailing unit text (``5\\text{ cm}``, ``12 inches``),
``\\dfrac``/``\\tfrac`` and leading zeros (AIME's ``025``). Everything else is math-verify's job.
"""

from __future__ import annotations

import re

_THOUSANDS_BRACED = re.compile(r"(?<=\d)(?:\{,\}|\\,|\\!|\\ )(?=\d{3}(?!\d))")
_THOUSANDS_PLAIN = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z])")
_PERCENT = re.compile(r"\s*\\?%\s*$")
_CHOICE = re.compile(
    r"(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?\(?\s*([A-E])\s*\)?(?:\s*\})?",
)
_TEXT_BLOCK = r"\\(?:text|mbox|mathrm|textrm|textnormal|operatorname)\s*\{[^{}]*\}"
_UNIT_WORDS = (
    "units?|cm|mm|km|meters?|metres?|centimeters?|kilometers?|inch(?:es)?|feet|foot|ft|"
    "miles?|yards?|kg|grams?|kilograms?|pounds?|lbs?|seconds?|minutes?|hours?|hrs?|"
    "days?|weeks?|years?|dollars?|cents?|degrees?|square|sq|cubic|liters?|litres?|mph|"
    "people|students|ways|points?"
)
_TRAILING_UNITS = re.compile(
    rf"(?:\s|\\[ ,;!])*(?:{_TEXT_BLOCK}|\b(?:{_UNIT_WORDS})\b)(?:\s*\^\s*\{{?\d\}}?)?\s*$"
)
_LEADING_ZEROS = re.compile(r"-?0+\d+")
_WRAPPERS = ("$", "\\(", "\\)", "\\[", "\\]")
_LIST_WORDS = re.compile(
    r"\\text\s*\{\s*(?:or|and)\s*\}|\bor\b|\\lor(?![A-Za-z])|\\vee(?![A-Za-z])"
)
_OPENERS = "([{"
_CLOSERS = ")]}"


def _strip_wrappers(answer: str) -> str:
    text = answer.strip().replace("\\$", "")  # a dollar sign, not a math delimiter
    for wrapper in _WRAPPERS:
        text = text.replace(wrapper, "")
    text = text.replace("\\displaystyle", "").replace("\\dfrac", "\\frac")
    text = text.replace("\\tfrac", "\\frac").strip().rstrip(".").strip()
    return _strip_outer_braces(text)


def _strip_outer_braces(text: str) -> str:
    """``{76^\\circ}`` → ``76^\\circ``: drop braces that enclose the whole answer."""
    while text.startswith("{") and _closing_brace(text) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing_brace(text: str) -> int:
    """Index of the ``}`` matching the ``{`` at index 0 (escaped braces skipped), or -1."""
    depth = 0
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
        i += 1
    return -1


def _strip_trailing_units(text: str) -> str:
    """Drop unit text after a value (``5\\text{ cm}^2`` → ``5``); keep text-only answers."""
    while True:
        match = _TRAILING_UNITS.search(text)
        if match is None or match.start() == 0:
            return text
        head = text[: match.start()].rstrip()
        if not re.search(r"[\d})]$", head):
            return text
        text = head


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
    text = _PERCENT.sub("", text)
    text = _strip_outer_braces(_strip_trailing_units(text).strip())
    if _THOUSANDS_PLAIN.fullmatch(text):
        text = text.replace(",", "")
    choice = _CHOICE.fullmatch(text)
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
