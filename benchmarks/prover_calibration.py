"""Calibration of the learned meta-prover against the sampled one, and what each costs.

Held-out problems; the base policy writes one response per problem (``--responses``), cut at
every episode boundary (the empty thinking, each episode, the natural end). The reference
J* of each prefix is the fraction of ``--k-ref`` (64) sampled forced answers verified correct
(cached in ``OUT/jstar/labels.jsonl``; an interrupted run resumes). Then, in one run, on the
same prefixes:

* the sampled μ at every K of ``--ks`` (1, 2, 4, 8, 16), with seeds independent of J*'s;
* the learned μ of ``--prover`` (a folder of ``mrt-prover train``).

Printed per estimator: Brier score against J* with J*'s binomial noise subtracted,
``mean((p - Ĵ*)^2 - Ĵ*(1 - Ĵ*) / (K* - 1))`` (``Ĵ*(1 - Ĵ*)/(K* - 1)`` is an unbiased estimate
of Var(Ĵ*) = J*(1 - J*)/K*, so the figure estimates ``mean((p - J*)^2)``); expected
calibration error (10 equal-width bins of p, |mean p - mean Ĵ*| weighted by the bin's share);
AUROC of p for Ĵ* > 0.5; Spearman correlation and sign agreement of **progress** (ΔJ between
consecutive prefixes of a response; a |Δ| ≤ 0.05 counts as sign 0); and cost per estimate
(wall seconds and generated tokens). Also: the J* distribution (share in (0.1, 0.9)), the K at
which the sampled μ's Brier equals the learned μ's (interpolated in log2 K) and the cost ratio
there, a plot of error against cost and a reliability diagram.

Run:  .venv/bin/python benchmarks/prover_calibration.py --prover mrt_env/assets/prover-tiny
      .venv/bin/python benchmarks/prover_calibration.py --prover PATH --num-problems 40
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import parse_args, run_environment, write_json
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

    prover: str = "mrt_env/assets/prover-tiny"
    """folder of the learned meta-prover (mrt-prover train)"""
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
    k_ref: int = 64
    """forced answers of the reference J*"""
    ks: str = "1,2,4,8,16"
    """K values of the sampled μ"""
    seed: int = 0
    """seed of responses and J*; the sampled μ uses seeds offset from it by 10**6 * K"""
    out: str = "runs/prover_calibration"
    """output folder (J* cache, summary.json, plots)"""
    threads: int = 1
    """torch CPU threads (0 = torch's default; 1 is faster for small models on shared CPUs)"""
    write_card: bool = False
    """record the figures in the learned μ folder's card.json ("calibration")"""


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


args = parse_args(Args)
if args.threads > 0:
    import torch

    torch.set_num_threads(args.threads)
out = Path(args.out)
ks = [int(k) for k in args.ks.split(",")]
print(f"load average at start: {os.getloadavg()}")

# 1. the reference J*: base-policy responses cut at every episode boundary, K* answers each
lm = build_lm(args.model, None)
source = resolve_source(args.problems)
problems = [source[i] for i in range(min(args.num_problems, len(source)))]
jstar_path = collect_labels(
    lm,
    problems,
    out / "jstar",
    policy_id=args.model,
    k=args.k_ref,
    responses_per_problem=args.responses,
    max_tokens=args.max_tokens,
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

# 2. every estimator on the same prefixes, in one run
results: dict[str, dict[str, Any]] = {}
estimates: dict[str, np.ndarray] = {}
for k in ks:
    sampled = SampledMetaProver(
        lm, "tiny" if args.model.startswith("tiny") else None, k=k, cache_size=0
    )
    shifted = [
        ProverRequest(
            q.problem_id, q.prompt, q.gold, q.prefix, (q.seed + 10**6 * k + 17) % (2**31 - 1)
        )
        for q in requests
    ]
    start = time.perf_counter()
    found = sampled.estimate(shifted)
    wall = time.perf_counter() - start
    estimates[f"sampled K={k}"] = np.array([e.j for e in found])
    tokens = float(np.mean([e.answer_tokens * e.num_samples for e in found]))
    results[f"sampled K={k}"] = {"k": k, "wall_s": wall / len(rows), "gen_tokens": tokens}
learned = LearnedMetaProver.from_pretrained(args.prover, policy_lm=lm)
learned.estimate(requests[:2])  # warm-up (first-call allocations), not timed
start = time.perf_counter()
found = learned.estimate(requests)
wall = time.perf_counter() - start
estimates["learned"] = np.array([e.j for e in found])
results["learned"] = {"k": 0, "wall_s": wall / len(rows), "gen_tokens": 0.0}
for name, p in estimates.items():
    results[name].update(metrics(p, rows, j_ref, args.k_ref))

# 3. the learned μ's worth in samples: K where the sampled μ's Brier equals the learned μ's
target = results["learned"]["brier"]
curve = [
    (np.log2(k), results[f"sampled K={k}"]["brier"], results[f"sampled K={k}"]["wall_s"])
    for k in ks
]
equal_k, cost_ratio = None, None
for (x0, b0, w0), (x1, b1, w1) in itertools.pairwise(curve):
    if min(b0, b1) <= target <= max(b0, b1) and b0 != b1:
        t = (b0 - target) / (b0 - b1)
        equal_k = float(2 ** (x0 + t * (x1 - x0)))
        cost_ratio = float((w0 + t * (w1 - w0)) / results["learned"]["wall_s"])
        break
if equal_k is None:
    where = "better than" if target < min(b for _, b, _ in curve) else "worse than"
    print(f"the learned μ's Brier is {where} every sampled K in {ks}: no crossing")

# 4. report
header = (
    "| μ | Brier (noise-corrected) | ECE | AUROC J*>0.5 | progress Spearman | "
    "progress sign agr. | wall ms / estimate | gen. tokens / estimate |"
)
lines = [header, "|" + "---|" * 8]
for name, r in results.items():
    lines.append(
        f"| {name} | {r['brier']:.4f} | {r['ece']:.3f} | {r['auroc']:.3f} | "
        f"{r['progress_spearman']:.3f} | {r['progress_sign_agreement']:.3f} | "
        f"{1000 * r['wall_s']:.2f} | {r['gen_tokens']:.1f} |"
    )
table = "\n".join(lines)
print(table)
if equal_k is not None:
    print(
        f"sampled μ matches the learned μ's Brier at K ≈ {equal_k:.2f}; "
        f"its cost there is {cost_ratio:.1f}x the learned μ's (wall per estimate)"
    )
print(f"load average at end: {os.getloadavg()}")

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
left.plot(
    [results["learned"]["wall_s"]], [results["learned"]["brier"]], "r*", ms=12, label="learned μ"
)
left.set(
    xscale="log",
    xlabel="wall seconds per estimate",
    ylabel="Brier vs J* (corrected)",
    title="error against cost",
)
left.legend()
edges = np.linspace(0, 1, 11)
for name in ("learned", "sampled K=8"):
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

summary = {
    "args": asdict(args),
    "prefixes": len(rows),
    "problems": len(problems),
    "jstar_share_graded": graded,
    "jstar_histogram": histogram,
    "results": results,
    "equal_brier_k": equal_k,
    "cost_ratio_at_equal_k": cost_ratio,
    "learned_card": {k: learned.card.get(k) for k in ("feature_model", "layer", "head")},
    "environment": run_environment(),
    "load_average_end": os.getloadavg(),
}
write_json(out / "summary.json", summary)
if args.write_card:
    import sys

    card_path = Path(args.prover) / "card.json"
    card = json.loads(card_path.read_text())
    card["calibration"] = {
        "command": "python benchmarks/prover_calibration.py " + " ".join(sys.argv[1:]),
        **{
            key: summary[key]
            for key in (
                "prefixes",
                "problems",
                "jstar_share_graded",
                "jstar_histogram",
                "equal_brier_k",
                "cost_ratio_at_equal_k",
            )
        },
        "k_ref": args.k_ref,
        "results": results,
        "load_average_end": summary["load_average_end"],
    }
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True, default=float) + "\n")
    print(f"recorded the figures in {card_path}")
(out / "table.md").write_text(table + "\n")
print(f"wrote {out / 'summary.json'}, {out / 'table.md'}, {out / 'calibration.png'}")
print(json.dumps({"equal_brier_k": equal_k, "cost_ratio": cost_ratio}))
