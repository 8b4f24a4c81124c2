"""``MRTMath-v0`` as an OpenEnv server: one trajectory per WebSocket session, one shared μ.

:func:`create_mrt_app` builds the app with OpenEnv's own ``create_app`` over
:class:`MRTServerEnvironment` (an ``openenv`` ``Environment``), then wraps it in
:class:`GuardMiddleware` (bearer token, idle timeout); :func:`serve` runs it with uvicorn on
127.0.0.1 (the WebSocket message size is capped there). Every session's resets and steps go
to one :class:`~mrt_env.openenv.worker.ModelWorker`, which batches the μ calls of concurrent
sessions.

Example (``mrt-gym serve --port 8000`` does this)::

    from mrt_env.openenv.server import ServeSettings, serve
    serve(ServeSettings(defaults={"k": 4, "token_budget": 256}), port=8000)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from gymnasium.utils import seeding
from openenv.core.env_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import ConcurrencyConfig, EnvironmentMetadata

from mrt_env.config import EnvConfig, build_components, build_lm
from mrt_env.core import StepCore
from mrt_env.lm.base import LanguageModel
from mrt_env.openenv.memory import (
    bound_j_cache,
    child_processes,
    lm_options,
    memory_stats,
    release_free_memory,
    rss_bytes,
)
from mrt_env.openenv.models import MRTAction, MRTObservation, MRTState
from mrt_env.openenv.settings import ServeSettings, parse_reset_options
from mrt_env.openenv.worker import Job, ModelWorker
from mrt_env.sources import ProblemSource, resolve_source
from mrt_env.spaces import FinalEpisode
from mrt_env.trajectory import TrajectoryState

__all__ = ["MRTServerEnvironment", "ServeSettings", "ServerRuntime", "create_mrt_app", "serve"]


class ServerRuntime:
    """What all sessions share: the language model, problem sources, step cores, the worker.

    Sessions with the same settings share one :class:`StepCore` (so one μ, one J cache and
    batched calls); the language model is loaded once for all of them. What they share is
    bounded (``settings.max_cores``, ``j_cache_size``, ``prefix_cache_mb``); ``sessions`` holds
    the live session objects weakly (a closed session must leave it).
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.worker = ModelWorker(settings.batch_window_s)
        self._lock = threading.Lock()
        self._lm: LanguageModel | None = None
        self._sources: dict[str, ProblemSource] = {}
        self._cores: OrderedDict[tuple[Any, ...], StepCore] = OrderedDict()
        self.sessions_opened = 0
        self.sessions_closed = 0
        self.sessions: weakref.WeakSet[MRTServerEnvironment] = weakref.WeakSet()

    def open_session(self) -> MRTServerEnvironment:
        """A new session's environment (OpenEnv's factory)."""
        env = MRTServerEnvironment(self)
        self.sessions_opened += 1
        self.sessions.add(env)
        return env

    def stats(self) -> dict[str, Any]:
        """Sessions open now, model-worker rounds, threads and resident memory (``/mrt/stats``)."""
        return {
            "sessions_live": self.sessions_opened - self.sessions_closed,
            "sessions_opened": self.sessions_opened,
            "worker_rounds": self.worker.rounds,
            "worker_jobs": self.worker.jobs_done,
            "largest_round": self.worker.largest_round,
            "threads": threading.active_count(),
            "child_processes": child_processes(),
            "rss_bytes": rss_bytes(),
        }

    def memory(self) -> dict[str, Any]:
        """RSS, live session objects (after a full collection), shared caches (``/mrt/memory``)."""
        with self._lock:
            cores = list(self._cores.values())
        return memory_stats(cores, self._lm, self.sessions)

    @property
    def lm(self) -> LanguageModel:
        with self._lock:
            if self._lm is None:
                device = self.settings.defaults.get("device")
                self._lm = build_lm(self.settings.lm, device, lm_options(self.settings))
            return self._lm

    def core(self, problem_set: str, overrides: Mapping[str, Any]) -> StepCore:
        """The step core for ``problem_set`` with the session's ``overrides`` (cached)."""
        key = (problem_set, *sorted((k, repr(v)) for k, v in overrides.items()))
        lm = self.lm
        with self._lock:
            core = self._cores.get(key)
            if core is not None:
                self._cores.move_to_end(key)
                return core
            source = self._sources.get(problem_set)
            if source is None:
                source = resolve_source(self.settings.problem_sets[problem_set])
                self._sources[problem_set] = source
            fields = {**self.settings.defaults, **overrides, "problems": source, "lm": lm}
            config = EnvConfig.from_kwargs(None, **fields)
            core = StepCore(config, build_components(config))
            bound_j_cache(core, self.settings.j_cache_size)
            self._cores[key] = core
            while len(self._cores) > self.settings.max_cores:
                self._cores.popitem(last=False)
            return core

    def close(self) -> None:
        self.worker.close()


