"""The regret comparison: which policy turns test-time tokens into success fastest?

For every policy (by default the shipped tiny LM and its GRPO and MRT fine-tunes) and every
problem (by default held-out TinyMath), sample S responses with budget forcing (the natural
response is the first generation; extensions continue it past its end), split each response
into episodes with the segmenter, read J after every episode with the meta-prover (K forced
answers) by replaying it through MRTMath-v0, and count tokens with the policy's tokenizer.
Then report, with 95% bootstrap CIs over problems:

* normalized regret at the budgets C0 (PAPER.md's definition, ``mrt_env.regret``), and at
  extrapolated budgets ``max(C0) + w * extension_tokens`` from traces forced to think w more
  times (dashed in the plot);
* pass@1, maj@k for k = 1..S against total tokens, token efficiency of each policy against
  each other (how many times fewer tokens it needs to reach the other's maj@S accuracy);
* cumulative regret over episode budgets;
* the probability that one policy's regret is lower than another's (paired over problems).

Everything lands in ``runs/regret/<name>/``: ``results.json`` (every figure and setting),
``results.md``, ``regret.png``, ``accuracy_tokens.png``, ``j_tokens.png``, ``traces.jsonl``
(the sampled responses, input for ``benchmarks/analyze_traces.py``) and ``cache.jsonl``
(finished (policy, problem) results; a rerun with the same arguments resumes from it).

Usage:
    python benchmarks/regret.py                           # base vs GRPO vs MRT tiny checkpoints
    python benchmarks/regret.py --policies base path/to/model --num-problems 20
    python benchmarks/regret.py --problems ../shared/data/aime2024.jsonl --template r1-distill \\
        --policies deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --device cuda --token-budget 16384
    python benchmarks/regret.py --train                   # retrain GRPO and MRT first
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    bootstrap_ci,
    fmt_ci,
    parse_args,
    probability_of_improvement,
    run_environment,
    settings_hash,
    write_json,
)


@dataclass
class Args:
    """Compare policies by normalized regret, accuracy and token efficiency."""

    policies: tuple[str, ...] = ("base", "grpo", "mrt")
    """tiny variants (base, grpo, mrt), checkpoint paths or hub ids; NAME=SPEC names one"""
    problems: str = "tinymath:heldout"
    """problem set: tinymath:heldout, a JSONL file with problem/answer, or hf:NAME:SPLIT"""
    num_problems: int = 60
    """problems used (the first N of the set)"""
    samples: int = 4
    """S: sampled responses per problem and policy"""
    k: int = 4
    """K: forced answers per J estimate (meta-prover samples)"""
    temperature: float = 0.8
    """sampling temperature of the responses"""
    top_p: float = 1.0
    """nucleus mass of the responses"""
    prover: str = "self"
    """meta-prover model: self (each policy's own model, as in the paper), base, or a path"""
    prover_temperature: float = 1.0
    """sampling temperature of the forced answers"""
    max_answer_tokens: int = 16
    """token cap of one forced answer"""
    template: str = "tiny"
    """chat/termination template preset: tiny, r1-distill, plain"""
    segmenter: str = "marker:1"
    """marker[:MIN_PARAGRAPHS], preset:NAME (aime2024, regret-comparison) or paragraph"""
    token_budget: int = 256
    """max new tokens of a natural response"""
    budgets: tuple[int, ...] = (64, 128, 192, 256)
    """token budgets C0 of the normalized regret (prompt + thinking + forced-answer tokens)"""
    extensions: tuple[int, ...] = (2, 4, 6, 8)
    """budget-forcing extension counts w of the extrapolation (0 disables it)"""
    extension_tokens: int = 64
    """token cap of each forced extension; extrapolated budget = max(budgets) + w * this"""
    forced_samples: int = 1
    """responses per problem that are budget-forced (the first ones)"""
    max_context_tokens: int = 0
    """model context limit for budget forcing (0: the model config's max_position_embeddings)"""
    episode_budget: int = 8
    """episodes of the regret-over-episode-budget curve"""
    device: str = "cpu"
    """cpu or cuda"""
    seed: int = 0
    """seed of every sample (the same for every policy: common random numbers)"""
    chunk_problems: int = 20
    """problems processed (and cached) together"""
    run_dir: str = "runs/regret"
    """parent folder of run folders"""
    name: str = ""
    """run folder name (default: a hash of the settings, so a rerun resumes)"""
    train: bool = False
    """retrain the GRPO and MRT tiny checkpoints first (mrt-train, equal wall-clock)"""
    train_minutes: float = 5.0
    """wall-clock minutes of each training run with --train"""
    dump_traces: bool = True
    """write traces.jsonl (input format of benchmarks/analyze_traces.py)"""


TINY_VARIANTS = ("base", "grpo", "mrt")
TIMINGS: dict[str, float] = {"generate_s": 0.0, "replay_s": 0.0, "verify_s": 0.0}
"""Seconds spent per phase in this invocation (reported in results.json)."""
REPLAY_STREAM = 2**31 - 1
"""Sample index whose seed drives a chunk's meta-prover sampling (no response uses it)."""


# ---------------------------------------------------------------- policies and problems
def policy_specs(args: Args, trained: dict[str, str]) -> dict[str, str]:
    """``name -> model spec`` (``tiny:VARIANT``, a path or a hub id)."""
    specs: dict[str, str] = {}
    for entry in args.policies:
        name, _, spec = entry.partition("=") if "=" in entry else (entry, "", entry)
        if name in trained:
            spec = trained[name]
        elif spec in TINY_VARIANTS:
            spec = f"tiny:{spec}"
        specs[name] = spec
    return specs


def load_policy(spec: str, device: str) -> tuple[Any | None, str | None]:
    """The policy's language model, or ``None`` and the reason it could not be loaded."""
    from agents.session import load_language_model

    try:
        return load_language_model(spec, device), None
    except (FileNotFoundError, OSError, ValueError, KeyError) as error:
        return None, f"{type(error).__name__}: {error}"


def policy_fingerprint(spec: str) -> str:
    """Identifies a checkpoint's weights, so cached results of other weights are not reused:
    sha256 of small weight files, size and mtime of large ones, the spec for hub ids."""
    import hashlib

    folder = Path(spec)
    if spec.startswith("tiny"):
        from mrt_env.tinymath import tiny_lm_path

        folder = tiny_lm_path(spec.partition(":")[2] or "base")
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return spec
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        if stat.st_size <= 64 * 2**20:
            digest.update(file.read_bytes())
        else:
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_problems(args: Args) -> list[Any]:
    """The first ``num_problems`` problems of the configured set."""
    from mrt_env.sources import FieldNames, resolve_source

    source = resolve_source(args.problems, FieldNames())
    count = min(args.num_problems, len(source))
    return [source[i] for i in range(count)]


def build_segmenter(spec: str) -> Any:
    """A segmenter from ``marker[:MIN]``, ``preset:NAME``, ``paragraph`` or ``tokens:N``."""
    from mrt_env import segmenters

    kind, _, value = spec.partition(":")
    if kind == "marker":
        return segmenters.MarkerSegmenter(min_paragraphs=int(value or 3))
    if kind == "preset":
        return segmenters.MarkerSegmenter.preset(value)
    if kind == "paragraph":
        return segmenters.ParagraphSegmenter()
    if kind == "tokens":
        raise ValueError("tokens:N needs the policy's tokenizer; use marker or paragraph here")
    raise ValueError(f"unknown segmenter {spec!r}; use marker[:MIN], preset:NAME or paragraph")


def sample_seed(seed: int, problem_index: int, sample: int) -> int:
    """The seed of one response (independent of the policy: common random numbers)."""
    return int(np.random.SeedSequence([seed, problem_index, sample]).generate_state(1)[0])


# ---------------------------------------------------------------- sampling
def forced_generate(
    lm: Any,
    prompts: list[str],
    seeds: list[int],
    args: Args,
    extensions: int,
    forced: list[bool] | None = None,
) -> list[list[str]]:
    """Budget-forced responses, batched across prompts; ``out[i][w]`` is prompt i's response
    after ``w`` extensions (``w = 0`` is the natural response).

    Same text as ``mrt_env.budget_forcing.budget_forced_generate`` with
    ``BudgetForcingConfig(extensions, extension_tokens)`` and the same seed, because a seed
    fixes a prompt's samples whatever else is in the batch; here each round of extensions is
    one batched ``lm.generate`` call. Only prompts with ``forced[i]`` are extended, and a
    response stops being extended when one more extension could overflow the model's context
    (``max_context_tokens``); later entries then repeat the last response.
    """
    from mrt_env.budget_forcing import BudgetForcingConfig, continue_thinking
    from mrt_env.lm.base import SamplingParams
    from mrt_env.segmenters import thinking_part

    config = BudgetForcingConfig(extensions=extensions, max_extension_tokens=args.extension_tokens)
    streams = [np.random.SeedSequence(s).generate_state(extensions + 1) for s in seeds]
    sampling = {"temperature": args.temperature, "top_p": args.top_p}
    first = lm.generate(
        prompts, SamplingParams(args.token_budget, **sampling), [int(s[0]) for s in streams]
    )
    texts = [samples[0].text for samples in first]
    ended = [_ends(samples[0], config.end_think) for samples in first]
    if forced is not None:
        ended = [e and f for e, f in zip(ended, forced, strict=True)]
    out = [[text] for text in texts]
    room = context_room(lm, args)
    extension_params = SamplingParams(args.extension_tokens, **sampling)
    for index in range(extensions):
        stems = {
            i: continue_thinking(
                thinking_part(texts[i], config.end_think)[0] + config.end_think, index, config
            )
            for i in range(len(prompts))
            if ended[i]
        }
        live = [i for i, stem in stems.items() if lm.count_tokens(prompts[i] + stem) <= room]
        if live:
            outputs = lm.generate(
                [prompts[i] + stems[i] for i in live],
                extension_params,
                [int(streams[i][index + 1]) for i in live],
            )
            for i, samples in zip(live, outputs, strict=True):
                texts[i] = stems[i] + samples[0].text
                ended[i] = _ends(samples[0], config.end_think)
        for i in set(stems) - set(live):
            ended[i] = False  # out of context room: stop extending this response
        for i in range(len(prompts)):
            out[i].append(texts[i])
    return out


def context_room(lm: Any, args: Args) -> float:
    """Most prompt + response tokens before an extension such that the extension and the
    meta-prover's forced answer (termination + answer) still fit the model's context."""
    from mrt_env.templates import get_template

    limit = args.max_context_tokens or getattr(
        getattr(getattr(lm, "model", None), "config", None), "max_position_embeddings", 0
    )
    if not limit:
        return math.inf
    termination = lm.count_tokens(get_template(args.template).termination)
    return limit - args.extension_tokens - termination - args.max_answer_tokens - 4


def _ends(completion: Any, end_think: str) -> bool:
    return end_think in completion.text or completion.stop_string == end_think


def replay_env(lm: Any, prover: Any, problems: list[Any], args: Args, budget: int) -> Any:
    """An MRTMath-v0 env whose replays give J after every episode (μ = ``prover``)."""
    from mrt_env.env import MRTMathEnv

    return MRTMathEnv(
        problems=problems,
        lm=lm,
        prover=prover,
        template=args.template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        prover_temperature=args.prover_temperature,
        token_budget=budget,
        max_episodes=256,
        segmenter=build_segmenter(args.segmenter),
    )


def build_prover(lm: Any, args: Args) -> Any:
    """A sampled meta-prover on ``lm`` with the configured K, temperature and answer cap."""
    from mrt_env.config import EnvConfig
    from mrt_env.config import build_prover as build_env_prover
    from mrt_env.templates import get_template

    config = EnvConfig(
        lm=lm,
        template=args.template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        prover_temperature=args.prover_temperature,
    )
    return build_env_prover(config, lm, get_template(args.template))


def process_chunk(
    lm: Any, prover: Any, problems: list[Any], indices: list[int], args: Args
) -> list[dict[str, Any]]:
    """Sample, replay and grade the responses of a chunk of problems; one record each."""
    import rewards
    from mrt_env.replay import replay_many
    from mrt_env.templates import get_template

    template = get_template(args.template)
    extensions = max(args.extensions, default=0)
    jobs = [(p, s) for p in range(len(problems)) for s in range(args.samples)]
    prompts = [template.render_prompt(problems[p].problem) for p, _ in jobs]
    seeds = [sample_seed(args.seed, indices[p], s) for p, s in jobs]
    forced = [s < args.forced_samples for _, s in jobs]
    clock = time.perf_counter()
    texts = forced_generate(lm, prompts, seeds, args, extensions, forced)
    TIMINGS["generate_s"] += time.perf_counter() - clock
    replay_seed = sample_seed(args.seed, indices[0], REPLAY_STREAM)
    long_budget = args.token_budget + extensions * (args.extension_tokens + 32) + 128
    env = replay_env(lm, prover, problems, args, long_budget)
    todo = [
        (j, w)
        for j in range(len(jobs))
        for w in [0, *extrapolation_budgets(args)]
        if w == 0 or forced[j]
    ]
    clock = time.perf_counter()
    trajectories = replay_many(
        env,
        [texts[j][w] for j, w in todo],
        [jobs[j][0] for j, _ in todo],
        seed=replay_seed,
        batch_size=len(todo),
    )
    TIMINGS["replay_s"] += time.perf_counter() - clock
    clock = time.perf_counter()
    verifications = rewards.verify_many(
        [(texts[j][0], problems[jobs[j][0]].answer) for j in range(len(jobs))]
    )
    TIMINGS["verify_s"] += time.perf_counter() - clock
    records = [
        {"problem_id": p.id, "problem_index": i, "samples": []}
        for p, i in zip(problems, indices, strict=True)
    ]
    by_job: dict[int, dict[str, Any]] = {}
    for (j, w), trajectory in zip(todo, trajectories, strict=True):
        sample = by_job.setdefault(j, {"forced": {}})
        entry = {
            "curve": [list(point) for point in trajectory.curve],
            "episodes": len(trajectory.episodes),
        }
        if w == 0:
            verification = verifications[j]
            sample.update(
                response=texts[j][0],
                tokens=lm.count_tokens(texts[j][0]),
                correct=bool(verification.correct),
                answer=_answer_key(verification),
                j=[v for v in trajectory.j if v is not None],
                **entry,
            )
        else:
            sample["forced"][str(w)] = {"tokens": lm.count_tokens(texts[j][w]), **entry}
    for j, (p, _) in enumerate(jobs):
        records[p]["samples"].append(by_job[j])
    return records


def _answer_key(verification: Any) -> str | None:
    """The vote key of an answer for maj@k (normalized answer and its correctness)."""
    from rewards.normalize import normalize_answer

    if verification.answer is None:
        return None
    return f"{normalize_answer(verification.answer)}|{int(verification.correct)}"


# ---------------------------------------------------------------- cache (resume)
def read_cache(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished ``(policy, problem id) -> record``; a torn last line is ignored."""
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[(record["policy"], record["problem_id"])] = record
    return done


def append_cache(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records as JSON lines in one write, then flush to disk."""
    with path.open("a") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------- metrics
def curves(records: list[dict[str, Any]], w: int = 0) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per problem, per sample ``(tokens, J)`` arrays (``w`` > 0: forced traces only)."""
    out = []
    for record in records:
        traces = []
        for sample in record["samples"]:
            curve = sample["curve"] if w == 0 else sample["forced"].get(str(w), {}).get("curve")
            if curve:
                points = np.asarray(curve, dtype=float).reshape(-1, 2)
                traces.append((points[:, 0], points[:, 1]))
        if traces:
            out.append(traces)
    return out


def regret_per_problem(records: list[dict[str, Any]], budget: float, w: int = 0) -> np.ndarray:
    """Normalized regret of each problem (1 − mean area of its traces) at ``budget``."""
    from mrt_env.regret import normalized_area_per_problem

    return 1.0 - normalized_area_per_problem(curves(records, w), budget)


def maj_curve(records: list[dict[str, Any]], samples: int) -> dict[str, list[float]]:
    """maj@k for k = 1..S (per-problem means) against the mean total tokens of k responses."""
    from mrt_env.regret import maj_at_k

    accuracy, tokens = [], []
    for k in range(1, samples + 1):
        per_problem = [
            maj_at_k([s["answer"] for s in r["samples"]], [s["correct"] for s in r["samples"]], k)
            for r in records
        ]
        accuracy.append(float(np.mean(per_problem)))
        tokens.append(float(k * np.mean([s["tokens"] for r in records for s in r["samples"]])))
    return {"k": list(range(1, samples + 1)), "tokens": tokens, "accuracy": accuracy}


def summarize_policy(records: list[dict[str, Any]], args: Args) -> dict[str, Any]:
    """Every figure of one policy (CIs over problems)."""
    from mrt_env.regret import pass_at_k, regret_over_episode_budget

    correct = [[s["correct"] for s in r["samples"]] for r in records]
    pass1 = [pass_at_k(len(c), sum(c), 1) for c in correct]
    regret = {str(b): bootstrap_ci(regret_per_problem(records, b)) for b in args.budgets}
    extrapolated = {
        str(b): bootstrap_ci(regret_per_problem(records, b, w))
        for w, b in extrapolation_budgets(args).items()
    }
    j_curves = [[s["j"] for s in r["samples"] if s["j"]] for r in records]
    episode_regret = regret_over_episode_budget([c for c in j_curves if c], args.episode_budget)
    return {
        "pass@1": bootstrap_ci(pass1),
        "mean_tokens": bootstrap_ci(
            [np.mean([s["tokens"] for s in r["samples"]]) for r in records]
        ),
        "mean_episodes": float(np.mean([s["episodes"] for r in records for s in r["samples"]])),
        "normalized_regret": regret,
        "normalized_regret_extrapolated": extrapolated,
        "maj@k": maj_curve(records, args.samples),
        "regret_over_episodes": episode_regret.tolist(),
    }


def extrapolation_budgets(args: Args) -> dict[int, int]:
    """``w -> budget``: ``max(budgets) + w * extension_tokens`` (none without forced traces)."""
    if not args.budgets or args.forced_samples < 1:
        return {}
    return {w: max(args.budgets) + w * args.extension_tokens for w in args.extensions if w > 0}


def compare(
    policies: dict[str, list[dict[str, Any]]], summary: dict[str, Any], args: Args
) -> dict[str, Any]:
    """Pairwise probability of lower regret and token efficiency."""
    from mrt_env.regret import token_efficiency

    names = list(policies)
    budgets = [(str(b), b, 0) for b in args.budgets]
    budgets += [(str(b), b, w) for w, b in extrapolation_budgets(args).items()]
    out: dict[str, Any] = {"probability_lower_regret": {}, "token_efficiency": {}}
    for a in names:
        for b in names:
            if a == b:
                continue
            common = _common_problems(policies[a], policies[b])
            out["probability_lower_regret"][f"{a}<{b}"] = {
                key: probability_of_improvement(
                    regret_per_problem(common[0], budget, w),
                    regret_per_problem(common[1], budget, w),
                )
                for key, budget, w in budgets
            }
            maj_a, maj_b = summary[a]["maj@k"], summary[b]["maj@k"]
            value = token_efficiency(
                (maj_a["tokens"], maj_a["accuracy"]), (maj_b["tokens"], maj_b["accuracy"])
            )
            out["token_efficiency"][f"{a}_vs_{b}"] = None if math.isnan(value) else value
    return out


def _common_problems(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> tuple[list[Any], list[Any]]:
    ids = {r["problem_id"] for r in a} & {r["problem_id"] for r in b}
    return [r for r in a if r["problem_id"] in ids], [r for r in b if r["problem_id"] in ids]


# ---------------------------------------------------------------- report
def plot_all(
    policies: dict[str, list[dict[str, Any]]], summary: dict[str, Any], args: Args, run: Path
) -> None:
    """regret.png, accuracy_tokens.png and j_tokens.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = extrapolation_budgets(args)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, stats) in enumerate(summary.items()):
        parts = [(list(args.budgets), "normalized_regret", "o-")]
        if extra and args.budgets:
            parts.append(
                ([max(args.budgets), *extra.values()], "normalized_regret_extrapolated", "o--")
            )
        for xs, key, style in parts:
            points = [stats["normalized_regret" if b in args.budgets else key][str(b)] for b in xs]
            label = name if style == "o-" else None
            ax.plot(xs, [p["mean"] for p in points], style, color=f"C{i}", label=label)
            lows, highs = [p["ci_low"] for p in points], [p["ci_high"] for p in points]
            ax.fill_between(xs, lows, highs, color=f"C{i}", alpha=0.12)
    ax.set_xlabel("token budget C0 (dashed: extrapolated with budget forcing)")
    ax.set_ylabel("normalized regret (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run / "regret.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, s) in enumerate(summary.items()):
        ax.plot(s["maj@k"]["tokens"], s["maj@k"]["accuracy"], "o-", color=f"C{i}", label=name)
    ax.set_xlabel("total tokens (k responses)")
    ax.set_ylabel("maj@k accuracy (k = 1..S)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run / "accuracy_tokens.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(0, max(max(args.budgets, default=1), *extra.values(), 1), 64)
    for i, (name, records) in enumerate(policies.items()):
        ax.plot(grid, mean_j_on_grid(records, grid), color=f"C{i}", label=name)
        if extra:
            forced = mean_j_on_grid(records, grid, max(extra))
            ax.plot(grid, forced, "--", color=f"C{i}", label=f"{name}, w={max(extra)}")
    ax.set_xlabel("tokens (prompt + thinking + forced answer)")
    ax.set_ylabel("mean J (flat after a response ends)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run / "j_tokens.png", dpi=120)
    plt.close(fig)


def mean_j_on_grid(records: list[dict[str, Any]], grid: np.ndarray, w: int = 0) -> np.ndarray:
    """Mean over traces of J at each grid token count (0 before the first read, flat after);
    ``w`` > 0: the traces forced to think ``w`` more times."""
    values = []
    for problem in curves(records, w):
        for tokens, j in problem:
            x, y = np.concatenate([[0.0], tokens]), np.concatenate([[0.0], j])
            values.append(np.interp(grid, x, y, right=y[-1]))
    return np.mean(values, axis=0) if values else np.zeros_like(grid)


def markdown(
    summary: dict[str, Any], comparisons: dict[str, Any], args: Args, notes: list[str]
) -> str:
    """results.md: one row per policy, then pairwise comparisons."""
    extra = extrapolation_budgets(args)
    head = ["policy", "pass@1", "tokens"]
    head += [f"regret@{b}" for b in args.budgets] + [
        f"regret@{b} (w={w})" for w, b in extra.items()
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        cells = [name, fmt_ci(s["pass@1"]), f"{s['mean_tokens']['mean']:.1f}"]
        cells += [fmt_ci(s["normalized_regret"][str(b)]) for b in args.budgets]
        cells += [fmt_ci(s["normalized_regret_extrapolated"][str(b)]) for b in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| comparison | P(lower regret) at the largest budget | token efficiency |",
        "|---|---|---|",
    ]
    last = str(max(args.budgets)) if args.budgets else None
    for pair, by_budget in comparisons["probability_lower_regret"].items():
        a, b = pair.split("<")
        eff = comparisons["token_efficiency"].get(f"{a}_vs_{b}")
        p = fmt_ci(by_budget[last], 2) if last else "n/a"
        lines.append(f"| {a} vs {b} | {p} | {'n/a' if eff is None else f'{eff:.2f}x'} |")
    lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- training
def train_checkpoints(args: Args, run: Path) -> dict[str, str]:
    """Run ``mrt-train`` for GRPO and MRT with the same wall-clock; returns model paths."""
    trained = {}
    cli = Path(sys.executable).with_name("mrt-train")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "agents.cli"]
    for algo in ("grpo", "mrt"):
        out = run / "train" / algo
        subprocess.run(
            [
                *command,
                "--algo",
                algo,
                "--model",
                "tiny",
                "--minutes",
                str(args.train_minutes),
                "--steps",
                "100000",
                "--seed",
                str(args.seed),
                "--out",
                str(out),
            ],
            check=True,
        )
        trained[algo] = str(out / "model")
    return trained


# ---------------------------------------------------------------- main
def prover_spec(args: Args) -> str:
    """The model spec of ``--prover`` (a tiny variant name becomes ``tiny:VARIANT``)."""
    return f"tiny:{args.prover}" if args.prover in TINY_VARIANTS else args.prover


def load_prover_model(args: Args) -> Any | None:
    """The meta-prover's model when it is not each policy's own (``--prover``)."""
    if args.prover == "self":
        return None
    spec = prover_spec(args)
    lm, why = load_policy(spec, args.device)
    if lm is None:
        raise SystemExit(f"cannot load the meta-prover model {spec!r}: {why}")
    return lm


def evaluate_policies(
    args: Args, specs: dict[str, str], problems: list[Any], cache_path: Path
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Records per policy (computed, or read from the cache); notes on skipped policies."""
    from tqdm import tqdm

    prover_tag = "" if args.prover == "self" else ":" + policy_fingerprint(prover_spec(args))
    fingerprints = {name: policy_fingerprint(spec) + prover_tag for name, spec in specs.items()}
    done = {
        key: record
        for key, record in read_cache(cache_path).items()
        if record.get("fingerprint") == fingerprints.get(key[0])
    }
    prover_lm = load_prover_model(args)
    size = args.chunk_problems
    chunks = [list(range(i, min(i + size, len(problems)))) for i in range(0, len(problems), size)]
    todo = {
        name: [c for c in chunks if any((name, problems[i].id) not in done for i in c)]
        for name in specs
    }
    notes: list[str] = []
    bar = tqdm(total=sum(len(c) for cs in todo.values() for c in cs), desc="policy x problem")
    for name, spec in specs.items():
        if not todo[name]:
            continue
        lm, why = load_policy(spec, args.device)
        if lm is None:
            notes.append(f"policy {name!r} ({spec}) skipped: cannot load it ({why})")
            print(f"[regret] skipping policy {name!r}: {why}", file=sys.stderr)
            bar.update(sum(len(c) for c in todo[name]))
            continue
        prover = build_prover(prover_lm or lm, args)
        for chunk in todo[name]:
            clock = time.perf_counter()
            records = process_chunk(lm, prover, [problems[i] for i in chunk], chunk, args)
            seconds = (time.perf_counter() - clock) / len(chunk)
            tags = {"policy": name, "fingerprint": fingerprints[name], "seconds": seconds}
            records = [{**tags, **r} for r in records]
            append_cache(cache_path, records)
            done.update({(name, r["problem_id"]): r for r in records})
            bar.update(len(chunk))
    bar.close()
    policies = {
        name: [done[(name, p.id)] for p in problems if (name, p.id) in done] for name in specs
    }
    policies = {name: records for name, records in policies.items() if records}
    missing = [name for name in specs if name not in policies]
    if missing:
        notes.append(f"compared only {sorted(policies)}; missing: {missing}")
    return policies, notes


def write_traces(policies: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The sampled responses as JSONL (input of benchmarks/analyze_traces.py)."""
    with path.open("w") as handle:
        for name, records in policies.items():
            for record in records:
                for i, sample in enumerate(record["samples"]):
                    line = {"policy": name, "problem_id": record["problem_id"], "sample": i}
                    handle.write(json.dumps({**line, "response": sample["response"]}) + "\n")


def main(args: Args) -> dict[str, Any]:
    start = time.perf_counter()
    excluded = ("name", "run_dir", "dump_traces")
    settings = {k: v for k, v in asdict(args).items() if k not in excluded}
    run = Path(args.run_dir) / (args.name or f"run-{settings_hash(settings)}")
    run.mkdir(parents=True, exist_ok=True)
    trained = train_checkpoints(args, run) if args.train else {}
    specs = policy_specs(args, trained)
    policies, notes = evaluate_policies(args, specs, load_problems(args), run / "cache.jsonl")
    if not policies:
        raise SystemExit("no policy could be evaluated; see the messages above")
    summary = {name: summarize_policy(records, args) for name, records in policies.items()}
    comparisons = compare(policies, summary, args)
    plot_all(policies, summary, args, run)
    if args.dump_traces:
        write_traces(policies, run / "traces.jsonl")
    elapsed = time.perf_counter() - start
    extra = {
        "policy_specs": specs,
        "policy_fingerprints": {name: policy_fingerprint(spec) for name, spec in specs.items()},
        "extrapolation_budgets": extrapolation_budgets(args),
    }
    results = {
        "settings": {**settings, **extra},
        "environment": run_environment(),
        "policies": summary,
        "comparisons": comparisons,
        "notes": notes,
        "num_problems": {name: len(records) for name, records in policies.items()},
        "wall_time_s": elapsed,
        "compute_time_s": {
            name: sum(r.get("seconds", 0.0) for r in records) for name, records in policies.items()
        },
        "timings_s": dict(TIMINGS),
    }
    write_json(run / "results.json", results)
    (run / "results.md").write_text(markdown(summary, comparisons, args, notes))
    print((run / "results.md").read_text())
    for note in notes:
        print(f"NOTE: {note}")
    files = "results.json, results.md, regret.png, accuracy_tokens.png, j_tokens.png"
    print(f"wrote {run}/: {files} ({elapsed:.0f} s this run)")
    return results


if __name__ == "__main__":
    main(parse_args(Args))
