"""MRTStrategy-v0, the numeric twin of MRTMath-v0 that stable-baselines3 can train on.

* :mod:`mrt_env.strategy.env`: the environment (:class:`MRTStrategyEnv`, actions, config);
* :mod:`mrt_env.strategy.dynamics`: how J and tokens move per kind of episode (parametric, or
  resampled from J curves recorded on the tiny LM);
* :mod:`mrt_env.strategy.record`: records those J curves from the real env
  (``python -m mrt_env.strategy.record``).

The environment's public names are importable from here
(``from mrt_env.strategy import MRTStrategyEnv, STOP``).
"""

from __future__ import annotations

from mrt_env.strategy.env import (
    ACTION_KINDS,
    ATTEMPT,
    OBSERVATION_FIELDS,
    RECHECK,
    STOP,
    MRTStrategyEnv,
    StrategyConfig,
)

__all__ = [
    "ACTION_KINDS",
    "ATTEMPT",
    "OBSERVATION_FIELDS",
    "RECHECK",
    "STOP",
    "MRTStrategyEnv",
    "StrategyConfig",
]
