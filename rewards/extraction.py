"""Find the final answer of a model response: the last ``\\boxed{...}`` after the end of thinking.

Rules (pure string processing, linear in the response length, never raises):

* The *answer region* is the text after the last ``</think>``. A response that opens ``<think>``
  but never closes it has no answer (it never finished thinking). A response without any think
  tag is graded as a whole. Text inside the thinking (or in the prompt, which is not part of the
  response) therefore never counts.
* Answers are the contents of ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces, escaped ``\\{``
  and ``\\}`` are not structural) and of ``\\boxed x`` / ``\\boxed5`` (one token). Unclosed boxes
  and empty boxes are ignored.
* When the answer region has no box, optional extra regular expressions (first group = answer) are
  tried line by line, e.g. :data:`FINAL_ANSWER_PATTERN` or :data:`ANSWER_IS_PATTERN`; the last
  match wins. They run in the
  calling process: a pattern must not backtrack catastrophically (the shipped ones are linear;
  ``tests/attacks`` checks it), and lines longer than :data:`MAX_PATTERN_LINE_CHARS` are skipped.

Every function here is linear in the length of its input; callers bound that length
(:class:`rewards.VerifierConfig` ``max_response_chars``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

#: An extra pattern for responses that state ``Final answer: ...`` instead of boxing it: the rest of
#: the line after ``final answer [is][:]`` (math delimiters and a final period are removed later, by
#: normalisation). Every quantifier is followed by a token it cannot match, so it is linear.
FINAL_ANSWER_PATTERN = r"(?i)final answer(?:\s+is)?(?:\s*:)?[ \t]*([^\n]*)"
#: An extra pattern for chat models that end with a sentence instead of a box: ``the answer is
#: X`` / ``Answer: X`` / ``final answer is X`` (also ``=``). The answer is one ``$...$`` span or
#: else one run of characters up to the next space (a final period is removed later, by
#: normalisation), so ``So, the answer is 5.`` gives ``5.`` and ``the answer is $x = 6$.`` gives
#: ``$x = 6$``. ``answer`` must be followed by ``is`` or ``:``/``=`` (``answers 5`` and ``the
#: answer to this`` do not match). Each quantifier is followed by a token it cannot match, or is
#: anchored by the literal ``answer``, so it is linear.
ANSWER_IS_PATTERN = r"(?i)\banswer(?:\s+is\b(?:[ \t]*[:=])?|[ \t]*[:=])[ \t]*(\$[^$\n]+\$|[^\s$]+)"
#: Lines longer than this are not searched with extra patterns (a user pattern may backtrack).
MAX_PATTERN_LINE_CHARS = 2000

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_SPACE = re.compile(r"\s*")
_TOKEN = re.compile(r"[^\s$]+")


def answer_region(response: str) -> str | None:
    """Return the part of ``response`` where a final answer may appear, or ``None``.

    Example:
        >>> answer_region("<think>maybe 3</think> so \\\\boxed{4}")
        ' so \\\\boxed{4}'
        >>> answer_region("<think>still thinking") is None
        True
    """
    close = response.rfind(THINK_CLOSE)
    if close >= 0:
        return response[close + len(THINK_CLOSE) :]
    if THINK_OPEN in response:
        return None
    return response


def _matching_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_index``, or -1 when unbalanced."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2  # an escaped character (``\{``, ``\}``, ``\\``) is never structural
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def boxed_answers(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}``, ``\\fbox{...}`` and ``\\boxed x`` in ``text``, in order.

    Empty and unclosed boxes are skipped; contents are stripped of surrounding whitespace.

    Example:
        >>> boxed_answers(r"\\boxed{\\frac{1}{2}} and \\boxed 7 and \\boxed{} and \\boxed5")
        ['\\\\frac{1}{2}', '7', '5']
    """
    answers: list[str] = []
    position = 0
    while True:
        match = _BOX_COMMAND.search(text, position)
        if match is None:
            return answers
        start = _SPACE.match(text, match.end()).end()  # type: ignore[union-attr]
        if start < len(text) and text[start] == "{":
            end = _matching_brace(text, start)
            if end < 0:
                return answers  # an unclosed box swallows the rest of the text
            content = text[start + 1 : end].strip()
            position = end + 1
        else:
            token = _TOKEN.match(text, start)
            content = token.group(0) if token else ""
            position = token.end() if token else start
        if content:
            answers.append(content)


def pattern_answers(text: str, patterns: Sequence[str]) -> list[str]:
    """Answers matched by ``patterns`` (first group, or the whole match) line by line, in order.

    Lines longer than :data:`MAX_PATTERN_LINE_CHARS` are skipped.

    Example:
        >>> pattern_answers("So the final answer is $12$.", [FINAL_ANSWER_PATTERN])
        ['$12$.']
    """
    answers: list[str] = []
    for line in text.splitlines():
        if len(line) > MAX_PATTERN_LINE_CHARS:
            continue
        for pattern in patterns:
            for match in re.finditer(pattern, line):
                content = (match.group(1) if match.groups() else match.group(0)).strip()
                if content:
                    answers.append(content)
    return answers


def final_answers(response: str, extra_patterns: Sequence[str] = ()) -> list[str] | None:
    """All final-answer candidates of ``response`` (boxes first, then extra patterns).

    Returns ``None`` when the response never finished thinking, else the (possibly empty) list of
    candidates in order of appearance; the last one is *the* final answer.

    Example:
        >>> final_answers("<think>\\\\boxed{1}</think>The answer is \\\\boxed{2}.")
        ['2']
        >>> final_answers("Final answer: 12", [FINAL_ANSWER_PATTERN])
        ['12']
    """
    region = answer_region(response)
    if region is None:
        return None
    boxed = boxed_answers(region)
    if boxed or not extra_patterns:
        return boxed
    return pattern_answers(region, extra_patterns)
