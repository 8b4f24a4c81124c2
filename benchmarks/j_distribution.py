"""How graded is J? The J* distribution of a tiny LM on held-out TinyMath trajectories.

The base policy samples one response (T = 0.8) to each of N held-out problems; the thinking is
split into episodes (``MarkerSegmenter(min_paragraphs=1)``) and J* is estimated at every
episode boundary (the empty thinking, then one more episode each time) from K forced answers
at T = 1 (``SampledMetaProver``, answers checked by ``rewards.verify``). Printed and written:

* the share of prefixes with J* strictly inside (0.1, 0.9) (a graded J; the rest are ~0 or ~1),
* a 10-bin histogram of J* over [0, 1],
* mean J* against episode index (a finished trajectory keeps its last J*), plotted to a PNG,
* the share of trajectories whose J* rises somewhere before its last boundary,
* J* by the kind of prefix: the empty thinking, no answer stated yet, the last answer stated
  right, or wrong (the last ``so N.`` or ``about N.`` outside check episodes): how many, their
  mean J* and how many are graded (where a graded share comes from); the same by TinyMath
  level,
* the base pass@1 (greedy and sampled) on ``--pass-problems`` held-out problems,
* the mean sampled response length in tokens and the generation wall time (the tiny LM's speed),
* wall time and the load average (the machine may be shared),
* the graded world's targets as PASS/FAIL checks (``mrt_env.tinymath.targets``): share graded
  >= 25%, mean J* rising with episodes, and greedy and sampled pass@1 inside the 95% Wilson
  band of the ``--base`` model's pass@1 on the same problems (read from its
  ``j_distribution.json`` when that was measured the same way, else measured here).

Results go to ``--out``: ``j_distribution.json`` and ``j_distribution.png`` (mean J* by episode
index); with ``--out`` a tiny-LM folder, its model card (``mrt_env.tinymath.card``) shows them.

Run:  .venv/bin/python benchmarks/j_distribution.py                       # the shipped tiny LM
      .venv/bin/python benchmarks/j_distribution.py --model mrt_env/assets/tiny-lm-graded \
          --out mrt_env/assets/tiny-lm-graded                                 # its card's figures
"""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import parse_args, run_environment, write_json

from mrt_env.lm.hf import HFLanguageModel
from mrt_env.tinymath.evaluate import episodes_of, j_curves, pass_at_1, respond
from mrt_env.tinymath.loading import tiny_lm_path
from mrt_env.tinymath.problems import TinyMathSource
from mrt_env.tinymath.targets import j_checks, pass_checks
from mrt_env.tinymath.traces import CHECK_MARKERS, REDO_MARKER


@dataclass(frozen=True)
class Args:
    """How graded is J? The J* distribution of a tiny LM on held-out TinyMath trajectories."""

    model: str = str(tiny_lm_path())
    """folder of the tiny LM (policy and meta-prover; default: the default tiny LM)"""
    trajectories: int = 60
    """held-out problems whose sampled trajectory is measured"""
    k: int = 32
    """forced answers per J* estimate"""
    temperature: float = 0.8
    """sampling temperature of the trajectories"""
    max_new_tokens: int = 400
    """response budget in tokens"""
    pass_problems: int = 500
    """held-out problems for the base pass@1 (0: skip)"""
    seed: int = 0
    """seeds the problems, the responses and the forced answers"""
    threads: int = 1
    """torch CPU threads"""
    out: str = "runs/j-distribution"
    """folder for j_distribution.json and j_distribution.png"""
    base: str = str(tiny_lm_path("classic"))
    """folder of the model whose pass@1 band the checks use ("" to skip the band checks): the
    classic tiny LM, which the graded recipes fine-tune"""


args = parse_args(Args)
torch.set_num_threads(args.threads)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
lm = HFLanguageModel.from_pretrained(args.model)
start = time.monotonic()

