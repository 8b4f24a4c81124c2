"""Held-out evaluation: sampled pass@1 with a bootstrap CI, tokens per response, regret.

Command line (``python -m agents.evaluate --help``)::

    python -m agents.evaluate --variants base,grpo,mrt --n 200 --temperature 0.8
    python -m agents.evaluate --variants path/to/model --problems ../shared/data/math500.jsonl \
        --template r1-distill --device cuda --n 100 --token-budget 8192 --k 8 --budgets 4096,8192

Each variant is sampled once per problem through the env (held-out TinyMath by default, or the
first ``--n`` problems of ``--problems``); with ``--budgets``, the env's meta-prover (the
evaluated model itself, as in the paper) reads J after every episode and normalized regret is
reported at each budget. Answer caps default to the template's
(:meth:`mrt_env.templates.ChatTemplate.answer_caps`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from agents import options as opts
from agents.config import PolicyConfig
from agents.monitor import answer_metrics
from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector, RolloutRequest
from agents.types import Trajectory
from mrt_env.config import EnvConfig, build_components
from mrt_env.problems import Problem
from mrt_env.stats import bootstrap_ci
from mrt_env.templates import ChatTemplate


@dataclass(frozen=True)
class EvalSettings:
    """How a policy is evaluated.

    Attributes:
        samples_per_problem: Sampled responses per problem.
        token_budget: The env's token budget per response.
        max_episodes: The env's episode cap (``None``: no cap below the token budget).
        prover_samples: K of the meta-prover (used only with regret budgets).
        template: Chat/termination template (``None``: the one a model folder declares, else
            ``"tiny"`` for a tiny LM and the tokenizer's chat template for other models).
        seed: Seed of sampling (the same for every variant: common random numbers).
        policy: Sampling settings (temperature, answer and safety caps ...).
        forced_answer_tokens: Cap of μ's and truncation forced answers (``None``: the
            template's).
        segmenter: Segmenter spec (``mrt_env.segmenters.segmenter_from_spec``; ``None``: the
            template's default), shared by the policy's episodes and the env.
        answer_patterns: Extra patterns reading unboxed final answers (``None``: the
            template's default; ``()``: boxed only; ``EnvConfig.answer_patterns``).
    """

    samples_per_problem: int = 1
    token_budget: int = 384
    max_episodes: int | None = None
    prover_samples: int = 4
    template: str | ChatTemplate | None = None
    seed: int = 1234
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    forced_answer_tokens: int | None = None
    segmenter: str | None = None
    answer_patterns: tuple[str, ...] | None = None


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
        answered: Share of graded responses with a readable final answer (a low share means
            answers were cut off or carry no ``\\boxed{}``; ``nan`` when none was graded).
        mean_episodes: Episodes per response.
        single_episode_share: Share of responses that are one episode (progress credit is
            empty for them).
        degenerate: Why the figures cannot show what MRT buys (``mrt_env.diagnostics``).
    """

    pass_at_1: float
    ci_low: float
    ci_high: float
    mean_tokens: float
    problems: int
    samples_per_problem: int
    normalized_regret: dict[str, float]
    per_problem: tuple[float, ...] = ()
    answered: float = float("nan")
    mean_episodes: float | None = None
    single_episode_share: float | None = None
    degenerate: tuple[str, ...] = ()


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
    stat = bootstrap_ci(difference, seed)
    return {"mean": float(difference.mean()), "ci_low": stat["ci_low"], "ci_high": stat["ci_high"]}


def sample_responses(
    lm: Any,
    problems: Sequence[Problem],
    settings: EvalSettings,
    *,
    with_prover: bool,
    prover_lm: Any | None = None,
    progress: bool = False,
) -> list[list[Trajectory]]:
    """``settings.samples_per_problem`` trajectories per problem (``[problem][sample]``);
    ``progress`` shows a bar over trajectories."""
    from mrt_env.segmenters import segmenter_from_spec

    answering = prover_lm if prover_lm is not None else lm
    env_config = EnvConfig(
        problems=list(problems),
        lm=answering,
        prover=None if with_prover else "none",
        template=settings.template,
        k=settings.prover_samples,
        token_budget=settings.token_budget,
        max_episodes=settings.max_episodes or settings.token_budget,
        max_answer_tokens=settings.forced_answer_tokens,
        segmenter=segmenter_from_spec(settings.segmenter) if settings.segmenter else None,
        truncation_lm=lm,
        answer_patterns=settings.answer_patterns,
    )
    components = build_components(env_config)
    policy = LLMPolicy.for_env(lm, settings.policy, components, settings.token_budget)
    collector = RolloutCollector(env_config, components, policy)
    requests = [
        RolloutRequest(problem, group)
        for group, problem in enumerate(problems)
        for _ in range(settings.samples_per_problem)
    ]
    import torch
    from tqdm.auto import tqdm

    bar = tqdm(total=len(requests), desc="trajectories", unit="traj", disable=not progress)
    with torch.no_grad(), bar:
        trajectories = collector.collect(requests, settings.seed, progress=bar.update)
    grouped: list[list[Trajectory]] = [[] for _ in problems]
    for trajectory in trajectories:
        grouped[trajectory.group].append(trajectory)
    return grouped


def summarize(
    grouped: Sequence[Sequence[Trajectory]], budgets: Sequence[float] = ()
) -> EvalSummary:
    """Pass@1 with its CI, mean tokens, episodes per response, normalized regret at
    ``budgets`` and the degenerate-run flags."""
    from mrt_env.diagnostics import degenerate_reasons, episode_summary
    from mrt_env.regret import normalized_regret

    per_problem = np.array([np.mean([t.outcome for t in group]) for group in grouped])
    stat = bootstrap_ci(per_problem)
    low, high = stat["ci_low"], stat["ci_high"]
    regret = {}
    for budget in budgets:
        traces = [[(np.array(t.j_curve[0]), np.array(t.j_curve[1])) for t in g] for g in grouped]
        if all(len(tokens) for group in traces for tokens, _ in group):
            regret[str(int(budget))] = normalized_regret(traces, float(budget))
    flat = [t for g in grouped for t in g]
    episodes = episode_summary([len(t.episodes) for t in flat])
    j_values = [e.j_before for t in flat for e in t.episodes if e.j_before is not None]
    j_values += [e.j_after for t in flat for e in t.episodes if e.j_after is not None]
    reasons = degenerate_reasons(
        pass_at_1=float(per_problem.mean()),
        j_values=j_values if budgets else None,
        episode_counts=[len(t.episodes) for t in flat],
    )
    return EvalSummary(
        pass_at_1=float(per_problem.mean()),
        ci_low=low,
        ci_high=high,
        mean_tokens=float(np.mean([t.total_tokens for g in grouped for t in g])),
        problems=len(grouped),
        samples_per_problem=len(grouped[0]) if grouped else 0,
        normalized_regret=regret,
        per_problem=tuple(float(v) for v in per_problem),
        answered=answer_metrics(flat)["env/answered"],
        mean_episodes=episodes["mean_episodes"],
        single_episode_share=episodes["single_episode_share"],
        degenerate=tuple(reasons),
    )


def heldout_problems(count: int, seed: int = 0) -> list[Problem]:
    """``count`` held-out TinyMath problems (never seen in training)."""
    from mrt_env.tinymath import TinyMathSource

    return list(TinyMathSource(split="heldout", size=count, seed=seed))


def load_problems(spec: str, count: int) -> list[Problem]:
    """``count`` evaluation problems: held-out TinyMath for ``"tinymath:heldout"``, else the
    first ``count`` problems of any ``mrt_env.sources`` spec (a JSONL path, ``hf:NAME:SPLIT``).

    Example:
        >>> [p.id for p in load_problems("tinymath:heldout", 2)] == [
        ...     p.id for p in heldout_problems(2)]
        True
    """
    if spec == "tinymath:heldout":
        return heldout_problems(count)
    from mrt_env.sources import FieldNames, resolve_source

    source = resolve_source(spec, FieldNames())
    if count > len(source):
        raise ValueError(f"--n {count} is more than the {len(source)} problems of {spec!r}")
    return [source[i] for i in range(count)]


def prompt_tokens(lm: Any, problems: Sequence[Problem], template: Any) -> dict[str, int]:
    """Tokens of each problem's rendered prompt (regret budgets include them)."""
    from mrt_env.templates import resolve_template

    chat = resolve_template(template, lm)
    return {p.id: lm.count_tokens(chat.render_prompt(p.problem)) for p in problems}


app = typer.Typer(
    add_completion=False,
    help="Evaluate policies on held-out problems.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: long option names are never cut
    context_settings={"max_content_width": 100},
)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _model_spec(variant: str) -> str:
    """A tiny variant name (``base``, ``grpo``, ``mrt``) as ``tiny:NAME``; paths and ids as is."""
    if "/" in variant or variant == "random-tiny" or variant.startswith("tiny"):
        return variant
    return f"tiny:{variant}"


@app.command()
@opts.clean_errors
def main(
    variants: Annotated[
        str, typer.Option(help="comma-separated tiny variants, paths or hub ids")
    ] = "base,grpo,mrt",
    problems: Annotated[
        str,
        typer.Option(
            help="tinymath:heldout | JSONL path | hf:NAME:SPLIT (first --n), with an optional "
            "filter: 'math500.jsonl?level=1,2&subject=Algebra&sample=20&seed=0'"
        ),
    ] = "tinymath:heldout",
    n: Annotated[int, typer.Option(help="problems evaluated")] = 200,
    template: opts.Template = None,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    samples: Annotated[int, typer.Option(help="samples per problem")] = 1,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.8,
    budgets: Annotated[
        str,
        typer.Option(
            help="comma-separated regret budgets C0 (prompt + thinking + forced-answer tokens)"
        ),
    ] = "",
    token_budget: Annotated[
        int, typer.Option(help="env token budget (thinking tokens; the prompt is not counted)")
    ] = 384,
    max_episodes: Annotated[int | None, typer.Option(help="episode cap (default: none)")] = None,
    k: Annotated[int, typer.Option("--k", "--prover-samples", help="K forced answers per J")] = 4,
    max_answer_tokens: opts.MaxAnswerTokens = None,
    forced_answer_tokens: opts.ForcedAnswerTokens = None,
    max_episode_tokens: opts.MaxEpisodeTokens = None,
    segmenter: opts.Segmenter = None,
    answer_pattern: opts.AnswerPattern = None,
    prefix_cache_size: opts.PrefixCacheSize = None,
    max_decode_rows: opts.MaxDecodeRows = None,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 1234,
    out: Annotated[Path | None, typer.Option(help="write results JSON here")] = None,
) -> None:
    """Sampled pass@1 (95% bootstrap CI), tokens per response and normalized regret."""
    from agents.session import load_language_model
    from mrt_env.regret import check_budgets_above_prompts
    from mrt_env.stats import strict_json

    opts.check_k(k)
    budget_values = [float(b) for b in _split(budgets)]
    if token_budget < 1:
        raise typer.BadParameter(f"--token-budget must be >= 1, got {token_budget}")
    policy = PolicyConfig(
        temperature=temperature,
        max_answer_tokens=max_answer_tokens,
        max_episode_tokens=max_episode_tokens,
    )
    settings = EvalSettings(
        samples_per_problem=samples,
        token_budget=token_budget,
        max_episodes=max_episodes,
        prover_samples=k,
        template=template,
        seed=seed,
        policy=policy,
        forced_answer_tokens=forced_answer_tokens,
        segmenter=segmenter,
        answer_patterns=opts.answer_patterns(answer_pattern),
    )
    lm_options = opts.backend_options(prefix_cache_size, max_decode_rows)
    chosen = load_problems(problems, n)
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "problems": problems,
        "n": n,
        "budgets": budget_values,
    }
    names = _split(variants)
    for variant in names:
        lm = load_language_model(_model_spec(variant), device, **lm_options)
        check_budgets_above_prompts(budget_values, prompt_tokens(lm, chosen, template))
        typer.echo(f"{variant}: {len(chosen)} problems x {samples} samples", err=True)
        grouped = sample_responses(
            lm, chosen, settings, with_prover=bool(budget_values), progress=True
        )
        summary = summarize(grouped, budget_values)
        results[variant] = asdict(summary)
        line = (
            f"{variant:>6}: pass@1 {summary.pass_at_1:.3f} "
            f"[{summary.ci_low:.3f}, {summary.ci_high:.3f}]  tokens {summary.mean_tokens:.1f}  "
            f"answered {summary.answered:.0%}  episodes/response {summary.mean_episodes:.2f} "
            f"(one-episode {summary.single_episode_share:.0%})  "
            f"regret {summary.normalized_regret}"
        )
        if variant != names[0]:
            versus = paired_difference(summary.per_problem, results[names[0]]["per_problem"])
            results[variant]["minus_first"] = versus
            line += (
                f"  vs {names[0]}: {versus['mean']:+.3f} "
                f"[{versus['ci_low']:+.3f}, {versus['ci_high']:+.3f}]"
            )
        typer.echo(line)
        if summary.answered < 0.5:
            typer.echo(
                f"WARNING: only {summary.answered:.0%} of {variant}'s graded responses hold a "
                "readable final answer: raise --max-answer-tokens / --token-budget or check "
                "--template",
                err=True,
            )
        for reason in summary.degenerate:
            typer.echo(f"WARNING: degenerate run, {variant}: {reason}", err=True)
    if out is not None:
        text = json.dumps(strict_json(results), indent=2, allow_nan=False)
        out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    app()
