"""Calibration of the learned meta-prover against the sampled one, and what each costs.

Held-out problems; the base policy writes one response per problem (``--responses``), cut at
every episode boundary (the empty thinking, each episode, the natural end). The reference
J* of each prefix is the fraction of ``--k-ref`` (64) sampled forced answers verified correct
(cached in ``OUT/jstar/labels.jsonl``; an interrupted run resumes). Then, in one run, on the
same prefixes:

* the sampled μ at every K of ``--ks`` (1, 2, 4, 8, 16), with seeds independent of J*'s;
* the learned μ of each folder of ``--prover`` (``mrt-prover train``; comma-separated).

Cost is measured as each μ is used in training: the requests go to ``estimate`` in calls of
``--call-size`` (16 = the trajectories of one ``mrt-train`` step at its defaults); the sampled
μ makes one ``generate`` call per call (its K answers share the prefix's prefill), the learned
μ one padded forward pass per call; the sampled μ's prefix KV cache is emptied before each
pass (it reuses, within a call, the KV of a shorter prefix of the same response, as in
training it reuses the policy's). ``--repeats`` timed passes over all prefixes (estimates
are identical across repeats: same seeds); reported: median [min, max] of wall seconds per
estimate, and generated tokens per estimate.

Printed per estimator: Brier score against J* with J*'s binomial noise subtracted,
``mean((p - Ĵ*)^2 - Ĵ*(1 - Ĵ*) / (K* - 1))`` (``Ĵ*(1 - Ĵ*)/(K* - 1)`` is an unbiased estimate
of Var(Ĵ*) = J*(1 - J*)/K*, so the figure estimates ``mean((p - J*)^2)``); expected
calibration error (10 equal-width bins of p, |mean p - mean Ĵ*| weighted by the bin's share);
AUROC of p for Ĵ* > 0.5; Spearman correlation and sign agreement of **progress** (ΔJ between
consecutive prefixes of a response; a |Δ| ≤ 0.05 counts as sign 0); and cost per estimate.
Also: the J* distribution (share in (0.1, 0.9)); the K at which the sampled μ's Brier equals
the learned μ's, log2-interpolated between measured K, and from the sampled μ's expected error
``V / K`` with ``V = mean Ĵ*(1 - Ĵ*) K*/(K* - 1)`` (the sampled μ at K is an unbiased draw of
the J* it is scored against, so its noise-corrected Brier is J's binomial variance over K);
the cost ratio of the sampled μ to the learned μ at every K and at the equal-error K; a plot of
error against cost and a reliability diagram. Per-prefix estimates: ``OUT/estimates.jsonl``.

Run:  .venv/bin/python benchmarks/prover_calibration.py --prover mrt_env/assets/prover-tiny-explain
      .venv/bin/python benchmarks/prover_calibration.py --model tiny:graded \
          --prover mrt_env/assets/prover-tiny-graded --num-problems 60
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import itertools
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import fmt_spread, parse_args, run_environment, write_json
from scipy import stats

from mrt_env.config import build_lm
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.labels import collect_labels, read_labels
from mrt_env.prover.learned import LearnedMetaProver
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.sources import resolve_source


@dataclass(frozen=True)
class Args:
    """Calibration of the learned meta-prover against the sampled one, and their cost."""

    prover: str = "mrt_env/assets/prover-tiny-explain"
    """folder(s) of learned meta-provers (mrt-prover train), comma-separated"""
    model: str = "tiny"
    """policy and sampled μ's model: tiny, tiny:VARIANT or a path"""
    problems: str = "tinymath:heldout"
    """held-out problem source"""
    num_problems: int = 12
    """problems used (the first N of the source)"""
    responses: int = 1
    """base-policy responses per problem"""
    max_tokens: int = 256
    """token cap of a response"""
    temperature: float = 1.0
    """sampling temperature of the base policy's responses (part of J*'s cache key)"""
    k_ref: int = 64
    """forced answers of the reference J*"""
    ks: str = "1,2,4,8,16"
    """K values of the sampled μ"""
    seed: int = 0
    """seed of responses and J*; the sampled μ uses seeds offset from it by 10**6 * K"""
    out: str = "runs/prover_calibration"
    """output folder (J* cache, summary.json, estimates.jsonl, plots)"""
    threads: int = 1
    """torch CPU threads (0 = torch's default; 1 is faster for small models on shared CPUs)"""
    call_size: int = 16
    """requests per estimate call (as in training: the trajectories of one step)"""
    repeats: int = 3
    """timed passes over all prefixes per estimator (median and spread reported)"""
    write_card: bool = False
    """record the figures in each learned μ folder's card.json ("calibration")"""


