"""``mrt-train``: train a policy against MRTMath-v0 with GRPO, MRT-RL or MRT-STaR.

Example (CPU, the shipped tiny LM, 6 minutes of training)::

    mrt-train --algo mrt --model tiny --minutes 6 --steps 1000 --seed 0 --out runs/mrt

Rerunning the same command after the process was killed resumes from the last checkpoint in
``--out``. TensorBoard scalars are in ``OUT/tb``; the final model is exported to ``OUT/model``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from agents import options as opts
from agents.config import (
    GRPOConfig,
    MRTConfig,
    PolicyConfig,
    STaRConfig,
    TrainConfig,
    config_to_dict,
)

# plain (click) help: it wraps long option names instead of cutting them at 80 columns
app = typer.Typer(
    add_completion=False,
    help=__doc__,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 100},
)


def _algo_config(
    algo: str, normalize_std: bool, credit: str | None, alpha: float, keep_per_problem: int
) -> GRPOConfig | MRTConfig | STaRConfig:
    if credit is not None and algo != "mrt":
        raise typer.BadParameter(f"--credit applies to --algo mrt only, not {algo!r}")
    if algo == "grpo":
        return GRPOConfig(normalize_std=normalize_std)
    if algo == "mrt":
        return MRTConfig(
            credit=credit or MRTConfig.credit,  # type: ignore[arg-type]
            alpha=alpha,
            normalize_std=normalize_std,
        )
    if algo == "star":
        return STaRConfig(keep_per_problem=keep_per_problem)
    raise typer.BadParameter(f"--algo must be grpo, mrt or star, got {algo!r}")


def _train_config(options: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of the command-line options (same names)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"env_rewards", "policy"}
    rewards = tuple(r.strip() for r in options["env_rewards"].split(",") if r.strip())
    policy = PolicyConfig(  # the sampling cap follows --token-budget (LLMPolicy.for_env)
        temperature=options["temperature"],
        max_episode_tokens=options["max_episode_tokens"],
        max_answer_tokens=options["max_answer_tokens"],
    )
    return TrainConfig(
        **{name: options[name] for name in names if name in options},
        env_rewards=rewards,
        policy=policy,
    )


def _problem_source(spec: str, size: int, seed: int) -> Any:
    """``tinymath:train`` (``size`` problems, seeded; a filter after ``?`` applies to them) or
    any ``mrt_env.sources`` spec."""
    from mrt_env.problem_filter import split_spec

    base, problem_filter = split_spec(spec)
    if base == "tinymath:train":
        from mrt_env.tinymath.problems import TinyMathSource

        source = TinyMathSource(split="train", size=size, seed=seed)
        return source if problem_filter is None else problem_filter.apply(source, base)
    from mrt_env.sources import FieldNames, resolve_source

    return resolve_source(spec, FieldNames())


def _eval_problems(spec: str | None, train_spec: str, count: int) -> Any:
    """Evaluation problems: ``spec`` (first ``count``), or held-out TinyMath when training
    on TinyMath; other training sets need an explicit evaluation set."""
    from agents.evaluate import heldout_problems, load_problems

    if spec is not None:
        return load_problems(spec, count)
    if train_spec.startswith("tinymath"):
        return heldout_problems(count)
    raise typer.BadParameter(
        f"--eval-interval needs --eval-source (held-out problems) when training on "
        f"{train_spec!r}, e.g. --eval-source ../shared/data/math500.jsonl"
    )


def _evaluator(problems: Any, seed: int, segmenter: str | None, budget: int = 0) -> Any:
    """Pass@1 / tokens / answered share of the session's policy on ``problems`` (fixed seed
    each time), with the run's template, device, K, caps and segmenter; with ``budget`` > 0
    also the normalized regret at that token budget (μ reads J after every episode)."""
    from agents.evaluate import EvalSettings, sample_responses, summarize

    def evaluate(session: Any, step: int) -> dict[str, float]:
        config = session.config
        env_config = session.collector.env_config
        settings = EvalSettings(
            token_budget=config.token_budget,
            max_episodes=config.max_episodes,
            prover_samples=config.prover_samples,
            seed=seed,
            policy=config.policy,
            template=env_config.template,
            forced_answer_tokens=config.forced_answer_tokens,
            segmenter=segmenter,
        )
        session.reset_caches()
        grouped = sample_responses(
            session.lm,
            problems,
            settings,
            with_prover=budget > 0,
            prover_lm=session.collector.components.lm,
        )
        session.reset_caches()
        summary = summarize(grouped, budgets=[budget] if budget > 0 else [])
        metrics = {
            "eval/pass@1": summary.pass_at_1,
            "eval/tokens": summary.mean_tokens,
            "eval/answered": summary.answered,
            "eval/episodes": _or_nan(summary.mean_episodes),
            "eval/single_episode_share": _or_nan(summary.single_episode_share),
        }
        if budget > 0:
            metrics[f"eval/regret@{budget}"] = summary.normalized_regret.get(
                str(budget), float("nan")
            )
        return metrics

    return evaluate


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _train_trl(options: dict[str, Any], config: TrainConfig, algo_config: Any) -> None:
    """``--engine trl``: build the TRL trainer from the same options and run it."""
    from agents.trl.run import TRLRunOptions, build_trainer, run_folder, train

    if isinstance(algo_config, STaRConfig):
        raise typer.BadParameter("--engine trl runs --algo grpo or mrt (STaR is native only)")
    if options["eval_interval"]:
        raise typer.BadParameter("--engine trl has no held-out evaluation: --eval-interval 0")
    if options["reward"] != "outcome" or options["prover_policy"] != "current":
        raise typer.BadParameter(
            "--engine trl trains on the verified outcome with μ = the current policy "
            "(--reward outcome, --prover-policy current)"
        )
    run = TRLRunOptions(
        out=options["out"],
        model=options["model"],
        problems=_problem_source(options["problems"], options["train_size"], options["seed"]),
        template=options["template"],
        use_vllm=options["use_vllm"],
        vllm_mode=options["vllm_mode"],
    )
    settings = {
        "algo": options["algo"],
        "train": config_to_dict(config),
        "model": options["model"],
        "problems": options["problems"],
        "template": options["template"],
        "algo_config": vars(algo_config),
        "use_vllm": options["use_vllm"],
        "vllm_mode": options["vllm_mode"],
    }
    allow = options["allow_changed_settings"]
    with run_folder(options["out"], settings, allow_changes=allow) as changed:
        for change in changed:
            typer.echo(f"resuming with a changed setting: {change}", err=True)
        trainer = build_trainer(run, config, algo_config, report_to=options["reporters"])
        step, path = train(trainer, options["out"], options["minutes"])
    typer.echo(f"{options['algo']} (trl): {step} steps; model saved to {path}")


def _reporters(report_to: str | None, tensorboard: bool) -> tuple[str, ...]:
    """``--report-to`` (or the ``--tensorboard`` flag when it is not given) as reporter names."""
    from agents.logging import import_wandb, parse_report_to

    if report_to is None:
        return ("tensorboard",) if tensorboard else ()
    reporters = parse_report_to(report_to)
    if "tensorboard" in reporters and not tensorboard:
        raise ValueError("--no-tensorboard contradicts --report-to tensorboard; give one of them")
    if "wandb" in reporters:
        import_wandb()  # a clear error before any model is loaded
    return reporters


_clean_errors = opts.clean_errors


@app.command()
@_clean_errors
def main(
    algo: Annotated[str, typer.Option(help="grpo | mrt | star")] = "grpo",
    model: Annotated[
        str, typer.Option(help="tiny | tiny:VARIANT | random-tiny | path | hub id")
    ] = "tiny",
    device: Annotated[str, typer.Option(help="cpu | cuda (bf16 autocast)")] = "cpu",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 100,
    minutes: Annotated[float | None, typer.Option(help="wall-clock limit (training time)")] = None,
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
    out: Annotated[Path, typer.Option(help="run folder (checkpoints, tb, model)")] = Path(
        "runs/train"
    ),
    problems: Annotated[
        str,
        typer.Option(
            help="tinymath:train | JSONL path | hf:NAME:SPLIT, with an optional filter: "
            "'math500.jsonl?level=1,2&subject=Algebra&sample=200&seed=0'"
        ),
    ] = "tinymath:train",
    template: opts.Template = None,
    problems_per_step: Annotated[int, typer.Option(help="problems per step")] = 4,
    group_size: Annotated[int, typer.Option(help="trajectories per problem (G)")] = 4,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 1e-4,
    kl_coef: Annotated[float, typer.Option(help="KL to the reference (0 = none)")] = 0.0,
    clip_eps: Annotated[float, typer.Option(help="PPO ratio clip")] = 0.2,
    updates_per_batch: Annotated[int, typer.Option(help="gradient steps per rollout batch")] = 1,
    normalize_std: Annotated[bool, typer.Option(help="divide by the group std")] = True,
    credit: Annotated[
        str | None,
        typer.Option(help="mrt: released | progress | progress_to_go (default progress)"),
    ] = None,
    alpha: Annotated[float, typer.Option(help="mrt: weight of the progress term")] = 1.0,
    keep_per_problem: Annotated[int, typer.Option(help="star: traces kept per problem")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.8,
    token_budget: Annotated[int, typer.Option(help="token budget: a trajectory's limit")] = 384,
    max_episodes: Annotated[
        int | None, typer.Option(help="env episode cap (default: none below the budget)")
    ] = None,
    max_episode_tokens: opts.MaxEpisodeTokens = None,
    max_answer_tokens: opts.MaxAnswerTokens = None,
    forced_answer_tokens: opts.ForcedAnswerTokens = None,
    segmenter: opts.Segmenter = None,
    prover_samples: Annotated[
        int, typer.Option("--k", "--prover-samples", help="K forced answers per J")
    ] = 4,
    prefix_cache_size: opts.PrefixCacheSize = None,
    max_decode_rows: opts.MaxDecodeRows = None,
    micro_batch_size: Annotated[int, typer.Option(help="trajectories per backward")] = 16,
    loss_chunk_tokens: Annotated[
        int, typer.Option(help="positions per chunk of loss logits (0 = whole sequence)")
    ] = 1024,
    gradient_checkpointing: Annotated[
        bool | None,
        typer.Option(help="recompute activations in backward (default: on for cuda)"),
    ] = None,
    eval_interval: Annotated[int, typer.Option(help="held-out eval every N steps (0 = off)")] = 0,
    eval_problems: Annotated[int, typer.Option(help="held-out problems per eval")] = 32,
    eval_source: Annotated[
        str | None, typer.Option(help="eval problems: JSONL | hf:NAME:SPLIT (default: tinymath)")
    ] = None,
    eval_seed: Annotated[
        int | None,
        typer.Option(
            help="eval sampling seed; equal across runs = common random numbers "
            "(default: --seed + 1)"
        ),
    ] = None,
    eval_budget: Annotated[
        int, typer.Option(help="eval: also normalized regret at this token budget (0 = off)")
    ] = 0,
    zero_reward_steps: Annotated[
        int, typer.Option(help="warn after N steps of all-zero rewards (0 = never)")
    ] = 1,
    checkpoint_interval: Annotated[
        int, typer.Option(help="checkpoint every N steps (and after the last)")
    ] = TrainConfig.checkpoint_interval,
    keep_checkpoints: Annotated[int, typer.Option(help="newest checkpoints kept (>= 2)")] = 2,
    checkpoint_optimizer: Annotated[
        bool, typer.Option(help="save the optimizer state (exact resume)")
    ] = True,
    resume_fallback: Annotated[
        bool, typer.Option(help="resume from the newest verified checkpoint if the latest fails")
    ] = False,
    allow_changed_settings: Annotated[
        bool, typer.Option(help="resume even if settings differ from run.json")
    ] = False,
    reward: Annotated[str, typer.Option(help="outcome | return (summed env rewards)")] = "outcome",
    env_rewards: Annotated[str, typer.Option(help="env reward modules, comma-separated")] = (
        "outcome,progress"
    ),
    train_size: Annotated[int, typer.Option(help="tinymath: training problems")] = 2000,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = torch's default)")] = 1,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    tensorboard: Annotated[bool, typer.Option(help="write TensorBoard event files")] = True,
    report_to: Annotated[
        str | None,
        typer.Option(
            help="tensorboard | wandb | tensorboard,wandb | none (default: tensorboard, "
            "or none with --no-tensorboard); wandb needs the [wandb] extra"
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="native (reference trainer) | trl (TRL GRPOTrainer, accelerate)")
    ] = "native",
    prover_policy: Annotated[
        str, typer.Option(help="mrt: μ = current policy weights | frozen starting model")
    ] = "current",
    final_j: opts.FinalJ = "prover",
    truncation: opts.Truncation = "forced_answer",
    prover: Annotated[
        str,
        typer.Option(
            help="μ: sampled (K forced answers) | learned:PATH (mrt-prover train) | hybrid:PATH "
            "(learned, updated online from a sampled share)"
        ),
    ] = "sampled",
    prover_sample_share: Annotated[
        float, typer.Option(help="hybrid:PATH: share ρ of J requests also sampled")
    ] = 0.1,
    prover_features: Annotated[
        str,
        typer.Option(
            help="learned/hybrid μ's features: frozen (starting weights) | policy (the current "
            "policy's weights, shared)"
        ),
    ] = "frozen",
    use_vllm: Annotated[bool, typer.Option(help="trl: roll out (and run μ) with vLLM")] = False,
    vllm_mode: Annotated[str, typer.Option(help="trl: vLLM colocate | server")] = "colocate",
    env_url: Annotated[
        str | None,
        typer.Option(help="native: step a served env (mrt-gym serve), e.g. http://127.0.0.1:8000"),
    ] = None,
    env_token: Annotated[
        str | None, typer.Option(envvar="MRT_GYM_TOKEN", help="the served env's bearer token")
    ] = None,
) -> None:
    """Train (or resume) a run; see the module docs."""
    opts.check_k(prover_samples)
    options = dict(locals())
    options["loss_chunk_tokens"] = loss_chunk_tokens or None
    options["reporters"] = _reporters(report_to, tensorboard)
    import torch

    if threads > 0:
        # Small models on shared CPUs run faster single-threaded (no thread-pool contention).
        torch.set_num_threads(threads)
    from agents.session import build_session
    from agents.trainer import export_model, make_algorithm, train

    config = _train_config(options)
    algo_config = _algo_config(algo, normalize_std, credit, alpha, keep_per_problem)
    if isinstance(algo_config, MRTConfig):
        from agents.mrt import check_reward_source

        check_reward_source(algo_config, reward)  # fail before any model is loaded
    if prover_policy == "frozen" and algo != "grpo":
        typer.echo(
            "note: --prover-policy frozen: μ is a frozen copy of the starting model, so J and "
            "progress are measured by the base model (a deviation from the paper's μ)",
            err=True,
        )
    if engine == "trl":
        if env_url is not None:
            raise typer.BadParameter("--env-url drives the native engine (--engine native)")
        _train_trl(options, config, algo_config)
        return
    if engine != "native":
        raise typer.BadParameter(f"--engine must be native or trl, got {engine!r}")
    algorithm = make_algorithm(algo, algo_config)
    source = _problem_source(problems, train_size, seed)
    from mrt_env.segmenters import segmenter_from_spec

    lm_options = opts.backend_options(prefix_cache_size, max_decode_rows)
    evaluator = None
    if eval_interval:
        held_out = _eval_problems(eval_source, problems, eval_problems)
        eval_at = seed + 1 if eval_seed is None else eval_seed
        evaluator = _evaluator(held_out, eval_at, segmenter, eval_budget)
    session = build_session(
        config,
        model,
        source,
        template=template,
        with_prover=algorithm.needs_prover,
        segmenter=segmenter_from_spec(segmenter) if segmenter else None,
        lm_options=lm_options,
    )
    if env_url is not None:
        from agents.remote import RemoteRolloutCollector

        local = session.collector
        session.collector = RemoteRolloutCollector(
            local.env_config, local.components, local.policy, env_url, token=env_token
        )
        typer.echo(
            f"note: --env-url: trajectories run on {env_url}; μ (J, progress), verification "
            "and rewards are the server's (its --lm is μ)",
            err=True,
        )
    settings = {
        "model": model,
        "problems": problems,
        "template": session.collector.components.template.name,
        "segmenter": segmenter,
        "lm_options": lm_options,
        "algo_config": vars(getattr(algorithm, "config", {})),
    }
    if env_url is not None:
        settings["env_url"] = env_url
    try:
        result = train(
            algorithm,
            session,
            out,
            evaluator=evaluator,
            run_settings=settings,
            progress=progress,
            report_to=options["reporters"],
            fallback=resume_fallback,
            allow_changed_settings=allow_changed_settings,
        )
        path = export_model(session, out / "model")
    finally:  # --env-url: the server's sessions end with the run, not with this process
        close = getattr(session.collector, "close", None)
        if callable(close):
            close()
    typer.echo(
        f"{algo}: {result.step} steps, {result.elapsed_s:.1f}s training"
        f"{'' if result.resumed_from is None else f' (resumed from step {result.resumed_from})'}"
        f"; model saved to {path}"
    )


if __name__ == "__main__":
    app()
