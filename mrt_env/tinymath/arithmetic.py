"""Column arithmetic written out digit by digit, with optional realistic slips.

Every function returns the worked text (e.g. ``"47+38: 7+8=15, 4+3+1=8, so 85"``) and the
result that the text arrives at. With a :class:`Slip`, one column goes wrong the way people
slip (a carry or borrow dropped, a digit off by one) and the rest of the work follows
consistently from the mistake, so the stated result is wrong but the text looks fluent.

Example:
    >>> add_columns(47, 38)
    ('47+38: 7+8=15, 4+3+1=8, so 85', 85)
    >>> add_columns(47, 38, Slip(column=1, kind="carry"))
    ('47+38: 7+8=15, 4+3=7, so 75', 75)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SlipKind = Literal["carry", "digit_up", "digit_down"]


@dataclass(frozen=True)
class Slip:
    """One mistake in a column computation.

    Attributes:
        column: Column index from the right (0 = ones).
        kind: ``"carry"`` drops the incoming carry/borrow of that column; ``"digit_up"`` /
            ``"digit_down"`` write that column's result one too high / too low.
    """

    column: int
    kind: SlipKind


def _digits(n: int, width: int) -> list[int]:
    """Digits of ``n`` from the right, zero-padded to ``width``."""
    return [(n // 10**i) % 10 for i in range(width)]


def _nudge(value: int, slip: Slip | None, column: int, high: int) -> int:
    if slip is None or slip.column != column or slip.kind == "carry":
        return value
    nudged = value + (1 if slip.kind == "digit_up" else -1)
    return nudged if 0 <= nudged <= high else value - (nudged - value)


def _drops(slip: Slip | None, column: int) -> bool:
    return slip is not None and slip.column == column and slip.kind == "carry"


def add_columns(a: int, b: int, slip: Slip | None = None) -> tuple[str, int]:
    """Add two non-negative integers column by column."""
    width = max(len(str(a)), len(str(b)))
    da, db = _digits(a, width), _digits(b, width)
    steps, written, carry = [], [], 0
    for i in range(width):
        carry_in = 0 if _drops(slip, i) else carry
        total = _nudge(da[i] + db[i] + carry_in, slip, i, 19)
        extra = "+1" if carry_in else ""
        steps.append(f"{da[i]}+{db[i]}{extra}={total}")
        written.append(str(total) if i == width - 1 else str(total % 10))
        carry = total // 10
    result = int("".join(reversed(written)))
    return f"{a}+{b}: {', '.join(steps)}, so {result}", result


def sub_columns(a: int, b: int, slip: Slip | None = None) -> tuple[str, int]:
    """Subtract ``b`` from ``a >= b`` column by column (borrows written as a leading 1).

    Raises:
        ValueError: If ``a < b`` or either is negative.
    """
    if a < b or b < 0:
        raise ValueError(f"sub_columns needs 0 <= b <= a, got {a}-{b}")
    width = len(str(a))
    da, db = _digits(a, width), _digits(b, width)
    steps, written, borrow = [], [], 0
    for i in range(width):
        borrow_in = 0 if _drops(slip, i) else borrow
        borrow = 1 if da[i] - borrow_in < db[i] else 0
        top = da[i] + 10 * borrow
        diff = _nudge(top - db[i] - borrow_in, slip, i, 9)
        extra = "-1" if borrow_in else ""
        steps.append(f"{top}-{db[i]}{extra}={diff}")
        written.append(str(diff))
    result = int("".join(reversed(written)))
    return f"{a}-{b}: {', '.join(steps)}, so {result}", result


def mul_columns(a: int, b: int, slip: Slip | None = None) -> tuple[str, int]:
    """Multiply ``a`` by a one-digit ``b`` column by column.

    Raises:
        ValueError: If ``b`` is not a single digit.
    """
    if not 0 <= b <= 9:
        raise ValueError(f"mul_columns needs a one-digit factor, got {b}")
    width = len(str(a))
    da = _digits(a, width)
    steps, written, carry = [], [], 0
    for i in range(width):
        carry_in = 0 if _drops(slip, i) else carry
        product = _nudge(da[i] * b + carry_in, slip, i, 99)
        extra = f"+{carry_in}" if carry_in else ""
        steps.append(f"{da[i]}*{b}{extra}={product}")
        written.append(str(product) if i == width - 1 else str(product % 10))
        carry = product // 10
    result = int("".join(reversed(written)))
    return f"{a}*{b}: {', '.join(steps)}, so {result}", result


def compute(op: str, a: int, b: int, slip: Slip | None = None) -> tuple[str, int]:
    """Dispatch on ``op`` (``"+"``, ``"-"``, ``"*"``)."""
    if op == "+":
        return add_columns(a, b, slip)
    if op == "-":
        return sub_columns(a, b, slip)
    if op == "*":
        return mul_columns(a, b, slip)
    raise ValueError(f"unknown operator {op!r}")


def sample_slip(op: str, a: int, b: int, rng: np.random.Generator) -> Slip:
    """A slip that actually changes the result of ``a op b`` (drawn from ``rng``)."""
    _, correct = compute(op, a, b)
    width = max(len(str(a)), len(str(b)))
    kinds: tuple[SlipKind, ...] = ("carry", "digit_up", "digit_down")
    for _ in range(20):
        slip = Slip(column=int(rng.integers(width)), kind=kinds[int(rng.integers(3))])
        _, result = compute(op, a, b, slip)
        if result != correct and result >= 0:
            return slip
    return Slip(column=0, kind="digit_up" if (a + b) % 2 else "digit_down")
