"""Peak memory of μ, a rollout and a train step, and an estimate for R1-1.5B at 16k tokens.

Part 1 measures, for the model given (the shipped tiny LM by default, any local folder with
``--model PATH``) and each context length, the peak memory that one operation adds on top of
the loaded model:

* ``mu``: one ``SampledMetaProver.estimate`` call (K forced answers) for ``--rows`` prefixes
  of ``context`` tokens each;
* ``rollout``: one policy ``generate`` call of ``--rows`` rows from a short prompt, every row
  decoding ``context`` new tokens (EOS ignored, so rows do not stop early);
* ``train``: one ``Learner.policy_gradient`` step (AdamW) on ``--micro-batch`` trajectories of
  ``context`` tokens, with the loss chunk and gradient checkpointing settings given.

What is measured: on CUDA, ``torch.cuda.max_memory_allocated`` minus the memory allocated
before the operation (tensors only; the allocator's cache and the CUDA context are not
counted). On CPU, the growth of the process's resident set: the Linux peak-RSS counter
(``VmHWM``) is reset through ``/proc/self/clear_refs`` after the model is loaded and read after
the operation, minus the RSS before it. RSS counts every page the process touched (torch's
tensors, the allocator's free lists, Python objects), so it is an upper bound of what torch
needed; each measurement runs in a fresh process so earlier ones leave nothing behind, and the
weights (memory-mapped by safetensors) are read once before the measurement so that their
pages are not counted.
(``tracemalloc`` does not see torch's allocations, so it is not used.)

Part 2 prints the documented estimate for DeepSeek-R1-Distill-Qwen-1.5B at 16k tokens: the
formula of every term with the model's config numbers (constants below, with their source),
at the README's GPU settings and at the settings before the memory work, against one 141 GB
GPU.

Run:  .venv/bin/python benchmarks/memory.py                        # tiny LM, CPU
      .venv/bin/python benchmarks/memory.py --model PATH --contexts 256 1024 2048
      .venv/bin/python benchmarks/memory.py --estimate-only
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import parse_args, run_environment, write_json


@dataclass(frozen=True)
class Args:
    """Peak memory of μ, a rollout and a train step; R1-1.5B estimate at 16k tokens."""

    model: str = "tiny"
    """tiny, tiny:VARIANT (e.g. tiny:classic), `random-tiny` or a local model folder"""
    device: str = "cpu"
    """`cpu` or `cuda`"""
    template: str = ""
    """chat/termination template of μ ("": the one the model declares, else its default)"""
    contexts: tuple[int, ...] = (128, 256, 512)
    """context lengths (tokens) to measure at"""
    kinds: tuple[str, ...] = ("mu", "rollout", "train")
    """what to measure: mu, rollout, train"""
    rows: int = 8
    """prefixes per μ call and rows per rollout call"""
    k: int = 4
    """μ's forced answers per prefix"""
    max_answer_tokens: int = 32
    """μ's answer cap"""
    micro_batch: int = 2
    """trajectories per train step"""
    loss_chunk_tokens: int = 1024
    """positions per chunk of loss logits (0 = whole sequence)"""
    gradient_checkpointing: bool = False
    """recompute activations in backward"""
    estimate_only: bool = False
    """skip the measurements, print the R1-1.5B estimate only"""
    seed: int = 0
    """seed of the random token ids"""
    out: str = "runs/bench/memory.json"
    """results JSON"""


# ---------------------------------------------------------------- part 1: measurements
def _rss_bytes(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field_name} not in /proc/self/status")


