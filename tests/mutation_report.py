"""Per-module report of a mutmut run (``make mutate``): killed, survived, timed out, equivalent.

Reads the results mutmut keeps under ``mutants/`` (one ``<module>.py.meta`` JSON file per mutated
module) and prints a Markdown table, the surviving mutants that are not listed as equivalent,
and the functions no selected test runs. Run from the repository root after ``mutmut run``::

    python -m tests.mutation_report            # the table and the open survivors
    python -m tests.mutation_report --diff     # also the diff of each open survivor
    python -m tests.mutation_report --equivalents   # the equivalent mutants, as Markdown

``EQUIVALENT`` lists the surviving mutants that cannot change behaviour, each with its reason;
a mutant listed there that no longer survives is reported, so the list cannot go stale silently.
Mutant names carry mutmut's per-function counter, so they change when a function changes:
rerun and re-check the list after editing a mutated module.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

#: mutmut's exit-code convention (mutmut.stats.status_by_exit_code), folded into report columns.
STATUS_BY_EXIT_CODE = {
    0: "survived",
    1: "killed",
    3: "killed",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}

#: Surviving mutants that behave exactly like the original, with the reason.
EQUIVALENT: dict[str, str] = {
    "agents.mrt.x_termination_baseline_advantages__mutmut_3": (
        "outcomes without dtype=float: subtracting the float64 prefix_j array gives the same "
        "float64 result for any numeric outcomes"
    ),
    "agents.mrt.x_termination_baseline_advantages__mutmut_5": (
        "the same as _3 (np.asarray(outcomes) without a dtype)"
    ),
    "agents.mrt.x_termination_baseline_advantages__mutmut_7": (
        "prefix_j without dtype=float: it is subtracted from the float64 outcomes array, so the "
        "result is the same float64 for any numeric prefix_j"
    ),
    "agents.mrt.x_termination_baseline_advantages__mutmut_9": "the same as _7",
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_41": (
        "getattr default None instead of '': either differs from 'no_answer', so a verdict "
        "without a status counts as answered in both"
    ),
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_47": (
        "getattr default 'XXXX' instead of '': the same as _41"
    ),
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_remember__mutmut_6": (
        "popitem(last=None): None is falsy, so the oldest entry is evicted as with last=False"
    ),
    "agents.mrt.x_collect_continuations__mutmut_67": (
        "zip(sources, cuts, strict=None): cuts is built from sources, one per source"
    ),
    "agents.mrt.x_collect_continuations__mutmut_70": "the same as _67",
    "agents.mrt.x_collect_continuations__mutmut_71": "the same as _67",
    "agents.mrt.xǁMRTǁtrain_step__mutmut_45": (
        "np.zeros(2) instead of np.zeros(1) for a batch without tokens: the mean is 0 either way"
    ),
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_28": (
        "zip(rendered, requests, outputs, strict=None): when a backend returns fewer output "
        "groups, _sample returns fewer estimates and estimate's strict zip raises the same "
        "ValueError (tests/mrt_env/test_prover_sampled_mutants.py checks the error)"
    ),
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_32": "the same as _28",
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_33": "the same as _28",
    "mrt_env.prover.sampled.xǁSampledMetaProverǁestimate__mutmut_40": (
        "zip(..., strict=None) over todo and _sample(firsts): _sample returns one estimate per "
        "request or raises on a count mismatch itself (its own strict zip), so lengths agree"
    ),
    "mrt_env.prover.sampled.xǁSampledMetaProverǁestimate__mutmut_43": "the same as _40",
    "mrt_env.prover.sampled.xǁSampledMetaProverǁestimate__mutmut_45": "the same as _40",
    "mrt_env.prover.sampled.xǁSampledMetaProverǁ_sample__mutmut_88": (
        "JEstimate(..., source='sampled') without source: 'sampled' is JEstimate's default"
    ),
    "agents.mrt.xǁMRTǁtrain_step__mutmut_58": (
        "getattr(prover, 'source', None): the default only applies to a μ without `source`, "
        "and any default other than 'learned' logs prover/learned = 0 for it"
    ),
    "agents.mrt.xǁMRTǁtrain_step__mutmut_64": "the same as _58 ('XXsampledXX')",
    "agents.mrt.xǁMRTǁtrain_step__mutmut_65": "the same as _58 ('SAMPLED')",
    "mrt_env.segmenters.xǁFallbackSegmenterǁsplit__mutmut_13": (
        "size = None before the loop: the first paragraph always takes the `else` branch "
        "(merged is empty), which sets size before it is read"
    ),
    "mrt_env.segmenters.xǁFallbackSegmenterǁsplit__mutmut_14": "the same as _13 (size = 1)",
    "mrt_env.regret.x_maj_at_k__mutmut_33": (
        "zip(..., strict=None): answers, correct and weights were checked to have equal "
        "lengths just before"
    ),
    "mrt_env.regret.x_maj_at_k__mutmut_37": "the same as _33",
    "mrt_env.regret.x_maj_at_k__mutmut_38": "the same as _33",
    "mrt_env.regret.x__area_up_to__mutmut_14": (
        "np.searchsorted without side='left': 'left' is numpy's default"
    ),
    "mrt_env.regret.x_normalized_area_per_problem__mutmut_10": (
        "np.empty(..., dtype=None): float64 is numpy's default"
    ),
    "mrt_env.regret.x_normalized_area_per_problem__mutmut_12": "the same as _10",
    "mrt_env.regret.x_regret_over_episode_budget__mutmut_38": (
        "a longer flat extension (budget + size values): the curve is cut to the budget next"
    ),
    "mrt_env.regret.x_regret_over_episode_budget__mutmut_39": (
        "at least one extension value: the curve is cut to the budget next"
    ),
    "mrt_env.regret.x_regret_over_episode_budget__mutmut_55": (
        "np.asarray(mean, dtype=None): the mean of float64 regrets is float64 already"
    ),
    "mrt_env.regret.x_regret_over_episode_budget__mutmut_57": "the same as _55",
    "mrt_env.regret.x_pass_at_k__mutmut_23": (
        "n + c < k instead of n - c < k skips a shortcut only: when n - c < k the product "
        "includes i = k, whose factor 1 - k/k is exactly 0, so the result is exactly 1.0"
    ),
    "mrt_env.regret.x_pass_at_k__mutmut_32": (
        "np.arange of ints without dtype: k / int64 array is float64, the same values"
    ),
    "mrt_env.regret.x_pass_at_k__mutmut_35": "the same as _32",
    "rewards._cache.xǁ_ResultCacheǁput__mutmut_16": (
        "popitem(last=None): None is falsy, so the oldest entry is evicted as with last=False"
    ),
    "rewards.normalize.x__strip_outer_braces__mutmut_9": (
        "start <= end: at start == end, text[start] == '{' cannot be closed at index end"
    ),
    "rewards.normalize.x__strip_outer_braces__mutmut_20": (
        "start < end while skipping spaces: both forms leave an empty slice when only spaces "
        "are inside"
    ),
    "rewards.normalize.x__strip_outer_braces__mutmut_25": (
        "end > start while trimming: after the first loop text[start] is not a space, so the "
        "loop stops at end == start either way"
    ),
    "rewards.normalize.x__strip_percent__mutmut_15": (
        "lstrip instead of rstrip on return: the only caller strips both ends right after, and "
        "the text has no leading space (stripped by _strip_wrappers)"
    ),
    "rewards.normalize.x_normalize_answer__mutmut_30": (
        "the choice pattern without the length guard: after whitespace runs are collapsed, no "
        "text longer than 64 characters can fullmatch it (the guard only saves time)"
    ),
    "rewards.normalize.x_normalize_answer__mutmut_32": "the same as _30 (< 64 instead of <= 64)",
    "rewards.normalize.x_normalize_answer__mutmut_58": (
        "lstrip('XX-XX'): the text matched -?0[0-9]+, so it has no X"
    ),
    "rewards.normalize.x_normalize_answer__mutmut_59": (
        "lstrip('XX0XX'): the text matched -?0[0-9]+, so it has no X"
    ),
    "rewards.verification.xǁVerifierǁ_prepare__mutmut_77": (
        "distinct[...] = '' instead of None: only the keys of distinct are used"
    ),
    "agents.checkpoint_checks.x_read_json__mutmut_2": (
        "read_text(encoding=None) reads with the locale's encoding, UTF-8 on the machines this "
        "runs on; it differs only under a non-UTF-8 locale, which a test cannot switch to"
    ),
    "agents.checkpoint_checks.x_read_json__mutmut_4": "'UTF-8' and 'utf-8' name one codec",
    "mrt_env.paragraphs.x_split_paragraphs__mutmut_14": (
        "zip(starts, ends, strict=None): ends is starts shifted by one, the same length"
    ),
    "mrt_env.paragraphs.x_split_paragraphs__mutmut_17": "the same as _14",
    "mrt_env.paragraphs.x_split_paragraphs__mutmut_18": "the same as _14",
    "mrt_env.segmenters.xǁMarkerSegmenterǁsplit__mutmut_37": (
        "zip(starts, ends, strict=None): ends is starts shifted by one, the same length"
    ),
    "mrt_env.segmenters.xǁMarkerSegmenterǁsplit__mutmut_40": "the same as _37",
    "mrt_env.segmenters.xǁMarkerSegmenterǁsplit__mutmut_41": "the same as _37",
    "mrt_env.segmenters.xǁMarkerSegmenterǁsplit__mutmut_10": (
        "range(len(pieces)) instead of range(1, ...): index 0 is 0 paragraphs after the start "
        "(< min_paragraphs >= 1), so it is skipped"
    ),
    "mrt_env.paragraphs.x_paragraph_body__mutmut_4": (
        "'if match or True': it is only called on pieces after the first, which always start "
        "with a separator, so match is never None"
    ),
    "mrt_env.segmenters.xǁTokenChunkSegmenterǁ_chunk_end__mutmut_6": (
        "fits(None) instead of fits(len(text)): text[:None] is text[:len(text)]"
    ),
    "mrt_env.segmenter_spec.x_segmenter_from_spec__mutmut_1": (
        "default template_name 'XXXX' instead of '': only 'tiny' is special, both are not"
    ),
    "rewards.verification.x__canonical_integer__mutmut_7": (
        "lstrip('XX-XX') strips the characters X and -: an integer literal has no X"
    ),
    "rewards.verification.x__canonical_integer__mutmut_8": (
        "lstrip('XX0XX') strips the characters X and 0: an integer literal has no X"
    ),
}


def module_results(root: Path) -> dict[str, dict[str, str]]:
    """``{module: {mutant: status}}`` from mutmut's ``.meta`` files under ``root``."""
    results: dict[str, dict[str, str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        results[module] = {
            name: STATUS_BY_EXIT_CODE.get(code, "suspicious") for name, code in codes.items()
        }
    return results


def function_of(mutant: str) -> str:
    """``mrt_env.regret.x_pass_at_k__mutmut_3`` -> ``pass_at_k``; methods as ``Class.method``."""
    name = mutant.split("__mutmut_")[0].rsplit(".", 1)[-1]
    name = name.removeprefix("x_").removeprefix("xǁ")
    return name.replace("ǁ", ".")


def table(results: dict[str, dict[str, str]]) -> tuple[str, list[str], dict[str, Counter]]:
    """The Markdown table, the open survivors and the untested functions per module."""
    rows = [
        "| module | mutants | killed | timed out | survived | equivalent | no test runs it "
        "| not run | kill rate (tested) | kill rate (all) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    open_survivors: list[str] = []
    untested: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    for module, statuses in results.items():
        counts: Counter = Counter()
        for mutant, status in statuses.items():
            if status == "survived" and mutant in EQUIVALENT:
                status = "equivalent"
            elif status == "survived":
                open_survivors.append(mutant)
            elif status == "no tests":
                untested[module][function_of(mutant)] += 1
            counts[status] += 1
        counts["mutants"] = len(statuses)
        totals.update(counts)
        rows.append(_row(module, counts))
    rows.append(_row("**all**", totals))
    return "\n".join(rows), open_survivors, untested


def _row(module: str, counts: Counter) -> str:
    detected = counts["killed"] + counts["timeout"]
    tested = detected + counts["survived"]
    everything = tested + counts["no tests"]
    return (
        f"| {module} | {counts['mutants']} | {counts['killed']} | {counts['timeout']} "
        f"| {counts['survived']} | {counts['equivalent']} | {counts['no tests']} "
        f"| {counts['not checked']} "
        f"| {_rate(detected, tested)} | {_rate(detected, everything)} |"
    )


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--diff", action="store_true", help="print each open survivor's diff")
    parser.add_argument(
        "--equivalents", action="store_true", help="print the equivalent mutants as Markdown"
    )
    args = parser.parse_args()
    if args.equivalents:
        for mutant, reason in EQUIVALENT.items():
            print(f"- `{mutant}`: {reason}")
        return 0
    results = module_results(args.mutants)
    if not results:
        print(f"no mutmut results under {args.mutants}/: run `make mutate` first", file=sys.stderr)
        return 1
    text, open_survivors, untested = table(results)
    print(text)
    print("\nkill rate (tested) = (killed + timed out) / (mutants - equivalent - no test runs it)")
    print("kill rate (all)    = (killed + timed out) / (mutants - equivalent)")
    unchecked = sum(s == "not checked" for r in results.values() for s in r.values())
    if unchecked:
        print(f"\n{unchecked} mutants were not checked (an interrupted run): rerun `make mutate`")
    stale = sorted(m for m in EQUIVALENT if all(r.get(m) != "survived" for r in results.values()))
    if stale:
        print(f"\nlisted as equivalent but not surviving (update EQUIVALENT): {stale}")
    print("\nfunctions no selected test runs (their mutants are 'no test runs it'):")
    for module, functions in untested.items():
        print(f"  {module}: " + ", ".join(f"{f} ({n})" for f, n in sorted(functions.items())))
    print(f"\nopen survivors ({len(open_survivors)}):")
    for mutant in open_survivors:
        print(f"  {mutant}")
        if args.diff:
            shown = subprocess.run(
                [sys.executable, "-m", "mutmut", "show", mutant], capture_output=True, text=True
            )
            print(shown.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
