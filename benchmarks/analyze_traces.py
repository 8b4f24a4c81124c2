"""Trace analysis: J per episode, progress histograms and regret of finished responses.

The paper's analysis of R1-distilled models, for traces produced anywhere (e.g. on a GPU with
vLLM): read a JSONL of finished responses (``problem_id`` and ``response``, optionally
``policy`` to compare several models), replay each through MRTMath-v0 — the segmenter splits
the thinking into episodes and the meta-prover reads J after each one — and report:

* mean J after each episode (95% bootstrap CI over traces) and the fraction of episodes that
  make no progress (J does not rise), the paper's sign that a model does not minimise regret;
* progress histograms (first episode vs later episodes) as PNG;
* normalized regret at token budgets and cumulative regret over episodes.

Problems come from ``--problems`` (the set the traces answer; TinyMath by default). Writes
``results.json``, ``results.md``, ``progress_hist.png`` and ``j_per_episode.png`` into
``runs/analyze_traces/<name>/``.

Usage:
    python benchmarks/analyze_traces.py --traces runs/regret/<run>/traces.jsonl
    python benchmarks/analyze_traces.py --traces r1_traces.jsonl --problems \\
        ../shared/data/aime2024.jsonl --model deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B \\
        --template r1-distill --segmenter preset:aime2024 --budgets 4096 8192 16384 --device cuda
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Line,
    bootstrap_ci,
    check_budgets,
    fmt_ci,
    load_model,
    model_options,
    parse_args,
    plot_title,
    read_traces,
    replay_env,
    run_environment,
    save_line_plot,
    write_json,
)
from tqdm import tqdm


@dataclass
class Args:
    """Replay finished responses through MRTMath-v0 and analyse their J curves."""

    traces: str = ""
    """JSONL of finished responses: problem_id, response (and optionally policy)"""
    problems: str = "tinymath:heldout"
    """problem set the traces answer: tinymath:heldout, a JSONL file or hf:NAME:SPLIT; with a
    filter after '?' (e.g. 'math500.jsonl?level=1,2'), only traces of the kept problems are
    analysed"""
    model: str = "tiny"
    """meta-prover model and tokenizer: tiny, tiny:VARIANT, a local path, a hub id,
    openai:URL (a completions server) or vllm:PATH"""
    template: str | None = None
    """chat/termination template preset: tiny, r1-distill, plain, chat (default: tiny for the
    tiny LM, the tokenizer's chat template for other models)"""
    segmenter: str = ""
    """marker[:MIN_PARAGRAPHS], preset:NAME (aime2024, regret-comparison), paragraph or
    fallback[:MIN_TOKENS] (default: the template's: marker:1 for tiny, fallback for a chat model
    without thinking tags, the official marker rule otherwise)"""
    k: int = 4
    """forced answers per J estimate"""
    prover: str = "sampled"
    """meta-prover: sampled (K forced answers of --model) or learned:PATH (a learned
    meta-prover folder of mrt-prover train, whose tokenizer must be --model's)"""
    prover_temperature: float = 1.0
    """sampling temperature of the forced answers"""
    max_answer_tokens: int | None = None
    """token cap of one forced answer (default: the template's; 16 for tiny, 512 after R1's
    termination suffix)"""
    answered_warn: float = 0.5
    """warn when fewer forced answers than this share hold a readable final answer"""
    lm_option: tuple[str, ...] = ()
    """KEY=VALUE backend option of the model, e.g. max_concurrency=1 for openai:URL;
    repeatable; VALUE is read as JSON (1, 2.5, true, null), else as text; an option the
    backend does not take is an error"""
    prefix_cache_size: int | None = None
    """HF backend: prefix-cache entries (default: the backend's)"""
    max_decode_rows: int | None = None
    """HF backend: rows per decode call (default: all)"""
    budgets: tuple[int, ...] = (64, 128, 192, 256)
    """token budgets C0 of the normalized regret (prompt + thinking + forced-answer tokens;
    each must be above the longest prompt)"""
    max_traces: int = 0
    """analyse at most this many traces (0: all)"""
    episode_budget: int = 8
    """episodes of the cumulative-regret curve"""
    device: str = "cpu"
    """cpu or cuda"""
    seed: int = 0
    """seed of the meta-prover sampling"""
    run_dir: str = "runs/analyze_traces"
    """parent folder of run folders"""
    name: str = ""
    """run folder name (default: the time of the run, e.g. 20250101-120000, so reruns never
    overwrite each other)"""


def select_traces(records: list[dict[str, Any]], args: Args) -> tuple[list[dict], dict]:
    """The traces to analyse and their problems by id: every trace (its problem must be in
    the set), or with a filter (``--problems SET?QUERY``) the traces of the kept problems."""
    from mrt_env.sources import FieldNames, resolve_source

    source = resolve_source(args.problems, FieldNames())
    by_id = {source[i].id: source[i] for i in range(len(source))}
    if "?" in args.problems:
        records = [r for r in records if str(r["problem_id"]) in by_id]
        if not records:
            raise SystemExit(f"no trace answers a problem of {args.problems}")
    unknown = sorted({str(r["problem_id"]) for r in records} - set(by_id))
    if unknown:
        raise SystemExit(f"problem ids not in {args.problems}: {unknown[:5]} ...")
    return records, by_id


def replay_traces(
    records: list[dict[str, Any]], by_id: dict[str, Any], args: Args
) -> tuple[list[Any], dict]:
    """Replay every response through an MRTMath-v0 env (batched meta-prover calls); also
    returns the share of μ's forced answers that hold a readable final answer. A response
    without think tags is graded on its final answer, like one that ends thinking."""
    from mrt_env.replay import replay_many

    problems = [by_id[str(r["problem_id"])] for r in records]
    lm = load_model(args.model, args.device, args)
    longest = max(lm.count_tokens(r["response"]) for r in records)
    unique = list({p.id: p for p in problems}.values())
    check_budgets(lm, unique, args)
    prover = None if args.prover == "sampled" else f"{args.prover}"
    if prover is not None and not prover.startswith("learned:"):
        raise SystemExit(f"--prover must be sampled or learned:PATH, got {args.prover!r}")
    env = replay_env(args, lm, unique, token_budget=longest + 64, max_episodes=1024, prover=prover)
    with tqdm(total=len(records), desc="traces replayed", unit="trace") as bar:
        trajectories = replay_many(
            env,
            [r["response"] for r in records],
            problems,
            seed=args.seed,
            progress=lambda ended: bar.update(len(ended)),
        )
    stats = getattr(env.unwrapped.core.components.prover, "stats", None)
    answered = {
        "forced_answers": stats.generated_answers if stats else 0,
        "answered_share": stats.answered_share if stats else float("nan"),
    }
    return trajectories, answered


def analyse(trajectories: list[Any], args: Args) -> dict[str, Any]:
    """J per episode, progress statistics and regret of one group of trajectories."""
    from mrt_env.diagnostics import episode_summary
    from mrt_env.regret import normalized_area_per_problem, regret_over_episode_budget

    j_curves = [[float(v) for v in t.j if v is not None] for t in trajectories]
    # thinking episodes only: the last step ends thinking (its J after is the 0/1 outcome)
    first = [
        t.progress[0] for t in trajectories if len(t.progress) > 1 and t.progress[0] is not None
    ]
    later = [p for t in trajectories for p in t.progress[1:-1] if p is not None]
    progress = first + later
    depth = max(len(c) for c in j_curves)
    j_by_episode = [
        bootstrap_ci([c[i] for c in j_curves if len(c) > i]) for i in range(min(depth, 16))
    ]
    by_problem: dict[str, list[Any]] = defaultdict(list)
    for t in trajectories:
        if t.curve:
            by_problem[t.problem_id].append(t.curve_arrays())
    traces = list(by_problem.values())
    regret = {
        str(b): bootstrap_ci(1.0 - normalized_area_per_problem(traces, b)) for b in args.budgets
    }
    outcomes = [0.0 if t.outcome is None else t.outcome for t in trajectories]  # no answer: wrong
    return {
        "traces": len(trajectories),
        "accuracy": bootstrap_ci(outcomes),
        **episode_summary([len(t.episodes) for t in trajectories]),
        "j_by_episode": j_by_episode,
        "thinking_progress": {
            "episodes": len(progress),
            "mean": float(np.mean(progress)) if progress else None,
            "fraction_no_gain": float(np.mean(np.asarray(progress) <= 0)) if progress else None,
        },
        "first_episode_progress": bootstrap_ci(first),
        "normalized_regret": regret,
        "regret_over_episodes": regret_over_episode_budget(
            [[c] for c in j_curves if c], args.episode_budget
        ).tolist(),
        "_first": first,
        "_later": later,
        "_j": [v for c in j_curves for v in c],
        "_episodes": [len(t.episodes) for t in trajectories],
    }


def plot(groups: dict[str, dict[str, Any]], run: Path, title: str) -> None:
    """progress_hist.png and j_per_episode.png ([0, 1] J axis; "no data" in an empty panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.linspace(-1, 1, 21)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=False)
    for ax, key, label in (
        (axes[0], "_first", "progress of the first episode"),
        (axes[1], "_later", "progress of later thinking episodes"),
    ):
        filled = [(name, g[key]) for name, g in groups.items() if g[key]]
        for name, values in filled:
            ax.hist(values, bins=bins, alpha=0.5, label=name)
        if filled:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label, fontsize=9)
        ax.set_xlim(-1, 1)
        ax.set_xlabel("J(after) - J(before)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(run / "progress_hist.png", dpi=120)
    plt.close(fig)
    lines = []
    for i, (name, g) in enumerate(groups.items()):
        means = [s["mean"] for s in g["j_by_episode"]]
        band = ([s["ci_low"] for s in g["j_by_episode"]], [s["ci_high"] for s in g["j_by_episode"]])
        lines.append(Line(np.arange(len(means)), means, name, "o-", f"C{i}", band, alpha=0.15))
    save_line_plot(
        run / "j_per_episode.png",
        lines,
        "episodes of thinking (0 = empty)",
        "mean J (last point: the natural answer)",
        title,
    )


def markdown(groups: dict[str, dict[str, Any]], args: Args, flagged: dict[str, list[str]]) -> str:
    """results.md: degenerate-run flags (if any), then one row per group."""
    from mrt_env.diagnostics import degenerate_markdown

    head = ["group", "traces", "accuracy", "episodes/response", "one-episode share"]
    head += ["no-gain episodes", *[f"regret@{b}" for b in args.budgets]]
    lines = degenerate_markdown(flagged)
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, g in groups.items():
        no_gain = g["thinking_progress"]["fraction_no_gain"]
        cells = [name, str(g["traces"]), fmt_ci(g["accuracy"]), f"{g['mean_episodes']:.2f}"]
        cells.append(f"{g['single_episode_share']:.0%}")
        cells.append("n/a" if no_gain is None else f"{no_gain:.2f}")
        cells += [fmt_ci(g["normalized_regret"][str(b)]) for b in args.budgets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def degenerate_groups(
    groups: dict[str, dict[str, Any]], answered: dict[str, Any], args: Args
) -> dict[str, list[str]]:
    """Per group: why it is degenerate (``mrt_env.diagnostics``); printed as warnings."""
    from mrt_env.diagnostics import degenerate_reasons

    flagged = {}
    for name, g in groups.items():
        flagged[name] = degenerate_reasons(
            pass_at_1=g["accuracy"]["mean"],
            j_values=g["_j"],
            episode_counts=g["_episodes"],
            forced_answered=answered["answered_share"],
            answered_threshold=args.answered_warn,
        )
        for reason in flagged[name]:
            print(f"WARNING: degenerate run, group {name!r}: {reason}", file=sys.stderr)
    return flagged


def main(args: Args) -> dict[str, Any]:
    if not args.traces:
        raise SystemExit("--traces is required (a JSONL with problem_id and response)")
    start = time.perf_counter()
    model_options(args, [args.model])  # a bad --lm-option stops the run before any work
    name = args.name or time.strftime("%Y%m%d-%H%M%S")
    run = Path(args.run_dir) / name
    while not args.name and run.exists():  # two runs in one second: never overwrite
        name, run = f"{name}-1", run.with_name(f"{name}-1")
    run.mkdir(parents=True, exist_ok=True)
    records = read_traces(Path(args.traces), args.max_traces)
    records, by_id = select_traces(records, args)
    trajectories, answered = replay_traces(records, by_id, args)
    grouped: dict[str, list[Any]] = defaultdict(list)
    for record, trajectory in zip(records, trajectories, strict=True):
        grouped[str(record.get("policy", "all"))].append(trajectory)
    groups = {name: analyse(ts, args) for name, ts in grouped.items()}
    flagged = degenerate_groups(groups, answered, args)
    problems = len({str(r["problem_id"]) for r in records})
    plot(groups, run, plot_title(run.name, args.problems, problems, list(groups)))
    output = {
        "settings": {**asdict(args), "name": run.name},
        "environment": run_environment(),
        "groups": {
            n: {k: v for k, v in g.items() if not k.startswith("_")} for n, g in groups.items()
        },
        "forced_answers_answered": answered,
        "degenerate": flagged,
        "wall_time_s": time.perf_counter() - start,
    }
    write_json(run / "results.json", output)
    (run / "results.md").write_text(markdown(groups, args, flagged))
    print((run / "results.md").read_text())
    share = answered["answered_share"]
    if args.prover != "sampled":
        print(f"μ is {args.prover}: J from a learned probe, no forced answers sampled")
    else:
        print(
            "forced answers with a readable final answer: "
            f"{share:.1%} of {answered['forced_answers']}"
        )
    if share < args.answered_warn:
        print(
            f"WARNING: only {share:.0%} of the forced answers hold a readable final answer: "
            "raise --max-answer-tokens, or J reads near 0 for that reason",
            file=sys.stderr,
        )
    print(f"wrote {run}/: results.json, results.md, progress_hist.png, j_per_episode.png")
    return output


if __name__ == "__main__":
    main(parse_args(Args))
