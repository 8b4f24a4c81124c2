"""Benchmark: the project's verifier (`rewards.Verifier`) against raw math-verify.

Inputs: every MATH-500 gold answer embedded in a response (`</think> ... \\boxed{gold}`), plus an
equivalent variant (decimal <-> fraction, `\\dfrac`, ...) and a non-equivalent variant of each.
Two comparisons, each labelled for what it measures:

(a) The worker pool against in-process math-verify on identical work: the same tasks
    (normalised gold, normalised extracted answer), one per distinct gold answer (its variant
    drawn with the seed), so no task repeats and no gold parse is reused; no integer shortcut
    and no result cache on either side. Both sides run `rewards._grading.grade`, the function
    the workers run: in process one task at a time on one core (no timeout), and through
    `rewards.pool.WorkerPool.run_many` with the hard timeout, first with 1 worker (the cost of
    the timeout guarantee; target >= 70% of the in-process throughput), then with `--workers`.
(b) End to end: `Verifier.verify_many(pairs)` with everything it does to avoid work (integer
    pairs compared without math-verify, duplicate tasks graded once per call, only the
    extracted answer parsed), against raw `math_verify.verify(parse(gold), parse(response))`
    on whole responses in this process (each gold parsed once, math-verify's own SIGALRM
    timeout). This is what a caller gains, not the pool's speed.

Then single `Verifier.verify` latencies and a few adversarial answers (a power tower, a huge
factorial) show the worst case under the timeout.

Run:  .venv/bin/python benchmarks/verifier.py --data ../shared/data/math500.jsonl
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import fmt_load, fmt_spread, machine_load, parse_args
from tqdm import tqdm

from rewards import Verifier, VerifierConfig
from rewards.extraction import final_answers
from rewards.normalize import normalize_answer

Task = tuple[str, tuple[str, ...]]
"""``(normalised gold, normalised candidates)``: what a grading worker receives."""


@dataclass(frozen=True)
class Args:
    """The verifier's worker pool and verify_many against raw math-verify."""

    data: str = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "math500.jsonl")
    """JSONL file with an `answer` field per row (MATH-500)"""
    workers: int = 2
    """worker processes of the project's verifier"""
    timeout_s: float = 5.0
    """hard timeout per response of the project's verifier"""
    max_items: int = 0
    """use only the first N gold answers (0: all)"""
    seed: int = 0
    """seed of the shuffle of the inputs and of the variant of each task in (a)"""
    adversarial: bool = True
    """also time the adversarial answers (each may take up to the timeout)"""
    repeats: int = 3
    """rounds of (a) and (b); ratios are reported as median [min, max] over the rounds"""


def read_golds(args: Args) -> list[str]:
    lines = Path(args.data).read_text().splitlines()
    golds = [json.loads(line)["answer"] for line in lines if line.strip()]
    return golds[: args.max_items] if args.max_items else golds


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


def identical_tasks(args: Args) -> list[Task]:
    """(a)'s tasks: one per distinct normalised gold, its answer the extracted and normalised
    final answer of a response with the gold, an equivalent or a wrong variant (seeded)."""
    rng = np.random.default_rng(args.seed)
    tasks: dict[str, tuple[str, ...]] = {}
    for gold in read_golds(args):
        variant = (gold, equivalent_variant(gold), wrong_variant(gold))[int(rng.integers(3))]
        gold_normal = normalize_answer(gold)
        answers = final_answers(respond(variant)) or []
        if gold_normal and answers and gold_normal not in tasks:
            tasks[gold_normal] = (normalize_answer(answers[-1]),)
    return list(tasks.items())


def grade_in_this_process(tasks: list[Task]) -> tuple[list[object], float]:
    """`rewards._grading.grade` on every task, one at a time in the calling process."""
    from rewards._grading import grade, warm_up

    warm_up()  # imports outside the timing, as a worker does before it reports "ready"
    start = time.perf_counter()
    results: list[object] = [grade(*task) for task in tqdm(tasks, desc="in-process", leave=False)]
    return results, time.perf_counter() - start


