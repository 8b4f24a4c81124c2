"""The records that flow through a step: trajectory state, prepared requests, model results.

See :mod:`mrt_env.core` for how a step is prepared, batched and finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrt_env.lm.base import Completion
from mrt_env.problems import Problem
from mrt_env.prover.base import JEstimate, ProverRequest


@dataclass
class TrajectoryState:
    """The mutable state of one trajectory (from reset to done).

    Attributes:
        problem: The problem (``None`` before the first reset).
        prompt: The rendered prompt.
        prompt_tokens: Tokens of the prompt.
        thinking: The response so far (the concatenated episodes).
        total_tokens: Tokens of ``thinking``.
        episode_index: Episodes taken so far.
        j: J of the current context (``None`` without a meta-prover).
        regret: Cumulative regret so far.
        curve: ``(tokens, J)`` points read so far.
        done: Whether the trajectory terminated or was truncated.
    """

    problem: Problem | None = None
    prompt: str = ""
    prompt_tokens: int = 0
    thinking: str = ""
    total_tokens: int = 0
    episode_index: int = 0
    j: float | None = None
    regret: float = 0.0
    curve: list[tuple[float, float]] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class PendingReset:
    """A prepared reset: the problem and the request for J of the empty thinking."""

    problem: Problem
    prompt: str
    prompt_tokens: int
    prover_request: ProverRequest | None
    forced_request: tuple[str, int] | None = None


@dataclass(frozen=True)
class PendingStep:
    """A prepared step: the (possibly cut) episode, token counts and model requests."""

    episode: str
    thinking: str
    episode_tokens: int
    total_tokens: int
    cut: bool
    terminated: bool
    truncated: bool
    prover_request: ProverRequest | None
    forced_request: tuple[str, int] | None


Pending = PendingReset | PendingStep
StepOutput = tuple[str, float, bool, bool, dict[str, Any]]


@dataclass(frozen=True)
class ModelResult:
    """What the batched model call returned for one pending reset/step."""

    estimate: JEstimate | None = None
    forced: Completion | None = None
