"""The regret comparison: which policy turns test-time tokens into success fastest?

For every policy (by default the shipped tiny LM and its GRPO and MRT fine-tunes) and every
problem (by default held-out TinyMath), sample S responses with budget forcing (the natural
response is the first generation; extensions continue it past its end), split each response
into episodes with the segmenter, read J after every episode with the meta-prover (K forced
answers) by replaying it through MRTMath-v0, and count tokens with the policy's tokenizer.
Then report, with 95% bootstrap CIs over problems:

* normalized regret at the budgets C0 (PAPER.md's definition, ``mrt_env.regret``), and at
  extrapolated budgets ``max(C0) + w * extension_tokens`` from traces forced to think w more
  times (dashed in the plot);
* pass@1, maj@k for k = 1..S against total tokens, token efficiency of each policy against
  each other (how many times fewer tokens it needs to reach the other's maj@S accuracy);
* cumulative regret over episode budgets;
* at every budget, the extrapolated ones included (each labelled with its budget): the
  probability that one policy's regret is lower than another's (paired over problems), and
  the token efficiency of the mean J curves (how many times fewer tokens one policy needs to
  reach the mean J the other reaches by that budget).

Everything lands in ``runs/regret/<name>/``: ``results.json`` (every figure and setting),
``results.md``, ``regret.png``, ``accuracy_tokens.png``, ``j_tokens.png``, ``traces.jsonl``
(the sampled responses, input for ``benchmarks/analyze_traces.py``) and ``cache.jsonl``
(finished (policy, problem) results; a rerun with the same arguments resumes from it).

Usage:
    python benchmarks/regret.py                           # base vs GRPO vs MRT tiny checkpoints
    python benchmarks/regret.py --policies base path/to/model --num-problems 20
    python benchmarks/regret.py --problems ../shared/data/aime2024.jsonl --template r1-distill \\
        --policies deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B --device cuda --token-budget 16384
    python benchmarks/regret.py --train                   # retrain GRPO and MRT first
"""

from __future__ import annotations

import hashlib
import json
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    Line,
    append_cache,
    build_records,
    check_budgets,
    compare_records,
    load_model,
    mean_j_on_grid,
    model_options,
    parse_args,
    plot_title,
    policy_fingerprint,
    read_cache,
    regret_markdown,
    replay_env,
    run_environment,
    save_line_plot,
    settings_hash,
    summarize_records,
    write_json,
    write_traces,
)

from mrt_env.tinymath.loading import VARIANTS


