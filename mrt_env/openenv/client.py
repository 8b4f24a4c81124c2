"""Clients of the served ``MRTMath-v0``: an OpenEnv ``EnvClient`` and a Gymnasium env over it.

:class:`MRTMathEnv` is OpenEnv's WebSocket client (async by default, ``.sync()`` for blocking
code); :class:`MRTMathRemoteEnv` (``gym.make("MRTMathRemote-v0", base_url=...)``) reads like
the in-process ``MRTMath-v0``: ``reset`` returns ``(text, info)``, ``step`` returns
``(text, reward, terminated, truncated, info)`` with the same info dict.

Example (with ``mrt-gym serve --port 8000`` running)::

    import gymnasium as gym
    import mrt_env.openenv

    env = gym.make("MRTMathRemote-v0", base_url="http://127.0.0.1:8000", k=4)
    text, info = env.reset(seed=0)
    text, reward, terminated, truncated, info = env.step("Wait, 2+2=4.\\n\\n")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from mrt_env.openenv.models import MRTAction, MRTObservation, MRTState
from mrt_env.openenv.settings import RESET_OPTIONS
from mrt_env.spaces import FinalEpisode, UnicodeText

__all__ = ["MRTMathEnv", "MRTMathRemoteEnv", "RemoteEnvError"]


class RemoteEnvError(RuntimeError):
    """The server answered a request with an error (the message says which)."""


class MRTMathEnv(EnvClient[MRTAction, MRTObservation, MRTState]):
    """OpenEnv client of one served ``MRTMath-v0`` session (one WebSocket, one trajectory).

    Args:
        base_url: The server, ``http://HOST:PORT`` (or ``ws://``).
        token: The server's bearer token, if it has one.
        **kwargs: ``EnvClient`` options (``message_timeout_s``, ...).

    Example (sync; ``async with MRTMathEnv(...) as env`` and ``await env.reset()`` work too)::

        with MRTMathEnv(base_url="http://127.0.0.1:8000").sync() as env:
            result = env.reset(seed=0, k=4)
            result = env.step(MRTAction(text="Wait, 2+2=4.\\n\\n"))
            result.observation.j_after, result.reward, result.done
    """

    def __init__(self, base_url: str, token: str | None = None, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        super().__init__(base_url=base_url, headers=headers or None, **kwargs)

    def _step_payload(self, action: MRTAction) -> dict[str, Any]:
        return action.model_dump(exclude={"metadata"})

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MRTObservation]:
        fields = dict(payload.get("observation", {}))
        fields.update(reward=payload.get("reward"), done=bool(payload.get("done", False)))
        observation = MRTObservation(**fields)
        return StepResult(observation, observation.reward, observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> MRTState:
        return MRTState(**payload)


class MRTMathRemoteEnv(gym.Env[str, str]):
    """The served ``MRTMath-v0`` as a Gymnasium env (``gym.make("MRTMathRemote-v0", ...)``).

    Args:
        base_url: The server.
        token: The server's bearer token, if any.
        max_observation_chars: The observation space's limit (the server's setting).
        max_action_chars: The action space's limit (the server's ``max_action_chars``).
        message_timeout_s: How long a reset/step may take before the client gives up.
        **options: Reset options sent with every reset (``k``, ``token_budget``,
            ``problem_set``, ...; see ``mrt_env.openenv.settings.RESET_OPTIONS``); the
            ``options`` of ``reset`` override them.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        max_observation_chars: int = 200_000,
        max_action_chars: int = 16_384,
        message_timeout_s: float = 300.0,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(RESET_OPTIONS) - {"seed"})
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; reset options: {list(RESET_OPTIONS)}")
        self.options = options
        self.observation_space = UnicodeText(max_observation_chars)
        self.action_space = UnicodeText(max_action_chars)
        client = MRTMathEnv(base_url, token=token, message_timeout_s=message_timeout_s)
        self.client = client.sync()
        self.client.connect()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        sent = {**self.options, **(options or {})}
        if seed is not None:
            sent["seed"] = seed
        result = self._call(lambda: self.client.reset(**sent))
        return result.observation.text, result.observation.info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(f"action must be a str (the episode text), got {type(action).__name__}")
        message = MRTAction(text=str(action), final=isinstance(action, FinalEpisode))
        result = self._call(lambda: self.client.step(message))
        observation = result.observation
        reward = float(result.reward or 0.0)
        return (
            observation.text,
            reward,
            observation.terminated,
            observation.truncated,
            (observation.info),
        )

    def state(self) -> MRTState:
        """The server's view of the trajectory (problem id, episode index, J curve)."""
        state: MRTState = self._call(self.client.state)
        return state

    def close(self) -> None:
        self.client.close()

    def _call(self, request: Any) -> Any:
        try:
            return request()
        except RuntimeError as error:
            if str(error).startswith("Server error:"):
                raise RemoteEnvError(str(error)) from None
            raise
