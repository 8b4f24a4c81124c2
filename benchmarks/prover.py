"""Meta-prover throughput: SampledMetaProver against per-prefix ``model.generate``.

One run, one model, the same N thinking prefixes (P problems x (E + 1) growing prefixes:
the empty thinking, then one more episode each time). Each prefix needs J: K forced answers
sampled after the termination suffix, verified with ``rewards.verify_many``.

* baseline: for every prefix, ``model.generate(num_return_sequences=K)`` (transformers expands
  the prompt K times, so it prefills every prefix K times), then verification.
* prover (one call): ``SampledMetaProver.estimate`` on all N requests at once: one batched
  sampling loop, each distinct input prefilled once and its KV cache shared by its K samples.
* prover (by depth): the environment's order, one call per episode index over all problems;
  the model's prefix KV cache then reuses the previous prefix of each problem.

Each round runs the three methods once, in an order rotated every round (``--repeats``
rounds); printed: the work of each side (forced answers sampled, equal on every side), the
median wall time of each method, the per-round speed-up (baseline / prover) as its median
with its min and max, and prefill tokens processed over the minimum (every distinct input's
tokens once). Targets at K = 8: speed-up >= 3x,
prefill <= 1.1x the minimum. Then the share of ``env.step`` time spent outside model calls in
MRTMath-v0 driven with the same prefixes (target <= 5%).

Run:  .venv/bin/python benchmarks/prover.py                     # tiny random Llama, CPU
      .venv/bin/python benchmarks/prover.py --model tiny         # the shipped TinyMath model
      .venv/bin/python benchmarks/prover.py --model tiny:classic # its classic variant
      .venv/bin/python benchmarks/prover.py --model PATH --device cuda --template r1-distill
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import fmt_load, machine_load, parse_args, run_environment, write_json

import rewards
from mrt_env.lm.hf import HFLanguageModel
from mrt_env.prover import ProverRequest, SampledMetaProver
from mrt_env.templates import ChatTemplate, resolve_template
from mrt_env.tinymath import tiny_variant


@dataclass(frozen=True)
class Args:
    """Meta-prover throughput: SampledMetaProver against per-prefix model.generate."""

    model: str = "random"
    """`random` (tiny random Llama), tiny, tiny:VARIANT (e.g. tiny:classic) or a model folder"""
    template: str | None = None
    """chat template preset (termination suffix of the forced answers; default: tiny for the
    tiny models, the tokenizer's chat template for other models)"""
    device: str = "cpu"
    """`cpu` or `cuda`"""
    num_problems: int = 8
    """problems P"""
    episodes: int = 4
    """episodes E per problem (prefixes per problem: E + 1, the empty one included)"""
    episode_chars: int = 160
    """approximate characters of one synthetic episode"""
    k: int = 8
    """forced answers per prefix (K)"""
    max_answer_tokens: int = 16
    """token cap of one forced answer"""
    temperature: float = 1.0
    """sampling temperature of the forced answers"""
    threads: int = 1
    """torch CPU threads (0: torch's default)"""
    repeats: int = 5
    """timed rounds; each round runs every method once, in a rotated order"""
    env_check: bool = True
    """also measure the share of env.step time outside model calls"""
    seed: int = 0
    """seed of the synthetic problems/prefixes and of the prover's samples"""
    out: str = ""
    """optional JSON file for the results"""


def load_lm(args: Args) -> HFLanguageModel:
    if args.model == "random":
        from mrt_env.lm.testing import char_tokenizer, tiny_random_model

        model = tiny_random_model(args.seed).to(args.device)
        return HFLanguageModel(model, char_tokenizer(), name="tiny-random-llama")
    if tiny_variant(args.model) is not None:
        from mrt_env.config import build_lm

        lm = build_lm(args.model, None)
        assert isinstance(lm, HFLanguageModel)
        lm.model.to(args.device)
        return lm
    return HFLanguageModel.from_pretrained(args.model, device=args.device)


def synthetic_problems(args: Args) -> list[dict[str, Any]]:
    """P arithmetic problems, each with E episodes of plausible thinking text."""
    rng = np.random.default_rng(args.seed)
    problems = []
    for index in range(args.num_problems):
        a, b = (int(x) for x in rng.integers(10, 999, size=2))
        episodes = []
        for e in range(args.episodes):
            lines = []
            while sum(len(line) for line in lines) < args.episode_chars:
                x, y = (int(v) for v in rng.integers(1, 99, size=2))
                lines.append(f"{x} + {y} = {x + y}, so I carry on. ")
            opener = "" if e == 0 else rng.choice(["Wait, ", "Alternatively, ", "Let me check: "])
            episodes.append(("\n\n" if e else "") + opener + "".join(lines).rstrip())
        problems.append(
            {
                "id": f"p{index}",
                "problem": f"{a} + {b}?",
                "answer": str(a + b),
                "episodes": episodes,
            }
        )
    return problems


def make_requests(
    problems: list[dict[str, Any]], template: ChatTemplate, seed: int
) -> list[list[ProverRequest]]:
    """Requests grouped by episode index (depth 0 = the empty thinking)."""
    depths = []
    for depth in range(len(problems[0]["episodes"]) + 1):
        depths.append(
            [
                ProverRequest(
                    p["id"],
                    template.render_prompt(p["problem"]),
                    p["answer"],
                    "".join(p["episodes"][:depth]),
                    seed + 1000 * i + depth,
                )
                for i, p in enumerate(problems)
            ]
        )
    return depths


def run_baseline(
    lm: HFLanguageModel, template: ChatTemplate, requests: list[ProverRequest], args: Args
) -> dict[str, Any]:
    """Per-prefix generate(num_return_sequences=K), then the same verification."""
    start = time.perf_counter()
    prefill, pairs = 0, []
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.eos_token_id
    for request in requests:
        text = template.render_forced(request.prompt, request.prefix)
        ids = torch.tensor([lm.encode(text)], device=lm.device)
        with torch.inference_mode():
            out = lm.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=args.temperature > 0,
                temperature=args.temperature if args.temperature > 0 else None,
                top_p=None,
                top_k=None,
                max_new_tokens=args.max_answer_tokens,
                num_return_sequences=args.k,
                pad_token_id=pad,
            )
        prefill += args.k * ids.shape[1]
        answers = lm.tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
        pairs += [(text[len(request.prompt) :] + answer, request.gold) for answer in answers]
    generated = time.perf_counter()
    verdicts = rewards.verify_many(pairs)
    j = [
        np.mean([v.correct for v in verdicts[i : i + args.k]]) for i in range(0, len(pairs), args.k)
    ]
    return {
        "seconds": time.perf_counter() - start,
        "generate_seconds": generated - start,
        "prefill_tokens": prefill,
        "answers": len(pairs),
        "mean_j": float(np.mean(j)),
    }