@dataclass
class Args:
    """Compare policies by normalized regret, accuracy and token efficiency."""

    policies: tuple[str, ...] = ("base", "grpo", "mrt")
    """tiny variants (base, grpo, mrt), checkpoint paths, hub ids, openai:URL (a completions
    server) or vllm:PATH; NAME=SPEC names one"""
    problems: str = "tinymath:heldout"
    """problem set: tinymath:heldout, a JSONL file with problem/answer, or hf:NAME:SPLIT; a
    filter may follow '?', e.g. 'math500.jsonl?level=1,2&subject=Algebra&sample=20&seed=0'
    (metadata fields, ids, shuffle, sample, seed; see mrt_env.problem_filter)"""
    num_problems: int = 60
    """problems used (the first N of the set, after its filter)"""
    samples: int = 4
    """S: sampled responses per problem and policy"""
    k: int = 4
    """K: forced answers per J estimate (meta-prover samples)"""
    temperature: float = 0.8
    """sampling temperature of the responses"""
    top_p: float = 1.0
    """nucleus mass of the responses"""
    prover: str = "self"
    """meta-prover model: self (each policy's own model, as in the paper), base, a path,
    openai:URL, vllm:PATH, or learned:PATH (a learned meta-prover folder, mrt-prover train)"""
    prover_temperature: float = 1.0
    """sampling temperature of the forced answers"""
    max_answer_tokens: int | None = None
    """token cap of one forced answer (default: the template's; 16 for tiny, 512 after R1's
    termination suffix)"""
    answered_warn: float = 0.5
    """warn when fewer forced answers than this share hold a readable final answer"""
    lm_option: tuple[str, ...] = ()
    """KEY=VALUE backend option of every model loaded (policies and --prover's model), e.g.
    max_concurrency=1 stop_mode=client for openai:URL; repeatable; VALUE is read as JSON (1,
    2.5, true, null), else as text; an option the backend does not take is an error"""
    prefix_cache_size: int | None = None
    """HF backend: prefix-cache entries (default: the backend's)"""
    max_decode_rows: int | None = None
    """HF backend: rows per decode call (default: all)"""
    answer_pattern: tuple[str, ...] = ()
    """regular expression (first group = answer) reading a response's final answer when it has
    no \\boxed{} (a box wins); repeatable; "none": boxed answers only, as in the paper
    (default: the template's: "the answer is X" for a chat model without thinking tags, none
    otherwise; mrt_env.answer_patterns)"""
    template: str | None = None
    """chat/termination template preset: tiny, r1-distill, plain, chat (default: tiny for the
    tiny LM, the tokenizer's chat template for other models)"""
    segmenter: str = ""
    """marker[:MIN_PARAGRAPHS], preset:NAME (aime2024, regret-comparison), paragraph or
    fallback[:MIN_TOKENS] (default: the template's: marker:1 for tiny, fallback for a chat model
    without thinking tags, the official marker rule otherwise)"""
    token_budget: int = 256
    """max new tokens of a natural response (response tokens only, like the env's
    token_budget; the prompt is not counted)"""
    budgets: tuple[int, ...] = (64, 128, 192, 256)
    """token budgets C0 of the normalized regret (prompt + thinking + forced-answer tokens;
    each must be above the longest prompt)"""
    extensions: tuple[int, ...] = (2, 4, 6, 8)
    """budget-forcing extension counts w of the extrapolation (0 disables it)"""
    extension_tokens: int = 64
    """token cap of each forced extension; extrapolated budget = max(budgets) + w * this"""
    forced_samples: int = 1
    """responses per problem that are budget-forced (the first ones)"""
    max_context_tokens: int = 0
    """model context limit for budget forcing (0: the model config's max_position_embeddings)"""
    episode_budget: int = 8
    """episodes of the regret-over-episode-budget curve"""
    device: str = "cpu"
    """cpu or cuda"""
    seed: int = 0
    """seed of every sample (the same for every policy: common random numbers)"""
    chunk_problems: int = 20
    """problems processed (and cached) together"""
    run_dir: str = "runs/regret"
    """parent folder of run folders"""
    name: str = ""
    """run folder name (default: a hash of the settings, so a rerun resumes)"""
    train: bool = False
    """retrain the GRPO and MRT tiny checkpoints first (mrt-train, equal wall-clock)"""
    train_minutes: float = 5.0
    """wall-clock minutes of each training run with --train"""
    dump_traces: bool = True
    """write traces.jsonl (input format of benchmarks/analyze_traces.py)"""


TINY_VARIANTS = tuple(VARIANTS)
"""The shipped tiny-LM variants a policy or ``--prover`` may name (``base``, ``graded``, ...)."""
TIMINGS: dict[str, float] = {"generate_s": 0.0, "replay_s": 0.0, "verify_s": 0.0}
"""Seconds spent per phase in this invocation (reported in results.json)."""
REPLAY_STREAM = 2**31 - 1
"""Sample index whose seed drives a chunk's meta-prover sampling (no response uses it)."""


# ---------------------------------------------------------------- policies and problems
def policy_specs(args: Args, trained: dict[str, str]) -> dict[str, str]:
    """``name -> model spec`` (``tiny:VARIANT``, a path or a hub id)."""
    specs: dict[str, str] = {}
    for entry in args.policies:
        name, _, spec = entry.partition("=") if "=" in entry else (entry, "", entry)
        if name in trained:
            spec = trained[name]
        elif spec in TINY_VARIANTS:
            spec = f"tiny:{spec}"
        specs[name] = spec
    return specs


def load_policy(spec: str, device: str, args: Args) -> tuple[Any | None, str | None]:
    """The policy's language model, or ``None`` and the reason it could not be loaded."""
    try:
        return load_model(spec, device, args), None
    except (FileNotFoundError, OSError, ValueError, KeyError) as error:
        return None, f"{type(error).__name__}: {error}"


def load_problems(args: Args) -> list[Any]:
    """The first ``num_problems`` problems of the configured set."""
    from mrt_env.sources import FieldNames, resolve_source

    source = resolve_source(args.problems, FieldNames())
    count = min(args.num_problems, len(source))
    return [source[i] for i in range(count)]


