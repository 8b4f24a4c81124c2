"""LLM-policy agents for MRTMath-v0: the policy, rollouts and GRPO / MRT-RL / MRT-STaR trainers.

Modules (import them directly; importing ``agents`` itself loads nothing heavy):

- :mod:`agents.config`: frozen, documented configs (``PolicyConfig``, ``TrainConfig``,
  ``GRPOConfig``, ``MRTConfig``, ``STaRConfig``).
- :mod:`agents.policy`: ``LLMPolicy`` — the next episode for a batch of observations, one
  continuous generation (one KV cache) per trajectory.
- :mod:`agents.rollout`: ``RolloutCollector`` — groups of trajectories over the batched
  vector env, with per-episode token spans, rewards, J values and outcome.
- :mod:`agents.grpo`, :mod:`agents.mrt`, :mod:`agents.star`: one file per algorithm
  (rollout, advantage and loss/update as separate functions).
- :mod:`agents.losses`, :mod:`agents.update`: token batches, clipped policy gradient, KL, SFT.
- :mod:`agents.checkpoint`: atomic safetensors/JSON checkpoints (no pickle).
- :mod:`agents.trainer`, :mod:`agents.session`, :mod:`agents.cli`: the loop and ``mrt-train``.
- :mod:`agents.evaluate`: held-out pass@1 with bootstrap CIs, tokens, normalized regret.

Example:
    >>> from agents.config import MRTConfig
    >>> MRTConfig(credit="progress_to_go", alpha=0.5).alpha
    0.5
"""
