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

from agents.config import GRPOConfig, MRTConfig, PolicyConfig, STaRConfig, TrainConfig

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)


def _algo_config(
    algo: str, normalize_std: bool, credit: str, alpha: float, keep_per_problem: int
) -> GRPOConfig | MRTConfig | STaRConfig:
    if algo == "grpo":
        return GRPOConfig(normalize_std=normalize_std)
    if algo == "mrt":
        return MRTConfig(credit=credit, alpha=alpha, normalize_std=normalize_std)  # type: ignore[arg-type]
    if algo == "star":
        return STaRConfig(keep_per_problem=keep_per_problem)
    raise typer.BadParameter(f"--algo must be grpo, mrt or star, got {algo!r}")


def _train_config(options: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of the command-line options (same names)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"env_rewards", "policy"}
    rewards = tuple(r.strip() for r in options["env_rewards"].split(",") if r.strip())
    policy = PolicyConfig(
        temperature=options["temperature"],
        max_trajectory_tokens=options["token_budget"] + PolicyConfig.max_answer_tokens,
    )
    return TrainConfig(
        **{name: options[name] for name in names if name in options},
        env_rewards=rewards,
        policy=policy,
    )


def _problem_source(spec: str, size: int, seed: int) -> Any:
    """``tinymath:train`` (``size`` problems, seeded) or any ``mrt_env.sources`` spec."""
    if spec == "tinymath:train":
        from mrt_env.tinymath.problems import TinyMathSource

        return TinyMathSource(split="train", size=size, seed=seed)
    from mrt_env.sources import FieldNames, resolve_source

    return resolve_source(spec, FieldNames())


def _evaluator(count: int, seed: int) -> Any:
    """Held-out TinyMath pass@1 / tokens with the session's policy (fixed seed each time)."""
    from agents.evaluate import EvalSettings, heldout_problems, sample_responses, summarize

    problems = heldout_problems(count)

    def evaluate(session: Any, step: int) -> dict[str, float]:
        config = session.config
        settings = EvalSettings(
            token_budget=config.token_budget,
            max_episodes=config.max_episodes,
            seed=seed,
            policy=config.policy,
            template=session.collector.env_config.template,
        )
        session.reset_caches()
        grouped = sample_responses(
            session.lm,
            problems,
            settings,
            with_prover=False,
            prover_lm=session.collector.components.lm,
        )
        session.reset_caches()
        summary = summarize(grouped)
        return {"eval/pass@1": summary.pass_at_1, "eval/tokens": summary.mean_tokens}

    return evaluate


@app.command()
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
        str, typer.Option(help="tinymath:train | JSONL path | hf:NAME:SPLIT")
    ] = "tinymath:train",
    template: Annotated[str, typer.Option(help="tiny | r1-distill | plain")] = "tiny",
    problems_per_step: Annotated[int, typer.Option(help="problems per step")] = 4,
    group_size: Annotated[int, typer.Option(help="trajectories per problem (G)")] = 4,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 1e-4,
    kl_coef: Annotated[float, typer.Option(help="KL to the reference (0 = none)")] = 0.0,
    clip_eps: Annotated[float, typer.Option(help="PPO ratio clip")] = 0.2,
    updates_per_batch: Annotated[int, typer.Option(help="gradient steps per rollout batch")] = 1,
    normalize_std: Annotated[bool, typer.Option(help="divide by the group std")] = True,
    credit: Annotated[
        str, typer.Option(help="mrt: released | progress | progress_to_go")
    ] = "progress",
    alpha: Annotated[float, typer.Option(help="mrt: weight of the progress term")] = 1.0,
    keep_per_problem: Annotated[int, typer.Option(help="star: traces kept per problem")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.8,
    token_budget: Annotated[int, typer.Option(help="env token budget")] = 384,
    max_episodes: Annotated[int, typer.Option(help="env episode cap")] = 8,
    prover_samples: Annotated[int, typer.Option(help="K forced answers per J")] = 4,
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
    checkpoint_interval: Annotated[int, typer.Option(help="checkpoint every N steps")] = 1,
    reward: Annotated[str, typer.Option(help="outcome | return (summed env rewards)")] = "outcome",
    env_rewards: Annotated[str, typer.Option(help="env reward modules, comma-separated")] = (
        "outcome,progress"
    ),
    train_size: Annotated[int, typer.Option(help="tinymath: training problems")] = 2000,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = torch's default)")] = 1,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    tensorboard: Annotated[bool, typer.Option(help="write TensorBoard event files")] = True,
) -> None:
    """Train (or resume) a run; see the module docs."""
    options = dict(locals())
    options["loss_chunk_tokens"] = loss_chunk_tokens or None
    import torch

    if threads > 0:
        # Small models on shared CPUs run faster single-threaded (no thread-pool contention).
        torch.set_num_threads(threads)
    from agents.session import build_session
    from agents.trainer import export_model, make_algorithm, train

    config = _train_config(options)
    algorithm = make_algorithm(
        algo, _algo_config(algo, normalize_std, credit, alpha, keep_per_problem)
    )
    source = _problem_source(problems, train_size, seed)
    session = build_session(
        config, model, source, template=template, with_prover=algorithm.needs_prover
    )
    evaluator = (
        _evaluator(eval_problems, seed + 1)
        if eval_interval and problems.startswith("tinymath")
        else None
    )
    settings = {
        "model": model,
        "problems": problems,
        "template": template,
        "algo_config": vars(getattr(algorithm, "config", {})),
    }
    result = train(
        algorithm,
        session,
        out,
        evaluator=evaluator,
        run_settings=settings,
        progress=progress,
        tensorboard=tensorboard,
    )
    path = export_model(session, out / "model")
    typer.echo(
        f"{algo}: {result.step} steps, {result.elapsed_s:.1f}s training"
        f"{'' if result.resumed_from is None else f' (resumed from step {result.resumed_from})'}"
        f"; model saved to {path}"
    )


if __name__ == "__main__":
    app()
