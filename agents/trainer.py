"""The training loop shared by every algorithm: steps, time limit, eval, logging, checkpoints.

Example:
    >>> from agents.grpo import GRPO
    >>> algorithm = make_algorithm("grpo")
    >>> isinstance(algorithm, GRPO)
    True
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm

from agents.checkpoint import (
    LoadedCheckpoint,
    checkpoint_bytes,
    has_checkpoints,
    load_checkpoint,
    remove_stale_temporaries,
    resume_from,
    save_checkpoint,
)
from agents.config import GRPOConfig, MRTConfig, STaRConfig, TrainConfig, config_to_dict
from agents.logging import ScalarLogger
from agents.monitor import RunMonitor
from agents.run_folder import RunLock, check_engine, check_identity, replace_folder
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


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient norm or weight; the run stopped."""


def first_non_finite(metrics: dict[str, float], model: torch.nn.Module) -> str | None:
    """What is non-finite after a step: a ``losses/*`` metric of a step that trained on
    tokens, or a model weight (``None`` when everything is finite)."""
    if metrics.get("charts/trained_tokens", 1.0) > 0:
        for key, value in metrics.items():
            if key.startswith("losses/") and not math.isfinite(value):
                return f"{key} = {value}"
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                return f"weight {name}"
    return None


def _resume(
    session: TrainSession,
    out: Path,
    rng: np.random.Generator,
    generator: torch.Generator,
    fallback: bool,
) -> tuple[int, float, int | None]:
    def load(folder: Path) -> LoadedCheckpoint:
        return load_checkpoint(
            folder,
            model=session.learner.model,
            optimizer=session.learner.optimizer,
            generators={"trainer": generator},
            numpy_rng=rng,
        )

    loaded = resume_from(out, load, fallback=fallback, warn=tqdm.write)
    if loaded is None:
        return 0, 0.0, None
    if not loaded.has_optimizer:
        tqdm.write(f"{loaded.path} has no optimizer state: the optimizer starts afresh")
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
    started = time.perf_counter()
    folder = save_checkpoint(
        out,
        model=session.learner.model,
        tokenizer=session.lm.tokenizer,
        optimizer=session.learner.optimizer,
        generators={"trainer": generator},
        numpy_rng=rng,
        trainer_state={"step": step, "elapsed_s": elapsed},
        keep=session.config.keep_checkpoints,
        save_optimizer=session.config.checkpoint_optimizer,
    )
    megabytes = checkpoint_bytes(folder) / 1e6
    seconds = time.perf_counter() - started
    tqdm.write(f"checkpoint {folder.name}: {megabytes:.1f} MB written in {seconds:.2f}s")


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
    fallback: bool = False,
    allow_changed_settings: bool = False,
    report_to: Sequence[str] | None = None,
) -> TrainResult:
    """Train until ``config.steps`` or ``config.minutes``, resuming from ``out_dir`` if possible.

    Every ``checkpoint_interval`` steps (and after the last) a verified checkpoint is written
    atomically; rerunning the same command after a kill continues from the latest one.
    Per-step randomness comes from a numpy generator seeded with ``config.seed`` and saved in
    every checkpoint, and caches are dropped at every step, so a resumed run repeats exactly
    what the uninterrupted run would have done. The folder is locked while training (a
    second trainer is refused), its settings are stored once in ``run.json`` and a resume
    with other settings is refused (see :mod:`agents.run_folder`).

    Args:
        fallback: When the latest checkpoint does not verify, resume from the newest one
            that does (instead of stopping with the error).
        allow_changed_settings: Resume even if the settings differ from ``run.json``.
        report_to: Where the scalars go besides ``tb/metrics.jsonl``: ``"tensorboard"``
            (event files in ``tb/``) and/or ``"wandb"`` (a W&B run named after the folder, in
            project ``$WANDB_PROJECT`` or ``mrt-gym``, files in ``out_dir/wandb``);
            ``None``: TensorBoard when ``tensorboard`` is true.

    Raises:
        NonFiniteError: a step produced a non-finite loss, gradient norm or weight (the
            step is logged; the last checkpoint written is the last good state).
        agents.checkpoint.CheckpointError: the checkpoint to resume from is damaged.
        agents.run_folder.RunFolderError: another trainer uses the folder, or it holds a
            run with other settings.

    Returns:
        A :class:`TrainResult`.
    """
    out = Path(out_dir)
    if report_to is None:
        report_to = ("tensorboard",) if tensorboard else ()
    with RunLock(out):
        return _train_locked(
            algorithm,
            session,
            out,
            evaluator,
            run_settings,
            progress,
            tuple(report_to),
            fallback,
            allow_changed_settings,
        )


