"""Held-out evaluation: sampled pass@1 with a bootstrap CI, tokens per response, regret.

Command line (``python -m agents.evaluate --help``)::

    python -m agents.evaluate --variants base grpo mrt --n 200 --temperature 0.8

Each variant is sampled once per held-out TinyMath problem through the env; with
``--budgets``, the env's meta-prover (the evaluated model itself, as in the paper) reads J after
every episode and normalized regret is reported at each budget.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from agents.config import PolicyConfig
from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector, RolloutRequest
from agents.types import Trajectory
from mrt_env.config import EnvConfig, build_components
from mrt_env.problems import Problem
from mrt_env.templates import ChatTemplate


@dataclass(frozen=True)
class EvalSettings:
    """How a policy is evaluated.

    Attributes:
        samples_per_problem: Sampled responses per problem.
        token_budget: The env's token budget per response.
        max_episodes: The env's episode cap.
        prover_samples: K of the meta-prover (used only with regret budgets).
        template: Chat/termination template (``None``: ``"tiny"`` for the tiny LM, the
            tokenizer's chat template for other models).
        seed: Seed of sampling (the same for every variant: common random numbers).
        policy: Sampling settings (temperature ...).
    """

    samples_per_problem: int = 1
    token_budget: int = 384
    max_episodes: int = 8
    prover_samples: int = 4
    template: str | ChatTemplate | None = None
    seed: int = 1234
    policy: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass(frozen=True)
class EvalSummary:
    """Figures of one variant.

    Attributes:
        pass_at_1: Mean 0/1 outcome over problems (each problem: mean over its samples).
        ci_low: Lower end of the 95% bootstrap CI over problems.
        ci_high: Upper end.
        mean_tokens: Mean response tokens (env count).
        problems: Problems evaluated.
        samples_per_problem: Responses per problem.
        normalized_regret: Budget -> normalized regret (empty without budgets).
        per_problem: Pass rate of each problem (for paired comparisons between variants).
    """

    pass_at_1: float
    ci_low: float
    ci_high: float
    mean_tokens: float
    problems: int
    samples_per_problem: int
    normalized_regret: dict[str, float]
    per_problem: tuple[float, ...] = ()


def paired_difference(
    per_problem: Sequence[float], baseline: Sequence[float], seed: int = 0
) -> dict[str, float]:
    """Mean per-problem difference to a baseline on the same problems, with its 95% CI.

    Variants evaluated with the same seed and problems are paired, so the bootstrap over
    problems of the differences is tighter than comparing two separate intervals.

    Example:
        >>> paired_difference([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0])["mean"]
        0.25
    """
    difference = np.asarray(per_problem, float) - np.asarray(baseline, float)
    low, high = bootstrap_ci(difference, seed)
    return {"mean": float(difference.mean()), "ci_low": low, "ci_high": high}


def bootstrap_ci(per_problem: Sequence[float] | np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean over problems (scipy, 2,000 resamples).

    Example:
        >>> low, high = bootstrap_ci([0.0, 1.0] * 20)
        >>> 0.3 < low < 0.5 < high < 0.7
        True
    """
    from scipy.stats import bootstrap

    values = np.asarray(per_problem, dtype=float)
    if values.size < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())
    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=0.95,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def sample_responses(
    lm: Any,
    problems: Sequence[Problem],
    settings: EvalSettings,
    *,
    with_prover: bool,
    prover_lm: Any | None = None,
) -> list[list[Trajectory]]:
    """``settings.samples_per_problem`` trajectories per problem (``[problem][sample]``)."""
    answering = prover_lm if prover_lm is not None else lm
    prover: Any = "none"
    if with_prover:
        from mrt_env.prover.sampled import SampledMetaProver

        prover = SampledMetaProver(
            answering,
            template=settings.template,
            k=settings.prover_samples,
            max_answer_tokens=settings.policy.max_answer_tokens,
        )
    env_config = EnvConfig(
        problems=list(problems),
        lm=answering,
        prover=prover,
        template=settings.template,
        k=settings.prover_samples,
        token_budget=settings.token_budget,
        max_episodes=settings.max_episodes,
        max_answer_tokens=settings.policy.max_answer_tokens,
    )
    components = build_components(env_config)
    policy = LLMPolicy(
        lm, settings.policy, components.segmenter.boundaries, components.template.end_think
    )
    collector = RolloutCollector(env_config, components, policy)
    requests = [
        RolloutRequest(problem, group)
        for group, problem in enumerate(problems)
        for _ in range(settings.samples_per_problem)
    ]
    import torch

    with torch.no_grad():
        trajectories = collector.collect(requests, settings.seed)
    grouped: list[list[Trajectory]] = [[] for _ in problems]
    for trajectory in trajectories:
        grouped[trajectory.group].append(trajectory)
    return grouped


