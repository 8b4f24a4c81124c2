"""TinyMath: seeded arithmetic problems with difficulty levels and a disjoint held-out split.

Levels (operands are drawn uniformly in the ranges shown):

* 1: two-digit addition, ``a+b`` with ``a, b`` in 10..99.
* 2: three-digit addition, ``a+b`` with ``a, b`` in 100..999.
* 3: three-digit subtraction, ``a-b`` with ``100 <= b < a <= 999``.
* 4: two-step expression ``(a+b)-c`` with two-digit numbers and a non-negative result.
* 5: multiplication by one digit, ``a*b`` with ``a`` in 10..99 and ``b`` in 2..9.

A problem belongs to the held-out split when a hash of its expression falls in the held-out
bucket (1 in :data:`HELDOUT_BUCKETS`), so no held-out problem ever appears in training data,
whatever the seed.

Example:
    >>> source = TinyMathSource(split="heldout", size=3, levels=(1,), seed=0)
    >>> len(source), source[0].metadata["level"]
    (3, 1)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mrt_env.problems import Problem

Split = Literal["train", "heldout"]
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""All difficulty levels."""
DEFAULT_LEVELS: tuple[int, ...] = LEVELS
"""Levels the shipped tiny LM is trained and evaluated on."""
HELDOUT_BUCKETS = 10
"""One in this many expressions (by hash) is held out."""


@dataclass(frozen=True)
class Expression:
    """A parsed TinyMath expression: ``(a op1 b)`` or ``(a op1 b) op2 c``.

    Attributes:
        operands: The operands, left to right (2 or 3).
        operators: The operators (``"+"``, ``"-"``, ``"*"``), one fewer than the operands.
    """

    operands: tuple[int, ...]
    operators: tuple[str, ...]

    @property
    def text(self) -> str:
        """The expression as written in problems, e.g. ``"(12+34)-5"``."""
        a, b = self.operands[:2]
        first = f"{a}{self.operators[0]}{b}"
        if len(self.operands) == 2:
            return first
        return f"({first}){self.operators[1]}{self.operands[2]}"

    @property
    def value(self) -> int:
        """The exact integer value."""
        result = self.operands[0]
        for op, operand in zip(self.operators, self.operands[1:], strict=True):
            result = _apply(op, result, operand)
        return result


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unknown operator {op!r}")


def problem_text(expression: Expression) -> str:
    """The problem statement for ``expression``."""
    return expression.text


def split_of(expression: Expression) -> Split:
    """The split an expression belongs to (a pure function of its text)."""
    digest = hashlib.sha256(expression.text.encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") % HELDOUT_BUCKETS == 0 else "train"


def problem_id(expression: Expression, level: int) -> str:
    """Stable id: level plus a hash of the expression text."""
    digest = hashlib.sha256(expression.text.encode()).hexdigest()[:10]
    return f"tinymath-L{level}-{digest}"


def sample_expression(level: int, rng: np.random.Generator) -> Expression:
    """Draw one expression of ``level`` from ``rng``.

    Raises:
        ValueError: If ``level`` is not one of :data:`LEVELS`.
    """
    if level == 1:
        a, b = (int(x) for x in rng.integers(10, 100, size=2))
        return Expression((a, b), ("+",))
    if level == 2:
        a, b = (int(x) for x in rng.integers(100, 1000, size=2))
        return Expression((a, b), ("+",))
    if level == 3:
        a, b = sorted(int(x) for x in rng.choice(np.arange(100, 1000), size=2, replace=False))
        return Expression((b, a), ("-",))
    if level == 4:
        a, b = (int(x) for x in rng.integers(10, 100, size=2))
        c = int(rng.integers(10, min(a + b, 99) + 1))
        return Expression((a, b, c), ("+", "-"))
    if level == 5:
        return Expression((int(rng.integers(10, 100)), int(rng.integers(2, 10))), ("*",))
    raise ValueError(f"unknown TinyMath level {level!r}; levels are {LEVELS}")


def make_problem(expression: Expression, level: int) -> Problem:
    """Wrap an expression as a :class:`~mrt_env.problems.Problem`."""
    return Problem(
        id=problem_id(expression, level),
        problem=problem_text(expression),
        answer=str(expression.value),
        metadata={"level": level, "expression": expression.text, "split": split_of(expression)},
    )


def sample_problem(
    rng: np.random.Generator, split: Split = "train", levels: tuple[int, ...] = DEFAULT_LEVELS
) -> tuple[Expression, Problem]:
    """Draw one problem of ``split`` (level uniform over ``levels``), rejecting other splits."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if not levels:
        raise ValueError("levels must not be empty")
    while True:
        level = int(levels[int(rng.integers(len(levels)))])
        expression = sample_expression(level, rng)
        if split_of(expression) == split:
            return expression, make_problem(expression, level)


class TinyMathSource:
    """A finite, seeded collection of distinct TinyMath problems (a ``ProblemSource``).

    Args:
        split: ``"train"`` or ``"heldout"``; the two never share a problem.
        size: Number of distinct problems.
        levels: Difficulty levels to draw from (uniformly).
        seed: Seed of the ``numpy.random.Generator`` that draws the problems.

    Example:
        >>> a = TinyMathSource(split="train", size=5, seed=1)
        >>> b = TinyMathSource(split="train", size=5, seed=1)
        >>> [p.id for p in a] == [p.id for p in b]
        True
    """

    def __init__(
        self,
        split: Split = "heldout",
        size: int = 500,
        levels: tuple[int, ...] = DEFAULT_LEVELS,
        seed: int = 0,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        unknown = sorted(set(levels) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown TinyMath levels {unknown}; levels are {LEVELS}")
        rng = np.random.default_rng(seed)
        seen: set[str] = set()
        problems: list[Problem] = []
        expressions: list[Expression] = []
        for _ in range(size * 50):
            expression, problem = sample_problem(rng, split, tuple(levels))
            if problem.id in seen:
                continue
            seen.add(problem.id)
            problems.append(problem)
            expressions.append(expression)
            if len(problems) == size:
                break
        else:
            raise ValueError(f"could not draw {size} distinct problems for levels {levels}")
        self.split = split
        self.levels = tuple(levels)
        self.seed = seed
        self._problems = problems
        self.expressions: tuple[Expression, ...] = tuple(expressions)

    def __len__(self) -> int:
        return len(self._problems)

    def __getitem__(self, index: int) -> Problem:
        return self._problems[index]

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._problems)
