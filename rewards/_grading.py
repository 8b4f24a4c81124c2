"""Grade normalised answers with math-verify (imported lazily; runs inside pool workers).

math-verify's own SIGALRM timeouts are disabled here: the caller bounds the wall-clock time
(a worker process that overruns is killed), and SIGALRM only works in a main thread anyway.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

#: Grade of one task: ``None`` when the gold answer cannot be parsed, else one bool per candidate.
Grades = tuple[bool, ...] | None

_GOLD_CACHE_SIZE = 8192


def silence_math_verify() -> None:
    """Keep math-verify quiet (it logs whole inputs on timeouts) without touching other loggers."""
    for name in ("math_verify", "latex2sympy2_extended"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _parse(answer: str) -> list[Any]:
    import math_verify

    return list(math_verify.parse("\\boxed{" + answer + "}", parsing_timeout=None))  # type: ignore[arg-type]


@lru_cache(maxsize=_GOLD_CACHE_SIZE)
def parse_gold(gold: str) -> tuple[Any, ...]:
    """Parse a (normalised) gold answer once per process."""
    return tuple(_parse(gold))


def grade(gold: str, candidates: tuple[str, ...]) -> Grades:
    """Whether each (normalised) candidate is equivalent to the (normalised) gold answer.

    Example:
        >>> grade("\\\\frac{1}{2}", ("0.5", "2"))
        (True, False)
    """
    import math_verify

    silence_math_verify()
    parsed_gold = list(parse_gold(gold))
    if not parsed_gold:
        return None
    grades = []
    for candidate in candidates:
        parsed = _parse(candidate)
        grades.append(
            bool(parsed) and bool(math_verify.verify(parsed_gold, parsed, timeout_seconds=None))
        )
    return tuple(grades)


@lru_cache(maxsize=1)
def warm_up() -> None:
    """Import math-verify and sympy and run comparisons (once), so real tasks are fast.

    The first symbolic comparison in a process costs over a second (sympy loads and caches
    lazily); done here, before the worker reports ready, it never eats into a task's timeout.
    """
    silence_math_verify()
    grade("1", ("1",))
    grade("x^2+2x+1", ("(x+1)^2", "\\frac{\\sqrt{8}}{2}"))
    grade("[1,2)", ("(1, 2)", "\\{2, 1\\}"))
