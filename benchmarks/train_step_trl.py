"""Train-step cost on the TRL engine: TRL-GRPO, TRL-MRT and native MRT, one run.

Every engine/algorithm trains the same model from the same starting weights with the same
batch shape (``problems_per_step`` TinyMath training problems x ``group_size`` completions,
the same token budget, K forced answers per J, seed): one warm-up step, then ``repeats``
timed steps; the median seconds per step is reported. TRL's steps are timed by TRL itself
(its ``step_time`` metric: generation, scoring, MRT's credit and the update); native steps by
the wall time of ``algorithm.train_step``. Each engine samples its own completions (TRL
decodes to the token cap with ``transformers.generate``; the native policy stops at episode
boundaries and runs the env), so the comparison is of whole steps on equal work settings,
not of identical token streams.

Printed: seconds per step of TRL-GRPO, TRL-MRT (progress credit), TRL-MRT (released recipe),
TRL-MRT (progress credit) with each learned μ of ``--provers`` (default: the shipped
``learned:tiny`` and its hybrid ``hybrid:tiny``, whose share ρ the policy answers), native GRPO
and native MRT; the ratio of every TRL-MRT to TRL-GRPO (target <= 1.5 on CPU with the tiny LM)
as the median [min, max] of the per-repeat ratios (the i-th timed step of each, paired), and
the share of a TRL-MRT step spent building MRT's credit (episode split, μ's J estimates,
advantages).

Run:  .venv/bin/python benchmarks/train_step_trl.py                  # shipped tiny LM, CPU
      .venv/bin/python benchmarks/train_step_trl.py --repeats 3 --problems-per-step 2
      .venv/bin/python benchmarks/train_step_trl.py --model tiny:classic \
          --provers learned:tiny:classic hybrid:tiny:classic          # the classic tiny LM
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import dataclasses
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import fmt_load, fmt_spread, machine_load, parse_args, run_environment, write_json

from agents.config import GRPOConfig, MRTConfig, PolicyConfig, TrainConfig
from agents.grpo import GRPO
from agents.mrt import MRT
from agents.session import build_session
from agents.trl.run import ANSWER_TOKENS, TRLRunOptions, build_trainer
from mrt_env.tinymath.problems import TinyMathSource


@dataclass(frozen=True)
class Args:
    """Train-step cost: TRL-GRPO vs TRL-MRT vs native MRT on the same batch settings."""

    model: str = "tiny"
    """tiny, tiny:VARIANT (e.g. tiny:classic) or `random-tiny` (test double)"""
    problems_per_step: int = 4
    """problems per step"""
    group_size: int = 4
    """completions per problem"""
    token_budget: int = 160
    """thinking tokens (TRL: max_completion_length = budget + 32 answer tokens)"""
    prover_samples: int = 4
    """K forced answers per J"""
    provers: tuple[str, ...] = ("learned:tiny", "hybrid:tiny")
    """learned μ of extra TRL-MRT runs (progress credit): learned:PATH or hybrid:PATH (PATH tiny:
    the shipped prover-tiny-explain, for the default tiny LM; tiny:classic: prover-tiny)"""
    prover_sample_share: float = 0.1
    """ρ of a hybrid:PATH μ"""
    repeats: int = 4
    """timed steps per engine/algorithm (after one warm-up step)"""
    threads: int = 1
    """torch CPU threads"""
    seed: int = 0
    """seed"""
    out: str = "runs/bench/train_step_trl.json"
    """results JSON"""


args = parse_args(Args)
torch.set_num_threads(args.threads)
train = TrainConfig(
    steps=args.repeats + 1,
    problems_per_step=args.problems_per_step,
    group_size=args.group_size,
    token_budget=args.token_budget,
    prover_samples=args.prover_samples,
    checkpoint_interval=10_000,
    seed=args.seed,
    prover_sample_share=args.prover_sample_share,
    policy=PolicyConfig(max_trajectory_tokens=args.token_budget + ANSWER_TOKENS),
)
print(
    f"{args.problems_per_step} problems x {args.group_size} completions, "
    f"budget {args.token_budget}, K={args.prover_samples}"
)

# --- TRL: GRPOTrainer and MRTGRPOTrainer, step times from TRL's own metric --------------------
results: dict[str, dict[str, Any]] = {}
load_before = machine_load()
print(f"before measuring: {fmt_load(load_before)}")
runs: list[tuple[str, Any, str]] = [
    ("trl-grpo", GRPOConfig(), "sampled"),
    ("trl-mrt-progress", MRTConfig(credit="progress"), "sampled"),
    ("trl-mrt-released", MRTConfig(credit="released"), "sampled"),
    *((f"trl-mrt-progress[{mu}]", MRTConfig(credit="progress"), mu) for mu in args.provers),
]
for name, algo, mu in runs:
    with tempfile.TemporaryDirectory() as folder:
        options = TRLRunOptions(
            out=Path(folder), model=args.model, extra=(("save_strategy", "no"),)
        )
        config = dataclasses.replace(train, prover=mu)
        trainer = build_trainer(options, config, algo, tensorboard=False)
        trainer.train()
    logs = [h for h in trainer.state.log_history if "step_time" in h][1:]  # drop the warm-up
    credit = [h.get("mrt/credit_seconds", 0.0) for h in logs]
    results[name] = {
        "prover": mu,
        "seconds": float(np.median([h["step_time"] for h in logs])),
        "seconds_range": [min(h["step_time"] for h in logs), max(h["step_time"] for h in logs)],
        "step_times": [h["step_time"] for h in logs],
        "credit_seconds": float(np.median(credit)),
        "tokens": float(np.mean([h["completions/mean_length"] for h in logs])),
        "online_labels": float(np.sum([h.get("prover/online_labels", 0.0) for h in logs])),
    }
    row = results[name]
    print(
        f"{name:20s} {row['seconds']:7.2f} s/step [{row['seconds_range'][0]:.2f}, "
        f"{row['seconds_range'][1]:.2f}]  (credit {row['credit_seconds']:.2f} s, "
        f"{row['tokens']:.0f} tokens/completion)"
    )

# --- native engine: the reference trainer's steps, wall time of train_step ------------------------
source = TinyMathSource(split="train", size=2000, seed=args.seed)
for name, algorithm in [("native-grpo", GRPO()), ("native-mrt-progress", MRT())]:
    session = build_session(train, args.model, source, with_prover=algorithm.needs_prover)
    rng = np.random.default_rng(args.seed)
    seconds, tokens = [], []
    for _ in range(args.repeats + 1):
        session.reset_caches()
        start = time.perf_counter()
        metrics = algorithm.train_step(session, int(rng.integers(2**31 - 1)))
        seconds.append(time.perf_counter() - start)
        tokens.append(metrics["charts/tokens"])
    row = {
        "seconds": float(np.median(seconds[1:])),
        "seconds_range": [min(seconds[1:]), max(seconds[1:])],
        "tokens": float(np.mean(tokens[1:])),
    }
    results[name] = row
    print(
        f"{name:20s} {row['seconds']:7.2f} s/step [{row['seconds_range'][0]:.2f}, "
        f"{row['seconds_range'][1]:.2f}]  ({row['tokens']:.0f} tokens/trajectory)"
    )

# --- ratios --------------------------------------------------------------------------------------
grpo = results["trl-grpo"]["seconds"]
ratios = {
    "trl_mrt_progress_over_trl_grpo": results["trl-mrt-progress"]["seconds"] / grpo,
    "trl_mrt_released_over_trl_grpo": results["trl-mrt-released"]["seconds"] / grpo,
    "trl_mrt_progress_over_native_mrt": results["trl-mrt-progress"]["seconds"]
    / results["native-mrt-progress"]["seconds"],
    "credit_share_of_trl_mrt_step": results["trl-mrt-progress"]["credit_seconds"]
    / results["trl-mrt-progress"]["seconds"],
}
for key, value in ratios.items():
    print(f"{key:34s} {value:6.2f}" + ("   (target <= 1.5)" if key.endswith("trl_grpo") else ""))
# per repeat: the i-th timed step of each TRL-MRT over the i-th of TRL-GRPO, median [min, max]
paired: dict[str, list[float]] = {}
for name, row in results.items():
    if name.startswith("trl-mrt"):
        steps = zip(row["step_times"], results["trl-grpo"]["step_times"], strict=True)
        paired[name] = [mrt / grpo for mrt, grpo in steps]
        print(f"{name + ' / trl-grpo':44s} {fmt_spread(paired[name])} per repeat")
print(f"load: before {fmt_load(load_before)}; after {fmt_load()}")
out = Path(args.out)
out.parent.mkdir(parents=True, exist_ok=True)
write_json(
    out,
    {
        "args": asdict(args),
        "results": results,
        "ratios": ratios,
        "ratios_per_repeat": paired,
        "load_average_before": load_before,
        "load_average_after": machine_load(),
        "environment": run_environment(),
    },
)
print(f"written {out}")
