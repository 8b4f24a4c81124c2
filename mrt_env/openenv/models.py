"""The wire types of the served ``MRTMath-v0``: OpenEnv ``Action``/``Observation``/``State``.

One step of the in-process env, ``env.step(text)``, is one :class:`MRTAction` here; the
:class:`MRTObservation` that comes back carries what ``env.step`` returns (observation text,
reward, ``terminated``/``truncated``) and its ``info`` dict, in full and with the most used
entries as typed fields. :class:`MRTState` is the trajectory so far, never the gold answer.
"""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

MAX_ACTION_CHARS = 65_536
"""Default cap on one episode's text (characters); the server may set a lower one."""


class MRTAction(Action):
    """One episode of thinking.

    Attributes:
        text: The episode's text (what ``MRTMathEnv.step`` takes). Containing the template's
            end-of-thinking marker ends the trajectory.
        final: The last episode of a finished response (the model's output ended, EOS):
            ends the trajectory even without the marker (``mrt_env.spaces.FinalEpisode``).

    Example:
        >>> MRTAction(text="Wait, 2+2=4.\\n\\n").final
        False
    """

    text: str = Field(..., max_length=MAX_ACTION_CHARS, description="the episode's text")
    final: bool = Field(default=False, description="the last episode of a finished response")


class MRTObservation(Observation):
    """What ``MRTMathEnv.reset``/``step`` return, as one message.

    ``reward`` and ``done`` (``terminated or truncated``) are OpenEnv's own fields; ``info`` is
    the in-process env's info dict as JSON (tuples become lists).
    """

    text: str = Field(default="", description="prompt + thinking so far (the observation)")
    terminated: bool = False
    truncated: bool = False
    problem_id: str | None = None
    episode_index: int | None = None
    j_before: float | None = None
    j_after: float | None = None
    progress: float | None = None
    regret: float | None = None
    outcome: float | None = None
    verification: str | None = None
    j_source: str | None = None
    info: dict[str, Any] = Field(default_factory=dict, description="the env's info dict")


class MRTState(State):
    """The session's trajectory (``episode_id`` and ``step_count`` are OpenEnv's fields)."""

    problem_id: str | None = None
    episode_index: int = 0
    total_tokens: int = 0
    done: bool = False
    regret: float = 0.0
    j_curve: list[tuple[float, float]] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict, description="the reset options")
