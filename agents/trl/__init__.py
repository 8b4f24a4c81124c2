"""MRT and outcome GRPO on TRL's ``GRPOTrainer`` (the scale-out engine of ``mrt-train``).

``trl`` is an optional dependency (``pip install 'mrt-gym[trl]'``); importing ``agents`` or this
package does not import it. Modules:

- :mod:`agents.trl.rewards`: reward functions any TRL user can pass as ``reward_funcs``
  (the verified 0/1 outcome, the format reward).
- :mod:`agents.trl.data`: any mrt-gym problem source as the ``datasets.Dataset`` TRL expects,
  prompts rendered with the env's template.
- :mod:`agents.trl.prover`: the meta-prover μ over the weights being trained (the training
  model, or TRL's colocated vLLM engine), its J cache invalidated whenever the weights change.
- :mod:`agents.trl.trainer`: ``MRTGRPOTrainer``, a ``GRPOTrainer`` subclass that hands TRL's
  loss MRT's per-token advantages (the same functions as :mod:`agents.mrt`).
- :mod:`agents.trl.skip`: the optimizer step is skipped when every advantage is 0 and no
  other loss term (KL, entropy, auxiliary) has a gradient, as on the native engine.
- :mod:`agents.trl.run`: what ``mrt-train --engine trl`` builds and runs.

Example:
    >>> from agents.trl.rewards import OutcomeReward
    >>> OutcomeReward()(completions=["1+1=2.</think>\\\\boxed{2}"], answer=["2"])
    [1.0]
"""
