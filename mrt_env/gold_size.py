"""A static bound on the size of the numbers written in a gold answer.

A gold answer such as ``10^{10^{10}}`` or ``100000!`` is short text for a number with billions
of digits: every verification against it runs into the verifier's timeout, so every forced
answer of μ grades ``timeout`` and J is 0 at the cost of seconds per answer. Such golds are
refused when the problem is loaded. The bound is estimated from the text alone, in log space
(the number itself is never built): every run of the answer made only of digits, braces,
parentheses, ``^``, ``!``, ``+``, ``-``, ``*``, ``\\cdot`` and ``\\times`` is read as an integer
expression and its decimal digits are bounded from above.

Example:
    >>> gold_digits("10^{10^{10}}"), gold_digits("100000!")
    (10000000001.0, 456574.0)
    >>> gold_digits("2^{10}"), gold_digits("x^{10^{10}}")  # a symbol's power is never expanded
    (4.0, 0.0)
"""

from __future__ import annotations

import math
import re

MAX_GOLD_DIGITS = 100_000
"""A gold answer whose numbers would have more decimal digits than this is refused."""

_RUN = re.compile(r"[0-9.{}()^!+\-*]+")
_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)?|[{}()^!+\-*]")
_LN10 = math.log(10.0)


class _NotNumeric(Exception):
    """The run is not an integer expression this bound can read."""


def gold_digits(answer: str) -> float:
    """An upper bound on the decimal digits of the largest number written in ``answer``.

    Runs that are not integer expressions (variables, ``\\frac``, unbalanced braces) are read
    piecewise or skipped; a run is never evaluated, only bounded, so this is fast on any text.
    """
    text = re.sub(r"\\(?:cdot|times)", "*", answer)
    text = re.sub(r"\\left|\\right|\s+", "", text)
    largest = 0.0
    for run in _RUN.findall(text):
        if "^" not in run and "!" not in run:
            largest = max([largest, *(float(len(d)) for d in re.findall(r"[0-9]+", run))])
            continue
        try:
            log10 = _Parser(run).parse()
        except (_NotNumeric, IndexError, RecursionError):
            continue
        largest = max(largest, math.floor(log10) + 1.0 if math.isfinite(log10) else math.inf)
    return largest


def gold_size_error(answer: str) -> str | None:
    """Why ``answer`` is too large to grade, or ``None`` when it is not.

    Example:
        >>> gold_size_error("10^{10^{10}}")
        'writes a number with about 1e+10 digits (more than 100000); grading it would time out'
        >>> gold_size_error("10^{100}") is None
        True
    """
    digits = gold_digits(answer)
    if digits <= MAX_GOLD_DIGITS:
        return None
    about = "more than 1e300" if digits > 1e300 else f"about {digits:.0e}"
    return (
        f"writes a number with {about} digits (more than {MAX_GOLD_DIGITS}); "
        "grading it would time out"
    )


class _Parser:
    """Recursive descent over ``sum := product (('+'|'-') product)*``,
    ``product := power ('*'? power)*``, ``power := atom '!'* ('^' power)?``,
    ``atom := number | '{' sum '}' | '(' sum ')'``; each rule returns log10 of an upper bound
    on the absolute value (``-inf`` for zero, ``inf`` beyond float range)."""

    def __init__(self, run: str) -> None:
        self.tokens = _TOKEN.findall(run)
        self.position = 0

    def parse(self) -> float:
        value = self._sum()
        if self.position != len(self.tokens):
            raise _NotNumeric
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _sum(self) -> float:
        value = self._product()
        while self._peek() in ("+", "-"):
            self._take()
            value = max(value, self._product()) + math.log10(2.0)
        return value

    def _product(self) -> float:
        value = self._power()
        while self._peek() not in (None, "+", "-", "}", ")", "^", "!"):
            if self._peek() == "*":
                self._take()
            value += self._power()
        return value

    def _power(self) -> float:
        value = self._atom()
        while self._peek() == "!":
            self._take()
            value = _log10_factorial(value)
        if self._peek() == "^":
            self._take()
            exponent = self._power()
            if value <= 0.0 or exponent == -math.inf:
                return 0.0  # |base| <= 1 or a zero exponent: at most 1 in magnitude (bounded)
            return value * 10.0**exponent if exponent < 300 else math.inf
        return value

    def _atom(self) -> float:
        token = self._take()
        if token in ("{", "("):
            value = self._sum()
            if self._take() != ("}" if token == "{" else ")"):
                raise _NotNumeric
            return value
        if token == "-":
            return self._atom()
        if token[0].isdigit():
            number = float(token) if len(token) < 300 else math.inf
            return math.log10(number) if number > 0 else -math.inf
        raise _NotNumeric


def _log10_factorial(log10_n: float) -> float:
    """log10(n!) from log10(n) (``inf`` beyond float range)."""
    if log10_n > 300:
        return math.inf
    n = math.floor(10.0**log10_n) if log10_n > -math.inf else 0
    return math.lgamma(n + 1) / _LN10 if n < 1e300 else math.inf