def brier_corrected(p: np.ndarray, j_ref: np.ndarray, k_ref: int) -> float:
    """Brier against J* less J*'s binomial noise (see the module docstring)."""
    return float(np.mean((p - j_ref) ** 2 - j_ref * (1 - j_ref) / (k_ref - 1)))


def ece(p: np.ndarray, j_ref: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins of p."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(p[index == b].mean() - j_ref[index == b].mean()) * np.mean(index == b)
            for b in range(bins)
            if np.any(index == b)
        )
    )


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def progress_pairs(rows: list[Any], values: np.ndarray) -> np.ndarray:
    """ΔJ of consecutive prefixes of each response (rows in collection order)."""
    deltas = []
    for i in range(1, len(rows)):
        same = (rows[i].problem_id, rows[i].response_index) == (
            rows[i - 1].problem_id,
            rows[i - 1].response_index,
        )
        if same and rows[i].episode_index == rows[i - 1].episode_index + 1:
            deltas.append(values[i] - values[i - 1])
    return np.array(deltas)


def metrics(p: np.ndarray, rows: list[Any], j_ref: np.ndarray, k_ref: int) -> dict[str, float]:
    dp, dj = progress_pairs(rows, p), progress_pairs(rows, j_ref)
    sign = lambda x: np.where(np.abs(x) <= 0.05, 0, np.sign(x))  # noqa: E731
    rho = stats.spearmanr(dp, dj).statistic if np.ptp(dp) > 0 and np.ptp(dj) > 0 else np.nan
    return {
        "brier": brier_corrected(p, j_ref, k_ref),
        "brier_raw": float(np.mean((p - j_ref) ** 2)),
        "ece": ece(p, j_ref),
        "auroc": auroc(p, j_ref > 0.5),
        "progress_spearman": float(rho),
        "progress_sign_agreement": float(np.mean(sign(dp) == sign(dj))) if len(dp) else np.nan,
    }


def timed_estimates(
    prover: Any, requests: list[ProverRequest], call_size: int, repeats: int
) -> tuple[np.ndarray, list[float], list[float]]:
    """J of every request in calls of ``call_size``, ``repeats`` times: (J of the first
    pass, wall seconds per estimate of each pass, generated tokens of each estimate).

    The language model's prefix KV cache is emptied before each pass: J*'s pass (and the pass
    before) left these very inputs in it, which no training step would find there.
    """
    walls: list[float] = []
    first: np.ndarray | None = None
    tokens: list[float] = []
    clear = getattr(getattr(prover, "lm", None), "clear_prefix_cache", None)
    for _ in range(repeats):
        if clear is not None:
            clear()
        found: list[Any] = []
        start = time.perf_counter()
        for at in range(0, len(requests), call_size):
            found.extend(prover.estimate(requests[at : at + call_size]))
        walls.append((time.perf_counter() - start) / len(requests))
        if first is None:
            first = np.array([e.j for e in found])
            tokens = [e.answer_tokens * e.num_samples for e in found]
    assert first is not None
    return first, walls, tokens


def equal_error_k(
    curve: list[tuple[int, float, float]], target: float
) -> tuple[float | None, float | None]:
    """K where the sampled μ's Brier equals ``target`` (log2-interpolated between the measured
    K of ``curve`` = [(K, Brier, wall)]) and the sampled μ's wall there; ``None`` outside."""
    for (k0, b0, w0), (k1, b1, w1) in itertools.pairwise(curve):
        if min(b0, b1) <= target <= max(b0, b1) and b0 != b1:
            t = (b0 - target) / (b0 - b1)
            x = np.log2(k0) + t * (np.log2(k1) - np.log2(k0))
            return float(2**x), float(w0 + t * (w1 - w0))
    return None, None


args = parse_args(Args)
if args.threads > 0:
    import torch

    torch.set_num_threads(args.threads)
if args.call_size < 1 or args.repeats < 1:
    raise SystemExit("--call-size and --repeats must be >= 1")
out = Path(args.out)
ks = [int(k) for k in args.ks.split(",")]
folders = [f.strip() for f in args.prover.split(",") if f.strip()]
load_start = os.getloadavg()
print(f"load average at start: {load_start}")

