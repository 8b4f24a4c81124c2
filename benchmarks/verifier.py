"""Benchmark: the project's verifier (`rewards.Verifier`) against raw in-process math-verify.

Inputs: every MATH-500 gold answer embedded in a response (`</think> ... \\boxed{gold}`), plus an
equivalent variant (decimal <-> fraction, `\\dfrac`, ...) and a non-equivalent variant of each.
Both verifiers see the same (response, gold) pairs, with caches cold:

* raw:      `math_verify.verify(parse(gold), parse(response))` in this process, one at a time
            (math-verify's own SIGALRM timeout, main thread only; each gold parsed once).
* verifier: `Verifier.verify_many(pairs)` (all workers busy, hard timeout per response) for
            throughput, and `Verifier.verify` one call at a time for latency.

Then a few adversarial answers (a power tower, a huge factorial) show the worst-case latency.

Run:  .venv/bin/python benchmarks/verifier.py --data ../shared/data/math500.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rewards import Verifier, VerifierConfig
from rewards.extraction import final_answers
from rewards.normalize import normalize_answer


@dataclass(frozen=True)
class Args:
    data: str = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "math500.jsonl")
    """JSONL file with an `answer` field per row (MATH-500)."""
    workers: int = 2
    """worker processes of the project's verifier"""
    timeout_s: float = 5.0
    """hard timeout per response of the project's verifier"""
    max_items: int = 0
    """use only the first N gold answers (0: all)"""
    seed: int = 0
    """seed of the shuffle of the inputs"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default
        )
    return Args(**vars(parser.parse_args()))


def equivalent_variant(gold: str) -> str:
    """The same value written differently (a decimal as a fraction, an integer as a fraction...)."""
    try:
        value = Fraction(gold.replace(",", ""))
    except ValueError:
        return gold.replace("\\frac", "\\dfrac") if "\\frac" in gold else f"{{{gold}}}"
    if value.denominator == 1:
        return f"\\frac{{{2 * value.numerator}}}{{2}}"
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def wrong_variant(gold: str) -> str:
    """A value that is not equivalent to the gold answer."""
    try:
        return str(Fraction(gold.replace(",", "")) + 1)
    except ValueError:
        return f"{gold}+1"


def respond(answer: str) -> str:
    return f"<think>Let me check this carefully.</think>\nSo the answer is $\\boxed{{{answer}}}$."


def build_inputs(args: Args) -> list[tuple[str, str]]:
    golds = [json.loads(line)["answer"] for line in Path(args.data).read_text().splitlines()]
    golds = golds[: args.max_items] if args.max_items else golds
    pairs = [(respond(g), g) for g in golds]
    pairs += [(respond(equivalent_variant(g)), g) for g in golds]
    pairs += [(respond(wrong_variant(g)), g) for g in golds]
    order = np.random.default_rng(args.seed).permutation(len(pairs))
    return [pairs[i] for i in order]


def summarize(name: str, latencies: list[float], wall_s: float, n: int) -> float:
    throughput = n / wall_s
    line = f"{name:<26} {throughput:8.1f} answers/s"
    if latencies:
        ms = np.asarray(latencies) * 1000
        p50, p99 = np.percentile(ms, [50, 99])
        line += f"   p50 {p50:7.2f} ms   p99 {p99:8.2f} ms   max {ms.max():8.2f} ms"
    print(line)
    return throughput


def run_raw(pairs: list[tuple[str, str]]) -> tuple[list[bool], list[float], float]:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL + 1)
    verify(parse("$1$"), parse("$1$"))  # warm up imports
    results, latencies = [], []
    parsed_golds: dict[str, list] = {}  # parse each gold once, as the project's workers do
    start = time.perf_counter()
    for response, gold in tqdm(pairs, desc="raw math-verify", leave=False):
        t0 = time.perf_counter()
        if gold not in parsed_golds:
            parsed_golds[gold] = parse(f"$\\boxed{{{gold}}}$")
        results.append(bool(verify(parsed_golds[gold], parse(response))))
        latencies.append(time.perf_counter() - t0)
    return results, latencies, time.perf_counter() - start


def fresh_verifier(args: Args) -> Verifier:
    config = VerifierConfig(timeout_s=args.timeout_s, workers=args.workers, cache_size=0)
    verifier = Verifier(config)
    warm = [(respond(f"\\frac{{{2 * i}}}{{2}}"), str(i)) for i in range(2 * args.workers)]
    verifier.verify_many(warm)  # start the workers (integer pairs would not need them)
    return verifier


def main() -> None:
    args = parse_args()
    pairs = build_inputs(args)
    print(f"{len(pairs)} (response, gold) pairs from {args.data}; workers={args.workers}")
    integer = re.compile(r"-?\d+")
    integers = sum(
        bool(integer.fullmatch(normalize_answer(gold)))
        and all(integer.fullmatch(normalize_answer(a)) for a in final_answers(response) or ["x"])
        for response, gold in pairs
    )
    print(f"{integers} pairs are integer literals on both sides (graded without math-verify)")

    raw_results, raw_latencies, raw_wall = run_raw(pairs)
    raw_throughput = summarize("raw math-verify (1 proc)", raw_latencies, raw_wall, len(pairs))

    verifier = fresh_verifier(args)
    start = time.perf_counter()
    batch = verifier.verify_many(pairs)
    batch_wall = time.perf_counter() - start
    verifier.close()
    ours_throughput = summarize("verifier.verify_many", [], batch_wall, len(pairs))

    verifier = fresh_verifier(args)
    latencies = []
    start = time.perf_counter()
    for response, gold in tqdm(pairs, desc="verifier.verify", leave=False):
        t0 = time.perf_counter()
        verifier.verify(response, gold)
        latencies.append(time.perf_counter() - t0)
    summarize("verifier.verify (1 call)", latencies, time.perf_counter() - start, len(pairs))

    adversarial = ["9^{9^{9^9}}", "2^{2^{2^{2^{2^{2}}}}}", "100000!"]
    worst = []
    for answer in adversarial:
        t0 = time.perf_counter()
        status = verifier.verify(respond(answer), "5").status
        worst.append(time.perf_counter() - t0)
        print(f"adversarial {answer!r:<26} {status:<8} {worst[-1]:.2f} s")
    verifier.close()

    agree = np.mean([r.correct == raw for r, raw in zip(batch, raw_results, strict=True)])
    timeouts = sum(r.status == "timeout" for r in batch)
    for (_, gold), ours, raw in zip(pairs, batch, raw_results, strict=True):
        if ours.correct != raw:
            print(f"differs: gold {gold!r:<28} answer {ours.answer!r:<30} {ours.status}, raw {raw}")
    print(f"throughput ratio (verifier.verify_many / raw): {ours_throughput / raw_throughput:.2f}")
    print(f"worst-case latency (adversarial): {max(worst):.2f} s, timeout {args.timeout_s} s")
    print(f"verdicts equal to raw math-verify: {agree:.2%}; timeouts: {timeouts}")


if __name__ == "__main__":
    main()
