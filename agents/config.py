"""Frozen, documented hyperparameter configs for the policy and the trainers.

Configs are split by concern: :class:`PolicyConfig` (how episodes are sampled),
:class:`TrainConfig` (the loop shared by every algorithm) and one config per algorithm
(:class:`GRPOConfig`, :class:`MRTConfig`, :class:`STaRConfig`). Derived values are computed,
never mutated in.

Example:
    >>> cfg = TrainConfig(steps=3, problems_per_step=2, group_size=2)
    >>> cfg.trajectories_per_step
    4
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mrt_env.grading import FinalJ, Truncation, check_settings

CreditMode = Literal["released", "progress", "progress_to_go"]
"""MRT credit assignment: the released termination-baseline recipe or per-episode credit."""

RewardSource = Literal["outcome", "return"]
"""What trajectory rewards are: the 0/1 outcome or the env's summed step rewards."""

ProverPolicy = Literal["current", "frozen"]
ProverFeatures = Literal["frozen", "policy"]
"""Whose weights the meta-prover μ samples with: the policy being trained, or a frozen copy
of the starting model (cheaper on GPUs: a bf16 copy, no weights to follow)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class PolicyConfig:
    """How :class:`agents.policy.LLMPolicy` samples episodes.

    Attributes:
        temperature: Sampling temperature (``0`` = greedy).
        top_p: Nucleus sampling mass (``1.0`` disables it).
        max_episode_tokens: Safety cap on the tokens of one episode (``None``, the default:
            none; episodes end only at the segmenter's boundaries). A longer run of thinking
            is cut there and the rest opens the next episode; rollouts report the share of
            episodes it cut (``charts/episode_cap_share``).
        max_answer_tokens: Cap on the tokens after the end-of-thinking marker (the final
            answer is part of the last episode); ``None``: the template's natural-answer cap
            (:meth:`mrt_env.templates.ChatTemplate.answer_caps`).
        max_trajectory_tokens: Cap on the tokens sampled for one trajectory; ``None``: the
            env's token budget plus the answer cap (:meth:`LLMPolicy.for_env`).
    """

    temperature: float = 0.8
    top_p: float = 1.0
    max_episode_tokens: int | None = None
    max_answer_tokens: int | None = None
    max_trajectory_tokens: int | None = None

    def __post_init__(self) -> None:
        _require(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        _require(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        for name in ("max_episode_tokens", "max_answer_tokens", "max_trajectory_tokens"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"{name} must be >= 1 or None, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop shared by every algorithm.

    Attributes:
        steps: Optimizer steps to run (the run also stops when ``minutes`` is reached).
        minutes: Wall-clock limit in minutes (``None`` = no limit); time spent before a
            resume counts.
        problems_per_step: Distinct problems per step.
        group_size: Trajectories per problem (G); the group shares its problem.
        lr: AdamW learning rate (constant after ``warmup_steps``).
        warmup_steps: Linear learning-rate warm-up steps.
        weight_decay: AdamW weight decay.
        max_grad_norm: Gradient-norm clip.
        kl_coef: Coefficient of the KL penalty to the frozen reference (``0`` skips the
            reference model entirely).
        clip_eps: PPO ratio clip epsilon.
        updates_per_batch: Gradient steps on each rollout batch (``1`` = on-policy; ratios
            are then exactly 1 and the clip never binds).
        micro_batch_size: Trajectories per forward/backward pass (gradients accumulate over
            micro-batches; the loss is the token mean over the whole batch).
        token_budget: The env's token budget per trajectory (thinking tokens): the real limit
            of a trajectory.
        max_episodes: The env's episode cap per trajectory (``None``, the default: no cap
            below the token budget, i.e. ``token_budget`` episodes).
        forced_answer_tokens: Token cap of μ's forced answers and of the forced answer that
            grades a truncated trajectory (``None``: the template's).
        zero_reward_steps: Warn when every reward (or every advantage) of this many
            consecutive steps is 0 (``0`` = never).
        prover_samples: K, forced answers per J estimate.
        eval_interval: Held-out evaluation every this many steps (``0`` = never).
        eval_problems: Held-out problems per evaluation.
        checkpoint_interval: Write a checkpoint every this many steps (and after the last);
            a killed run loses at most this many steps of work.
        keep_checkpoints: Newest checkpoints kept (>= 2, so a damaged latest one has a
            verified predecessor to fall back to); older ones are deleted only after a new
            one is complete.
        checkpoint_optimizer: Save the optimizer state (AdamW: twice the weights) in each
            checkpoint; without it a resume restarts the optimizer's moments and is no longer
            identical to an uninterrupted run.
        seed: Seed of every random choice (problems, sampling, cuts).
        device: ``"cpu"`` or ``"cuda"`` (bf16 on cuda).
        reward: What a trajectory's outcome advantage is computed from: ``"outcome"`` (the
            0/1 verified final answer) or ``"return"`` (the sum of the env's step rewards, i.e.
            its configured reward modules).
        env_rewards: Reward modules of the env (registry names, e.g. ``("outcome",
            "length")``); they matter for ``reward="return"`` and for logging.
        prover_policy: ``"current"`` (the paper's μ: the policy being trained, forced to
            answer; J is re-estimated after every update) or ``"frozen"`` (a frozen copy of
            the starting model: cheaper, but progress is then measured by the base model, a
            documented deviation from the paper).
        final_j: J after the last episode of a finished trajectory: ``"prover"`` (μ's
            estimate from the natural end of thinking, PAPER.md) or ``"outcome"`` (the
            verified 0/1 answer); the same setting as the env's and the TRL engine's
            (:mod:`mrt_env.grading`).
        truncation: Outcome of a truncated trajectory: ``"forced_answer"`` (one answer forced
            from the policy, verified) or ``"expected"`` (μ's J of the final prefix); the env's
            ``truncation_outcome``, the same setting in the TRL engine.
        prover: μ's estimator: ``"sampled"`` (K forced answers, the paper's) or
            ``"learned:PATH"`` (a :class:`~mrt_env.prover.learned.LearnedMetaProver` folder:
            one forward pass of its frozen feature model, no sampling; ``prover_policy`` and
            ``prover_samples`` then do not apply) or ``"hybrid:PATH"`` (that learned μ answers
            every request; a sampled μ with ``prover_policy``'s weights and K answers a random
            ``prover_sample_share`` of them, and those labels update the head between optimizer
            steps; on the TRL engine the policy being trained answers the share, one
            process only).
        prover_sample_share: ρ of ``prover="hybrid:PATH"``.
        prover_features: Feature model of a learned or hybrid μ: ``"frozen"`` (the card's
            feature model, loaded as a separate frozen copy of the starting weights) or
            ``"policy"`` (the policy being trained: the head reads the current weights' hidden
            states, so the features follow the policy; the head was fitted to the starting
            weights, so with ``hybrid:PATH`` the online updates keep it in step).
        loss_chunk_tokens: Sequence positions whose full-vocabulary logits are computed at
            once in the loss (recomputed in the backward pass; ``None`` computes the whole
            sequence at once). The default keeps a 16k-token sequence of a 152k-vocabulary
            model at ~0.6 GB of float32 logits per micro-batch row instead of ~10 GB.
        gradient_checkpointing: Recompute decoder-layer activations in the backward pass
            instead of keeping them (``None``: on for ``device="cuda"``, off on CPU).
        policy: How episodes are sampled.
    """

    steps: int = 100
    minutes: float | None = None
    problems_per_step: int = 4
    group_size: int = 4
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    kl_coef: float = 0.0
    clip_eps: float = 0.2
    updates_per_batch: int = 1
    micro_batch_size: int = 16
    token_budget: int = 384
    max_episodes: int | None = None
    forced_answer_tokens: int | None = None
    zero_reward_steps: int = 1
    prover_samples: int = 4
    eval_interval: int = 0
    eval_problems: int = 32
    checkpoint_interval: int = 10
    keep_checkpoints: int = 2
    checkpoint_optimizer: bool = True
    seed: int = 0
    device: str = "cpu"
    reward: RewardSource = "outcome"
    env_rewards: tuple[str, ...] = ("outcome", "progress")
    prover_policy: ProverPolicy = "current"
    final_j: FinalJ = "prover"
    truncation: Truncation = "forced_answer"
    prover: str = "sampled"
    prover_sample_share: float = 0.1
    prover_features: ProverFeatures = "frozen"
    loss_chunk_tokens: int | None = 1024
    gradient_checkpointing: bool | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "problems_per_step",
            "group_size",
            "updates_per_batch",
            "micro_batch_size",
        ):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1")
        for name in ("token_budget", "prover_samples", "checkpoint_interval"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1")
        for name in ("max_episodes", "forced_answer_tokens"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"{name} must be >= 1 or None, got {value}")
        _require(self.zero_reward_steps >= 0, "zero_reward_steps must be >= 0")
        _require(self.keep_checkpoints >= 2, "keep_checkpoints must be >= 2")
        _require(self.minutes is None or self.minutes > 0, "minutes must be > 0 or None")
        _require(0 < self.lr < math.inf, f"lr must be a finite number > 0, got {self.lr}")
        _require(
            0 < self.max_grad_norm < math.inf,
            f"max_grad_norm must be finite and > 0: {self.max_grad_norm}",
        )
        _require(0 <= self.kl_coef < math.inf, f"kl_coef must be >= 0, got {self.kl_coef}")
        _require(0 < self.clip_eps < 1, f"clip_eps must be in (0, 1), got {self.clip_eps}")
        _require(self.eval_interval >= 0, "eval_interval must be >= 0")
        _require(self.reward in ("outcome", "return"), "reward must be outcome or return")
        _require(len(self.env_rewards) > 0, "env_rewards must name at least one module")
        _require(self.device in ("cpu", "cuda"), f"device must be cpu or cuda: {self.device!r}")
        _require(
            self.prover_policy in ("current", "frozen"),
            f"prover_policy must be current or frozen, got {self.prover_policy!r}",
        )
        check_settings(self.final_j, self.truncation)  # raises ValueError naming the values
        _require(
            self.prover == "sampled" or self.prover.startswith(("learned:", "hybrid:")),
            f"prover must be sampled, learned:PATH or hybrid:PATH, got {self.prover!r}",
        )
        _require(
            0 <= self.prover_sample_share <= 1,
            f"prover_sample_share must be in [0, 1], got {self.prover_sample_share}",
        )
        _require(
            self.prover_features in ("frozen", "policy"),
            f"prover_features must be frozen or policy, got {self.prover_features!r}",
        )
        _require(
            self.loss_chunk_tokens is None or self.loss_chunk_tokens >= 1,
            f"loss_chunk_tokens must be >= 1 or None, got {self.loss_chunk_tokens}",
        )

    @property
    def use_gradient_checkpointing(self) -> bool:
        """``gradient_checkpointing`` with its device default resolved."""
        if self.gradient_checkpointing is None:
            return self.device == "cuda"
        return self.gradient_checkpointing

    @property
    def trajectories_per_step(self) -> int:
        """Trajectories sampled per step: ``problems_per_step * group_size``."""
        return self.problems_per_step * self.group_size

    @property
    def episode_cap(self) -> int:
        """The env's episode cap: ``max_episodes``, or ``token_budget`` when unset (every
        episode has at least one token, so that cap never ends a trajectory before the budget).

        Example:
            >>> TrainConfig(token_budget=2048).episode_cap
            2048
        """
        return self.token_budget if self.max_episodes is None else self.max_episodes


@dataclass(frozen=True)
class GRPOConfig:
    """Outcome-only GRPO.

    Attributes:
        normalize_std: Divide group-centred rewards by the group's standard deviation.
    """

    normalize_std: bool = True


@dataclass(frozen=True)
class MRTConfig:
    """MRT-RL.

    Attributes:
        credit: ``"released"``: cut a trajectory after a random number of episodes, continue
            it G times, advantage = outcome - J(prefix) (the termination-reward baseline);
            ``"progress"``: each episode's tokens get the group outcome advantage plus
            ``alpha * (J(c_{j+1}) - J(c_j))``; ``"progress_to_go"``: the same with
            ``alpha * (J_final - J(c_j))``.
        alpha: Weight of the progress term (per-episode credit modes).
        normalize_std: Divide group-centred outcome rewards by the group's standard deviation
            (per-episode credit modes).
    """

    credit: CreditMode = "progress"
    alpha: float = 1.0
    normalize_std: bool = True

    def __post_init__(self) -> None:
        _require(
            self.credit in ("released", "progress", "progress_to_go"),
            f"credit must be released, progress or progress_to_go; got {self.credit!r}",
        )


@dataclass(frozen=True)
class STaRConfig:
    """MRT-STaR.

    Attributes:
        keep_per_problem: Correct traces kept per problem (those with the highest progress
            score: mean J after each episode, ties broken by fewer tokens).
        sft_epochs: Passes over the kept traces per step.
    """

    keep_per_problem: int = 1
    sft_epochs: int = 1

    def __post_init__(self) -> None:
        _require(self.keep_per_problem >= 1, "keep_per_problem must be >= 1")
        _require(self.sft_epochs >= 1, "sft_epochs must be >= 1")


AlgoConfig = GRPOConfig | MRTConfig | STaRConfig


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return asdict(config)