# 1. the reference J*: base-policy responses cut at every episode boundary, K* answers each
lm = build_lm(args.model, None)
source = resolve_source(args.problems)
problems = [source[i] for i in range(min(args.num_problems, len(source)))]
jstar_path = collect_labels(
    lm,
    problems,
    out / "jstar",
    policy_id=args.model if args.temperature == 1.0 else f"{args.model}@T={args.temperature}",
    k=args.k_ref,
    responses_per_problem=args.responses,
    max_tokens=args.max_tokens,
    temperature=args.temperature,
    chunk_size=4,  # K* = 64 answers for every prefix of a chunk are sampled in one call
    seed=args.seed,
)
wanted = {p.id for p in problems}
rows = [r for r in read_labels(jstar_path) if r.problem_id in wanted]
j_ref = np.array([r.j for r in rows])
requests = [ProverRequest(r.problem_id, r.prompt, r.gold, r.prefix, r.seed) for r in rows]
graded = float(np.mean((j_ref > 0.1) & (j_ref < 0.9)))
histogram = np.histogram(j_ref, bins=10, range=(0, 1))[0].tolist()
print(
    f"{len(rows)} prefixes of {len(problems)} problems; J* in (0.1, 0.9): {graded:.1%}; "
    f"histogram (10 bins): {histogram}"
)
if graded < 0.25:
    print(
        "note: fewer than 25% of prefixes are graded: calibration on this set is nearly "
        "trivial (J* is almost always 0 or 1); it cannot test the headline target"
    )

# 2. every estimator on the same prefixes, in one run, called as in training
results: dict[str, dict[str, Any]] = {}
estimates: dict[str, np.ndarray] = {}
for k in ks:
    sampled = SampledMetaProver(lm, None, k=k, cache_size=0)  # the model's own template
    shifted = [
        ProverRequest(
            q.problem_id, q.prompt, q.gold, q.prefix, (q.seed + 10**6 * k + 17) % (2**31 - 1)
        )
        for q in requests
    ]
    p, walls, tokens = timed_estimates(sampled, shifted, args.call_size, args.repeats)
    estimates[f"sampled K={k}"] = p
    results[f"sampled K={k}"] = {"k": k, "gen_tokens": float(np.mean(tokens)), "walls": walls}
