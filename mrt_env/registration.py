"""Gymnasium registration of the mrt-gym environments (lazy string entry points).

Gymnasium >= 1.0 no longer discovers environments through package entry points, so an id is
known only after the module that registers it is imported: ``import mrt_env`` first, or name
the module in the id, ``gym.make("mrt_env:MRTMath-v0")``, which imports it for you.
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: dict[str, tuple[str, str | None]] = {
    "MRTMath-v0": ("mrt_env.env:MRTMathEnv", "mrt_env.vector:MRTMathVectorEnv"),
    "MRTStrategy-v0": ("mrt_env.strategy:MRTStrategyEnv", None),
    "MRTMathRemote-v0": ("mrt_env.openenv.client:MRTMathRemoteEnv", None),
}
"""Registered ids: ``(entry_point, vector_entry_point)``; modules are imported only by
``gym.make`` / ``gym.make_vec``."""


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` (idempotent: registered ids are skipped).

    Example:
        >>> register_envs()
        >>> gym.spec("MRTMath-v0").entry_point
        'mrt_env.env:MRTMathEnv'
    """
    for env_id, (entry_point, vector_entry_point) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, vector_entry_point=vector_entry_point)