# 1. trajectories of the base policy and J* at every episode boundary
problems = list(TinyMathSource("heldout", args.trajectories, seed=args.seed))
responses = respond(lm, problems, args.temperature, args.max_new_tokens, args.seed)
generation_seconds = time.monotonic() - start
response_tokens = float(np.mean([lm.count_tokens(r) for r in responses]))
measured = j_curves(lm, problems, responses, args.k, args.seed)
curves, answer_cap = measured["j"], measured["answer_cap"]
answer_tokens = np.array([t for row in measured["answer_tokens"] for t in row], dtype=np.float64)
j_all = np.array([j for curve in curves for j in curve], dtype=np.float64)
graded = float(np.mean((j_all > 0.1) & (j_all < 0.9)))
histogram = np.histogram(j_all, bins=10, range=(0.0, 1.0))[0]

# 2. mean J* against episode index (finished trajectories keep their last J*)
depth = max(len(curve) for curve in curves)
padded = np.array([[c[min(i, len(c) - 1)] for i in range(depth)] for c in curves])
reached = [sum(len(c) > i for c in curves) for i in range(depth)]
by_episode = padded.mean(axis=0)
rises = float(np.mean([np.any(np.diff(c) > 0) for c in curves]))
rises_before_end = float(np.mean([np.any(np.diff(c[:-1]) > 0) for c in curves]))


# 3. J* by the kind of prefix: empty, no answer yet, the last stated answer right or wrong
def prefix_kind(episodes: list[str], gold: str) -> str:
    """What the thinking ``episodes`` state: a check restates an answer without stating one."""
    stated = None
    for episode in episodes:
        if episode.lstrip().startswith((*CHECK_MARKERS, REDO_MARKER)):
            continue
        found = re.findall(r"(?:so|about) (\d+)\.", episode)
        stated = found[-1] if found else stated
    if not episodes:
        return "empty thinking"
    if stated is None:
        return "no answer stated"
    return "right answer stated" if stated == gold else "wrong answer stated"


kinds = [
    prefix_kind(episodes_of(response)[:i], problem.answer)
    for problem, response, curve in zip(problems, responses, curves, strict=True)
    for i in range(len(curve))
]
by_kind = {}
for kind in ("empty thinking", "no answer stated", "right answer stated", "wrong answer stated"):
    js = j_all[[k == kind for k in kinds]]
    by_kind[kind] = {
        "prefixes": len(js),
        "mean_j": float(js.mean()) if len(js) else None,
        "graded": int(((js > 0.1) & (js < 0.9)).sum()),
    }

levels = [
    problem.metadata["level"]
    for problem, curve in zip(problems, curves, strict=True)
    for _ in range(len(curve))
]
by_level = {}
for level in sorted(set(levels)):
    js = j_all[[lv == level for lv in levels]]
    by_level[str(level)] = {
        "prefixes": len(js),
        "mean_j": float(js.mean()),
        "graded": int(((js > 0.1) & (js < 0.9)).sum()),
    }

# 4. base pass@1 on a larger held-out set
pass_greedy = pass_sampled = None
if args.pass_problems:
    held = list(TinyMathSource("heldout", args.pass_problems, seed=args.seed))
    pass_greedy = pass_at_1(respond(lm, held, 0.0, args.max_new_tokens, args.seed), held)
    pass_sampled = pass_at_1(
        respond(lm, held, args.temperature, args.max_new_tokens, args.seed), held
    )


# 5. the targets of a graded world: share graded, rising J*, pass@1 in the base's band
def base_pass(folder: str) -> dict[str, float]:
    """The base's pass@1 on the same problems: its own j_distribution.json, else measured."""
    recorded = Path(folder) / "j_distribution.json"
    same = ("pass_problems", "seed", "temperature", "max_new_tokens")
    if recorded.is_file():
        old = json.loads(recorded.read_text())
        if all(old["args"].get(key) == getattr(args, key) for key in same):
            return {"greedy": old["greedy_pass_at_1"], "sampled": old["sampled_pass_at_1"]}
    base_lm = HFLanguageModel.from_pretrained(folder)
    return {
        "greedy": pass_at_1(respond(base_lm, held, 0.0, args.max_new_tokens, args.seed), held),
        "sampled": pass_at_1(
            respond(base_lm, held, args.temperature, args.max_new_tokens, args.seed), held
        ),
    }


checks = j_checks(graded, by_episode.tolist())
base_figures = None
if args.base and pass_greedy is not None and pass_sampled is not None:
    base_figures = base_pass(args.base)
    measured = {"greedy": pass_greedy, "sampled": pass_sampled}
    checks += pass_checks(measured, base_figures, args.pass_problems)