learned_folders: dict[str, str] = {}
cards: dict[str, dict[str, Any]] = {}
for folder in folders:
    name = "learned" if len(folders) == 1 else f"learned {Path(folder).name}"
    learned_folders[name] = folder
    learned = LearnedMetaProver.from_pretrained(folder, policy_lm=lm)
    learned.estimate(requests[:2])  # warm-up (first-call allocations), not timed
    passes = learned.forward_passes
    p, walls, _ = timed_estimates(learned, requests, args.call_size, args.repeats)
    calls = args.repeats * -(-len(requests) // args.call_size)
    estimates[name] = p
    results[name] = {
        "k": 0,
        "gen_tokens": 0.0,
        "walls": walls,
        "forward_passes_per_call": (learned.forward_passes - passes) / calls,
    }
    cards[name] = {key: learned.card.get(key) for key in ("feature_model", "layer", "head")}
    cards[name]["features"] = learned.card.get("features", "hidden")
for name, p in estimates.items():
    results[name]["wall_s"] = statistics.median(results[name]["walls"])
    results[name].update(metrics(p, rows, j_ref, args.k_ref))

# 3. the learned μ's worth in samples: K where the sampled μ's Brier equals the learned μ's
variance = float(np.mean(j_ref * (1 - j_ref) * args.k_ref / (args.k_ref - 1)))
curve = [(k, results[f"sampled K={k}"]["brier"], results[f"sampled K={k}"]["wall_s"]) for k in ks]
worth: dict[str, dict[str, Any]] = {}
for name in learned_folders:
    target, wall = results[name]["brier"], results[name]["wall_s"]
    equal_k, equal_wall = equal_error_k(curve, target)
    worth[name] = {
        "equal_brier_k": equal_k,
        "cost_ratio_at_equal_k": None if equal_wall is None else equal_wall / wall,
        "equal_brier_k_expected": variance / target if target > 0 else None,
        "cost_ratio": {f"K={k}": results[f"sampled K={k}"]["wall_s"] / wall for k in ks},
    }
    if equal_k is None:
        where = "better than" if target < min(b for _, b, _ in curve) else "worse than"
        print(f"{name}: its Brier is {where} every sampled K in {ks}: no crossing between them")

# 4. report
header = (
    "| μ | Brier (noise-corrected) | ECE | AUROC J*>0.5 | progress Spearman | "
    "progress sign agr. | wall ms / estimate, median [min, max] | gen. tokens / estimate |"
)
lines = [header, "|" + "---|" * 8]
for name, r in results.items():
    lines.append(
        f"| {name} | {r['brier']:.4f} | {r['ece']:.3f} | {r['auroc']:.3f} | "
        f"{r['progress_spearman']:.3f} | {r['progress_sign_agreement']:.3f} | "
        f"{fmt_spread(r['walls'], 2, 1000).rsplit(' (', 1)[0]} | {r['gen_tokens']:.1f} |"
    )
table = "\n".join(lines)
print(table)
print(
    f"sampled μ's expected Brier V/K with V = {variance:.4f}: "
    + ", ".join(f"K={k}: {variance / k:.4f}" for k in ks)
)
for name, w in worth.items():
    ratios = ", ".join(f"{key}: {value:.1f}x" for key, value in w["cost_ratio"].items())
    print(f"{name}: wall cost of the sampled μ / the learned μ's: {ratios}")
    if w["equal_brier_k"] is not None:
        print(
            f"{name}: the sampled μ matches its Brier at K ≈ {w['equal_brier_k']:.2f} "
            f"(interpolated), at {w['cost_ratio_at_equal_k']:.1f}x its cost"
        )
    if w["equal_brier_k_expected"] is not None:
        print(f"{name}: expected equal-error K = V / Brier ≈ {w['equal_brier_k_expected']:.1f}")
load_end = os.getloadavg()
print(f"load average at end: {load_end}")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(
    [results[f"sampled K={k}"]["wall_s"] for k in ks],
    [results[f"sampled K={k}"]["brier"] for k in ks],
    "o-",
    label="sampled μ (K)",
)
for k in ks:
    left.annotate(
        f"K={k}", (results[f"sampled K={k}"]["wall_s"], results[f"sampled K={k}"]["brier"])
    )
for name in learned_folders:
    left.plot([results[name]["wall_s"]], [results[name]["brier"]], "*", ms=12, label=name)
left.set(
    xscale="log",
    xlabel="wall seconds per estimate",
    ylabel="Brier vs J* (noise-corrected)",
    title="error against cost",
)
left.legend()
for name in [*learned_folders, "sampled K=8"]:
    if name not in estimates:
        continue
    p = estimates[name]
    index = np.minimum((p * 10).astype(int), 9)
    xs = [p[index == b].mean() for b in range(10) if np.any(index == b)]
    ys = [j_ref[index == b].mean() for b in range(10) if np.any(index == b)]
    right.plot(xs, ys, "o-", label=name)
right.plot([0, 1], [0, 1], "k:", lw=1)
right.set(xlabel="estimated J", ylabel=f"mean J* (K*={args.k_ref})", title="reliability")
right.legend()
figure.tight_layout()
figure.savefig(out / "calibration.png", dpi=120)

with (out / "estimates.jsonl").open("w") as handle:
    for i, row in enumerate(rows):
        record = {
            "problem_id": row.problem_id,
            "response_index": row.response_index,
            "episode_index": row.episode_index,
            "j_star": row.j,
            "k_star": row.num_samples,
            "estimates": {name: float(p[i]) for name, p in estimates.items()},
        }
        handle.write(json.dumps(record) + "\n")
command = "python benchmarks/prover_calibration.py " + " ".join(sys.argv[1:])
summary = {
    "command": command,
    "args": asdict(args),
    "prefixes": len(rows),
    "problems": len(problems),
    "jstar_share_graded": graded,
    "jstar_histogram": histogram,
    "jstar_variance": variance,
    "results": results,
    "worth": worth,
    "learned_cards": cards,
    "environment": run_environment(),
    "load_average_start": load_start,
    "load_average_end": load_end,
}
write_json(out / "summary.json", summary)
if args.write_card:
    for name, folder in learned_folders.items():
        card_path = Path(folder) / "card.json"
        card = json.loads(card_path.read_text())
        card["calibration"] = {
            "command": command,
            **{
                key: summary[key]
                for key in ("prefixes", "problems", "jstar_share_graded", "jstar_histogram")
            },
            **worth[name],
            "k_ref": args.k_ref,
            "results": results,
            "load_average_start": load_start,
            "load_average_end": load_end,
        }
        card_path.write_text(json.dumps(card, indent=2, sort_keys=True, default=float) + "\n")
        print(f"recorded the figures in {card_path}")
(out / "table.md").write_text(table + "\n")
print(f"wrote {out / 'summary.json'}, {out / 'estimates.jsonl'}, {out / 'table.md'}, ", end="")
print(f"{out / 'calibration.png'}")