def sample_seed(seed: int, problem_index: int, sample: int) -> int:
    """The seed of one response (independent of the policy: common random numbers)."""
    return int(np.random.SeedSequence([seed, problem_index, sample]).generate_state(1)[0])


# ---------------------------------------------------------------- sampling
def forced_responses(
    lm: Any, prompts: list[str], seeds: list[int], forced: list[bool], args: Args
) -> list[list[str]]:
    """``out[i][w]``: prompt i's response after ``w`` budget-forcing extensions (``w = 0``
    is the natural response), batched across prompts. Only prompts with ``forced[i]`` are
    extended; a response that stops being extended (it did not end thinking, or one more
    extension could overflow the context) repeats its last text."""
    from mrt_env.budget_forcing import BudgetForcingConfig, budget_forced_generate_many
    from mrt_env.lm.base import SamplingParams

    extensions = max(args.extensions, default=0)
    config = BudgetForcingConfig(extensions=extensions, max_extension_tokens=args.extension_tokens)
    params = SamplingParams(args.token_budget, temperature=args.temperature, top_p=args.top_p)
    limit = forcing_context_limit(lm, args)
    outs = budget_forced_generate_many(
        lm, prompts, params, config, seeds, forced=forced, max_context_tokens=limit
    )
    return [
        [o.responses[min(w, len(o.responses) - 1)] for w in range(extensions + 1)] for o in outs
    ]


def forcing_context_limit(lm: Any, args: Args) -> int | None:
    """Context tokens budget forcing may fill: the model's context less the meta-prover's
    forced answer (termination + answer); ``None`` when the limit is unknown."""
    from mrt_env.templates import resolve_template

    limit = args.max_context_tokens or getattr(
        getattr(getattr(lm, "model", None), "config", None), "max_position_embeddings", 0
    )
    if not limit:
        return None
    template = resolve_template(args.template, lm)
    answer = template.answer_caps(forced=args.max_answer_tokens).forced
    return int(limit - lm.count_tokens(template.termination) - answer - 4)


def build_prover(lm: Any, args: Args) -> Any:
    """A sampled meta-prover on ``lm`` with the configured K, temperature and answer cap, or
    the learned meta-prover of ``--prover learned:PATH`` (its tokenizer checked against ``lm``)."""
    if args.prover.startswith("learned:"):
        from mrt_env.prover.learned import LearnedMetaProver

        return LearnedMetaProver.from_pretrained(args.prover[len("learned:") :], policy_lm=lm)
    from mrt_env.config import EnvConfig
    from mrt_env.config import build_prover as build_env_prover
    from mrt_env.templates import resolve_template

    config = EnvConfig(
        lm=lm,
        template=args.template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        prover_temperature=args.prover_temperature,
    )
    return build_env_prover(config, lm, resolve_template(args.template, lm))


def answer_verifier(template: Any, args: Args) -> Any:
    """The verifier of the natural responses: boxed answers, then --answer-pattern's (or the
    template's default) patterns."""
    import rewards
    from mrt_env.answer_patterns import answer_verifier_config, resolve_answer_patterns

    chosen = args.answer_pattern
    patterns = () if chosen == ("none",) else resolve_answer_patterns(template, chosen or None)
    return rewards.get_verifier(answer_verifier_config(patterns))


def process_chunk(
    lm: Any,
    prover: Any,
    problems: list[Any],
    indices: list[int],
    args: Args,
    status: Callable[[str], None] = lambda text: None,
    problem_done: Callable[[int], None] = lambda position: None,
) -> list[dict[str, Any]]:
    """Sample, replay and grade the responses of a chunk of problems; one record each.
    ``status`` hears which phase runs (shown beside the progress bar); ``problem_done`` hears
    the position (in ``problems``) of each problem as soon as J has been read on all of its
    responses, once per problem (the chunk's batched grading follows)."""
    from mrt_env.templates import resolve_template

    template = resolve_template(args.template, lm)
    jobs = [(p, s) for p in range(len(problems)) for s in range(args.samples)]
    prompts = [template.render_prompt(problems[p].problem) for p, _ in jobs]
    seeds = [sample_seed(args.seed, indices[p], s) for p, s in jobs]
    forced = [s < args.forced_samples for _, s in jobs]
    clock = time.perf_counter()
    status(f"sampling {len(jobs)} responses of {len(problems)} problems")
    texts = forced_responses(lm, prompts, seeds, forced, args)
    TIMINGS["generate_s"] += time.perf_counter() - clock
    todo = [
        (j, w)
        for j in range(len(jobs))
        for w in [0, *extrapolation_budgets(args)]
        if w == 0 or forced[j]
    ]
    replays = [(jobs[j][0], texts[j][w]) for j, w in todo]
    trajectories, counts = replay_chunk(
        lm, prover, problems, indices, replays, args, status, problem_done
    )
    clock = time.perf_counter()
    status(f"grading {len(jobs)} responses")
    verifications = answer_verifier(template, args).verify_many(
        [(texts[j][0], problems[jobs[j][0]].answer) for j in range(len(jobs))]
    )
    TIMINGS["verify_s"] += time.perf_counter() - clock
    records = build_records(lm, problems, indices, jobs, texts, todo, trajectories, verifications)
    records[0].update(counts)
    return records


