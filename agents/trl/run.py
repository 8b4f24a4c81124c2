"""``mrt-train --engine trl``: the TRL trainer built from ``mrt-train``'s options.

One CLI, two engines: the algorithm, credit, model, problem, template and seed flags mean the
same as with ``--engine native``. ``--algo grpo`` runs TRL's own ``GRPOTrainer`` with
:class:`~agents.trl.rewards.OutcomeReward`; ``--algo mrt`` runs
:class:`~agents.trl.trainer.MRTGRPOTrainer`. Under ``accelerate launch`` (with a DeepSpeed or
FSDP config) every process runs this same code; TRL distributes the work. A rerun of the same
command resumes from the last checkpoint in ``OUT`` through TRL's ``resume_from_checkpoint``.

Mapping of the options onto ``trl.GRPOConfig``: ``--steps`` -> ``max_steps``, ``--lr`` ->
``learning_rate`` (constant), ``--group-size`` -> ``num_generations``, ``--problems-per-step``
x ``--group-size`` -> ``per_device_train_batch_size`` (per process), ``--temperature``,
``--token-budget`` + 32 answer tokens -> ``max_completion_length``, ``--kl-coef`` -> ``beta``,
``--clip-eps`` -> ``epsilon``, ``--updates-per-batch`` -> ``num_iterations``,
``--normalize-std`` -> ``scale_rewards`` (``group`` / ``none``), ``--checkpoint-interval`` ->
``save_steps``, ``--device cpu`` -> ``use_cpu``.
"""

from __future__ import annotations

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


def grpo_args(options: TRLRunOptions, train: Any, normalize_std: bool, tensorboard: bool) -> Any:
    """The ``trl.GRPOConfig`` of ``mrt-train``'s options (``train``: a ``TrainConfig``)."""
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
        report_to=["tensorboard"] if tensorboard else [],
        use_vllm=options.use_vllm,
        vllm_mode=options.vllm_mode,
    )
    return GRPOConfig(**{**settings, **dict(options.extra)})


def build_trainer(
    options: TRLRunOptions, train: Any, algo_config: Any, *, tensorboard: bool = True
) -> Any:
    """A ready ``GRPOTrainer`` (``--algo grpo``) or ``MRTGRPOTrainer`` (``--algo mrt``)."""
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
    args = grpo_args(options, train, normalize, tensorboard)
    common = {
        "model": lm.model,
        "reward_funcs": [OutcomeReward()],
        "args": args,
        "train_dataset": dataset,
        "processing_class": lm.tokenizer,
    }
    if isinstance(algo_config, MRTConfig):
        from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

        prover = None
        if train.prover.startswith("hybrid:"):
            raise ValueError("--prover hybrid:PATH runs on the native engine only")
        if train.prover.startswith("learned:"):
            from mrt_env.prover.learned import LearnedMetaProver

            prover = LearnedMetaProver.from_pretrained(
                train.prover[len("learned:") :], policy_lm=lm, template=template
            )
        settings = MRTSettings(
            credit=algo_config,
            template=template,
            prover_samples=train.prover_samples,
            max_answer_tokens=ANSWER_TOKENS,
            prover=prover,
        )
        return MRTGRPOTrainer(**common, mrt=settings)
    from trl import GRPOTrainer

    return GRPOTrainer(**common)


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


def train(trainer: Any, out: Path, minutes: float | None = None) -> tuple[int, Path]:
    """Train (resuming from the last ``checkpoint-N`` in ``out``); export the final model.

    ``minutes`` stops training after that much training time (a checkpoint is written then).
    """
    if minutes is not None:
        trainer.add_callback(time_limit_callback(minutes))
    resume = any(out.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = out / "model"
    trainer.save_model(str(final))
    return int(trainer.state.global_step), final


def _source(spec: str, seed: int) -> Any:
    """``tinymath:train`` is the seeded training split of the native engine."""
    if spec == "tinymath:train":
        from mrt_env.tinymath.problems import TinyMathSource

        return TinyMathSource(split="train", size=2000, seed=seed)
    return spec
