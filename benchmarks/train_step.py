"""Train-step cost: MRT (per-episode credit) vs GRPO, and rollout sampling vs a raw loop.

One run, one model, the same batches:

* GRPO and MRT steps alternate on the same problems and seeds, each starting from the same
  weights and optimizer state (restored before every timed step), so both sample the same
  trajectories; MRT additionally runs the env's meta-prover (J after every episode: batched
  over the whole vector env, deduplicated, cached within a step) and per-episode credit.
  Printed: seconds per step of each and the ratio MRT / GRPO (target <= 1.3).
* Rollout sampling throughput: generated tokens per second inside the policy's ``generate``
  calls during the GRPO rollouts, over a raw batched sampling loop on the same model (prefill,
  then one forward per token over the whole batch with the KV cache; no stop strings, no early
  exit) generating as many tokens per row (target >= 80%). The policy backend's counters are
  printed too: one generation (one prefill of the prompt, shared by the group) per trajectory,
  the KV cache kept across its episodes, so no context is re-encoded at episode boundaries.

Run:  .venv/bin/python benchmarks/train_step.py                    # shipped tiny LM, CPU
      .venv/bin/python benchmarks/train_step.py --model random-tiny
      .venv/bin/python benchmarks/train_step.py --model PATH --device cuda --template r1-distill
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy
import inspect
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import parse_args, run_environment, write_json

from agents.config import MRTConfig, PolicyConfig, TrainConfig
from agents.grpo import GRPO
from agents.mrt import MRT
from agents.session import TrainSession, build_session


@dataclass(frozen=True)
class Args:
    """Train-step cost: MRT vs GRPO, and rollout sampling vs a raw batched loop."""

    model: str = "tiny"
    """`tiny` (shipped TinyMath LM), `random-tiny` (test double) or a model path / hub id"""
    device: str = "cpu"
    """`cpu` or `cuda`"""
    template: str = "tiny"
    """chat template preset"""
    problems_per_step: int = 4
    """problems per step"""
    group_size: int = 4
    """trajectories per problem"""
    token_budget: int = 256
    """env token budget"""
    max_episodes: int = 8
    """env episode cap"""
    prover_samples: int = 4
    """K forced answers per J"""
    repeats: int = 3
    """timed steps per algorithm (after one warm-up step each); medians are reported"""
    threads: int = 1
    """torch CPU threads"""
    seed: int = 0
    """seed"""
    out: str = "runs/bench/train_step.json"
    """results JSON"""


class GenerateTimer:
    """Wraps ``lm.generate`` and accumulates its wall time and generated tokens."""

    def __init__(self, lm: Any) -> None:
        self.lm, self.seconds, self.tokens = lm, 0.0, 0
        self._generate = lm.generate
        lm.generate = self

    def __call__(self, prompts: Any, params: Any, seeds: Any = None) -> Any:
        start = time.perf_counter()
        outputs = self._generate(prompts, params, seeds)
        self.seconds += time.perf_counter() - start
        self.tokens += sum(len(c.token_ids) for row in outputs for c in row)
        return outputs


class StepwisePolicy:
    """The naive alternative: one ``generate`` per env step from the whole observation, stopping
    at the boundary strings (the backend may reuse cached prompt prefixes, but the tokens it
    generated in earlier episodes are re-encoded)."""

    def __init__(self, policy: Any) -> None:
        self.lm, self.config, self.stops = policy.lm, policy.config, policy.stop_strings

    def reset(self, keys: Any = None) -> None:
        pass

    def act(self, observations: Any, seeds: Any, keys: Any = None) -> list[Any]:
        from agents.types import EpisodeSample
        from mrt_env.lm.base import SamplingParams

        params = SamplingParams(
            max_new_tokens=self.config.max_episode_tokens,
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
    start = time.perf_counter()
    metrics = algorithm.train_step(session, seed)
    return time.perf_counter() - start, metrics


def _cache_of(output: Any) -> Any:
    """The KV cache of a model output (``cache`` in recent transformers)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@torch.no_grad()