def replay_chunk(
    lm: Any,
    prover: Any,
    problems: list[Any],
    indices: list[int],
    replays: list[tuple[int, str]],
    args: Args,
    status: Callable[[str], None],
    problem_done: Callable[[int], None],
) -> tuple[list[Any], dict[str, int]]:
    """Read J after every episode of each ``(problem position, response)`` in one batched
    replay; also returns the chunk's forced-answer counters (see :func:`process_chunk`)."""
    from mrt_env.replay import replay_many

    replay_seed = sample_seed(args.seed, indices[0], REPLAY_STREAM)
    extensions = max(args.extensions, default=0)
    long_budget = args.token_budget + extensions * (args.extension_tokens + 32) + 128
    env = replay_env(args, lm, problems, long_budget, max_episodes=256, prover=prover)
    replayed = replay_progress([position for position, _ in replays], args, status, problem_done)
    replayed([])
    clock = time.perf_counter()
    stats = getattr(prover, "stats", None)  # a learned μ samples no forced answers
    before = (stats.generated_answers, stats.answered) if stats else (0, 0)
    # a response may stop at the sampling budget without ending thinking: not a finished one,
    # so its curve ends at μ's J after its last episode (those that end thinking terminate)
    trajectories = replay_many(
        env,
        [text for _, text in replays],
        [position for position, _ in replays],
        seed=replay_seed,
        batch_size=len(replays),
        finished=False,
        progress=replayed,
    )
    TIMINGS["replay_s"] += time.perf_counter() - clock
    # the chunk's forced-answer counters, on its first record (sums over records are totals)
    counts = {
        "forced_answers": stats.generated_answers - before[0] if stats else 0,
        "forced_answered": stats.answered - before[1] if stats else 0,
    }
    return trajectories, counts


def replay_progress(
    positions: list[int],
    args: Args,
    status: Callable[[str], None],
    problem_done: Callable[[int], None],
) -> Callable[[list[int]], None]:
    """``replay_many``'s progress callback for replays of the problems at ``positions``: it
    shows the count of replays ended and tells ``problem_done`` each problem whose last
    replay ended."""
    left = Counter(positions)
    ended_so_far = 0

    def replayed(ended: list[int]) -> None:
        nonlocal ended_so_far
        ended_so_far += len(ended)
        status(
            f"reading J (K={args.k}) after every episode: {ended_so_far}/{len(positions)} responses"
        )
        for i in ended:
            left[positions[i]] -= 1
            if left[positions[i]] == 0:
                problem_done(positions[i])

    return replayed


def answered_shares(policies: dict[str, list[dict[str, Any]]], warn_below: float) -> dict:
    """Per policy: forced answers sampled and the share holding a readable final answer (a
    low share means the answer cap cut answers off before their ``\\boxed{}``); warns."""
    shares: dict[str, dict[str, float]] = {}
    for name, records in policies.items():
        total = sum(r.get("forced_answers", 0) for r in records)
        answered = sum(r.get("forced_answered", 0) for r in records)
        share = answered / total if total else None
        shares[name] = {"forced_answers": total, "answered_share": share}
        if share is not None and share < warn_below:
            print(
                f"WARNING: only {share:.0%} of {name!r}'s {total} forced answers hold a readable "
                f"final answer: raise --max-answer-tokens, or J reads near 0 for that reason",
                file=sys.stderr,
            )
    return shares


