"""``mrt-train --engine trl``: the TRL trainer built from ``mrt-train``'s options.

One CLI, two engines: the algorithm, credit, model, problem, template and seed flags mean the
same as with ``--engine native``. Both algorithms run :class:`~agents.trl.trainer.MRTGRPOTrainer`
with :class:`~agents.trl.rewards.OutcomeReward`: ``--algo grpo`` keeps TRL's GRPO advantages
(``credit=None``), ``--algo mrt`` replaces them with MRT's; both grade a truncated completion
as the env does (``--truncation``). Under ``accelerate launch`` (with a DeepSpeed or
FSDP config) every process runs this same code; TRL distributes the work. A rerun of the same
command resumes from the last checkpoint in ``OUT`` through TRL's ``resume_from_checkpoint``.

Mapping of the options onto ``trl.GRPOConfig``: ``--steps`` -> ``max_steps``, ``--lr`` ->
``learning_rate`` (constant), ``--group-size`` -> ``num_generations``, ``--problems-per-step``
x ``--group-size`` -> ``per_device_train_batch_size`` (per process), ``--temperature``,
``--token-budget`` + 32 answer tokens -> ``max_completion_length``, ``--kl-coef`` -> ``beta``,
``--clip-eps`` -> ``epsilon``, ``--updates-per-batch`` -> ``num_iterations``,
``--normalize-std`` -> ``scale_rewards`` (``group`` / ``none``), ``--checkpoint-interval`` ->
``save_steps``, ``--device cpu`` -> ``use_cpu``; ``--final-j`` and ``--truncation`` mean
what they mean for the native engine (:mod:`mrt_env.grading`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.config import MRTConfig

ANSWER_TOKENS = 32
"""Tokens allowed after the thinking budget for the final answer (as ``PolicyConfig``)."""


@dataclass(frozen=True)
class TRLRunOptions:
    """What ``mrt-train --engine trl`` needs beyond the algorithm config.

    Attributes:
        out: Run folder (TRL checkpoints ``checkpoint-N``, logs, final model in ``model``).
        model: ``tiny``, ``tiny:VARIANT``, ``random-tiny``, a local path or hub id.
        problems: A problem source or spec (``tinymath:train``: the seeded training split).
        template: The env's chat template (``None``: ``tiny`` for the tiny LM, else ``chat``).
        use_vllm: Roll out with vLLM (``vllm_mode`` ``colocate`` or ``server``); needs a GPU.
        vllm_mode: ``colocate`` or ``server``.
        extra: Further ``trl.GRPOConfig`` fields (e.g. ``{"deepspeed": ...}``).
    """

    out: Path
    model: str = "tiny"
    problems: Any = "tinymath:train"
    template: str | None = None
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    extra: tuple[tuple[str, Any], ...] = ()


def grpo_args(
    options: TRLRunOptions, train: Any, normalize_std: bool, report_to: Sequence[str]
) -> Any:
    """The ``trl.GRPOConfig`` of ``mrt-train``'s options (``train``: a ``TrainConfig``).

    ``report_to`` goes to TRL's own ``report_to`` (``"tensorboard"``: event files in
    ``OUT/runs``; ``"wandb"``: a W&B run named after ``OUT``, in project ``$WANDB_PROJECT``
    or ``mrt-gym``, files in ``$WANDB_DIR`` or ``OUT/wandb``, opened by :func:`train`).
    """
    if "wandb" in report_to:
        from agents.logging import import_wandb

        import_wandb()  # a clear error before any model is loaded
    from trl import GRPOConfig

    settings: dict[str, Any] = dict(
        output_dir=str(options.out),
        max_steps=train.steps,
        learning_rate=train.lr,
        lr_scheduler_type="constant",
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        num_generations=train.group_size,
        per_device_train_batch_size=train.trajectories_per_step,
        gradient_accumulation_steps=1,
        temperature=train.policy.temperature or 1.0,
        max_completion_length=train.token_budget + ANSWER_TOKENS,
        beta=train.kl_coef,
        epsilon=train.clip_eps,
        num_iterations=train.updates_per_batch,
        scale_rewards="group" if normalize_std else "none",
        seed=train.seed,
        data_seed=train.seed,
        use_cpu=train.device == "cpu",
        bf16=train.device == "cuda",
        save_strategy="steps",
        save_steps=train.checkpoint_interval,
        logging_steps=1,
        report_to=list(report_to),
        run_name=Path(options.out).name,
        use_vllm=options.use_vllm,
        vllm_mode=options.vllm_mode,
    )
    return GRPOConfig(**{**settings, **dict(options.extra)})


def answer_verifier(template: Any) -> Any:
    """The verification settings of the completions' final answers: the env's (boxed answers,
    then the template's default patterns, :func:`mrt_env.answer_patterns.default_answer_patterns`),
    ``None`` (the process-wide default) when there are none."""
    from mrt_env.answer_patterns import answer_verifier_config, default_answer_patterns

    return answer_verifier_config(default_answer_patterns(template))


def build_trainer(
    options: TRLRunOptions,
    train: Any,
    algo_config: Any,
    *,
    tensorboard: bool = True,
    report_to: Sequence[str] | None = None,
) -> Any:
    """A ready ``MRTGRPOTrainer``: TRL's GRPO advantages (``--algo grpo``) or MRT's (``mrt``).

    ``report_to``: see :func:`grpo_args` (``None``: TensorBoard when ``tensorboard``).
    """
    if report_to is None:
        report_to = ("tensorboard",) if tensorboard else ()
    from agents.session import load_language_model
    from agents.trl.data import problems_dataset
    from agents.trl.rewards import OutcomeReward

    source = (
        _source(options.problems, train.seed)
        if isinstance(options.problems, str)
        else (options.problems)
    )
    from mrt_env.templates import resolve_template

    lm = load_language_model(options.model, "cpu", train.seed)
    template = resolve_template(options.template, lm)
    dataset = problems_dataset(source, template=template)
    normalize = bool(getattr(algo_config, "normalize_std", True))
    args = grpo_args(options, train, normalize, report_to)
    common = {
        "model": lm.model,
        "reward_funcs": [OutcomeReward(answer_verifier(template))],
        "args": args,
        "train_dataset": dataset,
        "processing_class": lm.tokenizer,
    }
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    prover, share = None, 0.0
    kind, _, path = train.prover.partition(":")
    if kind in ("learned", "hybrid"):  # hybrid: the trainer samples a share ρ on the policy
        from mrt_env.prover.learned import LearnedMetaProver

        prover = LearnedMetaProver.from_pretrained(
            path,
            policy_lm=lm,
            template=template,
            follow_policy=train.prover_features == "policy",
        )
        share = train.prover_sample_share if kind == "hybrid" else 0.0
    # GRPO (credit None) keeps TRL's advantages; both grade truncated completions as the env
    settings = MRTSettings(
        credit=algo_config if isinstance(algo_config, MRTConfig) else None,
        template=template,
        prover_samples=train.prover_samples,
        max_answer_tokens=train.forced_answer_tokens,
        final_j=train.final_j,
        truncation=train.truncation,
        prover=prover,
        prover_sample_share=share,
    )
    return MRTGRPOTrainer(**common, mrt=settings)


def time_limit_callback(minutes: float) -> Any:
    """A ``TrainerCallback`` that ends training after ``minutes`` of training time.

    Time spent before a resume is not counted (TRL's state does not record it).
    """
    import time

    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.monotonic() - self.start >= minutes * 60:
                control.should_training_stop = True
                control.should_save = True

    return TimeLimit()


def resumed_progress_callback() -> Any:
    """transformers' ``ProgressCallback`` whose bar starts at the step training starts from,
    so a resumed run shows its true step (the stock bar starts at 0 and jumps after the first
    step of a resumed run)."""
    from transformers.trainer_callback import ProgressCallback

    class ResumedProgress(ProgressCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            super().on_train_begin(args, state, control, **kwargs)
            if self.training_bar is not None and state.global_step:
                self.training_bar.update(state.global_step)
            self.current_step = state.global_step

    return ResumedProgress()


def show_resumed_steps(trainer: Any) -> None:
    """Replace ``trainer``'s stock progress bar (if it has one: not with ``disable_tqdm``)
    by :func:`resumed_progress_callback`'s."""
    from transformers.trainer_callback import ProgressCallback

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(resumed_progress_callback())


def train(trainer: Any, out: Path, minutes: float | None = None) -> tuple[int, Path]:
    """Train (resuming from the last ``checkpoint-N`` in ``out``); export the final model.

    ``minutes`` stops training after that much training time (a checkpoint is written then).
    The progress bar of a resumed run starts at the step it resumes from.
    """
    if minutes is not None:
        trainer.add_callback(time_limit_callback(minutes))
    show_resumed_steps(trainer)
    resume = any(out.glob("checkpoint-*"))
    _start_wandb(trainer, out)
    try:
        trainer.train(resume_from_checkpoint=True if resume else None)
        final = save_model_atomically(trainer, out / "model")
    finally:
        _finish_wandb(trainer)
    return int(trainer.state.global_step), final


def _start_wandb(trainer: Any, out: Path) -> None:
    """Open the W&B run TRL's callback logs to: named after ``out``, in project
    ``$WANDB_PROJECT`` or ``mrt-gym``, files in ``$WANDB_DIR`` or ``out`` (TRL's callback
    would otherwise open one in wandb's process-wide default folder)."""
    if "wandb" in (getattr(trainer.args, "report_to", None) or []) and is_main_process():
        import wandb

        if wandb.run is None:
            directory = Path(os.environ.get("WANDB_DIR") or out)
            directory.mkdir(parents=True, exist_ok=True)
            project = os.environ.get("WANDB_PROJECT", "mrt-gym")
            wandb.init(project=project, name=out.name, dir=str(directory))


def _finish_wandb(trainer: Any) -> None:
    """Close the W&B run TRL's callback opened (it leaves it open after training)."""
    if "wandb" in (getattr(trainer.args, "report_to", None) or []):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def is_main_process() -> bool:
    """Whether this is the main process of a (possibly distributed) launch (``RANK`` 0)."""
    return os.environ.get("RANK", "0") == "0"


@contextmanager
def run_folder(
    out: Path, settings: Mapping[str, Any], *, allow_changes: bool = False
) -> Iterator[list[str]]:
    """Own ``out`` for a TRL run, with the native engine's guarantees (:mod:`agents.run_folder`).

    The main process locks the folder (a second trainer is refused), refuses a folder of the
    native engine, and stores the settings in ``run.json`` or checks them against it (a resume
    with other settings is refused unless ``allow_changes``). Other ranks of a distributed
    launch follow the main process. Yields the allowed differences.
    """
    from agents.run_folder import RunLock, check_engine, check_identity

    if not is_main_process():
        yield []
        return
    with RunLock(out):
        check_engine(out, "trl")
        has_checkpoint = any(p.is_dir() for p in out.glob("checkpoint-*"))
        yield check_identity(
            out,
            {"engine": "trl", **settings},
            has_checkpoint=has_checkpoint,
            allow_changes=allow_changes,
        )


def save_model_atomically(trainer: Any, final: Path) -> Path:
    """Save the trained model to ``final`` through a temporary folder renamed into place.

    A full or read-only disk fails with ``OSError`` and leaves ``final`` as it was (absent,
    or the previous model), never a partial model.
    """
    temporary = final.with_name(f".tmp-{final.name}")  # the same name on every rank
    main = is_main_process()
    barrier = getattr(getattr(trainer, "accelerator", None), "wait_for_everyone", lambda: None)
    if main:
        shutil.rmtree(temporary, ignore_errors=True)
    try:
        barrier()  # no rank writes into the folder before it is empty
        trainer.save_model(str(temporary))
        barrier()  # every rank's part is written before the folder moves
        if main:
            from agents.run_folder import replace_folder

            replace_folder(temporary, final)
    finally:
        if main:
            shutil.rmtree(temporary, ignore_errors=True)
    return final


def _source(spec: str, seed: int) -> Any:
    """``tinymath:train`` is the seeded training split of the native engine."""
    if spec == "tinymath:train":
        from mrt_env.tinymath.problems import TinyMathSource

        return TinyMathSource(split="train", size=2000, seed=seed)
    return spec
