"""mrt-gym environments: math reasoning as meta-RL (episodes as steps, a meta-prover, regret).

Importing this package registers the Gymnasium environments (nothing heavy is imported):

* ``MRTMath-v0``: :class:`mrt_env.env.MRTMathEnv`, with the batched vector entry point
  :class:`mrt_env.vector.MRTMathVectorEnv` for ``gym.make_vec``.
* ``MRTStrategy-v0``: :class:`mrt_env.strategy.MRTStrategyEnv`, the numeric twin.

Example:
    >>> import gymnasium as gym
    >>> import mrt_env
    >>> "MRTMath-v0" in gym.registry
    True
"""

from __future__ import annotations

from mrt_env.registration import register_envs

register_envs()

__all__ = ["register_envs"]