def degenerate_policies(
    policies: dict[str, list[dict[str, Any]]],
    summary: dict[str, Any],
    answered: dict[str, dict[str, Any]],
    warn_below: float,
) -> dict[str, list[str]]:
    """Per policy: why its run is degenerate (pass@1 = 0, J ≡ 0, one-episode responses,
    unreadable forced answers; ``mrt_env.diagnostics``), each also printed as a warning."""
    from mrt_env.diagnostics import degenerate_reasons

    flagged = {}
    for name, records in policies.items():
        samples = [s for r in records for s in r["samples"]]
        flagged[name] = degenerate_reasons(
            pass_at_1=summary[name]["pass@1"]["mean"],
            j_values=[v for s in samples for v in s["j"]],
            episode_counts=[s["episodes"] for s in samples],
            forced_answered=answered[name]["answered_share"],
            answered_threshold=warn_below,
        )
        for reason in flagged[name]:
            print(f"WARNING: degenerate run, policy {name!r}: {reason}", file=sys.stderr)
    return flagged


# ---------------------------------------------------------------- extrapolated budgets
def extrapolation_budgets(args: Args) -> dict[int, int]:
    """``w -> budget``: ``max(budgets) + w * extension_tokens`` (none without forced traces)."""
    if not args.budgets or args.forced_samples < 1:
        return {}
    return {w: max(args.budgets) + w * args.extension_tokens for w in args.extensions if w > 0}


# ---------------------------------------------------------------- report
def plot_all(
    policies: dict[str, list[dict[str, Any]]], summary: dict[str, Any], args: Args, run: Path
) -> None:
    """regret.png, accuracy_tokens.png and j_tokens.png, on [0, 1] y axes, titled with the
    run, the problems and the policies."""
    count = max(len(records) for records in policies.values())
    title = plot_title(run.name, args.problems, count, list(policies))
    extra = extrapolation_budgets(args)
    grid = np.linspace(0, max(max(args.budgets, default=1), *extra.values(), 1), 64)
    regret_lines, accuracy_lines, j_lines = [], [], []
    for i, (name, stats) in enumerate(summary.items()):
        color = f"C{i}"
        parts: list[tuple[list[int], str, str | None]] = [(list(args.budgets), "o-", name)]
        if extra and args.budgets:
            parts.append(([max(args.budgets), *extra.values()], "o--", None))
        for xs, style, label in parts:
            forced = "normalized_regret_extrapolated"
            points = [
                stats["normalized_regret" if b in args.budgets else forced][str(b)] for b in xs
            ]
            band = ([p["ci_low"] for p in points], [p["ci_high"] for p in points])
            regret_lines.append(Line(xs, [p["mean"] for p in points], label, style, color, band))
        maj = stats["maj@k"]
        accuracy_lines.append(Line(maj["tokens"], maj["accuracy"], name, "o-", color))
        j_lines.append(Line(grid, mean_j_on_grid(policies[name], grid), name, "-", color))
        if extra:
            w = max(extra)
            j_forced = mean_j_on_grid(policies[name], grid, w)
            j_lines.append(Line(grid, j_forced, f"{name}, w={w}", "--", color))
    budget_axis = "token budget C0 (dashed: extrapolated with budget forcing)"
    regret_axis = "normalized regret (lower is better)"
    save_line_plot(run / "regret.png", regret_lines, budget_axis, regret_axis, title)
    save_line_plot(
        run / "accuracy_tokens.png",
        accuracy_lines,
        "total tokens (k responses)",
        "maj@k accuracy (k = 1..S)",
        title,
    )
    j_axis = "tokens (prompt + thinking + forced answer)"
    j_label = "mean J (flat after a response ends)"
    save_line_plot(run / "j_tokens.png", j_lines, j_axis, j_label, title)


# ---------------------------------------------------------------- training
def train_checkpoints(args: Args, run: Path) -> dict[str, str]:
    """Run ``mrt-train`` for GRPO and MRT with the same wall-clock; returns model paths."""
    cli = Path(sys.executable).with_name("mrt-train")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "agents.cli"]
    flags = f"--model tiny --minutes {args.train_minutes} --steps 100000 --seed {args.seed}"
    trained = {}
    for algo in ("grpo", "mrt"):
        out = run / "train" / algo
        subprocess.run([*command, "--algo", algo, *flags.split(), "--out", str(out)], check=True)
        trained[algo] = str(out / "model")
    return trained


