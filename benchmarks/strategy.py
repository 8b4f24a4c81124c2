"""PPO on MRTStrategy-v0: outcome-only reward vs outcome + progress, regret at H and 2H.

Trains stable-baselines3 PPO on the numeric strategy twin with two rewards — outcome only
(alpha = 0) and outcome + alpha * progress — over several seeds, then evaluates every policy
at the training token budget H and at 2H (extrapolation: the observation keeps the training
token scale). Reports the cumulative regret (area between J* = 1 and the J-vs-tokens curve, in
tokens) and the normalized regret (that area / budget, as in ``mrt_env.regret``) with 95% CIs
across training seeds (Student t over the per-seed means, not pooled trajectories), the
difference between the rewards paired by seed, plus two fixed reference strategies (CIs over
their evaluation trajectories). Writes ``results.json``, ``results.md``
and ``regret.png`` into ``runs/strategy/<name>/``.

Usage:
    python benchmarks/strategy.py                        # 3 seeds, J curves of the classic tiny LM
    python benchmarks/strategy.py --dynamics parametric  # the documented parametric model
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from _common import fmt_ci, parse_args, run_environment, write_json

from mrt_env.stats import bootstrap_ci, seed_ci


@dataclass
class Args:
    """PPO on MRTStrategy-v0: outcome-only vs outcome + progress reward."""

    seeds: int = 3
    """number of training seeds per reward (seeds 0..seeds-1)"""
    total_timesteps: int = 12_000
    """PPO environment steps per training run"""
    token_budget: int = 256
    """training horizon H (thinking-token budget)"""
    extrapolation_factor: int = 2
    """evaluate also at this many times the training budget"""
    alpha: float = 1.0
    """progress weight of the outcome + progress reward"""
    token_cost: float = 0.001
    """reward subtracted per thinking token (LengthPenalty), for both rewards"""
    dynamics: Literal["parametric", "recorded"] = "recorded"
    """J dynamics of the twin: J curves recorded on the classic tiny LM (tiny:classic), or the
    parametric model"""
    eval_trajectories: int = 200
    """evaluation trajectories per policy and budget"""
    n_steps: int = 512
    """PPO rollout length"""
    learning_rate: float = 3e-4
    """PPO learning rate"""
    ent_coef: float = 0.01
    """PPO entropy coefficient"""
    torch_threads: int = 1
    """torch CPU threads"""
    run_dir: str = "runs/strategy"
    """parent folder of run folders"""
    name: str = "default"
    """run folder name under run_dir"""


REWARDS = ("outcome", "outcome+progress")


def make_env(args: Args, reward: str, budget: int) -> Any:
    """A twin env with the reward and budget (observation keeps the training token scale)."""
    from mrt_env.strategy import MRTStrategyEnv

    alpha = 0.0 if reward == "outcome" else args.alpha
    return MRTStrategyEnv(
        token_budget=budget,
        token_scale=args.token_budget,
        dynamics=args.dynamics,
        alpha=alpha,
        token_cost=args.token_cost,
    )


def train(args: Args, reward: str, seed: int) -> Any:
    """Train PPO on the twin with ``reward``; returns the model."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    env = make_env(args, reward, args.token_budget)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=args.n_steps,
        batch_size=128,
        learning_rate=args.learning_rate,
        ent_coef=args.ent_coef,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # no stray SB3-* temp folders
    model.learn(total_timesteps=args.total_timesteps)
    return model


def rollout(env: Any, act: Any, seed: int) -> dict[str, Any]:
    """One evaluation trajectory; returns its J curve, outcome and episode counts."""
    observation, info = env.reset(seed=seed)
    curve = [(0, float(info["j"]))]
    kinds: list[str] = []
    while True:
        observation, _, terminated, truncated, info = env.step(act(observation))
        kinds.append(info["episode_kind"])
        if info["episode_kind"] != "answer":
            curve.append((int(info["total_tokens"]), float(info["j_after"])))
        if terminated or truncated:
            return {"curve": curve, "outcome": float(info["outcome"]), "kinds": kinds}


