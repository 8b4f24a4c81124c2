"""What a training step works with: policy, learner, rollout collector, training problems.

:func:`build_session` loads the policy model (the tiny LM, a local path or a hub id), the env's
meta-prover μ and token counter (the policy itself with ``prover_policy="current"``, a frozen
copy of the starting model with ``"frozen"``) and the env's components.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.config import TrainConfig
from agents.monitor import answer_metrics, end_metrics, truncation_used
from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector, RolloutRequest
from agents.types import Trajectory
from agents.update import Learner
from mrt_env.config import EnvConfig, build_components
from mrt_env.problems import Problem, ProblemSource
from mrt_env.templates import ChatTemplate, resolve_template


def load_language_model(
    model: str, device: str, seed: int = 0, *, trainable: bool = False, **options: Any
) -> Any:
    """An ``HFLanguageModel`` for ``model``.

    Args:
        model: ``"tiny"`` (the shipped TinyMath base model), ``"tiny:VARIANT"`` (``grpo``,
            ``mrt``), ``"random-tiny"`` (the tiny random test double; for tests),
            ``"openai:URL[#MODEL]"`` / ``"vllm:PATH_OR_ID"`` (see ``mrt_env.config.build_lm``) or
            a local path / hub id (downloaded by ``from_pretrained`` when the network is there).
        device: ``"cpu"`` or ``"cuda"``. On CUDA weights are bfloat16 (sampling, μ and the
            frozen reference); on CPU float32.
        seed: Seed of the random test double.
        trainable: The weights are trained: float32 master weights on every device; on CUDA
            the model samples under bfloat16 autocast (``compute_dtype``).
        **options: ``HFLanguageModel`` options (e.g. ``max_decode_rows``,
            ``prefix_cache_max_bytes``, ``prefix_cache_size``); not used by the random test
            double. For ``openai:``/``vllm:`` they go to that backend, which raises
            ``TypeError`` for an option it does not take.
    """
    if model.startswith(("openai:", "vllm:")):  # a completions server or in-process vLLM
        from mrt_env.config import build_lm

        return build_lm(model, None, options)  # an option the backend lacks raises TypeError
    dtype, compute = model_dtypes(device, trainable)
    if compute is not None:
        options.setdefault("compute_dtype", compute)
    if model == "random-tiny":
        from mrt_env.lm.testing import tiny_random_lm

        lm = tiny_random_lm(seed, **options)
        lm.model.to(device, dtype)
        return lm
    from mrt_env.tinymath import load_tiny_lm, tiny_variant

    variant = tiny_variant(model)
    if variant is not None:
        return load_tiny_lm(variant, device=device, dtype=dtype, **options)
    from mrt_env.config import check_model_path
    from mrt_env.lm.hf import HFLanguageModel

    check_model_path(model)
    return HFLanguageModel.from_pretrained(model, device=device, dtype=dtype, **options)


def model_dtypes(device: str, trainable: bool) -> tuple[torch.dtype, torch.dtype | None]:
    """``(weight dtype, sampling compute dtype or None)`` of a model on ``device``.

    Example:
        >>> model_dtypes("cuda", trainable=True)
        (torch.float32, torch.bfloat16)
        >>> model_dtypes("cuda", trainable=False), model_dtypes("cpu", trainable=True)
        ((torch.bfloat16, None), (torch.float32, None))
    """
    if not device.startswith("cuda"):
        return torch.float32, None
    return (torch.float32, torch.bfloat16) if trainable else (torch.bfloat16, None)


@dataclass
class TrainSession:
    """Everything one training step needs.

    Attributes:
        config: Training settings.
        lm: The policy's language model (its ``model`` is trained in place).
        policy: Samples episodes from ``lm``.
        learner: Optimizer, reference model and update rules.
        collector: Runs rollouts through the batched vector env.
        train_problems: Where training problems are drawn from.
        progress: Hears ``(finished, total)`` trajectories of each rollout batch as they end
            (the trainer shows it beside its step bar).
    """

    config: TrainConfig
    lm: Any
    policy: LLMPolicy
    learner: Learner
    collector: RolloutCollector
    train_problems: ProblemSource
    progress: Callable[[int, int], None] | None = None

    def sample_problems(self, rng: np.random.Generator) -> list[Problem]:
        """``problems_per_step`` distinct problems drawn with ``rng``."""
        size = len(self.train_problems)
        count = min(self.config.problems_per_step, size)
        return [self.train_problems[int(i)] for i in rng.choice(size, size=count, replace=False)]

    def collect(self, requests: Sequence[RolloutRequest], seed: int) -> list[Trajectory]:
        """Rollouts with the current weights (float32 master weights; on CUDA sampling and the
        loss forward run under bf16 autocast)."""
        finished = 0

        def advance(count: int) -> None:
            nonlocal finished
            finished += count
            if self.progress is not None:
                self.progress(finished, len(requests))

        with torch.no_grad():
            return self.collector.collect(requests, seed, progress=advance)

    def reset_caches(self) -> None:
        """Drop cached keys/values and J estimates (stale after a weight update; also keeps a
        resumed run identical to an uninterrupted one)."""
        self.policy.reset()
        for lm in {
            id(self.lm): self.lm,
            id(self.collector.components.lm): self.collector.components.lm,
        }.values():
            clear = getattr(lm, "clear_prefix_cache", None)
            if clear is not None:
                clear()
        prover = self.collector.components.prover
        clear_cache = getattr(prover, "clear_cache", None)
        if clear_cache is not None:
            clear_cache()

    def reward_of(self, trajectory: Trajectory) -> float:
        """The trajectory's reward for the outcome advantage (see ``TrainConfig.reward``)."""
        return trajectory.outcome if self.config.reward == "outcome" else trajectory.env_return

    @staticmethod
    def rollout_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """Namespaced means over the batch: outcome, progress, J, regret, tokens, episodes."""
        progress = [
            sum(e.progress for e in t.episodes if e.progress is not None and e.trainable)
            for t in trajectories
        ]
        # J read by the meta-prover before each episode (None without one)
        prover_j = [
            [e.j_before for e in t.episodes if e.j_before is not None] for t in trajectories
        ]
        mean_j = [float(np.mean(values)) for values in prover_j if values]
        final_j = [
            t.episodes[-1].j_after
            for t in trajectories
            if any(prover_j) and t.episodes and t.episodes[-1].j_after is not None
        ]
        return {
            "reward/outcome": float(np.mean([t.outcome for t in trajectories])),
            "reward/progress": float(np.mean(progress)),
            "reward/return": float(np.mean([t.env_return for t in trajectories])),
            "env/j": float(np.mean(mean_j)) if mean_j else float("nan"),
            "env/j_final": float(np.mean(final_j)) if final_j else float("nan"),
            "env/regret": float(np.mean([t.regret for t in trajectories])),
            "env/terminated": float(np.mean([t.terminated for t in trajectories])),
            # which J after the last episode and which truncation grading the batch used
            **end_metrics(
                [t.j_source for t in trajectories], [truncation_used(t) for t in trajectories]
            ),
            "charts/tokens": float(np.mean([t.total_tokens for t in trajectories])),
            "charts/episodes": float(np.mean([len(t.episodes) for t in trajectories])),
            "env/single_episode_share": float(
                np.mean([len(t.episodes) <= 1 for t in trajectories])
            ),
            **answer_metrics(trajectories),
        }