class PeakMeter:
    """Peak memory an operation adds: CUDA allocator counters or the process's RSS."""

    def __init__(self, device: str) -> None:
        self.device, self.method = device, ""

    def __enter__(self) -> PeakMeter:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before, self.method = torch.cuda.memory_allocated(), "cuda max_memory_allocated"
            return self
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
            self.before, self.method = _rss_bytes("VmRSS"), "RSS growth (VmHWM after reset)"
        except OSError:  # not Linux: peak RSS of the whole process, loading included
            self.before, self.method = 0, "ru_maxrss (whole process)"
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.before
        elif self.before:
            self.peak = _rss_bytes("VmHWM") - self.before
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_ids(lm: Any, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` random ordinary token ids (no special tokens) of ``lm``'s vocabulary."""
    special = set(getattr(lm.tokenizer, "all_special_ids", []))
    vocab = int(lm.model.config.vocab_size)
    ids = [int(i) for i in rng.integers(0, vocab, size=2 * count + 16) if int(i) not in special]
    return ids[:count]


def measure(args: Args, kind: str, context: int) -> dict[str, Any]:
    """One measurement, in its own process (see the module docs)."""
    import torch

    from agents.config import PolicyConfig, TrainConfig
    from agents.session import load_language_model
    from mrt_env.lm.base import SamplingParams

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    lm = load_language_model(args.model, args.device, args.seed, trainable=kind == "train")
    params_count = sum(p.numel() for p in lm.model.parameters())
    with torch.no_grad():  # touch memory-mapped weights now, so their pages are not counted
        for parameter in lm.model.parameters():
            parameter.sum()
    prompt = lm.decode(random_ids(lm, 16, rng))
    start = time.perf_counter()
    if kind == "mu":
        from mrt_env.prover.base import ProverRequest
        from mrt_env.prover.sampled import SampledMetaProver

        prover = SampledMetaProver(
            lm, args.template or None, k=args.k, max_answer_tokens=args.max_answer_tokens
        )
        requests = [
            ProverRequest(f"p{i}", prompt, "1", lm.decode(random_ids(lm, context, rng)), i)
            for i in range(args.rows)
        ]
        with PeakMeter(args.device) as meter:
            prover.estimate(requests)
    elif kind == "rollout":
        lm.eos_token_ids = frozenset()  # every row decodes the full context
        params = SamplingParams(max_new_tokens=context, temperature=1.0)
        with PeakMeter(args.device) as meter:
            lm.generate([prompt] * args.rows, params, seeds=list(range(args.rows)))
    else:
        from agents.types import EpisodeRecord, Trajectory
        from agents.update import Learner

        config = TrainConfig(
            device=args.device,
            micro_batch_size=args.micro_batch,
            loss_chunk_tokens=args.loss_chunk_tokens or None,
            gradient_checkpointing=args.gradient_checkpointing,
            policy=PolicyConfig(),
        )
        trajectories, advantages = [], []
        for i in range(args.micro_batch):
            response = random_ids(lm, context, rng)
            trajectory = Trajectory("p", i, prompt, random_ids(lm, 16, rng), response)
            trajectory.episodes = [EpisodeRecord(0, len(response), "", 0.0, None, None, 1)]
            trajectories.append(trajectory)
            advantages.append(np.full(len(response), 1.0 if i % 2 else -1.0, np.float32))
        optimizer = torch.optim.AdamW(lm.model.parameters(), lr=1e-6)
        learner = Learner(lm.model, optimizer, None, config)
        with PeakMeter(args.device) as meter:
            learner.policy_gradient(trajectories, advantages)
    return {
        "kind": kind,
        "context": context,
        "params": params_count,
        "peak_bytes": int(meter.peak),
        "method": meter.method,
        "seconds": time.perf_counter() - start,
    }


# ------------------------------------------------------- part 2: the R1-1.5B estimate
# DeepSeek-R1-Distill-Qwen-1.5B, config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B on
# the Hugging Face Hub (Qwen2ForCausalLM): num_hidden_layers 28, hidden_size 1536,
# intermediate_size 8960, num_attention_heads 12, num_key_value_heads 2 (head dim
# 1536 / 12 = 128), vocab_size 151936, tie_word_embeddings false, torch_dtype bfloat16.
R1_LAYERS = 28
R1_HIDDEN = 1536
R1_INTERMEDIATE = 8960
R1_HEADS = 12
R1_KV_HEADS = 2
R1_HEAD_DIM = R1_HIDDEN // R1_HEADS
R1_VOCAB = 151_936
GPU_BYTES = 141e9  # one H200 (141 GB)
GPU_USABLE = 0.9  # headroom for the CUDA context, allocator fragmentation and workspaces


def r1_parameters() -> int:
    """Parameters from the config: untied embeddings, per layer q/k/v (bias), o, MLP, norms."""
    attention = (R1_HIDDEN + 1) * (R1_HEADS + 2 * R1_KV_HEADS) * R1_HEAD_DIM
    attention += R1_HIDDEN * R1_HIDDEN
    layer = attention + 3 * R1_HIDDEN * R1_INTERMEDIATE + 2 * R1_HIDDEN
    return 2 * R1_VOCAB * R1_HIDDEN + R1_LAYERS * layer + R1_HIDDEN


@dataclass(frozen=True)
class Settings:
    """The knobs of an MRT training run that decide its memory."""

    name: str
    trajectories: int  # problems_per_step x group_size
    k: int  # μ's forced answers per prefix
    policy_rows: int  # policy rows decoded together
    mu_rows: int  # μ rows decoded together (prefixes x K)
    kv_bytes: int  # bytes per cached key/value element (2: bf16, 4: fp32)
    sampling_copy: bool  # bf16 copy of the fp32 master weights while sampling (autocast)
    mu_weight_bytes: int  # μ's bytes per weight
    micro_batch: int
    checkpointing: bool
    loss_chunk: int | None  # positions of full-vocabulary logits at once (None: whole sequence)
    prefix_cache_bytes: float  # cap of μ's prefix cache
    context: int = 16_384
    notes: list[str] = field(default_factory=list)


def r1_estimate(s: Settings) -> dict[str, float]:
    """Bytes of each term for R1-1.5B at ``s``.

    A phase's peak is the static terms plus its own; the rollout terms are summed although the
    policy's generation ends before μ runs, so the rollout peak is an upper bound.
    """
    p = r1_parameters()
    kv_token = 2 * R1_LAYERS * R1_KV_HEADS * R1_HEAD_DIM * s.kv_bytes
    static = {
        "policy weights fp32 + grads + AdamW (16 B/param)": 16 * p,
        "policy bf16 weight copy under autocast (2 B/param)": 2 * p if s.sampling_copy else 0,
        "μ weights": s.mu_weight_bytes * p,
        "μ prefix cache (cap)": s.prefix_cache_bytes,
    }
    rollout = {
        "policy KV: rows x context": s.policy_rows * s.context * kv_token,
        "μ prefilled prefixes: trajectories x context": s.trajectories * s.context * kv_token,
        "μ decode KV: rows x context": s.mu_rows * s.context * kv_token,
    }
    tokens = s.micro_batch * s.context
    # saved per layer: the fp32 residual input with checkpointing; else ~ q,k,v,o, MLP (3x) in
    # bf16 and the fp32 residual/norm inputs
    per_layer = (
        4 * R1_HIDDEN
        if s.checkpointing
        else (2 * (4 * R1_HIDDEN + 3 * R1_INTERMEDIATE) + 3 * 4 * R1_HIDDEN)
    )
    recompute = 2 * (4 * R1_HIDDEN + 3 * R1_INTERMEDIATE) + 3 * 4 * R1_HIDDEN
    logit_positions = s.loss_chunk * s.micro_batch if s.loss_chunk else tokens
    train = {
        "activations kept: layers x tokens x per-layer bytes": R1_LAYERS * tokens * per_layer,
        "one layer recomputed in backward": tokens * recompute if s.checkpointing else 0,
        "fp32 logits + softmax + grad (12 B x positions x vocab)": 12 * logit_positions * R1_VOCAB,
    }
    total_static = sum(static.values())
    phases = {
        "rollout": total_static + sum(rollout.values()),
        "train": total_static + sum(train.values()),
    }
    return {**static, **rollout, **train, **{f"peak: {k}": v for k, v in phases.items()}}


README_GPU = Settings(
    "README GPU settings",
    trajectories=32,  # --problems-per-step 8 --group-size 4
    k=8,
    policy_rows=32,
    mu_rows=64,  # 8 prefixes x K = 8 per decode batch
    kv_bytes=2,
    sampling_copy=True,
    mu_weight_bytes=2,
    micro_batch=1,
    checkpointing=True,
    loss_chunk=1024,
    prefix_cache_bytes=0.2 * GPU_BYTES,
)
BEFORE = Settings(
    "before (fp32, KV for every row up front, full logits, no checkpointing)",
    trajectories=64,  # analyze_traces.py's batch 64
    k=8,
    policy_rows=64,
    mu_rows=512,  # 64 prefixes x K = 8, all preallocated in one batch
    kv_bytes=4,
    sampling_copy=False,
    mu_weight_bytes=4,
    micro_batch=16,
    checkpointing=False,
    loss_chunk=None,
    prefix_cache_bytes=131_072 * 2 * R1_LAYERS * R1_KV_HEADS * R1_HEAD_DIM * 4,
)


def print_estimate() -> list[dict[str, Any]]:
    p = r1_parameters()
    kv_token = 2 * R1_LAYERS * R1_KV_HEADS * R1_HEAD_DIM * 2
    print(
        f"\nDeepSeek-R1-Distill-Qwen-1.5B: {p:,} parameters = 2 x vocab {R1_VOCAB} x hidden "
        f"{R1_HIDDEN} + {R1_LAYERS} layers x (attention (hidden+1) x (heads {R1_HEADS} + 2 x kv "
        f"heads {R1_KV_HEADS}) x head dim {R1_HEAD_DIM} + hidden^2, MLP 3 x hidden x "
        f"{R1_INTERMEDIATE}, norms); KV per token 2 x {R1_LAYERS} x {R1_KV_HEADS} x "
        f"{R1_HEAD_DIM} x 2 B = {kv_token:,} B in bf16 ({kv_token * 16_384 / 1e9:.2f} GB per "
        f"16k-token row)"
    )
    rows = []
    for settings in (README_GPU, BEFORE):
        terms = r1_estimate(settings)
        peak = max(terms["peak: rollout"], terms["peak: train"])
        fits = peak <= GPU_USABLE * GPU_BYTES
        print(f"\n{settings.name} at {settings.context} tokens: {asdict(settings)}")
        for name, value in terms.items():
            print(f"  {name:<62} {value / 1e9:8.1f} GB")
        print(
            f"  => peak {peak / 1e9:.1f} GB vs {GPU_USABLE:.0%} of one {GPU_BYTES / 1e9:.0f} GB "
            f"GPU: {'fits' if fits else 'does NOT fit'}"
        )
        rows.append({"settings": asdict(settings), "terms": terms, "peak": peak, "fits": fits})
    return rows


def main() -> None:
    args = parse_args(Args)
    unknown = set(args.kinds) - {"mu", "rollout", "train"}
    if unknown:
        raise SystemExit(f"--kinds: unknown {sorted(unknown)}; choose from mu, rollout, train")
    results: dict[str, Any] = {"args": asdict(args), "environment": run_environment()}
    if not args.estimate_only:
        context = multiprocessing.get_context("spawn")
        rows = []
        with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
            for length in args.contexts:
                for kind in args.kinds:
                    row = pool.submit(measure, args, kind, length).result()
                    rows.append(row)
                    print(
                        f"{args.model} ({row['params']:,} params) {kind:<8} context {length:>6}: "
                        f"peak +{row['peak_bytes'] / 2**20:8.1f} MiB ({row['method']}, "
                        f"{row['seconds']:.1f}s)"
                    )
        results["measurements"] = rows
    results["r1_estimate"] = print_estimate()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out), results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
