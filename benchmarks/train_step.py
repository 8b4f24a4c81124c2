"""Train-step cost: MRT (per-episode credit) vs GRPO, and rollout sampling vs a raw loop.

One run, one model, the same batches:

* GRPO and MRT steps alternate (and which runs first alternates) on the same problems and
  seeds, each starting from the same
  weights and optimizer state (restored before every timed step), so both sample the same
  trajectories; MRT additionally runs the env's meta-prover (J after every episode: batched
  over the whole vector env, deduplicated, cached within a step) and per-episode credit.
  Printed: seconds per step of each, the ratio MRT / GRPO (target <= 1.3) as the median of
  the per-repeat ratios and as the ratio of the fastest repeats (the least disturbed by other
  work on the machine, as ``timeit`` reports), and the share of an MRT step spent in the
  meta-prover (the part of the difference that is not timing noise).
* MRT with each μ of ``--provers`` (default: the sampled μ, the shipped learned μ
  ``learned:tiny`` and its hybrid ``hybrid:tiny``, which also samples a share ρ of the requests
  and updates the probe after the step): one MRT session per μ from the same weights, all
  timed in every repeat beside the same GRPO step (the order rotates), each reported as the
  median [min, max] of its per-repeat ratio to that GRPO step. The first μ is the headline.
* Rollout sampling throughput: the policy's ``generate`` calls during the GRPO rollouts are
  recorded (prompts, and how many tokens each row sampled) and replayed by the fair raw loop,
  the best a plain sampler could do on the same calls: each distinct prompt prefilled once,
  one forward per token over the live rows with the KV cache, each row sampling exactly the
  tokens the policy sampled for it and dropped (the batch compacted) as soon as it has. The
  ratio of their times is the share of the raw loop's speed the rollout keeps (target >= 80%;
  median over repeats, with the smallest and largest). Also printed: the same tokens from a
  dense loop (every row at the call's mean length: no ragged tail), an upper bound.
  Every timed repeat runs the same batch (problems and seeds; verifier results are not
  reused), so repeats differ only by timing noise. The policy
  backend's counters are printed too: one generation (one prefill of the prompt, shared by
  the group) per trajectory, the KV cache kept across its episodes, so no context is
  re-encoded at episode boundaries.

Run:  .venv/bin/python benchmarks/train_step.py                    # shipped tiny LM, CPU
      .venv/bin/python benchmarks/train_step.py --model random-tiny --provers sampled
      .venv/bin/python benchmarks/train_step.py --model tiny:classic \
          --provers sampled learned:tiny:classic hybrid:tiny:classic    # the classic tiny LM
      .venv/bin/python benchmarks/train_step.py --model PATH --device cuda --template r1-distill \
          --provers sampled
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import contextlib
import copy
import inspect
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import fmt_load, fmt_spread, machine_load, parse_args, run_environment, write_json

from agents.config import MRTConfig, PolicyConfig, TrainConfig
from agents.grpo import GRPO
from agents.mrt import MRT
from agents.session import TrainSession, build_session
from rewards import get_verifier


@dataclass(frozen=True)
class Args:
    """Train-step cost: MRT vs GRPO, and rollout sampling vs a raw batched loop."""

    model: str = "tiny"
    """tiny, tiny:VARIANT (e.g. tiny:classic), `random-tiny` (test double) or a model path /
    hub id"""
    device: str = "cpu"
    """`cpu` or `cuda`"""
    template: str | None = None
    """chat template preset (default: tiny for the tiny models, the tokenizer's chat template
    for other models)"""
    problems_per_step: int = 8
    """problems per step (the shipped checkpoints' training setting)"""
    group_size: int = 4
    """trajectories per problem"""
    token_budget: int = 256
    """env token budget"""
    max_episodes: int = 8
    """env episode cap"""
    prover_samples: int = 4
    """K forced answers per J"""
    provers: tuple[str, ...] = ("sampled", "learned:tiny", "hybrid:tiny")
    """μ of the MRT steps, each timed against the same GRPO step: sampled (K forced answers),
    learned:PATH or hybrid:PATH (PATH tiny: the shipped prover-tiny-explain, for the default tiny
    LM only; tiny:classic: prover-tiny, for --model tiny:classic)"""
    prover_sample_share: float = 0.1
    """ρ of a hybrid:PATH μ (share of J requests also sampled)"""
    repeats: int = 5
    """timed steps per algorithm (after one warm-up step each); medians are reported"""
    threads: int = 1
    """torch CPU threads"""
    seed: int = 0
    """seed"""
    out: str = "runs/bench/train_step.json"
    """results JSON"""


class GenerateTimer:
    """Wraps ``lm.generate``: accumulates its wall time and records every call's work."""

    def __init__(self, lm: Any) -> None:
        self.lm, self.seconds, self.cpu_seconds, self.calls = lm, 0.0, 0.0, []
        self._generate = lm.generate
        lm.generate = self

    def __call__(self, prompts: Any, params: Any, seeds: Any = None) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        outputs = self._generate(prompts, params, seeds)
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu
        lengths = [len(c.token_ids) for row in outputs for c in row]
        rows = [p for p in prompts for _ in range(params.n)]
        self.calls.append((rows, lengths, [c.finish_reason == "eos" for r in outputs for c in r]))
        return outputs

    def reset(self) -> None:
        self.seconds, self.cpu_seconds, self.calls = 0.0, 0.0, []

    @property
    def tokens(self) -> int:
        return sum(sum(lengths) for _, lengths, _ in self.calls)


class ProverTimer:
    """Wraps a meta-prover's ``estimate`` and accumulates its wall time."""

    def __init__(self, prover: Any) -> None:
        self.seconds, self._estimate = 0.0, prover.estimate
        prover.estimate = self

    def __call__(self, requests: Any) -> Any:
        start = time.perf_counter()
        estimates = self._estimate(requests)
        self.seconds += time.perf_counter() - start
        return estimates


class StepwisePolicy:
    """The naive alternative: one ``generate`` per env step from the whole observation, stopping
    at the boundary strings (the backend may reuse cached prompt prefixes, but the tokens it
    generated in earlier episodes are re-encoded)."""

    def __init__(self, policy: Any) -> None:
        self.lm, self.config, self.stops = policy.lm, policy.config, policy.segmenter.boundaries

    def reset(self, keys: Any = None) -> None:
        pass

    def act(self, observations: Any, seeds: Any, keys: Any = None) -> list[Any]:
        from agents.types import EpisodeSample
        from mrt_env.lm.base import SamplingParams

        params = SamplingParams(
            max_new_tokens=self.config.max_episode_tokens or self.config.max_trajectory_tokens,
            temperature=self.config.temperature,
            stop=self.stops,
        )
        outputs = self.lm.generate(list(observations), params, list(seeds))
        return [EpisodeSample(c.text, c.token_ids, c.logprobs, "boundary") for [c] in outputs]


def compare_policies(session: TrainSession, seed: int) -> dict[str, dict[str, float]]:
    """Rollout sampling with the trajectory-long generation vs one generation per episode."""
    from agents.rollout import group_requests

    requests = group_requests(
        session.sample_problems(np.random.default_rng(seed)), session.config.group_size
    )
    lookahead = session.collector.policy
    results = {}
    for name, policy in (
        ("one generation per trajectory", lookahead),
        ("one generation per episode", StepwisePolicy(lookahead)),
    ):
        session.reset_caches()
        session.collector.policy = policy
        before = session.lm.stats.as_dict()
        start = time.perf_counter()
        trajectories = session.collect(requests, seed)
        seconds = time.perf_counter() - start
        stats = {k: v - before[k] for k, v in session.lm.stats.as_dict().items()}
        results[name] = {
            "rollout_s": seconds,
            "generated_tokens": stats["generated_tokens"],
            "prefill_tokens": stats["prefill_tokens"],
            "reused_prefix_tokens": stats["reused_prefix_tokens"],
            "prefill_calls": stats["prefill_calls"],
            "episodes_per_trajectory": float(np.mean([len(t.episodes) for t in trajectories])),
        }
        print(f"{name}: {seconds:.2f}s, {results[name]}")
    session.collector.policy = lookahead
    return results


def snapshot(session: TrainSession) -> tuple[dict, dict]:
    return (
        copy.deepcopy(session.learner.model.state_dict()),
        copy.deepcopy(session.learner.optimizer.state_dict()),
    )


def restore(session: TrainSession, state: tuple[dict, dict]) -> None:
    session.learner.model.load_state_dict(state[0])
    session.learner.optimizer.load_state_dict(state[1])


def timed_step(algorithm: Any, session: TrainSession, seed: int) -> tuple[float, dict]:
    session.reset_caches()
    get_verifier().clear_cache()  # every repeat grades its answers again
    start = time.perf_counter()
    metrics = algorithm.train_step(session, seed)
    return time.perf_counter() - start, metrics


def _cache_of(output: Any) -> Any:
    """The KV cache of a model output (``cache`` in recent transformers)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _autocast(session: TrainSession) -> Any:
    """The policy's sampling precision: autocast to its ``compute_dtype`` when it has one."""
    dtype = getattr(session.lm, "compute_dtype", None)
    device = session.learner.device
    if dtype is None or dtype == next(session.lm.model.parameters()).dtype:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def raw_loop_seconds(
    session: TrainSession, prompts: list[str], steps: list[int], seed: int
) -> tuple[float, float]:
    """The fair raw loop on one recorded call: row ``r`` samples exactly ``steps[r]`` tokens.

    Each distinct prompt is prefilled once (one left-padded batch), its keys/values are copied
    to the rows that sample from it, then one forward per token over the live rows; a row is
    dropped (the batch compacted with ``index_select``) right after its last token. Plain
    transformers ``DynamicCache``, multinomial sampling, nothing else. Returns wall and
    process CPU seconds.
    """
    lm, model, device = session.lm, session.lm.model, session.learner.device
    distinct = list(dict.fromkeys(prompts))
    ids = [lm.encode(p) for p in distinct]
    width = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), width), session.learner.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):  # left padding
        input_ids[row, width - len(tokens) :] = torch.tensor(tokens)
        mask[row, width - len(tokens) :] = 1
    source = torch.tensor([distinct.index(p) for p in prompts], device=device)
    remaining = torch.tensor(steps, device=device)
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generator = torch.Generator(device=device).manual_seed(seed)
    cache_kwarg = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )
    temperature = session.config.policy.temperature
    start, cpu = time.perf_counter(), time.process_time()
    with _autocast(session):
        out = model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True
        )
        cache, logits = _cache_of(out), out.logits[:, -1][source]
        cache.batch_select_indices(source)  # one copy of the prompt per row
        mask, next_position = mask[source], positions[source, -1:] + 1
        while True:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
            remaining = remaining - 1
            live = remaining > 0
            if not bool(live.any()):
                break
            if not bool(live.all()):  # drop the rows that sampled their last token
                keep = live.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                token, mask, next_position = token[keep], mask[keep], next_position[keep]
                remaining = remaining[keep]
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            out = model(
                input_ids=token,
                attention_mask=mask,
                position_ids=next_position,
                use_cache=True,
                **{cache_kwarg: cache},
            )
            cache, logits = _cache_of(out), out.logits[:, -1]
            next_position = next_position + 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def replay_raw(
    session: TrainSession, calls: list, seed: int, dense: bool = False
) -> tuple[float, float]:
    """Seconds the raw loop takes for the recorded ``generate`` calls (same rows).

    Each row samples as many tokens as the policy sampled for it (a row that ended with EOS
    sampled one more token than it kept). With ``dense``, every row samples the call's mean
    number instead: the same tokens with none of the cost of rows finishing at different
    lengths, an upper bound that no sampler of these rollouts reaches.
    """
    seconds, cpu = 0.0, 0.0
    for index, (prompts, lengths, eos) in enumerate(calls):
        steps = [max(1, n + int(e)) for n, e in zip(lengths, eos, strict=True)]
        if dense:
            steps = [max(1, round(sum(steps) / len(steps)))] * len(steps)
        wall, used = raw_loop_seconds(session, prompts, steps, seed + index)
        seconds, cpu = seconds + wall, cpu + used
    return seconds, cpu


