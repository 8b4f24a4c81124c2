"""Problems and the problem-source protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Problem:
    """One math problem.

    Attributes:
        id: Stable identifier, unique within its source.
        problem: Problem statement (LaTeX allowed).
        answer: Gold final answer (LaTeX allowed). Never shown to the policy.
        metadata: Extra fields from the source (level, subject, split, ...).
    """

    id: str
    problem: str
    answer: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ProblemSource(Protocol):
    """A finite, indexable collection of problems."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Problem: ...