def summarize(
    grouped: Sequence[Sequence[Trajectory]], budgets: Sequence[float] = ()
) -> EvalSummary:
    """Pass@1 with its CI, mean tokens and normalized regret at ``budgets``."""
    from mrt_env.regret import normalized_regret

    per_problem = np.array([np.mean([t.outcome for t in group]) for group in grouped])
    low, high = bootstrap_ci(per_problem)
    regret = {}
    for budget in budgets:
        traces = [[(np.array(t.j_curve[0]), np.array(t.j_curve[1])) for t in g] for g in grouped]
        if all(len(tokens) for group in traces for tokens, _ in group):
            regret[str(int(budget))] = normalized_regret(traces, float(budget))
    return EvalSummary(
        pass_at_1=float(per_problem.mean()),
        ci_low=low,
        ci_high=high,
        mean_tokens=float(np.mean([t.total_tokens for g in grouped for t in g])),
        problems=len(grouped),
        samples_per_problem=len(grouped[0]) if grouped else 0,
        normalized_regret=regret,
        per_problem=tuple(float(v) for v in per_problem),
    )


def heldout_problems(count: int, seed: int = 0) -> list[Problem]:
    """``count`` held-out TinyMath problems (never seen in training)."""
    from mrt_env.tinymath import TinyMathSource

    return list(TinyMathSource(split="heldout", size=count, seed=seed))


app = typer.Typer(add_completion=False, help="Evaluate tiny-LM variants on held-out TinyMath.")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command()
def main(
    variants: Annotated[str, typer.Option(help="comma-separated tiny variants or paths")] = (
        "base,grpo,mrt"
    ),
    n: Annotated[int, typer.Option(help="held-out problems")] = 200,
    samples: Annotated[int, typer.Option(help="samples per problem")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.8,
    budgets: Annotated[str, typer.Option(help="comma-separated regret budgets (tokens)")] = "",
    token_budget: Annotated[int, typer.Option(help="env token budget")] = 384,
    prover_samples: Annotated[int, typer.Option(help="K forced answers per J")] = 4,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 1234,
    out: Annotated[Path | None, typer.Option(help="write results JSON here")] = None,
) -> None:
    """Sampled pass@1 (95% bootstrap CI), tokens per response and normalized regret."""
    from agents.session import load_language_model

    budget_values = [float(b) for b in _split(budgets)]
    policy = PolicyConfig(temperature=temperature, max_trajectory_tokens=token_budget + 32)
    settings = EvalSettings(
        samples_per_problem=samples,
        token_budget=token_budget,
        prover_samples=prover_samples,
        seed=seed,
        policy=policy,
    )
    problems = heldout_problems(n)
    results: dict[str, Any] = {"settings": asdict(settings), "n": n, "budgets": budget_values}
    for variant in _split(variants):
        spec = variant if "/" in variant or variant == "random-tiny" else f"tiny:{variant}"
        lm = load_language_model(spec, "cpu")
        grouped = sample_responses(lm, problems, settings, with_prover=bool(budget_values))
        summary = summarize(grouped, budget_values)
        results[variant] = asdict(summary)
        line = (
            f"{variant:>6}: pass@1 {summary.pass_at_1:.3f} "
            f"[{summary.ci_low:.3f}, {summary.ci_high:.3f}]  tokens {summary.mean_tokens:.1f}  "
            f"regret {summary.normalized_regret}"
        )
        first = results[_split(variants)[0]]
        if variant != _split(variants)[0]:
            versus = paired_difference(summary.per_problem, first["per_problem"])
            results[variant]["minus_first"] = versus
            line += (
                f"  vs {_split(variants)[0]}: {versus['mean']:+.3f} "
                f"[{versus['ci_low']:+.3f}, {versus['ci_high']:+.3f}]"
            )
        typer.echo(line)
    if out is not None:
        out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    app()