def raw_loop_tokens_per_s(
    session: TrainSession, prompts: list[str], new_tokens: int, seed: int
) -> float:
    """A plain batched sampling loop over the KV cache: prefill, then a forward per token."""
    lm, model = session.lm, session.lm.model
    ids = [lm.encode(p) for p in prompts]
    width = max(len(i) for i in ids)
    device = session.learner.device
    input_ids = torch.full((len(ids), width), session.learner.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):  # left padding
        input_ids[row, width - len(tokens) :] = torch.tensor(tokens)
        mask[row, width - len(tokens) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generator = torch.Generator(device=device).manual_seed(seed)
    cache_kwarg = (
        "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    )
    temperature = session.config.policy.temperature
    start = time.perf_counter()
    # the same dtype as the policy's sampling (its float32 weights), no autocast
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
    cache, logits = _cache_of(out), out.logits[:, -1]
    next_position = positions[:, -1:] + 1
    for _ in range(new_tokens):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator)
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
    return len(ids) * new_tokens / (time.perf_counter() - start)


def main() -> None:
    args = parse_args(Args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from mrt_env.tinymath import TinyMathSource

    problems = TinyMathSource(split="train", size=200, seed=args.seed)
    policy = PolicyConfig(max_trajectory_tokens=args.token_budget + 32)
    config = TrainConfig(
        problems_per_step=args.problems_per_step,
        group_size=args.group_size,
        token_budget=args.token_budget,
        max_episodes=args.max_episodes,
        prover_samples=args.prover_samples,
        seed=args.seed,
        device=args.device,
        policy=policy,
    )
    grpo_session = build_session(
        config, args.model, problems, template=args.template, with_prover=False
    )
    mrt_session = build_session(
        config, args.model, problems, template=args.template, with_prover=True
    )
    grpo, mrt = GRPO(), MRT(MRTConfig(credit="progress"))
    timer = GenerateTimer(grpo_session.lm)
    grpo_state, mrt_state = snapshot(grpo_session), snapshot(mrt_session)
    rng = np.random.default_rng(args.seed)
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=args.repeats + 1)]
    rows: list[dict[str, float]] = []
    stats_before = grpo_session.lm.stats.as_dict()
    for index, seed in enumerate(seeds):
        restore(grpo_session, grpo_state)
        timer.seconds, timer.tokens = 0.0, 0
        grpo_s, grpo_metrics = timed_step(grpo, grpo_session, seed)
        restore(mrt_session, mrt_state)
        mrt_s, _ = timed_step(mrt, mrt_session, seed)
        if index == 0:  # warm-up
            stats_before = grpo_session.lm.stats.as_dict()
            continue
        # the raw loop right after, on the step's problems, as many tokens per row
        new_tokens = max(1, round(timer.tokens / config.trajectories_per_step))
        step_problems = grpo_session.sample_problems(np.random.default_rng(seed))
        prompts = [
            grpo_session.collector.components.template.render_prompt(p.problem)
            for p in step_problems
            for _ in range(args.group_size)
        ]
        raw = raw_loop_tokens_per_s(grpo_session, prompts, new_tokens, seed)
        sampled = timer.tokens / max(timer.seconds, 1e-9)
        rows.append(
            {
                "grpo_s": grpo_s,
                "mrt_s": mrt_s,
                "sampled_tok_s": sampled,
                "raw_tok_s": raw,
                "tokens_per_row": new_tokens,
            }
        )
        print(
            f"repeat {index}: grpo {grpo_s:.2f}s  mrt {mrt_s:.2f}s  sampling {sampled:.0f} tok/s"
            f"  raw loop {raw:.0f} tok/s  (outcome {grpo_metrics['reward/outcome']:.2f}, "
            f"tokens/trajectory {grpo_metrics['charts/tokens']:.0f})"
        )
    stats = {k: v - stats_before[k] for k, v in grpo_session.lm.stats.as_dict().items()}
    restore(grpo_session, grpo_state)
    policies = compare_policies(grpo_session, seeds[-1])
    grpo_mean = float(np.median([r["grpo_s"] for r in rows]))
    mrt_mean = float(np.median([r["mrt_s"] for r in rows]))
    sampled_per_s = float(np.median([r["sampled_tok_s"] for r in rows]))
    raw_per_s = float(np.median([r["raw_tok_s"] for r in rows]))
    prover = mrt_session.collector.components.prover
    results = {
        "args": asdict(args),
        "environment": run_environment(),
        "repeats": rows,
        "mrt_over_grpo": float(np.median([r["mrt_s"] / r["grpo_s"] for r in rows])),
        "rollout_sampling_tokens_per_s": sampled_per_s,
        "raw_loop_tokens_per_s": raw_per_s,
        "sampling_over_raw": float(np.median([r["sampled_tok_s"] / r["raw_tok_s"] for r in rows])),
        "policy_generation_stats": stats,
        "trajectory_vs_episode_generation": policies,
        "prover_stats": prover.stats.as_dict() if hasattr(prover, "stats") else None,
    }
    print(
        f"median seconds/step: grpo {grpo_mean:.2f}  mrt {mrt_mean:.2f}  "
        f"median ratio mrt/grpo {results['mrt_over_grpo']:.2f} (target <= 1.3)"
    )
    print(
        f"median rollout sampling {sampled_per_s:.0f} tok/s vs raw loop {raw_per_s:.0f} tok/s: "
        f"median ratio {100 * results['sampling_over_raw']:.0f}% (target >= 80%)"
    )
    print(f"policy generation: {stats}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out), results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