def run_prover(
    lm: HFLanguageModel, template: ChatTemplate, calls: list[list[ProverRequest]], args: Args
) -> dict[str, Any]:
    """SampledMetaProver with cold caches, one estimate call per entry of ``calls``."""
    lm.clear_prefix_cache()
    lm.stats.reset()
    prover = SampledMetaProver(
        lm,
        template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        temperature=args.temperature,
    )
    start = time.perf_counter()
    estimates = [e for call in calls for e in prover.estimate(call)]
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "generate_seconds": prover.stats.generate_seconds,
        "prefill_tokens": lm.stats.prefill_tokens,
        "prefill_padded_tokens": lm.stats.prefill_padded_tokens,
        "forward_calls": lm.stats.forward_calls,
        "answers": prover.stats.generated_answers,
        "mean_j": float(np.mean([e.j for e in estimates])),
    }


def trie_size(sequences: list[list[int]]) -> int:
    """Distinct token prefixes over all sequences: the prefill of perfect prefix sharing."""
    root: dict[int, dict] = {}
    nodes = 0
    for ids in sequences:
        node = root
        for token in ids:
            if token not in node:
                node[token] = {}
                nodes += 1
            node = node[token]
    return nodes


def alternating_runs(methods: dict[str, Any], repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Run every method once per round, rotating the order each round (so a slow phase of
    a shared machine does not always hit the same method); ``name -> runs`` in round order."""
    names = list(methods)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(methods[name]())
    return runs


def ratio_stats(baseline: list[dict[str, Any]], runs: list[dict[str, Any]], key: str) -> dict:
    """Per-round ratios ``baseline[key] / run[key]``: median, min, max and every value."""
    ratios = [b[key] / r[key] for b, r in zip(baseline, runs, strict=True)]
    return {
        "median": float(np.median(ratios)),
        "min": float(min(ratios)),
        "max": float(max(ratios)),
        "ratios": ratios,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def env_overhead(
    lm: HFLanguageModel, template: ChatTemplate, problems: list[dict[str, Any]], args: Args
) -> dict[str, float]:
    """Drive MRTMath-v0 with the same episodes; share of step time outside model calls."""
    from mrt_env.env import MRTMathEnv

    prover = SampledMetaProver(lm, template, k=args.k, max_answer_tokens=args.max_answer_tokens)
    env = MRTMathEnv(
        problems=[{k: p[k] for k in ("id", "problem", "answer")} for p in problems],
        lm=lm,
        prover=prover,
        template=template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        token_budget=100_000,
        max_episodes=args.episodes,
        max_observation_chars=1_000_000,
    )
    for index, problem in enumerate(problems):
        env.reset(seed=args.seed + index, options={"index": index})
        for episode in problem["episodes"]:
            _, _, terminated, truncated, _ = env.step(episode)
            if terminated or truncated:
                break
    timings = dict(env.timings)
    return {**timings, "overhead_share": env.core.overhead_share()}


KEYS = ("seconds", "generate_seconds")
"""End to end (verification included) and sampling only."""


def _spread(stat: dict[str, Any]) -> str:
    return f"{stat['median']:.2f}x [{stat['min']:.2f}, {stat['max']:.2f}]"


def main() -> None:
    args = parse_args(Args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the baseline's generate() samples from the global RNG
    lm = load_lm(args)
    template = resolve_template(args.template, lm)
    problems = synthetic_problems(args)
    depths = make_requests(problems, template, args.seed)
    requests = [r for depth in depths for r in depth]
    inputs = {template.render_forced(r.prompt, r.prefix) for r in requests}
    minimum = sum(lm.count_tokens(text) for text in inputs)
    trie = trie_size([lm.encode(text) for text in inputs])
    run_prover(lm, template, [requests[:2]], args)  # warm-up
    run_baseline(lm, template, requests[:1], args)

    methods = {
        "baseline": lambda: run_baseline(lm, template, requests, args),
        "prover_one_call": lambda: run_prover(lm, template, [requests], args),
        "prover_by_depth": lambda: run_prover(lm, template, depths, args),
    }
    load_before = machine_load()
    print(f"before measuring: {fmt_load(load_before)}")
    runs = alternating_runs(methods, args.repeats)
    print(f"load: before {fmt_load(load_before)}; after {fmt_load()}")
    speedups = {
        name: {key: ratio_stats(runs["baseline"], runs[name], key) for key in KEYS}
        for name in ("prover_one_call", "prover_by_depth")
    }
    by_depth = median_run(runs["prover_by_depth"])
    results: dict[str, Any] = {
        "args": asdict(args),
        "model": lm.name,
        "num_prefixes": len(requests),
        "minimum_prefill_tokens": minimum,
        "trie_prefill_tokens": trie,
        "runs": runs,
        "speedup": speedups,
        "environment": run_environment(),
    }
    answers = {name: [r["answers"] for r in runs[name]] for name in methods}
    print(f"model {lm.name} on {args.device}; N = {len(requests)} prefixes x K = {args.k}")
    equal = len({n for counts in answers.values() for n in counts}) == 1
    print(f"work: forced answers per run {answers} ({'equal' if equal else 'NOT equal'})")
    print(f"{args.repeats} rounds, methods in rotated order; speed-up = baseline / method per "
          "round: median [min, max]")  # fmt: skip
    header = ("method", "seconds", "end-to-end speed-up", "sampling speed-up", "prefill")
    print("{:<22}{:>9}  {:<24}{:<24}{:>9}".format(*header))
    rows = (("generate per prefix", "baseline"), ("prover, one call", "prover_one_call"),
            ("prover, by depth", "prover_by_depth"))  # fmt: skip
    for label, name in rows:
        run = median_run(runs[name])
        cells = [_spread(speedups[name][k]) if name in speedups else "1.0x" for k in KEYS]
        prefill = f"{run['prefill_tokens']} = {run['prefill_tokens'] / minimum:.2f}x minimum"
        print(f"{label:<22}{run['seconds']:>9.3f}  {cells[0]:<24}{cells[1]:<24}{prefill:>9}")
    print(
        f"minimum prefill (each distinct input once): {minimum} tokens; with shared prefixes "
        f"counted once: {trie} (prover by depth: {by_depth['prefill_tokens'] / trie:.2f}x)"
    )
    if args.env_check:
        results["env"] = env_overhead(lm, template, problems, args)
        print(f"env.step time outside model calls: {100 * results['env']['overhead_share']:.1f}%")
    if args.out:
        write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
