"""The context a reward module sees after one episode (one env step)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepContext:
    """Everything known about one step of a trajectory, as passed to reward modules.

    Attributes:
        problem: The problem statement shown to the policy.
        gold: The gold final answer (never shown to the policy).
        prefix: The thinking text before this episode (concatenated episodes ``z_0..z_{j-1}``).
        episode: This episode's text ``z_j``.
        episode_index: ``j``, counted from 0.
        episode_tokens: Tokens in this episode (model tokenizer).
        total_tokens: Response tokens after this episode (prefix + episode).
        terminal: Whether this step ends the trajectory (terminated or truncated).
        response: The final response text that is graded at a terminal step: the policy's own
            response when it ended thinking, or the meta-prover's forced answer on truncation.
            ``None`` before the terminal step.
        j_before: The meta-prover's success estimate ``J(c_j)`` before this episode, if known.
        j_after: ``J(c_{j+1})`` after this episode, if known.
        metadata: Free-form extra information (problem id, verification already done, ...).

    Example:
        >>> ctx = StepContext(problem="1+1?", gold="2", prefix="", episode="1+1=2.",
        ...                   episode_index=0, episode_tokens=6, total_tokens=6)
        >>> ctx.progress is None
        True
    """

    problem: str
    gold: str
    prefix: str
    episode: str
    episode_index: int
    episode_tokens: int
    total_tokens: int
    terminal: bool = False
    response: str | None = None
    j_before: float | None = None
    j_after: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def progress(self) -> float | None:
        """``J(c_{j+1}) - J(c_j)`` when both estimates are known, else ``None``."""
        if self.j_before is None or self.j_after is None:
            return None
        return self.j_after - self.j_before
