"""``num_envs`` served sessions behind the vector-env interface of ``MRTMathVectorEnv``.

:class:`RemoteVectorEnv` opens one OpenEnv WebSocket session per sub-environment and sends
every sub-environment's reset or step at once (one event loop, concurrent requests), so the
server's model worker batches their μ calls as the in-process vector env does. Observations,
rewards, flags and infos follow the same conventions (Gymnasium's vector info arrays,
``NEXT_STEP`` autoreset, ``reset_mask`` and ``"problem"`` options), so the native trainer's
rollout collector runs on it unchanged (``mrt-train --env-url``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mrt_env.openenv.client import MRTMathEnv, RemoteEnvError
from mrt_env.openenv.models import MRTAction
from mrt_env.problems import Problem
from mrt_env.spaces import FinalEpisode, UnicodeText


class RemoteVectorEnv(VectorEnv):
    """``num_envs`` remote ``MRTMath-v0`` sessions stepped together.

    Args:
        num_envs: Sessions (sub-environments).
        base_url: The server (``mrt-gym serve``).
        token: The server's bearer token, if any.
        options: Reset options sent with every reset (``k``, ``token_budget``, ...).
        message_timeout_s: How long one reset/step may take.

    Example (with a server running)::

        envs = RemoteVectorEnv(4, "http://127.0.0.1:8000", options={"k": 4})
        observations, infos = envs.reset(seed=0)
        observations, rewards, terminated, truncated, infos = envs.step(["Wait.\\n\\n"] * 4)
        envs.close()
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        base_url: str,
        token: str | None = None,
        options: dict[str, Any] | None = None,
        message_timeout_s: float = 600.0,
        max_observation_chars: int = 200_000,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.num_envs = num_envs
        self.options = dict(options or {})
        self.single_observation_space = UnicodeText(max_observation_chars)
        self.single_action_space = UnicodeText(max_observation_chars)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._clients = [
            MRTMathEnv(base_url, token=token, message_timeout_s=message_timeout_s)
            for _ in range(num_envs)
        ]
        self._observations = [""] * num_envs
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False
        self._closed = False

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Reset all sessions (or those in ``options["reset_mask"]``); see ``MRTMathVectorEnv``."""
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, dtype=bool)))
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},)")
        sent = {**self.options, **_wire_options(options)}
        seeds = self._seeds(seed)
        rows = [i for i in range(self.num_envs) if mask[i]]
        results = self._gather(
            [functools.partial(self._clients[i].reset, **_with_seed(sent, seeds[i])) for i in rows]
        )
        infos: dict[str, Any] = {}
        for i, result in zip(rows, results, strict=True):
            self._observations[i] = result.observation.text
            infos = self._add_info(infos, _without_none(result.observation.info), i)
            self._autoreset[i] = False
        self._started = True
        return tuple(self._observations), infos

    def step(
        self, actions: Sequence[str]
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every session at once (sessions that ended last step are reset instead)."""
        if not self._started:
            raise RuntimeError("Cannot call step() before reset()")
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        requests: list[Callable[[], Any]] = []
        for i, action in enumerate(actions):
            if self._autoreset[i]:
                requests.append(functools.partial(self._clients[i].reset, **self.options))
            else:
                if not isinstance(action, str):
                    raise TypeError(f"actions[{i}] must be a str, got {type(action).__name__}")
                message = MRTAction(text=str(action), final=isinstance(action, FinalEpisode))
                requests.append(functools.partial(self._clients[i].step, message))
        results = self._gather(requests)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for i, result in enumerate(results):
            observation = result.observation
            self._observations[i] = observation.text
            if not self._autoreset[i]:
                rewards[i] = float(result.reward or 0.0)
                terminated[i], truncated[i] = observation.terminated, observation.truncated
            infos = self._add_info(infos, _without_none(observation.info), i)
        self._autoreset = terminated | truncated
        return tuple(self._observations), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._gather([client.close for client in self._clients])
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = [None if s is None else int(s) for s in seed]
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        return seeds

    def _gather(self, requests: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run the client calls concurrently on the clients' event loop (in async mode)."""

        async def gather() -> list[Any]:
            return list(await asyncio.gather(*(request() for request in requests)))

        try:
            return asyncio.run_coroutine_threadsafe(gather(), self._loop).result()
        except RuntimeError as error:
            if str(error).startswith("Server error:"):
                raise RemoteEnvError(str(error)) from None
            raise


def _wire_options(options: dict[str, Any]) -> dict[str, Any]:
    """The in-process reset options as reset options of the server."""
    sent = dict(options)
    problem = sent.get("problem")
    if isinstance(problem, Problem):
        sent["problem"] = {"id": problem.id, "problem": problem.problem, "answer": problem.answer}
    return sent


def _with_seed(options: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return options if seed is None else {**options, "seed": seed}


def _without_none(info: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in info.items()
        if value is not None
    }