def _train_locked(
    algorithm: Algorithm,
    session: TrainSession,
    out: Path,
    evaluator: Evaluator | None,
    run_settings: dict[str, Any] | None,
    progress: bool,
    report_to: tuple[str, ...],
    fallback: bool,
    allow_changed_settings: bool,
) -> TrainResult:
    config = session.config
    settings = {"algo": algorithm.name, "train": config_to_dict(config), **(run_settings or {})}
    check_engine(out, "native")
    for stale in remove_stale_temporaries(out):
        tqdm.write(f"removed {stale}, left by an interrupted checkpoint write")
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    changed = check_identity(
        out,
        settings,
        has_checkpoint=has_checkpoints(out),
        allow_changes=allow_changed_settings,
    )
    step, elapsed, resumed = _resume(session, out, rng, generator, fallback)
    for change in changed:
        tqdm.write(f"resuming with a changed setting: {change}")
    wandb = None
    if "wandb" in report_to:
        project = os.environ.get("WANDB_PROJECT", "mrt-gym")
        wandb = {"project": project, "name": out.name, "config": settings, "dir": str(out)}
    logger = ScalarLogger(
        out / "tb", tensorboard="tensorboard" in report_to, resume_step=step, wandb=wandb
    )
    monitor = RunMonitor(zero_steps=config.zero_reward_steps)
    metrics: dict[str, float] = {}
    bar = tqdm(total=config.steps, initial=step, desc=algorithm.name, disable=not progress)
    if step == 0 and evaluator is not None and config.eval_interval:
        _evaluate_start(session, evaluator, logger, out)
    # within a step: trajectories finished so far (a step of a real model takes minutes)
    session.progress = lambda done, total: bar.set_postfix_str(f"trajectories {done}/{total}")
    try:
        while step < config.steps and not _out_of_time(config, elapsed):
            metrics, seconds = _one_step(algorithm, session, rng, step, evaluator)
            step, elapsed = step + 1, elapsed + seconds
            metrics["charts/elapsed_s"] = elapsed
            metrics.update(monitor.flags(metrics))
            logger.log(metrics, step)
            monitor.check(metrics, step)
            if metrics.get("charts/skipped_update") == 1.0:
                tqdm.write(f"step {step}: every advantage is 0: optimizer step skipped")
            bad = first_non_finite(metrics, session.learner.model)
            if bad is not None:
                raise NonFiniteError(
                    f"step {step}: {bad} is not finite; training stopped. The last checkpoint "
                    f"in {out / 'checkpoints'} holds the last good state. Lower --lr or "
                    "--max-grad-norm, or check the data."
                )
            last = step >= config.steps or _out_of_time(config, elapsed)
            if step % config.checkpoint_interval == 0 or last:
                _checkpoint(session, out, generator, rng, step, elapsed)
            bar.update(1)
            bar.set_postfix(outcome=f"{metrics.get('reward/outcome', float('nan')):.2f}")
    finally:
        session.progress = None
        bar.close()
        logger.close()
    return TrainResult(step, elapsed, resumed, metrics)


def _evaluate_start(
    session: TrainSession, evaluator: Evaluator, logger: ScalarLogger, out: Path
) -> None:
    """The first point of the learning curve: the model before any update, at step 0 (once:
    a run restarted before its first checkpoint keeps the evaluation it logged)."""
    path = out / "tb" / "metrics.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step") == 0 and any(key.startswith("eval/") for key in row):
                return
    logger.log({**evaluator(session, 0), "charts/elapsed_s": 0.0}, 0)


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


def _one_step(
    algorithm: Algorithm,
    session: TrainSession,
    rng: np.random.Generator,
    step: int,
    evaluator: Evaluator | None,
) -> tuple[dict[str, float], float]:
    """One training step (and the evaluation after it when due): metrics and seconds."""
    started = time.perf_counter()
    session.reset_caches()
    lr = session.learner.set_learning_rate(step)
    forced = _forced_answer_counts(session)
    metrics = algorithm.train_step(session, int(rng.integers(2**31 - 1)))
    metrics.update(_forced_answered(session, forced))
    seconds = time.perf_counter() - started
    metrics.update({"charts/step_seconds": seconds, "charts/learning_rate": lr})
    interval = session.config.eval_interval
    if evaluator is not None and interval and (step + 1) % interval == 0:
        metrics.update(evaluator(session, step + 1))
    return metrics, seconds


def export_model(session: TrainSession, folder: str | Path) -> Path:
    """Save the trained model and tokenizer (safetensors) to ``folder``.

    They are written to a temporary folder beside it, which then replaces ``folder``: a full
    or read-only disk raises ``OSError`` and leaves ``folder`` as it was (absent, or the
    previous model), never a partial model.
    """
    path = Path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        model: Any = session.learner.model
        model.save_pretrained(temporary, safe_serialization=True)
        session.lm.tokenizer.save_pretrained(temporary)
        replace_folder(temporary, path)
    except SafetensorError as error:  # an I/O error while writing tensors (full disk, ...)
        raise OSError(f"cannot write the model to {path}: {error}") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return path
