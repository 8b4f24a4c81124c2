"""Figures over per-problem evaluation records: regret tables with CIs over problems.

A *record* is one (policy, problem) of ``benchmarks/regret.py``::

    {"problem_id": str, "samples": [{"curve": [[tokens, J], ...], "answer": str | None,
     "correct": bool, "tokens": int, "episodes": int, "j": [J, ...],
     "forced": {"w": {"curve": [[tokens, J], ...], "tokens": int, "episodes": int}}}]}

(``forced[w]``: the same response forced to think ``w`` more times by budget forcing).

* :func:`curves`, :func:`regret_per_problem`, :func:`mean_j_on_grid`, :func:`maj_curve`:
  per-problem figures;
* :func:`common_problems`: the records two policies share (paired comparisons);
* :func:`summarize_records`: every figure of one policy with bootstrap CIs over problems;
* :func:`compare_records`, :func:`j_token_efficiency`: pairwise comparisons at every budget.

Example:
    >>> record = {"problem_id": "q", "samples": [{"curve": [[10, 0.5], [20, 1.0]]}]}
    >>> round(float(regret_per_problem([record], budget=20)[0]), 3)  # area 0.5 -> regret 0.5
    0.5
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrt_env.diagnostics import episode_summary
from mrt_env.regret import (
    maj_at_k,
    normalized_area_per_problem,
    pass_at_k,
    regret_over_episode_budget,
    token_efficiency,
)
from mrt_env.stats import bootstrap_ci, probability_of_improvement

Record = dict[str, Any]
"""One (policy, problem) record (see the module docstring)."""

__all__ = [
    "Record",
    "common_problems",
    "compare_records",
    "curves",
    "j_token_efficiency",
    "maj_curve",
    "mean_j_on_grid",
    "regret_per_problem",
    "summarize_records",
]


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
    return 1.0 - normalized_area_per_problem(curves(records, w), budget)


def maj_curve(records: list[dict[str, Any]], samples: int) -> dict[str, list[float]]:
    """maj@k for k = 1..S (per-problem means) against the mean total tokens of k responses."""
    accuracy, tokens = [], []
    for k in range(1, samples + 1):
        per_problem = [
            maj_at_k([s["answer"] for s in r["samples"]], [s["correct"] for s in r["samples"]], k)
            for r in records
        ]
        accuracy.append(float(np.mean(per_problem)))
        tokens.append(float(k * np.mean([s["tokens"] for r in records for s in r["samples"]])))
    return {"k": list(range(1, samples + 1)), "tokens": tokens, "accuracy": accuracy}


def mean_j_on_grid(records: list[dict[str, Any]], grid: np.ndarray, w: int = 0) -> np.ndarray:
    """Mean over traces of J at each grid token count (0 before the first read, flat after);
    ``w`` > 0: the traces forced to think ``w`` more times."""
    values = []
    for problem in curves(records, w):
        for tokens, j in problem:
            x, y = np.concatenate([[0.0], tokens]), np.concatenate([[0.0], j])
            values.append(np.interp(grid, x, y, right=y[-1]))
    return np.mean(values, axis=0) if values else np.zeros_like(grid)


def common_problems(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of ``a`` and of ``b`` whose problems both have (paired comparisons)."""
    ids = {r["problem_id"] for r in a} & {r["problem_id"] for r in b}
    return [r for r in a if r["problem_id"] in ids], [r for r in b if r["problem_id"] in ids]


def j_token_efficiency(
    a: list[dict[str, Any]], b: list[dict[str, Any]], budget: float, w: int = 0, points: int = 257
) -> float | None:
    """How many times fewer tokens ``a``'s mean J curve needs to reach the mean J that ``b``'s
    reaches by ``budget`` (``mrt_env.regret.token_efficiency`` on the curves up to the budget;
    ``w`` > 0: the traces forced ``w`` more times). ``None`` when undefined (``a`` never gets
    there within the budget, or ``b``'s J stays 0)."""
    grid = np.linspace(0.0, float(budget), points)
    j_a, j_b = mean_j_on_grid(a, grid, w), mean_j_on_grid(b, grid, w)
    if j_b[-1] <= 0:
        return None
    value = token_efficiency((grid, j_a), (grid, j_b))
    return None if np.isnan(value) else float(value)


def summarize_records(
    records: list[dict[str, Any]],
    budgets: Sequence[int],
    extrapolated: dict[int, int],
    samples: int,
    episode_budget: int,
) -> dict[str, Any]:
    """Every figure of one policy (CIs over problems): pass@1, mean tokens, episodes per
    response (mean and the share of one-episode responses),
    normalized regret at ``budgets`` and at the ``extrapolated`` budgets (``w -> budget``,
    from traces forced ``w`` more times), maj@k for k = 1..``samples``, and cumulative
    regret over ``episode_budget`` episodes."""
    correct = [[s["correct"] for s in r["samples"]] for r in records]
    pass1 = [pass_at_k(len(c), sum(c), 1) for c in correct]
    regret = {str(b): bootstrap_ci(regret_per_problem(records, b)) for b in budgets}
    forced = {
        str(b): bootstrap_ci(regret_per_problem(records, b, w)) for w, b in extrapolated.items()
    }
    j_curves = [[s["j"] for s in r["samples"] if s["j"]] for r in records]
    episode_regret = regret_over_episode_budget([c for c in j_curves if c], episode_budget)
    episodes = episode_summary([s["episodes"] for r in records for s in r["samples"]])
    return {
        "pass@1": bootstrap_ci(pass1),
        "mean_tokens": bootstrap_ci(
            [np.mean([s["tokens"] for s in r["samples"]]) for r in records]
        ),
        "mean_episodes": episodes["mean_episodes"],
        "single_episode_share": episodes["single_episode_share"],
        "normalized_regret": regret,
        "normalized_regret_extrapolated": forced,
        "maj@k": maj_curve(records, samples),
        "regret_over_episodes": episode_regret.tolist(),
    }


def compare_records(
    policies: dict[str, list[dict[str, Any]]],
    summary: dict[str, dict[str, Any]],
    budgets: Sequence[int],
    extrapolated: dict[int, int],
) -> dict[str, Any]:
    """Pairwise, over the problems both policies have, at every budget (the extrapolated ones
    included, keyed by the budget): the probability of lower regret (``"a<b"``) and the token
    efficiency of the mean J curves (``"a_vs_b"``, :func:`j_token_efficiency`); and the token
    efficiency of the maj@k curves of ``summary`` (``"token_efficiency"``)."""
    keyed = [(str(b), b, 0) for b in budgets] + [(str(b), b, w) for w, b in extrapolated.items()]
    out: dict[str, Any] = {
        "probability_lower_regret": {},
        "token_efficiency_j": {},
        "token_efficiency": {},
    }
    for a, b in itertools.permutations(policies, 2):
        common = common_problems(policies[a], policies[b])
        out["probability_lower_regret"][f"{a}<{b}"] = {
            key: probability_of_improvement(
                regret_per_problem(common[0], budget, w), regret_per_problem(common[1], budget, w)
            )
            for key, budget, w in keyed
        }
        out["token_efficiency_j"][f"{a}_vs_{b}"] = {
            key: j_token_efficiency(common[0], common[1], budget, w) for key, budget, w in keyed
        }
        maj_a, maj_b = summary[a]["maj@k"], summary[b]["maj@k"]
        value = token_efficiency(
            (maj_a["tokens"], maj_a["accuracy"]), (maj_b["tokens"], maj_b["accuracy"])
        )
        out["token_efficiency"][f"{a}_vs_{b}"] = None if np.isnan(value) else value
    return out
