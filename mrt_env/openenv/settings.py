"""Server settings and the allow-list of reset options a client may pass.

The server's operator chooses the models, the problem sets and the limits
(:class:`ServeSettings`); a client only picks among them at ``reset``
(:func:`parse_reset_options`). A client can never make the server load a path, a hub id or
a Python object: problem sets are names the operator registered, templates are preset names,
rewards are registered reward names (never ``"module:Class"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mrt_env.config import FINAL_J, TRUNCATION_OUTCOMES

_CONFIG_OPTIONS: tuple[str, ...] = (
    "k",
    "token_budget",
    "max_episodes",
    "template",
    "rewards",
    "reward_weights",
    "truncation_outcome",
    "final_j",
)
"""Reset options that override the session env's config."""

RESET_OPTIONS: tuple[str, ...] = (
    "seed",
    "episode_id",
    "problem_set",
    "problem_id",
    "index",
    "problem",
    *_CONFIG_OPTIONS,
)
"""Every option ``reset`` accepts; anything else is refused."""

ALLOWED_REWARDS: tuple[str, ...] = ("outcome", "progress", "format", "length")
"""Reward modules a client may name (built-in names only)."""

SERVER_TEMPLATES: tuple[str, ...] = ("tiny", "tiny-explain", "r1-distill", "plain")
"""Template presets a client may name."""