def prover_breakdown(prover: Any) -> dict[str, float]:
    """Where the meta-prover spent one MRT step (its own counters, reset before the step)."""
    if not hasattr(prover, "stats"):
        return {}
    stats = prover.stats.as_dict()
    return {
        "prover_generate_s": stats["generate_seconds"],
        "prover_verify_s": stats["verify_seconds"],
        "prover_requests": stats["requests"],
        "prover_cache_hits": stats["cache_hits"],
        "prover_unique_prefixes": stats["unique_prefixes"],
        "prover_answers": stats["generated_answers"],
        "prover_model_calls": stats["model_calls"],
    }


def print_prover_breakdown(rows: list[dict[str, Any]]) -> None:
    """Median breakdown of an MRT step: GRPO-equivalent work, μ's model calls, μ's grading and
    the rest (per-episode credit and env bookkeeping, plus timing noise)."""
    if not rows or "prover_generate_s" not in rows[0]:
        return

    def median(key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    rest = [r["mrt_s"] - r["grpo_s"] - r["mrt_prover_s"] for r in rows]
    print(
        f"MRT step breakdown (medians): GRPO-equivalent {median('grpo_s'):.2f}s + meta-prover "
        f"{median('mrt_prover_s'):.2f}s (generate {median('prover_generate_s'):.2f}s, verify "
        f"{median('prover_verify_s'):.3f}s, {median('prover_model_calls'):.0f} model calls, "
        f"{median('prover_unique_prefixes'):.0f} distinct prefixes of "
        f"{median('prover_requests'):.0f} requests, {median('prover_answers'):.0f} forced "
        f"answers) + rest {float(np.median(rest)):+.2f}s (credit, env bookkeeping, noise)"
    )


def build_sessions(args: Args) -> tuple[TrainSession, dict[str, TrainSession]]:
    """The GRPO session and one MRT session per μ of ``args.provers`` (same weights, seed)."""
    import dataclasses

    from mrt_env.tinymath import TinyMathSource

    problems = TinyMathSource(split="train", size=200, seed=args.seed)
    policy = PolicyConfig(max_trajectory_tokens=args.token_budget + 32)
    config = TrainConfig(
        problems_per_step=args.problems_per_step,
        group_size=args.group_size,
        token_budget=args.token_budget,
        max_episodes=args.max_episodes,
        prover_samples=args.prover_samples,
        prover_sample_share=args.prover_sample_share,
        seed=args.seed,
        device=args.device,
        policy=policy,
    )
    grpo = build_session(config, args.model, problems, template=args.template, with_prover=False)
    mrt = {
        mu: build_session(
            dataclasses.replace(config, prover=mu),
            args.model,
            problems,
            template=args.template,
            with_prover=True,
        )
        for mu in dict.fromkeys(args.provers)
    }
    return grpo, mrt


def run_repeat(
    index: int,
    grpo_session: TrainSession,
    mrt_sessions: dict[str, TrainSession],
    timers: dict[str, ProverTimer],
    seed: int,
) -> tuple[float, dict[str, Any], dict[str, dict[str, float]]]:
    """One GRPO step and one MRT step per μ on the same batch, in an order rotating with
    ``index``; returns GRPO's seconds and metrics, and per μ its step and μ seconds."""
    grpo, mrt = GRPO(), MRT(MRTConfig(credit="progress"))
    jobs: list[str | None] = [None, *mrt_sessions]
    shift = index % len(jobs)
    grpo_s, grpo_metrics, per_mu = 0.0, {}, {}  # type: ignore[var-annotated]
    for mu in jobs[shift:] + jobs[:shift]:
        if mu is None:
            grpo_s, grpo_metrics = timed_step(grpo, grpo_session, seed)
            continue
        prover: Any = mrt_sessions[mu].collector.components.prover
        timers[mu].seconds = 0.0
        if hasattr(prover, "stats"):
            prover.stats.reset()
        mrt_s, _ = timed_step(mrt, mrt_sessions[mu], seed)
        per_mu[mu] = {"mrt_s": mrt_s, "mrt_prover_s": timers[mu].seconds}
        per_mu[mu].update(prover_breakdown(prover))
    return grpo_s, grpo_metrics, per_mu


def prover_ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per μ: MRT / GRPO of every repeat (median, min, max), seconds and μ's share."""
    summary = {}
    for mu in rows[0]["mrt_by_prover"]:
        ratios = [r["mrt_by_prover"][mu]["mrt_s"] / r["grpo_s"] for r in rows]
        shares = [
            r["mrt_by_prover"][mu]["mrt_prover_s"] / r["mrt_by_prover"][mu]["mrt_s"] for r in rows
        ]
        summary[mu] = {
            "mrt_over_grpo": float(np.median(ratios)),
            "mrt_over_grpo_range": [min(ratios), max(ratios)],
            "mrt_s": float(np.median([r["mrt_by_prover"][mu]["mrt_s"] for r in rows])),
            "prover_share": float(np.median(shares)),
            "prover_share_range": [min(shares), max(shares)],
        }
        print(
            f"MRT with μ={mu}: {summary[mu]['mrt_s']:.2f} s/step; MRT/GRPO median [min, max] "
            f"{fmt_spread(ratios)}; μ's share of the step "
            f"{fmt_spread(shares, scale=100, digits=0)} %"
        )
    return summary


def main() -> None:
    args = parse_args(Args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.provers:
        raise SystemExit("--provers needs at least one μ (e.g. sampled)")
    grpo_session, mrt_sessions = build_sessions(args)
    timer = GenerateTimer(grpo_session.lm)
    timers = {
        mu: ProverTimer(session.collector.components.prover) for mu, session in mrt_sessions.items()
    }
    states = {mu: snapshot(session) for mu, session in mrt_sessions.items()}
    grpo_state = snapshot(grpo_session)
    headline = next(iter(mrt_sessions))
    # one batch for every repeat: the same problems and seeds, so the same trajectories
    seed = int(np.random.default_rng(args.seed).integers(2**31 - 1))
    rows: list[dict[str, Any]] = []
    stats_before = grpo_session.lm.stats.as_dict()
    prover = mrt_sessions[headline].collector.components.prover
    load_before = machine_load()
    print(f"before measuring: {fmt_load(load_before)}; μ of the MRT steps: {list(mrt_sessions)}")
    for index in range(args.repeats + 1):
        restore(grpo_session, grpo_state)
        for mu, session in mrt_sessions.items():
            restore(session, states[mu])
        timer.reset()
        grpo_s, grpo_metrics, per_mu = run_repeat(index, grpo_session, mrt_sessions, timers, seed)
        if index == 0:  # warm-up
            stats_before = grpo_session.lm.stats.as_dict()
            continue
        raw_s, raw_cpu_s = replay_raw(grpo_session, timer.calls, seed)
        dense_s, _ = replay_raw(grpo_session, timer.calls, seed, dense=True)
        rows.append(
            {
                "grpo_s": grpo_s,
                **per_mu[headline],
                "mrt_by_prover": per_mu,
                "sampling_s": timer.seconds,
                "sampling_cpu_s": timer.cpu_seconds,
                "raw_s": raw_s,
                "raw_cpu_s": raw_cpu_s,
                "dense_raw_s": dense_s,
                "sampled_tokens": timer.tokens,
                "sampled_tok_s": timer.tokens / max(timer.seconds, 1e-9),
                "raw_tok_s": timer.tokens / max(raw_s, 1e-9),
            }
        )
        mrt_times = "  ".join(f"mrt[{mu}] {v['mrt_s']:.2f}s" for mu, v in per_mu.items())
        print(
            f"repeat {index}: grpo {grpo_s:.2f}s  {mrt_times} (meta-prover "
            f"{per_mu[headline]['mrt_prover_s']:.2f}s)  sampling {timer.seconds:.2f}s"
            f"  raw loop {raw_s:.2f}s (dense {dense_s:.2f}s) for {timer.tokens} tokens "
            f"(outcome {grpo_metrics['reward/outcome']:.2f}, "
            f"tokens/trajectory {grpo_metrics['charts/tokens']:.0f})"
        )
    stats = {k: v - stats_before[k] for k, v in grpo_session.lm.stats.as_dict().items()}
    restore(grpo_session, grpo_state)
    policies = compare_policies(grpo_session, seed)
    report(args, rows, stats, policies, prover, load_before)


def report(
    args: Args,
    rows: list[dict[str, Any]],
    stats: dict[str, Any],
    policies: dict[str, Any],
    prover: Any,
    load_before: dict[str, float],
) -> None:
    """Print the figures and write the results JSON."""
    grpo_mean = float(np.median([r["grpo_s"] for r in rows]))
    mrt_mean = float(np.median([r["mrt_s"] for r in rows]))
    sampled_per_s = float(np.median([r["sampled_tok_s"] for r in rows]))
    raw_per_s = float(np.median([r["raw_tok_s"] for r in rows]))
    by_prover = prover_ratios(rows)
    load_after = machine_load()
    results = {
        "args": asdict(args),
        "environment": run_environment(),
        "repeats": rows,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "mrt_over_grpo": float(np.median([r["mrt_s"] / r["grpo_s"] for r in rows])),
        "mrt_over_grpo_range": [
            min(r["mrt_s"] / r["grpo_s"] for r in rows),
            max(r["mrt_s"] / r["grpo_s"] for r in rows),
        ],
        "mrt_over_grpo_fastest": min(r["mrt_s"] for r in rows) / min(r["grpo_s"] for r in rows),
        "mrt_over_grpo_by_prover": by_prover,
        "mrt_prover_share": float(np.median([r["mrt_prover_s"] / r["mrt_s"] for r in rows])),
        "rollout_sampling_tokens_per_s": sampled_per_s,
        "raw_loop_tokens_per_s": raw_per_s,
        "sampling_over_raw": float(np.median([r["raw_s"] / r["sampling_s"] for r in rows])),
        "sampling_over_raw_range": [
            min(r["raw_s"] / r["sampling_s"] for r in rows),
            max(r["raw_s"] / r["sampling_s"] for r in rows),
        ],
        "sampling_over_raw_cpu": float(
            np.median([r["raw_cpu_s"] / r["sampling_cpu_s"] for r in rows])
        ),
        "sampling_over_dense_raw": float(
            np.median([r["dense_raw_s"] / r["sampling_s"] for r in rows])
        ),
        "policy_generation_stats": stats,
        "trajectory_vs_episode_generation": policies,
        "prover_stats": prover.stats.as_dict() if hasattr(prover, "stats") else None,
    }
    ratios = [r["mrt_s"] / r["grpo_s"] for r in rows]
    shares = [r["mrt_prover_s"] / r["mrt_s"] for r in rows]
    print(
        f"median seconds/step: grpo {grpo_mean:.2f}  mrt[{args.provers[0]}] {mrt_mean:.2f}  "
        f"ratio mrt/grpo median [min, max] {fmt_spread(ratios)} (target <= 1.3); "
        f"fastest mrt / fastest grpo {results['mrt_over_grpo_fastest']:.2f}"
    )
    print(f"the meta-prover's share of an MRT step: {fmt_spread(shares, scale=100, digits=0)} %")
    print_prover_breakdown(rows)
    print(f"load: before {fmt_load(load_before)}; after {fmt_load(load_after)}")
    print(
        f"median rollout sampling {sampled_per_s:.0f} tok/s vs raw loop {raw_per_s:.0f} tok/s: "
        "ratio median [min, max] "
        f"{fmt_spread([r['raw_s'] / r['sampling_s'] for r in rows], scale=100, digits=0)} % "
        f"(target >= 80%); in process CPU time {100 * results['sampling_over_raw_cpu']:.0f}%; "
        f"vs the dense loop {100 * results['sampling_over_dense_raw']:.0f}%"
    )
    print(f"policy generation: {stats}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out), results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
