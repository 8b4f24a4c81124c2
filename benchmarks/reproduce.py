"""MRT vs GRPO across training seeds: train every method on N seeds, evaluate, aggregate.

One command reproduces the README's MRT-vs-GRPO statement:

1. **Train** outcome-only GRPO, MRT with the released recipe (``--credit released``) and MRT
   with per-episode progress credit (``--credit progress``) on the shipped tiny LM, each on
   every training seed, all with the same wall-clock budget (``--train-minutes``; or the same
   number of optimizer steps with ``--train-minutes 0 --train-steps N``). Runs go out
   ``--parallel`` at a time, each single-threaded; the steps every run reached are reported, so
   a difference in compute is visible beside the figures. ``mrt-hybrid`` is MRT with progress
   credit whose μ is the hybrid learned meta-prover (``--prover hybrid:PATH
   --prover-sample-share ρ``: the learned μ of ``--hybrid-prover`` answers every J request, the
   sampled μ a share ρ that updates it online): at equal wall-clock, a cheaper μ turns into
   more optimizer steps, which the steps column shows.
2. **Evaluate** the base model and every checkpoint with ``benchmarks/regret.py`` on the same
   held-out problems with common random numbers (every policy samples problem ``p``'s response
   ``s`` with the same seed): pass@1, tokens per response, normalized regret at every budget
   (extrapolated budgets included) and token efficiency.
3. **Aggregate across training seeds**: each method's mean with a 95% t-interval over seeds
   (the seed is the unit of replication, not the problem); MRT − GRPO paired by seed and
   problem with a two-level bootstrap (resample seeds, then problems); the paper's relative
   gain (MRT − base) / (GRPO − base) per seed.

Everything lands in ``runs/reproduce/<name>/``: ``train/<method>-s<seed>/`` (mrt-train run
folders), ``eval/`` (regret.py's run folder), ``summary.json``, ``summary.md`` and
``seeds.png`` / ``regret_seeds.png``. A killed run continues where it stopped when the same
command is run again (mrt-train resumes its checkpoints, regret.py its cache).

Usage:
    python benchmarks/reproduce.py                # the README's study: 4 methods x 5 seeds x 7 min
    python benchmarks/reproduce.py --seeds 0 1 --train-minutes 3   # a quicker look
    python benchmarks/reproduce.py --train-minutes 0 --train-steps 60   # equal steps instead
    python benchmarks/reproduce.py --methods grpo mrt-progress   # two methods only
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Line,
    fmt_ci,
    parse_args,
    read_cache,
    regret_per_problem,
    run_environment,
    save_line_plot,
    write_json,
)

from mrt_env.prover.learned import shipped_prover
from mrt_env.tinymath.loading import DEFAULT_VARIANT, tiny_variant


@dataclass
class Args:
    """Train GRPO and MRT on several seeds, evaluate them, report means across seeds."""

    methods: tuple[str, ...] = ("grpo", "mrt-released", "mrt-progress", "mrt-hybrid")
    """methods to train: grpo, mrt-released, mrt-progress, mrt-progress_to_go, mrt-hybrid"""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """training seeds (N >= 2 for an interval across seeds)"""
    train_minutes: float = 7.0
    """wall-clock minutes of every training run (0: no limit, use --train-steps)"""
    train_steps: int = 100_000
    """optimizer-step cap of every training run"""
    parallel: int = 2
    """training runs at once (each uses one CPU thread)"""
    model: str = "tiny"
    """starting policy of every run and the evaluation's base: tiny (the default graded world),
    tiny:VARIANT (e.g. tiny:classic, where J is a step) or a checkpoint folder"""
    hybrid_prover: str = ""
    """mrt-hybrid's learned μ folder ("": the one shipped for --model, e.g.
    mrt_env/assets/prover-tiny-explain for tiny)"""
    prover_sample_share: float = 0.1
    """mrt-hybrid's ρ: share of J requests the sampled μ also answers (online labels)"""
    train_flags: str = "--lr 3e-5"
    """extra mrt-train flags for every run (the study's: a learning rate of 3e-5)"""
    num_problems: int = 100
    """held-out problems of the evaluation"""
    samples: int = 4
    """responses per problem and policy"""
    k: int = 4
    """forced answers per J estimate"""
    eval_seed: int = 0
    """seed of the evaluation's samples (common random numbers across policies)"""
    eval_flags: str = ""
    """extra benchmarks/regret.py flags (e.g. "--budgets 64 128 256")"""
    curve_interval: int = 40
    """learning curves: held-out evaluation every N optimizer steps of every run (0 = off)"""
    curve_problems: int = 32
    """learning curves: held-out problems per evaluation (the same for every method and seed)"""
    curve_budget: int = 256
    """learning curves: token budget of the normalized regret"""
    curve_seed: int = 1234
    """learning curves: sampling seed of every evaluation (common random numbers)"""
    run_dir: str = "runs/reproduce"
    """parent folder of run folders"""
    name: str = "default"
    """run folder name (rerun the same name to resume)"""


