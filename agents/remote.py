"""Rollouts through a served ``MRTMath-v0`` (``mrt-train --env-url``).

:class:`RemoteRolloutCollector` is the native trainer's rollout collector with its vector env
replaced by :class:`~mrt_env.openenv.remote_vector.RemoteVectorEnv`: the policy samples here,
the env (μ, verification, rewards) runs on the server. μ is the server's model (``mrt-gym
serve --lm``; ``openai:URL`` of the trainer's own inference server keeps μ on the policy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector, RolloutRequest
from mrt_env.config import Components, EnvConfig

SERVER_TEMPLATES = ("tiny", "r1-distill", "plain")


def remote_options(env_config: EnvConfig, template: str) -> dict[str, Any]:
    """The reset options that give the server's sessions the trainer's env settings.

    Example:
        >>> from mrt_env.config import EnvConfig
        >>> remote_options(EnvConfig(k=4, token_budget=96, rewards=("outcome",)), "tiny")
        {'k': 4, 'token_budget': 96, 'max_episodes': 16, 'rewards': ['outcome'], 'template': 'tiny'}
    """
    rewards = [r for r in env_config.rewards if isinstance(r, str)]
    if len(rewards) != len(env_config.rewards):
        raise ValueError("a served env takes reward names only (the server builds the modules)")
    options: dict[str, Any] = {
        "k": env_config.k,
        "token_budget": env_config.token_budget,
        "max_episodes": env_config.max_episodes,
        "rewards": rewards,
    }
    if env_config.reward_weights is not None:
        options["reward_weights"] = list(env_config.reward_weights)
    if template not in SERVER_TEMPLATES:
        raise ValueError(
            f"template {template!r} is not served; a served env takes {SERVER_TEMPLATES}"
        )
    options["template"] = template
    return options


class RemoteRolloutCollector(RolloutCollector):
    """A :class:`RolloutCollector` whose trajectories run on an ``mrt-gym serve`` server.

    Args:
        env_config: The trainer's env settings (sent as reset options).
        components: The trainer's components (the policy's template and segmenter).
        policy: The policy.
        base_url: The server.
        token: The server's bearer token, if any.
    """

    def __init__(
        self,
        env_config: EnvConfig,
        components: Components,
        policy: LLMPolicy,
        base_url: str,
        token: str | None = None,
    ) -> None:
        super().__init__(env_config, components, policy)
        self.base_url = base_url
        self.token = token
        self.options = remote_options(env_config, components.template.name)

    def envs(self, num_envs: int) -> Any:
        """``num_envs`` server sessions (cached by size)."""
        from mrt_env.openenv.remote_vector import RemoteVectorEnv

        if num_envs not in self._envs:
            self._envs[num_envs] = RemoteVectorEnv(  # type: ignore[assignment]
                num_envs, self.base_url, token=self.token, options=self.options
            )
        return self._envs[num_envs]

    def _prewarm_prover(self, requests: Any, rng: np.random.Generator) -> None:
        """μ runs on the server (its own J cache); nothing to warm here."""

    def close(self) -> None:
        """Close every server session."""
        for envs in self._envs.values():
            envs.close()
        self._envs.clear()


__all__ = ["RemoteRolloutCollector", "RolloutRequest", "remote_options"]
