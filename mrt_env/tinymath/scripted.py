"""Scripted TinyMath episodes: a model-free policy for load tests and served-env checks.

:func:`scripted_episodes` reads the expression from a TinyMath prompt and returns the episodes
of one trajectory: a wrong result, the right one, then the boxed answer, so μ's J moves
(0, then fractions, then 1 with the tiny LM) and its sampling seeds matter.

Example:
    >>> scripted_episodes("Problem: (12+7)-3\\n<think>\\n")
    ['(12+7)-3 = 17\\n\\n', 'Wait, (12+7)-3 = 16\\n\\n', '</think> \\\\boxed{16}']
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

_OPERATORS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def expression_value(text: str) -> int:
    """The value of a TinyMath expression (integers, ``+ - *`` and parentheses only).

    Raises:
        ValueError: For anything else (no names, calls or other operators are evaluated).

    Example:
        >>> expression_value("(47+38)-5"), expression_value("12*3")
        (80, 36)
    """

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not a TinyMath expression: {text!r}")

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not a TinyMath expression: {text!r}") from error
    return value(tree.body)


def scripted_episodes(observation: str, restate: bool = False) -> list[str]:
    """The episodes of a scripted trajectory for the TinyMath prompt in ``observation``: a
    wrong result (off by one), the right one, with ``restate`` a sentence that restates it,
    then the answer after ``</think>``.

    Raises:
        ValueError: When ``observation`` holds no ``Problem: <expression>`` line.
    """
    if "Problem: " not in observation:
        raise ValueError("the observation holds no TinyMath 'Problem: ' line")
    expression = observation.split("Problem: ", 1)[1].split("\n", 1)[0]
    value = expression_value(expression)
    episodes = [f"{expression} = {value + 1}\n\n", f"Wait, {expression} = {value}\n\n"]
    if restate:
        episodes.append(f"So {value}.\n\n")
    return [*episodes, f"</think> \\boxed{{{value}}}"]