METHOD_FLAGS = {
    "grpo": ["--algo", "grpo"],
    "mrt-released": ["--algo", "mrt", "--credit", "released"],
    "mrt-progress": ["--algo", "mrt", "--credit", "progress"],
    "mrt-progress_to_go": ["--algo", "mrt", "--credit", "progress_to_go"],
    "mrt-hybrid": ["--algo", "mrt", "--credit", "progress"],  # + its μ: method_flags
}
BASELINE = "grpo"


def run_name(method: str, seed: int) -> str:
    return f"{method}-s{seed}"


# ---------------------------------------------------------------- 1. training
def method_flags(args: Args, method: str) -> list[str]:
    """The mrt-train flags of a method; ``mrt-hybrid`` adds its hybrid learned μ."""
    flags = list(METHOD_FLAGS[method])
    if method == "mrt-hybrid":
        folder = args.hybrid_prover or args.model  # a tiny model's name names its shipped μ
        if not args.hybrid_prover and shipped_prover(args.model) is None:
            raise SystemExit(
                f"mrt-hybrid: no learned μ is shipped for --model {args.model}; pass "
                "--hybrid-prover FOLDER (mrt-prover train) or a --model with one: tiny, "
                "tiny:classic, tiny:graded"
            )
        if Path(folder).exists():  # a folder: absolute, whatever the runs' working directory
            folder = str(Path(folder).resolve())
        flags += ["--prover", f"hybrid:{folder}"]
        flags += ["--prover-sample-share", str(args.prover_sample_share)]
    return flags


def train_command(args: Args, method: str, seed: int, out: Path) -> list[str]:
    """The mrt-train command line of one run."""
    cli = Path(sys.executable).with_name("mrt-train")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "agents.cli"]
    budget = ["--steps", str(args.train_steps)]
    if args.train_minutes > 0:
        budget += ["--minutes", str(args.train_minutes)]
    flags = ["--model", args.model, "--seed", str(seed), "--threads", "1", "--no-progress"]
    curves = []
    if args.curve_interval > 0:
        curves = [
            *("--eval-interval", str(args.curve_interval)),
            *("--eval-problems", str(args.curve_problems)),
            *("--eval-budget", str(args.curve_budget)),
            *("--eval-seed", str(args.curve_seed)),
        ]
    return [
        *command,
        *method_flags(args, method),
        *flags,
        *curves,
        *budget,
        *args.train_flags.split(),
        "--out",
        str(out),
    ]