class MRTServerEnvironment(Environment[MRTAction, MRTObservation, MRTState]):
    """One session's ``MRTMath-v0`` trajectory, stepped by the shared model worker.

    ``reset(seed=..., **options)`` takes the options of
    :data:`~mrt_env.openenv.settings.RESET_OPTIONS`; a session draws its problems and μ's
    seeds exactly as an in-process ``MRTMathEnv`` with the same settings and seed does.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, runtime: ServerRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self._core: StepCore | None = None
        self._rng: Any = None
        self._trajectory = TrajectoryState()
        self._state = MRTState()
        self._broken: str | None = None
        self._closed = False

    # The server calls these on its event loop (they hand the work to the model worker).
    async def reset_async(  # type: ignore[override]
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> MRTObservation:
        self._check_open()
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        overrides, env_options, problem_set = parse_reset_options(self.runtime.settings, options)
        core = await asyncio.to_thread(self.runtime.core, problem_set, overrides)
        core.check_options(env_options)
        if "problem_id" in options:
            env_options["index"] = _index_of(core, options["problem_id"])
        if seed is None and self._rng is None:
            seed = core.config.seed
        if seed is not None or self._rng is None:
            self._rng, _ = seeding.np_random(seed)
        self._broken = None
        job = Job(core, self._rng, options=env_options)
        state, observation, info = await self._await(job)
        self._core, self._trajectory = core, state
        self._state = MRTState(
            episode_id=episode_id,
            problem_id=state.problem.id if state.problem else None,
            j_curve=list(state.curve),
            settings={**overrides, "problem_set": problem_set},
        )
        return _observation(observation, 0.0, False, False, info)

    async def step_async(  # type: ignore[override]
        self, action: MRTAction, timeout_s: float | None = None, **kwargs: Any
    ) -> MRTObservation:
        self._check_open()
        limit = self.runtime.settings.max_action_chars
        if len(action.text) > limit:
            raise ValueError(f"action text has {len(action.text)} characters; the limit is {limit}")
        if self._broken is not None:
            raise RuntimeError(f"{self._broken}; call reset()")
        if self._core is None:
            raise RuntimeError("Cannot call step() before reset()")
        text: str = FinalEpisode(action.text) if action.final else action.text
        job = Job(self._core, self._rng, state=self._trajectory, action=text)
        observation, reward, terminated, truncated, info = await self._await(job)
        trajectory = self._trajectory
        self._state.step_count += 1
        self._state.episode_index = trajectory.episode_index
        self._state.total_tokens = trajectory.total_tokens
        self._state.done = trajectory.done
        self._state.regret = trajectory.regret
        self._state.j_curve = list(trajectory.curve)
        return _observation(observation, reward, terminated, truncated, info)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> Any:
        raise RuntimeError("MRTServerEnvironment is asynchronous: use reset_async")

    def step(self, action: MRTAction, timeout_s: float | None = None, **kwargs: Any) -> Any:
        raise RuntimeError("MRTServerEnvironment is asynchronous: use step_async")

    @property
    def state(self) -> MRTState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name="MRTMath-v0",
            description="Math reasoning as meta-RL: one episode of thinking per step, "
            "J from a meta-prover after every episode, progress rewards and regret.",
            version="0.1.0",
        )

    def close(self) -> None:
        """Free the trajectory (the shared models stay loaded for other sessions).

        When the last open session closes, the allocator's free memory goes back to the
        system, so the server's RSS shows what it still holds.
        """
        if not self._closed:
            self.runtime.sessions_closed += 1
        self._closed = True
        self._trajectory = TrajectoryState()
        self._core = None
        if self.runtime.sessions_opened == self.runtime.sessions_closed:
            release_free_memory()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the session is closed")

    async def _await(self, job: Job) -> Any:
        future = self.runtime.worker.submit(job)
        timeout = self.runtime.settings.step_timeout_s
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()  # not started yet: dropped; started: its result is discarded
            self._broken = f"the request took longer than step_timeout_s={timeout:g}"
            self._trajectory = TrajectoryState()
            raise TimeoutError(self._broken) from None


def _index_of(core: StepCore, problem_id: str) -> int:
    source = core.components.source
    for index in range(len(source)):
        if source[index].id == problem_id:
            return index
    raise ValueError(f"problem_id {problem_id!r} is not in the problem set")


def _observation(
    text: str, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
) -> MRTObservation:
    info = json.loads(json.dumps(info))  # tuples -> lists: exactly what the client receives
    return MRTObservation(
        text=text,
        reward=float(reward),
        done=bool(terminated or truncated),
        terminated=bool(terminated),
        truncated=bool(truncated),
        problem_id=info.get("problem_id"),
        episode_index=info.get("episode_index"),
        j_before=info.get("j_before"),
        j_after=info.get("j_after", info.get("j")),
        progress=info.get("progress"),
        regret=info.get("regret"),
        outcome=info.get("outcome"),
        verification=info.get("verification"),
        j_source=info.get("j_source"),
        info=info,
    )


class GuardMiddleware:
    """ASGI middleware: optional bearer token, and an idle timeout on WebSocket sessions.

    A request without the token (except ``GET /health``) gets HTTP 401 (a WebSocket is
    refused before it opens, HTTP 403); a WebSocket that sends nothing for ``idle_timeout_s``
    is closed (code 1001) and OpenEnv destroys its session.
    """

    def __init__(self, app: Any, token: str | None, idle_timeout_s: float) -> None:
        self.app = app
        self.token = token
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        public = scope["type"] == "http" and scope.get("path") == "/health"
        if self.token is not None and not public and not self._authorized(scope):
            await _refuse(scope, receive, send)
            return
        if scope["type"] == "websocket":
            receive = self._idle_receive(receive, send)
        await self.app(scope, receive, send)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        expected = f"Bearer {self.token}"
        return hmac.compare_digest(given.encode(), expected.encode())

    def _idle_receive(self, receive: Any, send: Any) -> Any:
        timeout = self.idle_timeout_s
        opened = False

        async def guarded() -> Any:
            nonlocal opened
            if not opened:  # the handshake is not idle time
                opened = True
                return await receive()
            try:
                return await asyncio.wait_for(receive(), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(Exception):  # the client may be gone already
                    await send({"type": "websocket.close", "code": 1001, "reason": "idle timeout"})
                return {"type": "websocket.disconnect", "code": 1001}

        return guarded


async def _refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
        return
    body = b'{"detail":"missing or wrong bearer token"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_mrt_app(settings: ServeSettings | None = None) -> Any:
    """The ASGI app: OpenEnv's ``create_app`` over :class:`MRTServerEnvironment`, guarded.

    The app's ``state.runtime`` is the shared :class:`ServerRuntime` (models load at the first
    session, or call ``runtime.lm`` to load them up front).
    """
    settings = settings or ServeSettings()
    runtime = ServerRuntime(settings)

    def factory() -> MRTServerEnvironment:
        return runtime.open_session()

    factory.__name__ = "MRTServerEnvironment"
    app = create_app(
        factory,
        MRTAction,
        MRTObservation,
        env_name="MRTMath-v0",
        # WebSocket idleness is the middleware's (time between a client's messages); OpenEnv's
        # reaper counts from the end of the last message handled, so a slow step would count
        # as idle: it only collects what no socket holds any more
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=settings.max_sessions,
            session_timeout=settings.idle_timeout_s + settings.step_timeout_s,
        ),
        state_cls=MRTState,
    )
    app.state.runtime = runtime
    app.add_api_route("/mrt/stats", runtime.stats, methods=["GET"])
    app.add_api_route("/mrt/memory", runtime.memory, methods=["GET"])
    app.router.on_shutdown.append(runtime.close)
    guarded = GuardMiddleware(app, settings.token, settings.idle_timeout_s)
    guarded.state = app.state  # type: ignore[attr-defined]
    return guarded


def serve(
    settings: ServeSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
) -> None:
    """Load the models, then serve until interrupted (uvicorn; WebSocket messages capped)."""
    import uvicorn

    settings = settings or ServeSettings()
    app = create_mrt_app(settings)
    app.state.runtime.core(settings.default_problem_set, {})  # load models before listening
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=5,
    )