# ---------------------------------------------------------------- main
def prover_spec(args: Args) -> str:
    """The model spec of ``--prover`` (a tiny variant name becomes ``tiny:VARIANT``)."""
    return f"tiny:{args.prover}" if args.prover in TINY_VARIANTS else args.prover


def load_prover_model(args: Args) -> Any | None:
    """The meta-prover's model when it is not each policy's own (``--prover``)."""
    if args.prover == "self" or args.prover.startswith("learned:"):
        return None
    spec = prover_spec(args)
    lm, why = load_policy(spec, args.device, args)
    if lm is None:
        raise SystemExit(f"cannot load the meta-prover model {spec!r}: {why}")
    return lm


class ProblemBar:
    """The progress bar over (policy, problem) pairs: it starts at what the cache holds (a
    resumed run shows its true position), advances once per pair as soon as J has been read
    on all of the pair's responses, and never counts a pair twice."""

    def __init__(self, pairs: list[tuple[str, str]], done: dict[tuple[str, str], Any]) -> None:
        from tqdm import tqdm

        self.counted = {pair for pair in pairs if pair in done}
        self.bar = tqdm(
            total=len(pairs), initial=len(self.counted), desc="policy x problem", unit="problem"
        )

    def mark(self, pairs: list[tuple[str, str]]) -> None:
        """Count the pairs not counted yet."""
        new = [pair for pair in dict.fromkeys(pairs) if pair not in self.counted]
        self.counted.update(new)
        if new:
            self.bar.update(len(new))

    def status(self, text: str) -> None:
        """Show what runs now beside the bar."""
        self.bar.set_postfix_str(text)


def run_chunk(
    lm: Any,
    prover: Any,
    name: str,
    problems: list[Any],
    chunk: list[int],
    args: Args,
    bar: ProblemBar,
) -> list[dict[str, Any]]:
    """Policy ``name``'s records of the problems at ``chunk``, tagged with the policy and the
    seconds per problem; the bar advances as each problem's J reads end."""
    clock = time.perf_counter()
    records = process_chunk(
        lm,
        prover,
        [problems[i] for i in chunk],
        chunk,
        args,
        status=lambda text: bar.status(f"{name}: {text}"),
        problem_done=lambda at: bar.mark([(name, problems[chunk[at]].id)]),
    )
    seconds = (time.perf_counter() - clock) / len(chunk)
    return [{"policy": name, "seconds": seconds, **r} for r in records]


def grading_tag(args: Args) -> str:
    """Identifies how natural responses' answers are read (``--answer-pattern``, or the
    template's default patterns), so a cache graded another way is not reused: records written
    before the default read "the answer is X" for chat models carry no tag and are redone."""
    grading = list(args.answer_pattern) or ["template-default-v2"]
    return ":g" + hashlib.sha256(json.dumps(grading).encode()).hexdigest()[:8]


def cached_records(
    args: Args, specs: dict[str, str], cache_path: Path
) -> tuple[dict[str, str], dict[tuple[str, str], dict[str, Any]]]:
    """Each policy's fingerprint (its weights and μ's) and the cached records made with it."""
    prover_tag = "" if args.prover == "self" else ":" + policy_fingerprint(prover_spec(args))
    if args.prover.startswith("learned:"):  # the head's checksum identifies a learned μ
        card = Path(args.prover[len("learned:") :]) / "card.json"
        prover_tag = ":" + json.loads(card.read_text())["head_sha256"][:16]
    tag = prover_tag + grading_tag(args)
    fingerprints = {name: policy_fingerprint(spec) + tag for name, spec in specs.items()}
    done = {
        key: record
        for key, record in read_cache(cache_path).items()
        if record.get("fingerprint") == fingerprints.get(key[0])
    }
    return fingerprints, done