def build_session(
    config: TrainConfig,
    model: str,
    train_problems: ProblemSource,
    *,
    template: str | ChatTemplate | None = None,
    with_prover: bool = True,
    segmenter: Any = None,
    lm_options: dict[str, Any] | None = None,
) -> TrainSession:
    """Load models and wire the policy, learner and env for training.

    The policy's episodes end at the env's segmenter (the object ``replay`` and the offline
    analysis use); a truncated trajectory is graded on the policy's own forced answer (the
    env's ``truncation_lm``; ``config.truncation``), J on μ's: the policy itself
    (``prover_policy="current"``, the default) or a frozen copy of the starting model
    (``"frozen"``). ``config.final_j`` sets J after a finished trajectory.

    Args:
        config: Training settings.
        model: See :func:`load_language_model`.
        train_problems: Training problems.
        template: Chat/termination template of the env (``None``: ``"tiny"`` for the tiny
            LM, the tokenizer's chat template for other models; see
            ``mrt_env.templates.resolve_template``).
        with_prover: Give the env a meta-prover (J after every episode); outcome-only
            training runs without one.
        segmenter: The env's segmenter (``None``: the template's default).
        lm_options: Backend options of every loaded model (see :func:`load_language_model`).
    """
    options = dict(lm_options or {})
    lm = load_language_model(model, config.device, config.seed, trainable=True, **options)
    prover_lm = _prover_lm(lm, model, config, options)
    reference = None
    if config.kl_coef > 0:
        reference = load_language_model(model, config.device, config.seed, **options)
        reference = reference.model.eval()
        reference.requires_grad_(False)
    template = resolve_template(template, prover_lm)
    prover = _meta_prover(prover_lm, template, config, lm) if with_prover else "none"
    env_config = EnvConfig(
        problems=train_problems,
        lm=prover_lm,
        prover=prover,
        template=template,
        k=config.prover_samples,
        token_budget=config.token_budget,
        max_episodes=config.episode_cap,
        max_answer_tokens=config.forced_answer_tokens,
        rewards=config.env_rewards,
        segmenter=segmenter,
        truncation_lm=lm,
        final_j=config.final_j,
        truncation_outcome=config.truncation,
    )
    components = build_components(env_config)
    policy = LLMPolicy.for_env(lm, config.policy, components, config.token_budget)
    optimizer = torch.optim.AdamW(
        lm.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    learner = Learner(lm.model, optimizer, reference, config, pad_id=_pad_id(lm))
    collector = RolloutCollector(env_config, components, policy)
    return TrainSession(config, lm, policy, learner, collector, train_problems)


def _prover_lm(lm: Any, model: str, config: TrainConfig, options: dict[str, Any]) -> Any:
    """μ's language model: the policy itself (``prover_policy="current"``) or a frozen copy.

    With the policy itself, μ samples with the weights being trained; the J cache is dropped
    after every update (:meth:`TrainSession.reset_caches`), so J always uses the current
    weights. The frozen copy (bf16 on CUDA) is the cheaper approximation.
    """
    if config.prover_policy == "current" or config.prover.startswith("learned:"):
        return lm  # a learned μ brings its own frozen feature model
    frozen = load_language_model(model, config.device, config.seed, **options)  # bf16 on CUDA
    frozen.model.eval().requires_grad_(False)
    return frozen


def _meta_prover(lm: Any, template: ChatTemplate, config: TrainConfig, policy: Any) -> Any:
    """A ``SampledMetaProver`` (K forced answers per J) on ``lm``, the learned μ folder of
    ``config.prover`` (its feature model must share ``lm``'s tokenizer; with
    ``prover_features="policy"`` it is ``policy`` itself), or the hybrid of both
    (``hybrid:PATH``: the sampled μ on ``lm`` labels a share of the requests)."""
    kind, _, path = config.prover.partition(":")
    learned = None
    if kind in ("learned", "hybrid"):
        from mrt_env.prover.learned import LearnedMetaProver

        learned = LearnedMetaProver.from_pretrained(
            path,
            policy_lm=policy,
            device=config.device,
            template=template,
            follow_policy=config.prover_features == "policy",
        )
        if kind == "learned":
            return learned
    from mrt_env.prover.sampled import SampledMetaProver

    sampled = SampledMetaProver(
        lm,
        template=template,
        k=config.prover_samples,
        max_answer_tokens=config.forced_answer_tokens,
    )
    if learned is None:
        return sampled
    from mrt_env.prover.hybrid import HybridMetaProver

    return HybridMetaProver(learned, sampled, share=config.prover_sample_share, seed=config.seed)


def _pad_id(lm: Any) -> int:
    pad = getattr(lm.tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else 0
