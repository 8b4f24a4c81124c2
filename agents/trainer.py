"""The training loop shared by every algorithm: steps, time limit, eval, logging, checkpoints.

Example:
    >>> from agents.grpo import GRPO
    >>> algorithm = make_algorithm("grpo")
    >>> isinstance(algorithm, GRPO)
    True
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from agents.config import GRPOConfig, MRTConfig, STaRConfig, TrainConfig, config_to_dict
from agents.logging import ScalarLogger
from agents.monitor import RunMonitor
from agents.session import TrainSession

Evaluator = Callable[[TrainSession, int], dict[str, float]]
"""Held-out evaluation: ``(session, step) -> {"eval/pass@1": ..., ...}``."""


class Algorithm(Protocol):
    """A trainer: one ``train_step`` does rollout, advantage and loss/update."""

    name: str
    needs_prover: bool

    def train_step(self, session: TrainSession, seed: int) -> dict[str, float]: ...


def make_algorithm(
    name: str, config: GRPOConfig | MRTConfig | STaRConfig | None = None
) -> Algorithm:
    """``"grpo"``, ``"mrt"`` or ``"star"`` with its config (defaults when ``None``)."""
    from agents.grpo import GRPO
    from agents.mrt import MRT
    from agents.star import STaR

    builders: dict[str, Callable[[Any], Algorithm]] = {"grpo": GRPO, "mrt": MRT, "star": STaR}
    if name not in builders:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(builders)}")
    return builders[name](config)


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        step: Steps completed (resumed steps included).
        elapsed_s: Training seconds (evaluation excluded; time before a resume included).
        resumed_from: Step of the checkpoint the run resumed from (``None`` = fresh start).
        last_metrics: Metrics of the last step.
    """

    step: int
    elapsed_s: float
    resumed_from: int | None
    last_metrics: dict[str, float]


def _resume(
    session: TrainSession, out_dir: Path, rng: np.random.Generator, generator: torch.Generator
) -> tuple[int, float, int | None]:
    folder = latest_checkpoint(out_dir)
    if folder is None:
        return 0, 0.0, None
    loaded = load_checkpoint(
        folder,
        model=session.learner.model,
        optimizer=session.learner.optimizer,
        generators={"trainer": generator},
        numpy_rng=rng,
    )
    step = int(loaded.trainer_state["step"])
    return step, float(loaded.trainer_state["elapsed_s"]), step


def _checkpoint(
    session: TrainSession,
    out: Path,
    generator: torch.Generator,
    rng: np.random.Generator,
    step: int,
    elapsed: float,
) -> None:
    save_checkpoint(
        out,
        model=session.learner.model,
        tokenizer=session.lm.tokenizer,
        optimizer=session.learner.optimizer,
        generators={"trainer": generator},
        numpy_rng=rng,
        trainer_state={"step": step, "elapsed_s": elapsed},
    )


def _out_of_time(config: TrainConfig, elapsed: float) -> bool:
    return config.minutes is not None and elapsed >= config.minutes * 60


def train(
    algorithm: Algorithm,
    session: TrainSession,
    out_dir: str | Path,
    *,
    evaluator: Evaluator | None = None,
    run_settings: dict[str, Any] | None = None,
    progress: bool = True,
    tensorboard: bool = True,
) -> TrainResult:
    """Train until ``config.steps`` or ``config.minutes``, resuming from ``out_dir`` if possible.

    Every ``checkpoint_interval`` steps a checkpoint is written atomically; rerunning the same
    command after a kill continues from it. Per-step randomness comes from a numpy generator
    seeded with ``config.seed`` and saved in every checkpoint, and caches are dropped at every
    step, so a resumed run repeats exactly what the uninterrupted run would have done.

    Returns:
        A :class:`TrainResult`.
    """
    config, out = session.config, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"algo": algorithm.name, "train": config_to_dict(config), **(run_settings or {})}
    (out / "run.json").write_text(json.dumps(settings, indent=2, default=str), encoding="utf-8")
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    step, elapsed, resumed = _resume(session, out, rng, generator)
    logger = ScalarLogger(out / "tb", tensorboard=tensorboard)
    monitor = RunMonitor(zero_steps=config.zero_reward_steps)
    metrics: dict[str, float] = {}
    bar = tqdm(total=config.steps, initial=step, desc=algorithm.name, disable=not progress)
    try:
        while step < config.steps and not _out_of_time(config, elapsed):
            started = time.perf_counter()
            session.reset_caches()
            lr = session.learner.set_learning_rate(step)
            forced = _forced_answer_counts(session)
            metrics = algorithm.train_step(session, int(rng.integers(2**31 - 1)))
            metrics.update(_forced_answered(session, forced))
            step += 1
            seconds = time.perf_counter() - started
            elapsed += seconds
            metrics.update(
                {
                    "charts/step_seconds": seconds,
                    "charts/elapsed_s": elapsed,
                    "charts/learning_rate": lr,
                }
            )
            if evaluator is not None and config.eval_interval and step % config.eval_interval == 0:
                metrics.update(evaluator(session, step))
            logger.log(metrics, step)
            monitor.check(metrics, step)
            last = step >= config.steps or _out_of_time(config, elapsed)
            if step % config.checkpoint_interval == 0 or last:
                _checkpoint(session, out, generator, rng, step, elapsed)
            bar.update(1)
            bar.set_postfix(outcome=f"{metrics.get('reward/outcome', float('nan')):.2f}")
    finally:
        bar.close()
        logger.close()
    return TrainResult(step, elapsed, resumed, metrics)


def _forced_answer_counts(session: TrainSession) -> tuple[int, int] | None:
    """The meta-prover's (forced answers, readable ones) counters (``None`` without μ)."""
    stats = getattr(session.collector.components.prover, "stats", None)
    if stats is None or not hasattr(stats, "answered"):
        return None
    return int(stats.generated_answers), int(stats.answered)


def _forced_answered(session: TrainSession, before: tuple[int, int] | None) -> dict[str, float]:
    """``env/forced_answered``: share of this step's forced answers with a readable answer."""
    after = _forced_answer_counts(session)
    if before is None or after is None or after[0] == before[0]:
        return {}
    return {"env/forced_answered": (after[1] - before[1]) / (after[0] - before[0])}


def export_model(session: TrainSession, folder: str | Path) -> Path:
    """Save the trained model and tokenizer (safetensors) to ``folder``."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    model: Any = session.learner.model
    model.save_pretrained(path, safe_serialization=True)
    session.lm.tokenizer.save_pretrained(path)
    return path