def run_in_process(tasks: list[Task]) -> tuple[list[object], float]:
    """The in-process side in a fresh process each round, as fresh as the pool's workers:
    sympy's and math-verify's own caches would otherwise keep the parses of earlier rounds of
    the same golds and make later rounds less work than the pool's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(grade_in_this_process, tasks).result()


def run_pool(tasks: list[Task], workers: int, timeout_s: float) -> tuple[list[object], float]:
    """The same tasks through a started `WorkerPool` (hard timeout per task)."""
    from rewards.pool import WorkerPool

    pool = WorkerPool(workers)
    pool.run_many([("1", ("1",))] * workers, timeout_s)  # start and warm every worker
    start = time.perf_counter()
    results = pool.run_many(tasks, timeout_s)
    wall = time.perf_counter() - start
    pool.close()
    return results, wall


def identical_work(args: Args) -> dict[int, float]:
    """(a): the pool against in-process math-verify on identical tasks; ratio per worker count."""
    from rewards.pool import TIMED_OUT

    tasks = identical_tasks(args)
    print(f"(a) identical work: {len(tasks)} distinct tasks (one per distinct gold), no shortcuts")
    local, local_wall = run_in_process(tasks)
    local_rate = summarize("(a) in-process grade, 1 core", [], local_wall, len(local))
    ratios: dict[int, float] = {}
    for workers in dict.fromkeys((1, args.workers)):
        pooled, wall = run_pool(tasks, workers, args.timeout_s)
        rate = summarize(f"(a) worker pool, {workers} worker(s)", [], wall, len(pooled))
        same = np.mean([a == b for a, b in zip(local, pooled, strict=True)])
        timeouts = sum(r == TIMED_OUT for r in pooled)
        print(f"(a) work: {len(local)} tasks in process, {len(pooled)} tasks in the pool")
        print(
            f"(a) pool ({workers} worker(s)) / in-process throughput: {rate / local_rate:.2f}x; "
            f"results equal on {same:.1%}; timeouts: {timeouts}"
        )
        ratios[workers] = rate / local_rate
    return ratios


def fresh_verifier(args: Args) -> Verifier:
    config = VerifierConfig(timeout_s=args.timeout_s, workers=args.workers, cache_size=0)
    verifier = Verifier(config)
    warm = [(respond(f"\\frac{{{2 * i}}}{{2}}"), str(i)) for i in range(2 * args.workers)]
    verifier.verify_many(warm)  # start the workers (integer pairs would not need them)
    return verifier


def end_to_end(args: Args) -> float:
    """(b): verify_many with its shortcuts against raw math-verify on whole responses."""
    pairs = build_inputs(args)
    print(f"(b) end to end: {len(pairs)} (response, gold) pairs from {args.data}")
    integer = re.compile(r"-?\d+")
    integers = sum(
        bool(integer.fullmatch(normalize_answer(gold)))
        and all(integer.fullmatch(normalize_answer(a)) for a in final_answers(response) or ["x"])
        for response, gold in pairs
    )
    print(f"(b) {integers} pairs are integer literals on both sides (graded without math-verify)")
    raw_results, raw_latencies, raw_wall = run_raw(pairs)
    raw_rate = summarize("(b) raw math-verify, 1 proc", raw_latencies, raw_wall, len(raw_results))
    verifier = fresh_verifier(args)
    start = time.perf_counter()
    batch = verifier.verify_many(pairs)
    batch_wall = time.perf_counter() - start
    verifier.close()
    rate = summarize("(b) verifier.verify_many", [], batch_wall, len(batch))
    print(f"(b) work: {len(raw_results)} pairs raw, {len(batch)} pairs verify_many")
    print(f"(b) verify_many (shortcuts, {args.workers} workers) / raw math-verify: "
          f"{rate / raw_rate:.2f}x")  # fmt: skip
    agree = np.mean([r.correct == raw for r, raw in zip(batch, raw_results, strict=True)])
    for (_, gold), ours, raw in zip(pairs, batch, raw_results, strict=True):
        if ours.correct != raw:
            print(f"differs: gold {gold!r:<28} answer {ours.answer!r:<30} {ours.status}, raw {raw}")
    timeouts = sum(r.status == "timeout" for r in batch)
    print(f"(b) verdicts equal to raw math-verify: {agree:.2%}; timeouts: {timeouts}")
    return rate / raw_rate


def latencies(args: Args) -> None:
    """Single `verify` calls one at a time, then the adversarial answers."""
    pairs = build_inputs(args)
    verifier = fresh_verifier(args)
    seconds = []
    start = time.perf_counter()
    for response, gold in tqdm(pairs, desc="verifier.verify", leave=False):
        t0 = time.perf_counter()
        verifier.verify(response, gold)
        seconds.append(time.perf_counter() - t0)
    summarize("verifier.verify (1 call)", seconds, time.perf_counter() - start, len(pairs))
    adversarial = ["9^{9^{9^9}}", "2^{2^{2^{2^{2^{2}}}}}", "100000!"] if args.adversarial else []
    worst = []
    for answer in adversarial:
        t0 = time.perf_counter()
        status = verifier.verify(respond(answer), "5").status
        worst.append(time.perf_counter() - t0)
        print(f"adversarial {answer!r:<26} {status:<8} {worst[-1]:.2f} s")
    verifier.close()
    if worst:
        print(f"worst-case latency (adversarial): {max(worst):.2f} s, timeout {args.timeout_s} s")


def main(args: Args) -> None:
    load_before = machine_load()
    print(f"before measuring: {fmt_load(load_before)}")
    pool: dict[int, list[float]] = {}
    whole: list[float] = []
    for round_index in range(args.repeats):
        print(f"--- round {round_index + 1} of {args.repeats}")
        for workers, ratio in identical_work(args).items():
            pool.setdefault(workers, []).append(ratio)
        whole.append(end_to_end(args))
    latencies(args)
    print(f"summary over {args.repeats} rounds, median [min, max]:")
    for workers, ratios in pool.items():
        target = "  (target >= 0.70)" if workers == 1 else ""
        print(f"(a) pool with {workers} worker(s) / in-process: {fmt_spread(ratios)}{target}")
    print(f"(b) verify_many / raw math-verify: {fmt_spread(whole)}")
    print(f"load: before {fmt_load(load_before)}; after {fmt_load()}")


if __name__ == "__main__":
    main(parse_args(Args))