seconds = time.monotonic() - start
load = os.getloadavg()

matplotlib.use("Agg")
results = {
    "args": {
        **asdict(args),
        "model": os.path.relpath(args.model),
        "out": os.path.relpath(out),
        "base": os.path.relpath(args.base) if args.base else "",
    },
    "prefixes": len(j_all),
    "share_graded": graded,
    "histogram": histogram.tolist(),
    "mean_j": float(j_all.mean()),
    "mean_j_by_episode": by_episode.round(4).tolist(),
    "trajectories_reaching_episode": reached,
    "share_trajectories_rising": rises,
    "share_trajectories_rising_before_last_boundary": rises_before_end,
    "by_prefix_kind": by_kind,
    "by_level": by_level,
    "greedy_pass_at_1": pass_greedy,
    "sampled_pass_at_1": pass_sampled,
    "base": {"model": os.path.relpath(args.base), "pass_at_1": base_figures}
    if base_figures
    else None,
    "checks": [asdict(check) for check in checks],
    "mean_response_tokens": response_tokens,
    "forced_answer_tokens": {
        "mean": float(answer_tokens.mean()),
        "max_prefix_mean": float(answer_tokens.max()),
        "cap": answer_cap,
    },
    "generation_seconds": generation_seconds,
    "seconds": seconds,
    "load_average": load,
    "environment": run_environment(),
}
write_json(out / "j_distribution.json", results)

# 6. the figure: histogram of J* and mean J* by episode index
figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
left.bar(np.arange(10) / 10 + 0.05, histogram, width=0.09)
left.set(xlabel="J*", ylabel="prefixes", title=f"J* at episode boundaries ({graded:.0%} graded)")
right.plot(range(depth), by_episode, marker="o")
right.set(xlabel="episodes of thinking (0 = empty)", ylabel="mean J*", ylim=(0, 1))
right.set(title="mean J* vs episode")
figure.suptitle(Path(args.model).name)
figure.tight_layout()
figure.savefig(out / "j_distribution.png", dpi=100)

print(f"model {args.model}: {len(curves)} trajectories, {len(j_all)} prefixes, K = {args.k}")
print(f"share of prefixes with J* in (0.1, 0.9): {graded:.3f} ({round(graded * len(j_all))})")
if graded < 0.05:
    print("note: J* is (nearly) a step here: almost every prefix has J* near 0 or near 1")
print("histogram of J* over ten bins [0, 0.1), ..., [0.9, 1]:", ", ".join(map(str, histogram)))
print("mean J* by episode index:", " -> ".join(f"{j:.3f}" for j in by_episode))
print("trajectories reaching episode index:", ", ".join(map(str, reached)))
print(f"trajectories whose J* rises at some boundary: {rises:.3f}")
for kind, row in by_kind.items():
    mean = "-" if row["mean_j"] is None else f"{row['mean_j']:.3f}"
    print(f"  {kind}: {row['prefixes']} prefixes, mean J* {mean}, {row['graded']} graded")
print(
    "  by TinyMath level: "
    + "; ".join(
        f"L{level} {row['prefixes']} prefixes, mean J* {row['mean_j']:.3f}, {row['graded']} graded"
        for level, row in by_level.items()
    )
)
if pass_greedy is not None:
    print(
        f"base pass@1 on {args.pass_problems} held-out problems: greedy {pass_greedy:.3f}, "
        f"sampled (T = {args.temperature}) {pass_sampled:.3f}"
    )
print(
    f"{args.trajectories} sampled responses: {response_tokens:.0f} tokens on average, "
    f"generated in {generation_seconds:.1f} s"
)
print(
    f"forced answers (mu's cost per sample): {answer_tokens.mean():.1f} tokens on average, "
    f"at most {answer_tokens.max():.1f} on average at one prefix (cap {answer_cap})"
)
if answer_tokens.max() >= 0.9 * answer_cap:
    print(f"warning: the forced answers at some prefix nearly fill their cap of {answer_cap}")
print("targets of a graded world:")
for check in checks:
    print("  " + check.line())
print(f"{seconds:.0f} s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; wrote {out}")