def train_all(args: Args, run: Path) -> dict[str, dict[str, Any]]:
    """Train every (method, seed) not finished yet, ``parallel`` at a time; their summaries."""
    from tqdm import tqdm

    jobs = [(m, s) for s in args.seeds for m in args.methods]
    done = {run_name(m, s): read_done(run / "train" / run_name(m, s)) for m, s in jobs}
    todo = [(m, s) for m, s in jobs if done[run_name(m, s)] is None]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="training runs")
    running: list[tuple[str, Path, subprocess.Popen[bytes], Any]] = []
    while todo or running:
        while todo and len(running) < args.parallel:
            method, seed = todo.pop(0)
            out = run / "train" / run_name(method, seed)
            out.mkdir(parents=True, exist_ok=True)
            log = (out / "reproduce.log").open("ab")
            command = train_command(args, method, seed, out)
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            running.append((run_name(method, seed), out, process, log))
        time.sleep(1.0)
        for entry in list(running):
            name, out, process, log = entry
            if process.poll() is None:
                continue
            log.close()
            running.remove(entry)
            if process.returncode != 0:
                tail = (out / "reproduce.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"training {name} failed (exit {process.returncode}):\n{tail}")
            done[name] = mark_done(out)
            bar.update(1)
    bar.close()
    return {name: summary for name, summary in done.items() if summary is not None}


def read_done(out: Path) -> dict[str, Any] | None:
    """The summary of a finished run folder (``None`` while unfinished)."""
    marker = out / "reproduce-done.json"
    if not marker.exists() or not (out / "model" / "config.json").exists():
        return None
    return dict(json.loads(marker.read_text()))


def mark_done(out: Path) -> dict[str, Any]:
    """Record a finished run: its optimizer steps and training seconds (from metrics.jsonl)."""
    steps, seconds = 0, float("nan")
    metrics = out / "tb" / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            steps = max(steps, int(row.get("step", 0)))
            seconds = float(row.get("charts/elapsed_s", seconds))
    summary = {"steps": steps, "train_seconds": seconds, "model": str(out / "model")}
    write_json(out / "reproduce-done.json", summary)
    return summary


# ---------------------------------------------------------------- 2a. learning curves
def read_curve(out: Path) -> dict[int, dict[str, float]]:
    """Step -> the held-out evaluation logged by one run (``eval/*`` and ``charts/elapsed_s``
    of the ``metrics.jsonl`` rows that hold ``eval/pass@1``; step 0 is the starting model)."""
    curve: dict[int, dict[str, float]] = {}
    path = out / "tb" / "metrics.jsonl"
    if not path.exists():
        return curve
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "eval/pass@1" in row:
            curve[int(row["step"])] = row
    return curve


def aggregate_curves(args: Args, run: Path) -> dict[str, list[dict[str, Any]]]:
    """Per method and evaluation step reached by every seed: held-out pass@1 and regret with a
    95% t-interval across seeds, and the mean training seconds at that step."""
    regret_key = f"eval/regret@{args.curve_budget}"
    curves: dict[str, list[dict[str, Any]]] = {}
    for method in args.methods:
        per_seed = [read_curve(run / "train" / run_name(method, s)) for s in args.seeds]
        if not all(per_seed):
            continue
        common = sorted(set.intersection(*(set(c) for c in per_seed)))
        curves[method] = [
            {
                "step": step,
                "elapsed_s": float(
                    np.mean([c[step].get("charts/elapsed_s", 0.0) for c in per_seed])
                ),
                "pass@1": seed_interval([c[step]["eval/pass@1"] for c in per_seed]),
                "regret": seed_interval([c[step].get(regret_key, np.nan) for c in per_seed]),
                "per_seed_pass@1": [c[step]["eval/pass@1"] for c in per_seed],
            }
            for step in common
        ]
    return curves


def plot_curves(curves: dict[str, list[dict[str, Any]]], args: Args, run: Path) -> None:
    """curves.png: held-out pass@1 and regret against optimizer steps and training seconds
    (mean across seeds, band: 95% t-interval), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharey="row")
    for i, (method, points) in enumerate(curves.items()):
        for col, x_key in enumerate(("step", "elapsed_s")):
            xs = [p[x_key] for p in points]
            for row, key in enumerate(("pass@1", "regret")):
                ax = axes[row][col]
                ys = [p[key]["mean"] for p in points]
                low = [p[key]["ci_low"] for p in points]
                high = [p[key]["ci_high"] for p in points]
                ax.plot(xs, ys, "o-", color=f"C{i}", label=method, markersize=3)
                ax.fill_between(xs, low, high, color=f"C{i}", alpha=0.15)
    for col, xlabel in enumerate(("optimizer steps", "training seconds (mean across seeds)")):
        axes[1][col].set_xlabel(xlabel)
    axes[0][0].set_ylabel(f"held-out pass@1 ({args.curve_problems} problems)")
    axes[1][0].set_ylabel(f"normalized regret @ {args.curve_budget} (lower is better)")
    for ax in axes.flat:
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    if not curves:
        for ax in axes.flat:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        axes[0][0].legend()
    fig.suptitle(
        f"{run.name}: learning curves, {len(args.seeds)} seeds (band: 95% t-interval across "
        f"seeds), same problems and sampling seed for every run"
    )
    fig.tight_layout()
    fig.savefig(run / "curves.png", dpi=120)
    plt.close(fig)


def equal_steps(args: Args, run: Path) -> dict[str, Any]:
    """The equal-steps comparison, read off the learning curves: every method at the largest
    evaluation step that every run of every method reached (the same held-out problems and
    sampling seed), with a t-interval over seeds and minus GRPO paired by seed.

    Empty when some run logged no evaluation (``--curve-interval 0``)."""
    regret_key = f"eval/regret@{args.curve_budget}"
    raw = {
        m: [read_curve(run / "train" / run_name(m, s)) for s in args.seeds] for m in args.methods
    }
    if not all(all(per_seed) for per_seed in raw.values()):
        return {}
    step = max(set.intersection(*(set(c) for per_seed in raw.values() for c in per_seed)))
    values = {
        m: {
            "pass@1": [c[step]["eval/pass@1"] for c in per_seed],
            "regret": [c[step].get(regret_key, np.nan) for c in per_seed],
        }
        for m, per_seed in raw.items()
    }
    grpo = values[BASELINE]
    return {
        "step": step,
        "methods": {
            m: {metric: seed_interval(v) for metric, v in figures.items()}
            for m, figures in values.items()
        },
        "minus_grpo": {
            m: {
                metric: seed_interval(list(np.subtract(v, grpo[metric])))
                for metric, v in figures.items()
            }
            for m, figures in values.items()
            if m != BASELINE
        },
    }


# ---------------------------------------------------------------- 2b. evaluation
def base_policy(model: str) -> str:
    """regret.py's policy spec of the starting model, named ``base``.

    Example:
        >>> base_policy("tiny"), base_policy("tiny:graded"), base_policy("runs/x/model")
        ('base', 'base=graded', 'base=runs/x/model')
    """
    variant = tiny_variant(model)
    return "base" if variant == DEFAULT_VARIANT else f"base={variant or model}"


def evaluate_all(args: Args, run: Path, models: dict[str, str]) -> Path:
    """benchmarks/regret.py on base + every checkpoint (resumes from its cache)."""
    policies = [base_policy(args.model), *(f"{name}={path}" for name, path in models.items())]
    command = [
        sys.executable,
        str(Path(__file__).with_name("regret.py")),
        "--policies",
        *policies,
        "--num-problems",
        str(args.num_problems),
        "--samples",
        str(args.samples),
        "--k",
        str(args.k),
        "--seed",
        str(args.eval_seed),
        "--run-dir",
        str(run),
        "--name",
        "eval",
        "--dump-traces",
        "false",
        *args.eval_flags.split(),
    ]
    subprocess.run(command, check=True)
    return run / "eval"


# ---------------------------------------------------------------- 3. statistics
def seed_interval(values: list[float]) -> dict[str, float]:
    """Mean over seeds with a 95% Student-t interval (``mrt_env.stats.seed_ci``); seeds where
    the figure is undefined (``nan``, e.g. a relative gain over a GRPO run that lost to the
    base model) are left out and ``n`` says how many remain."""
    from mrt_env.stats import seed_ci

    data = [v for v in values if v is not None and np.isfinite(v)]
    if not data:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    return dict(seed_ci(data))


def paired_seed_problem(diff: np.ndarray, seed: int = 0, resamples: int = 4000) -> dict[str, float]:
    """Mean of ``diff[seed, problem]`` with a two-level bootstrap CI (seeds, then problems)."""
    rng = np.random.default_rng(seed)
    n_seeds, n_problems = diff.shape
    means = np.empty(resamples)
    for i in range(resamples):
        rows = diff[rng.integers(0, n_seeds, n_seeds)]
        means[i] = rows[:, rng.integers(0, n_problems, n_problems)].mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "ci_low": float(low), "ci_high": float(high)}


def per_problem_metrics(records: list[dict[str, Any]], budgets: dict[str, int]) -> dict[str, Any]:
    """Per-problem arrays of one policy: pass@1, tokens, regret at every budget."""
    metrics: dict[str, Any] = {
        "pass@1": np.array([np.mean([s["correct"] for s in r["samples"]]) for r in records]),
        "tokens": np.array([np.mean([s["tokens"] for s in r["samples"]]) for r in records]),
    }
    for label, (budget, w) in budgets.items():
        metrics[f"regret@{label}"] = regret_per_problem(records, budget, w)
    return metrics


def budget_labels(results: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``label -> (budget, w)`` for every budget regret.py reported, extrapolated included."""
    settings = results["settings"]
    labels = {str(b): (int(b), 0) for b in settings["budgets"]}
    for w, budget in settings.get("extrapolation_budgets", {}).items():
        labels[f"{budget}(w={w})"] = (int(budget), int(w))
    return labels


def aggregate(args: Args, eval_dir: Path, trained: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every figure across seeds, and MRT − GRPO paired by seed and problem."""
    results = json.loads((eval_dir / "results.json").read_text())
    cache = read_cache(eval_dir / "cache.jsonl")
    labels = budget_labels(results)
    problem_ids = sorted({pid for name, pid in cache if name == "base"})

    def metrics_of(policy: str) -> dict[str, Any]:
        records = [cache[(policy, pid)] for pid in problem_ids]
        return per_problem_metrics(records, labels)

    base = metrics_of("base")
    per_run = {name: metrics_of(name) for name in trained}
    efficiency = results["comparisons"]["token_efficiency"]
    names = [*base.keys(), "token_efficiency_vs_grpo", "relative_gain"]
    methods: dict[str, Any] = {"base": {m: float(np.mean(v)) for m, v in base.items()}}
    for method in args.methods:
        rows: dict[str, list[float]] = {name: [] for name in names}
        for seed in args.seeds:
            run, ref = run_name(method, seed), run_name(BASELINE, seed)
            for metric, values in per_run[run].items():
                rows[metric].append(float(np.mean(values)))
            eff = efficiency.get(f"{run}_vs_{ref}") if method != BASELINE else None
            rows["token_efficiency_vs_grpo"].append(np.nan if eff is None else float(eff))
            gain = np.mean(per_run[ref]["pass@1"]) - np.mean(base["pass@1"])
            mine = np.mean(per_run[run]["pass@1"]) - np.mean(base["pass@1"])
            rows["relative_gain"].append(float(mine / gain) if gain > 0 else np.nan)
        methods[method] = {
            "per_seed": rows,
            "across_seeds": {m: seed_interval(v) for m, v in rows.items()},
            "steps": [trained[run_name(method, s)]["steps"] for s in args.seeds],
        }
    paired = {}
    for method in args.methods:
        if method == BASELINE:
            continue
        paired[method] = {
            metric: paired_seed_problem(
                np.stack(
                    [
                        per_run[run_name(method, s)][metric]
                        - per_run[run_name(BASELINE, s)][metric]
                        for s in args.seeds
                    ]
                )
            )
            for metric in base
        }
    detectable = {
        method: {
            metric: minimum_detectable(
                [
                    float(np.mean(per_run[run_name(method, s)][metric]))
                    - float(np.mean(per_run[run_name(BASELINE, s)][metric]))
                    for s in args.seeds
                ]
            )
            for metric in base
        }
        for method in args.methods
        if method != BASELINE
    }
    grpo_gain = [
        float(np.mean(per_run[run_name(BASELINE, s)]["pass@1"]) - np.mean(base["pass@1"]))
        for s in args.seeds
    ]
    return {
        "methods": methods,
        "representative_seed": representative_seeds(methods, args),
        "minus_grpo": paired,
        "minimum_detectable_effect": detectable,
        "grpo_minus_base": {
            "per_seed": grpo_gain,
            "across_seeds": seed_interval(grpo_gain),
            "seeds_above_base": int(sum(g > 0 for g in grpo_gain)),
        },
        "relative_gain_of_means": relative_gain_of_means(methods, args.methods),
        "budgets": list(labels),
        "problems": len(problem_ids),
    }


def representative_seeds(methods: dict[str, Any], args: Args) -> dict[str, int]:
    """Per method, the training seed whose pass@1 is closest to the method's mean across seeds
    (ties: the one whose tokens per response are closest): the run to ship as "typical".

    Example:
        >>> methods = {"grpo": {"per_seed": {"pass@1": [0.2, 0.3, 0.5], "tokens": [9, 9, 9]}}}
        >>> representative_seeds(methods, Args(methods=("grpo",), seeds=(4, 5, 6)))
        {'grpo': 5}
    """
    chosen = {}
    for method in args.methods:
        rows = methods[method]["per_seed"]
        scores, tokens = np.asarray(rows["pass@1"]), np.asarray(rows["tokens"], dtype=float)
        distance = np.abs(scores - scores.mean()) + 1e-9 * np.abs(tokens - tokens.mean())
        chosen[method] = int(args.seeds[int(np.argmin(distance))])
    return chosen


def budget_check(gain: dict[str, Any], n_seeds: int) -> str:
    """Whether the budget lets the baseline learn: GRPO above the base on at least 80% of the
    seeds (4 of 5) and the across-seed interval of its mean gain above 0.

    Example:
        >>> budget_check({"seeds_above_base": 4, "across_seeds": {"ci_low": 0.01}}, 5)
        'PASS'
        >>> budget_check({"seeds_above_base": 4, "across_seeds": {"ci_low": -0.01}}, 5)
        'FAIL'
    """
    enough = gain["seeds_above_base"] >= int(np.ceil(0.8 * n_seeds))
    return "PASS" if enough and gain["across_seeds"]["ci_low"] > 0 else "FAIL"


def minimum_detectable(differences: list[float]) -> float:
    """MDE at 80% power of the paired-by-seed design (``nan`` with one seed)."""
    from mrt_env.stats import minimum_detectable_effect

    if len(differences) < 2:
        return float("nan")
    return minimum_detectable_effect(differences)


def relative_gain_of_means(methods: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    """The paper's relative gain on seed means: (method − base) / (GRPO − base) of pass@1
    (``nan`` when GRPO's mean does not beat the base model's)."""
    base = methods["base"]["pass@1"]
    grpo = methods[BASELINE]["across_seeds"]["pass@1"]["mean"] - base
    return {
        name: (methods[name]["across_seeds"]["pass@1"]["mean"] - base) / grpo
        if grpo > 0
        else float("nan")
        for name in names
        if name != BASELINE
    }


# ---------------------------------------------------------------- report
def markdown(summary: dict[str, Any], args: Args) -> str:
    """Tables: figures across seeds, then MRT − GRPO paired by seed and problem."""
    metrics = ["pass@1", "tokens", *(f"regret@{b}" for b in summary["budgets"])]
    lines = [
        f"## Across {len(args.seeds)} training seeds ({summary['problems']} problems x "
        f"{args.samples} samples; mean [95% t-interval over seeds])",
        "",
        f"Starting model (base) of every run: `{args.model}`.",
        "",
        "| method | steps | " + " | ".join(metrics) + " | token eff. vs GRPO | relative gain |",
        "|---" * (len(metrics) + 4) + "|",
    ]
    base = summary["methods"]["base"]
    lines.append("| base | – | " + " | ".join(f"{base[m]:.3f}" for m in metrics) + " | – | – |")
    for method in args.methods:
        stats = summary["methods"][method]["across_seeds"]
        steps = summary["methods"][method]["steps"]
        cells = [fmt_ci(stats[m]) for m in metrics]
        for extra in ("token_efficiency_vs_grpo", "relative_gain"):
            stat = stats[extra]
            defined = method != BASELINE and stat["n"] > 0
            cells.append(f"{fmt_ci(stat)} (n={stat['n']})" if defined else "–")
        lines.append(f"| {method} | {'/'.join(map(str, steps))} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Minus GRPO, paired by seed and problem (mean [95% two-level bootstrap CI])",
        "",
        "| method | " + " | ".join(metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for method, diffs in summary["minus_grpo"].items():
        cells = [fmt_ci(diffs[m]) for m in metrics]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    gains = ", ".join(f"{m} {g:.2f}" for m, g in summary["relative_gain_of_means"].items())
    lines += ["", f"Relative gain of the seed means, (method − base) / (GRPO − base): {gains}"]
    grpo = summary["grpo_minus_base"]
    lines += [
        "",
        f"GRPO − base, pass@1: {fmt_ci(grpo['across_seeds'])} across seeds; GRPO above the base "
        f"on {grpo['seeds_above_base']} of {len(args.seeds)} seeds "
        f"({', '.join(f'{g:+.3f}' for g in grpo['per_seed'])}); budget check (GRPO above "
        f"the base on >= 80% of seeds, interval above 0): "
        f"{budget_check(grpo, len(args.seeds))}",
        "",
        "Representative seed per method (pass@1 closest to the mean across seeds): "
        + ", ".join(f"{m} s{s}" for m, s in summary["representative_seed"].items()),
    ]
    if summary["minimum_detectable_effect"]:
        lines += [
            "",
            "## Minimum detectable effect vs GRPO (80% power, two-sided 5%, paired by seed)",
            "",
            "| method | " + " | ".join(metrics) + " |",
            "|---" * (len(metrics) + 1) + "|",
        ]
        for method, mde in summary["minimum_detectable_effect"].items():
            lines.append(f"| {method} | " + " | ".join(f"{mde[m]:.3f}" for m in metrics) + " |")
        lines += [
            "",
            "A true difference smaller than these is likely to come out inside the intervals "
            "above: there, 'no significant difference' is no evidence of no difference.",
        ]
    lines += equal_steps_markdown(summary.get("equal_steps", {}), args)
    lines += curves_markdown(summary.get("curves", {}), args)
    return "\n".join(lines) + "\n"


def equal_steps_markdown(table: dict[str, Any], args: Args) -> list[str]:
    """The equal-steps table (omitted when no run logged an evaluation)."""
    if not table:
        return []
    lines = [
        "",
        f"## Equal steps: every run after {table['step']} optimizer steps ({args.curve_problems}"
        f" held-out problems of the learning curves, regret at {args.curve_budget} tokens; "
        "mean [95% t-interval over seeds])",
        "",
        "| method | pass@1 | regret | pass@1 − GRPO (paired by seed) | regret − GRPO |",
        "|---|---|---|---|---|",
    ]
    for method, stats in table["methods"].items():
        diff = table["minus_grpo"].get(method)
        cells = [fmt_ci(stats["pass@1"]), fmt_ci(stats["regret"])]
        cells += [fmt_ci(diff["pass@1"]), fmt_ci(diff["regret"])] if diff else ["–", "–"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def curves_markdown(curves: dict[str, list[dict[str, Any]]], args: Args) -> list[str]:
    """The learning curves as a table (omitted when no run logged an evaluation)."""
    if not curves:
        return []
    lines = [
        "",
        f"## Learning curves ({args.curve_problems} held-out problems, regret at "
        f"{args.curve_budget} tokens; mean [95% t-interval over seeds])",
        "",
        "| method | step | training s | pass@1 | regret |",
        "|---|---|---|---|---|",
    ]
    for method, points in curves.items():
        for p in points:
            lines.append(
                f"| {method} | {p['step']} | {p['elapsed_s']:.0f} | {fmt_ci(p['pass@1'])} | "
                f"{fmt_ci(p['regret'])} |"
            )
    return lines


def plot(summary: dict[str, Any], args: Args, run: Path) -> None:
    """seeds.png (pass@1 and tokens per seed) and regret_seeds.png (regret vs budget)."""
    budgets = [b for b in summary["budgets"] if "(" not in b]
    lines: list[Line] = []
    for i, method in enumerate(args.methods):
        per_seed = summary["methods"][method]["per_seed"]
        stats = summary["methods"][method]["across_seeds"]
        xs = [int(b) for b in budgets]
        for j, _ in enumerate(args.seeds):
            ys = [per_seed[f"regret@{b}"][j] for b in budgets]
            lines.append(Line(xs, ys, None, ":", f"C{i}"))
        band = (
            [stats[f"regret@{b}"]["ci_low"] for b in budgets],
            [stats[f"regret@{b}"]["ci_high"] for b in budgets],
        )
        means = [stats[f"regret@{b}"]["mean"] for b in budgets]
        lines.append(Line(xs, means, method, "o-", f"C{i}", band))
    save_line_plot(
        run / "regret_seeds.png",
        lines,
        "token budget C0 (dotted: single seeds; band: 95% t-interval over seeds)",
        "normalized regret (lower is better)",
    )
    points = []
    for i, method in enumerate(args.methods):
        per_seed = summary["methods"][method]["per_seed"]
        points.append(Line(per_seed["tokens"], per_seed["pass@1"], method, "o", f"C{i}"))
    save_line_plot(run / "seeds.png", points, "tokens per response (one point per seed)", "pass@1")


def main(args: Args) -> dict[str, Any]:
    unknown = sorted(set(args.methods) - set(METHOD_FLAGS))
    if unknown or BASELINE not in args.methods:
        raise SystemExit(f"--methods must include {BASELINE!r} and be among {sorted(METHOD_FLAGS)}")
    if len(args.seeds) < 2:
        print("NOTE: one seed gives no interval across seeds; use --seeds with N >= 2")
    start = time.perf_counter()
    run = Path(args.run_dir) / args.name
    run.mkdir(parents=True, exist_ok=True)
    settings_path = run / "settings.json"
    settings = asdict(args)
    if settings_path.exists() and json.loads(settings_path.read_text()) != json.loads(
        json.dumps(settings)
    ):
        raise SystemExit(f"{run} holds a run with other settings; pass another --name")
    write_json(settings_path, settings)
    trained = train_all(args, run)
    eval_dir = evaluate_all(args, run, {name: s["model"] for name, s in trained.items()})
    summary = aggregate(args, eval_dir, trained)
    summary["curves"] = aggregate_curves(args, run)
    summary["equal_steps"] = equal_steps(args, run)
    summary |= {"settings": settings, "environment": run_environment()}
    summary["wall_time_s"] = time.perf_counter() - start
    write_json(run / "summary.json", summary)
    text = markdown(summary, args)
    (run / "summary.md").write_text(text)
    plot(summary, args, run)
    plot_curves(summary["curves"], args, run)
    print(text)
    print(f"wrote {run}/: summary.json, summary.md, seeds.png, regret_seeds.png, curves.png")
    return summary


if __name__ == "__main__":
    main(parse_args(Args))
