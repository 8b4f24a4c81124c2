"""Trace patterns of the TinyMath policies: how often a response opens with a quick guess, and
how often it recomputes an answer.

Input: the ``traces.jsonl`` that ``regret.py`` writes (one natural response per line, with
``policy``). A response *opens with a quick guess* when its first paragraph states one
(``"47+38 is about 84."``) and the worked attempt follows (``"Wait, let me work it out: "``);
it *has a recomputation* when it contains ``"But let me double-check: "`` (the TinyMath
recomputation marker, ``mrt_env.tinymath.traces.REDO_MARKER``). Printed per policy: the
number of responses and each share with a 95% Wilson interval.

Usage:
    python benchmarks/regret.py --name demo          # writes runs/regret/demo/traces.jsonl
    python benchmarks/trace_patterns.py --traces runs/regret/demo/traces.jsonl
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import parse_args, read_traces, write_json

from mrt_env.prover.sampled import wilson_interval
from mrt_env.tinymath.traces import REDO_MARKER, WORK_MARKER


@dataclass(frozen=True)
class Args:
    """Shares of quick-guess openings and recomputations per policy."""

    traces: str = "runs/regret/demo/traces.jsonl"
    """traces.jsonl written by regret.py (policy, problem_id, sample, response)"""
    out: str = ""
    """optional JSON file for the shares"""


GUESS = re.compile(r"^[^\n]* is about -?\d+\.")
"""A first paragraph that states a quick guess."""


def opens_with_guess(response: str) -> bool:
    """The response opens with a quick guess and then works the problem out."""
    return bool(GUESS.match(response)) and ("\n\n" + WORK_MARKER) in response


def has_recomputation(response: str) -> bool:
    """The response recomputes an answer (``"But let me double-check: "``)."""
    return REDO_MARKER in response


def share(hits: int, total: int) -> dict[str, Any]:
    """``hits / total`` with its 95% Wilson interval."""
    low, high = wilson_interval(hits, total)
    return {"share": hits / total, "ci_low": low, "ci_high": high, "hits": hits, "n": total}


def main(args: Args) -> dict[str, Any]:
    by_policy: dict[str, list[str]] = defaultdict(list)
    for record in read_traces(Path(args.traces)):
        by_policy[record.get("policy", "?")].append(record["response"])
    results: dict[str, Any] = {}
    print(f"{'policy':<10}{'responses':>10}  {'quick guess first':<28}{'recomputation':<28}")
    for name, responses in by_policy.items():
        guess = share(sum(map(opens_with_guess, responses)), len(responses))
        redo = share(sum(map(has_recomputation, responses)), len(responses))
        results[name] = {"quick_guess": guess, "recomputation": redo}
        cells = [f"{s['share']:.1%} [{s['ci_low']:.1%}, {s['ci_high']:.1%}]" for s in (guess, redo)]
        print(f"{name:<10}{len(responses):>10}  {cells[0]:<28}{cells[1]:<28}")
    if args.out:
        write_json(Path(args.out), results)
    return results


if __name__ == "__main__":
    main(parse_args(Args))