@dataclass(frozen=True)
class ServeSettings:
    """What the server serves and its limits.

    Attributes:
        lm: μ's language model (and the token counter): ``"tiny"``, a local HF folder or
            ``"openai:URL"`` (e.g. the trainer's own vLLM server, so μ follows the policy).
        problem_sets: Name -> problem source spec (``"tinymath"``, a JSONL path) the operator
            allows; the first is the default. Clients name them, never give paths.
        defaults: ``EnvConfig`` fields for every session (``k``, ``token_budget``, ...).
        max_sessions: Concurrent WebSocket sessions (more get OpenEnv's capacity error).
        max_action_chars: Longest episode text accepted (characters).
        max_message_bytes: Largest WebSocket message (bytes); bigger ones close the socket.
        idle_timeout_s: A session that sends nothing for this long is closed.
        step_timeout_s: A reset/step that takes longer answers an error; the session must
            reset again.
        batch_window_s: How long the model worker waits for other sessions' requests to
            batch with the first one.
        max_k, max_token_budget, max_episodes: Caps on the per-session options.
        token: Optional bearer token every request must carry.
        j_cache_size: J estimates μ keeps per step core (LRU; 0 disables the cache). Each entry
            holds its prompt and prefix text, so the cache holds at most this many prefixes of
            at most ``max_token_budget`` tokens per core.
        max_cores: Step cores (one per distinct combination of session settings, each with its
            own J cache) kept built at once; the least recently used is dropped.
        prefix_cache_mb: Cap on the keys/values a local model's prefix cache keeps (MiB;
            ``None``: the backend's own cap, 2 GiB on CPU, 20% of a GPU's memory). Not used for
            ``openai:`` models (their server keeps its own cache).

    Memory stays bounded: a session's trajectory is freed when it closes, and what sessions
    share is capped: at most ``max_cores * j_cache_size`` J estimates, the prefix cache's
    bytes, and the verifier's result cache (``rewards.VerifierConfig``: 65,536 entries, 64 MiB).
    """

    lm: str = "tiny"
    problem_sets: Mapping[str, str] = field(default_factory=lambda: {"tinymath": "tinymath"})
    defaults: Mapping[str, Any] = field(default_factory=dict)
    max_sessions: int = 64
    max_action_chars: int = 16_384
    max_message_bytes: int = 1 << 20
    idle_timeout_s: float = 300.0
    step_timeout_s: float = 120.0
    batch_window_s: float = 0.002
    max_k: int = 32
    max_token_budget: int = 32_768
    max_episodes: int = 256
    token: str | None = None
    j_cache_size: int = 4096
    max_cores: int = 8
    prefix_cache_mb: float | None = None

    def __post_init__(self) -> None:
        if not self.problem_sets:
            raise ValueError("problem_sets must name at least one problem set")
        for name in ("max_sessions", "max_action_chars", "max_message_bytes", "max_k", "max_cores"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        size = self.j_cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"j_cache_size must be an int >= 0, got {size!r}")
        mb = self.prefix_cache_mb
        if mb is not None and (not isinstance(mb, int | float) or not 0 <= mb < math.inf):
            raise ValueError(f"prefix_cache_mb must be None or a finite number >= 0, got {mb!r}")
        for name in ("idle_timeout_s", "step_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not 0 <= self.batch_window_s < 1:
            raise ValueError(f"batch_window_s must be in [0, 1) s, got {self.batch_window_s!r}")

    @property
    def default_problem_set(self) -> str:
        return next(iter(self.problem_sets))


def parse_reset_options(
    settings: ServeSettings, options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Validate a client's reset options against the allow-list.

    Returns:
        ``(config_overrides, env_options, problem_set)``: ``EnvConfig`` fields, the in-process
        env's reset options (``"index"`` or ``"problem"``) and the problem set's name.

    Raises:
        ValueError: On any option outside the allow-list or out of range.

    Example:
        >>> parse_reset_options(ServeSettings(), {"k": 4, "index": 3})
        ({'k': 4}, {'index': 3}, 'tinymath')
        >>> parse_reset_options(ServeSettings(), {"rewards": ["os:system"]})
        Traceback (most recent call last):
        ...
        ValueError: reward 'os:system' is not allowed; use one of ('outcome', ...)
    """
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed: {list(RESET_OPTIONS)}")
    problem_set = options.get("problem_set", settings.default_problem_set)
    if not isinstance(problem_set, str) or problem_set not in settings.problem_sets:
        raise ValueError(
            f"problem_set {problem_set!r} is not served; use one of {list(settings.problem_sets)}"
        )
    overrides = {name: options[name] for name in _CONFIG_OPTIONS if name in options}
    _check_overrides(settings, overrides)
    chosen = [name for name in ("problem_id", "index", "problem") if name in options]
    if len(chosen) > 1:
        raise ValueError(f"pass at most one of problem_id, index, problem (got {chosen})")
    env_options: dict[str, Any] = {}
    if "index" in options:
        env_options["index"] = _int_option("index", options["index"], -(2**31), 2**31)
    if "problem" in options:
        env_options["problem"] = _problem_record(options["problem"], settings.max_action_chars)
    if "problem_id" in options and not isinstance(options["problem_id"], str):
        raise ValueError(f"problem_id must be a str, got {options['problem_id']!r}")
    return overrides, env_options, problem_set


def _check_overrides(settings: ServeSettings, overrides: dict[str, Any]) -> None:
    caps = {
        "k": settings.max_k,
        "token_budget": settings.max_token_budget,
        "max_episodes": settings.max_episodes,
    }
    for name, cap in caps.items():
        if name in overrides:
            overrides[name] = _int_option(name, overrides[name], 1, cap + 1)
    if "template" in overrides and overrides["template"] not in SERVER_TEMPLATES:
        raise ValueError(
            f"template {overrides['template']!r} is not allowed; use one of {SERVER_TEMPLATES}"
        )
    if "rewards" in overrides:
        names = overrides["rewards"]
        if not isinstance(names, list | tuple) or not names or len(names) > len(ALLOWED_REWARDS):
            raise ValueError(f"rewards must be a non-empty list of names, got {names!r}")
        for name in names:
            if name not in ALLOWED_REWARDS:
                raise ValueError(f"reward {name!r} is not allowed; use one of {ALLOWED_REWARDS}")
        overrides["rewards"] = tuple(names)
    if "reward_weights" in overrides:
        weights = overrides["reward_weights"]
        if not isinstance(weights, list | tuple) or len(weights) > len(ALLOWED_REWARDS):
            raise ValueError(f"reward_weights must be a list of numbers, got {weights!r}")
        if not all(isinstance(w, int | float) and math.isfinite(w) for w in weights):
            raise ValueError(f"reward_weights must be finite numbers, got {weights!r}")
        overrides["reward_weights"] = tuple(float(w) for w in weights)
    if "truncation_outcome" in overrides and overrides["truncation_outcome"] not in (
        TRUNCATION_OUTCOMES
    ):
        raise ValueError(f"truncation_outcome must be one of {TRUNCATION_OUTCOMES}")
    if "final_j" in overrides and overrides["final_j"] not in FINAL_J:
        raise ValueError(f"final_j must be one of {FINAL_J}")


def _int_option(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise ValueError(f"{name} must be an int in [{low}, {high - 1}], got {value!r}")
    return value


def _problem_record(record: Any, max_chars: int) -> dict[str, str]:
    """A client's own problem: ``{"problem": str, "answer": str, "id": str?}`` (no paths)."""
    if not isinstance(record, Mapping) or not set(record) <= {"id", "problem", "answer"}:
        raise ValueError("problem must be an object with 'problem', 'answer' and optional 'id'")
    for key, value in record.items():
        if not isinstance(value, str) or len(value) > max_chars:
            raise ValueError(f"problem[{key!r}] must be a str of at most {max_chars} characters")
    return dict(record)