def evaluate_policies(
    args: Args, specs: dict[str, str], problems: list[Any], cache_path: Path
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Records per policy (computed, or read from the cache); notes on skipped policies."""
    fingerprints, done = cached_records(args, specs, cache_path)
    bar = ProblemBar([(name, p.id) for name in specs for p in problems], done)
    bar.status("loading the meta-prover model" if args.prover != "self" else "starting")
    prover_lm = load_prover_model(args)
    size = args.chunk_problems
    chunks = [list(range(i, min(i + size, len(problems)))) for i in range(0, len(problems), size)]
    notes: list[str] = []
    for name, spec in specs.items():
        todo = [c for c in chunks if any((name, problems[i].id) not in done for i in c)]
        if not todo:
            continue
        bar.status(f"{name}: loading the model")
        lm, why = load_policy(spec, args.device, args)
        if lm is None:
            notes.append(f"policy {name!r} ({spec}) skipped: cannot load it ({why})")
            print(f"[regret] skipping policy {name!r}: {why}", file=sys.stderr)
            bar.mark([(name, problems[i].id) for c in todo for i in c])
            continue
        check_budgets(lm, problems, args)
        prover = build_prover(prover_lm or lm, args)
        for chunk in todo:
            records = run_chunk(lm, prover, name, problems, chunk, args, bar)
            records = [{"fingerprint": fingerprints[name], **r} for r in records]
            append_cache(cache_path, records)
            done.update({(name, r["problem_id"]): r for r in records})
            bar.mark([(name, r["problem_id"]) for r in records])
    bar.bar.close()
    policies = {
        name: [done[(name, p.id)] for p in problems if (name, p.id) in done] for name in specs
    }
    policies = {name: records for name, records in policies.items() if records}
    missing = [name for name in specs if name not in policies]
    if missing:
        notes.append(f"compared only {sorted(policies)}; missing: {missing}")
    return policies, notes


def main(args: Args) -> dict[str, Any]:
    start = time.perf_counter()
    model_options(args, [*policy_specs(args, {}).values(), prover_spec(args)])  # fail early
    excluded = ("name", "run_dir", "dump_traces")
    excluded += () if args.lm_option else ("lm_option",)  # earlier runs' folders still resume
    excluded += () if args.answer_pattern else ("answer_pattern",)
    settings = {k: v for k, v in asdict(args).items() if k not in excluded}
    run = Path(args.run_dir) / (args.name or f"run-{settings_hash(settings)}")
    run.mkdir(parents=True, exist_ok=True)
    trained = train_checkpoints(args, run) if args.train else {}
    specs = policy_specs(args, trained)
    policies, notes = evaluate_policies(args, specs, load_problems(args), run / "cache.jsonl")
    if not policies:
        raise SystemExit("no policy could be evaluated; see the messages above")
    extra = extrapolation_budgets(args)
    summary = {
        name: summarize_records(records, args.budgets, extra, args.samples, args.episode_budget)
        for name, records in policies.items()
    }
    comparisons = compare_records(policies, summary, args.budgets, extra)
    answered = answered_shares(policies, args.answered_warn)
    degenerate = degenerate_policies(policies, summary, answered, args.answered_warn)
    plot_all(policies, summary, args, run)
    if args.dump_traces:
        write_traces(policies, run / "traces.jsonl")
    elapsed = time.perf_counter() - start
    settings |= {
        "policy_specs": specs,
        "policy_fingerprints": {name: policy_fingerprint(spec) for name, spec in specs.items()},
        "extrapolation_budgets": extra,
    }
    results = {
        "settings": settings,
        "environment": run_environment(),
        "policies": summary,
        "comparisons": comparisons,
        "notes": notes,
        "forced_answers_answered": answered,
        "degenerate": degenerate,
        "num_problems": {name: len(records) for name, records in policies.items()},
        "wall_time_s": elapsed,
        "compute_time_s": {
            name: sum(r.get("seconds", 0.0) for r in records) for name, records in policies.items()
        },
        "timings_s": dict(TIMINGS),
    }
    write_json(run / "results.json", results)
    markdown = regret_markdown(summary, comparisons, args.budgets, extra, notes, degenerate)
    (run / "results.md").write_text(markdown)
    print((run / "results.md").read_text())
    for name, share in answered.items():
        readable = share["answered_share"]
        print(
            f"forced answers with a readable final answer, {name}: "
            f"{'n/a' if readable is None else f'{readable:.1%}'} of {share['forced_answers']}"
        )
    for name, stats in summary.items():
        print(
            f"episodes per response, {name}: mean {stats['mean_episodes']:.2f}, "
            f"one-episode share {stats['single_episode_share']:.0%}"
        )
    for note in notes:
        print(f"NOTE: {note}")
    files = "results.json, results.md, regret.png, accuracy_tokens.png, j_tokens.png"
    print(f"wrote {run}/: {files} ({elapsed:.0f} s this run)")
    return results


if __name__ == "__main__":
    main(parse_args(Args))