def area_regret(curve: list[tuple[int, float]], budget: int) -> float:
    """Normalized regret of one trajectory at ``budget`` (PAPER.md's definition)."""
    from mrt_env.regret import normalized_regret

    tokens = np.array([t for t, _ in curve], dtype=np.float64)
    j = np.array([v for _, v in curve], dtype=np.float64)
    return float(normalized_regret([[(tokens, j)]], budget))


def evaluate(args: Args, act: Any, reward: str, budget: int, seed: int) -> dict[str, Any]:
    """J curves, outcomes, token and episode counts of a policy run at token ``budget``."""
    env = make_env(args, reward, budget)
    curves, outcomes, tokens, episodes = [], [], [], []
    for i in range(args.eval_trajectories):
        result = rollout(env, act, seed=10_000 * (seed + 1) + i)
        curves.append(result["curve"])
        outcomes.append(result["outcome"])
        tokens.append(result["curve"][-1][0])
        episodes.append(len(result["kinds"]) - (result["kinds"][-1] == "answer"))
    return {"curves": curves, "outcome": outcomes, "tokens": tokens, "episodes": episodes}


def read_budgets(h: int, factor: int) -> tuple[list[int], list[int]]:
    """Budgets where regret is read: 4 up to H (rollouts at H), 4 past it (rollouts at 2H)."""
    inside = [h * i // 4 for i in range(1, 5)]
    beyond = [h + (factor * h - h) * i // 4 for i in range(1, 5)]
    return inside, beyond


def fixed_policy(name: str) -> Any:
    """Reference strategies: attempt then stop; attempt, re-check twice, then stop."""
    from mrt_env.strategy import ATTEMPT, RECHECK, STOP, StrategyConfig

    max_episodes = StrategyConfig().max_episodes
    plans = {"attempt-once": [ATTEMPT], "attempt-recheck-2": [ATTEMPT, RECHECK, RECHECK]}
    plan = plans[name]

    def act(observation: np.ndarray) -> int:
        episodes = round(float(observation[0]) * max_episodes)
        return plan[episodes] if episodes < len(plan) else STOP

    return act


def summarise(per_seed: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    """Regret at ``budget`` and outcome figures. With several training seeds the CI is across
    seeds (Student t over the per-seed means: each seed is one independent run); a fixed
    strategy (one run) gets a bootstrap CI over its evaluation trajectories."""
    regret = [np.array([area_regret(c, budget) for c in r["curves"]]) for r in per_seed]
    per_run = {
        "normalized_regret": regret,
        "cumulative_regret_tokens": [r * budget for r in regret],
        "accuracy": [np.asarray(r["outcome"], float) for r in per_seed],
        "mean_tokens": [np.asarray(r["tokens"], float) for r in per_seed],
        "mean_episodes": [np.asarray(r["episodes"], float) for r in per_seed],
    }
    if len(per_seed) > 1:
        stats = {k: seed_ci([v.mean() for v in values]) for k, values in per_run.items()}
    else:
        stats = {k: bootstrap_ci(values[0]) for k, values in per_run.items()}
    return {
        **stats,
        "ci_over": "training seeds" if len(per_seed) > 1 else "evaluation trajectories",
        "per_seed_normalized_regret": [float(np.mean(r)) for r in regret],
    }


def plot(results: dict[str, Any], inside: list[int], beyond: list[int], path: Path) -> None:
    """Normalized regret vs budget per strategy (past the training horizon: dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, by_budget) in enumerate(results.items()):
        for budgets, style in ((inside, "o-"), ([inside[-1], *beyond], "o--")):
            stats = [by_budget[str(b)]["normalized_regret"] for b in budgets]
            ax.plot(budgets, [s["mean"] for s in stats], style, color=f"C{i}",
                    label=name if style == "o-" else None)  # fmt: skip
            lows, highs = [s["ci_low"] for s in stats], [s["ci_high"] for s in stats]
            ax.fill_between(budgets, lows, highs, color=f"C{i}", alpha=0.15)
    ax.axvline(inside[-1], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("token budget (dashed: beyond the training horizon H)")
    ax.set_ylabel("normalized regret (lower is better)")
    ax.set_title("MRTStrategy-v0, PPO: outcome vs outcome + progress")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: dict[str, Any], budgets: list[int], h: int) -> str:
    """A markdown table of the headline figures."""
    lines = [
        "| strategy | budget | normalized regret [95% CI] | cumulative regret (tokens) "
        "| accuracy | mean tokens |",
        "|---|---|---|---|---|---|",
    ]
    for name, by_budget in results.items():
        for b in budgets:
            s = by_budget[str(b)]
            tag = f"{b} (H)" if b == h else f"{b} ({b // h}H)"
            lines.append(
                f"| {name} | {tag} | {fmt_ci(s['normalized_regret'])} | "
                f"{fmt_ci(s['cumulative_regret_tokens'], 1)} | {fmt_ci(s['accuracy'])} | "
                f"{s['mean_tokens']['mean']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def run_all(args: Args) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Train PPO per reward and seed; evaluate every policy at H and 2H."""
    from tqdm import tqdm

    eval_budgets = [args.token_budget, args.token_budget * args.extrapolation_factor]
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {}
    jobs = [(reward, seed) for reward in REWARDS for seed in range(args.seeds)]
    for reward, seed in tqdm(jobs, desc="PPO runs"):
        model = train(args, reward, seed)

        def act(observation: np.ndarray, model: Any = model) -> int:
            return int(model.predict(observation, deterministic=True)[0])

        for budget in eval_budgets:
            per_seed = raw.setdefault(f"ppo/{reward}", {}).setdefault(budget, [])
            per_seed.append(evaluate(args, act, reward, budget, seed))
    for name in ("attempt-once", "attempt-recheck-2"):
        for budget in eval_budgets:
            raw.setdefault(f"fixed/{name}", {})[budget] = [
                evaluate(args, fixed_policy(name), "outcome", budget, 0)
            ]
    return raw


def main(args: Args) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.torch_threads)
    run = Path(args.run_dir) / args.name
    run.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    h, h2 = args.token_budget, args.token_budget * args.extrapolation_factor
    raw = run_all(args)
    inside, beyond = read_budgets(h, args.extrapolation_factor)
    results = {
        name: {str(b): summarise(by_budget[h if b <= h else h2], b) for b in [*inside, *beyond]}
        for name, by_budget in raw.items()
    }
    difference = {  # paired by training seed: the same seed trains both rewards
        str(b): seed_ci(
            np.subtract(
                results["ppo/outcome+progress"][str(b)]["per_seed_normalized_regret"],
                results["ppo/outcome"][str(b)]["per_seed_normalized_regret"],
            )
        )
        for b in (h, h2)
    }
    plot(results, inside, beyond, run / "regret.png")
    elapsed = time.perf_counter() - start
    output = {
        "args": asdict(args),
        "budgets": {"train": h, "eval": [h, h2], "read": [*inside, *beyond]},
        "results": results,
        "regret_difference_progress_minus_outcome": difference,
        "wall_time_s": elapsed,
        "environment": run_environment(),
        "notes": "CIs of PPO: 95% Student-t across training seeds (one mean per seed); of the "
        "fixed strategies: 95% percentile bootstrap over evaluation trajectories. Regret at "
        "budgets <= H is read from rollouts at budget H, past H from rollouts at "
        f"{args.extrapolation_factor}H (observation token scale kept at H). Regret difference: "
        "outcome+progress minus outcome-only, paired by training seed, t CI across seeds.",
    }
    write_json(run / "results.json", output)
    lines = [
        f"normalized regret, outcome+progress - outcome (paired by seed) at {b}: {fmt_ci(d)}"
        for b, d in difference.items()
    ]
    (run / "results.md").write_text(markdown(results, [h, h2], h) + "\n" + "\n".join(lines) + "\n")
    print((run / "results.md").read_text())
    print(f"wrote {run}/results.json, results.md, regret.png in {elapsed:.0f} s")
    return output


if __name__ == "__main__":
    main(parse_args(Args))
