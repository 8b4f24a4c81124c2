"""Measure the shipped tiny LM on held-out TinyMath problems and write its model card.

Run::

    python -m mrt_env.tinymath.evaluate --n 500 --seed 0

Writes ``eval.json`` (the figures), ``j_curves.png`` (mean J vs episode and vs tokens) and
``README.md`` (the model card) into the model folder. Every figure goes through the library's
own code paths: :class:`~mrt_env.lm.hf.HFLanguageModel` for generation,
:class:`~mrt_env.prover.sampled.SampledMetaProver` for J,
:class:`~mrt_env.segmenters.MarkerSegmenter` for episodes and :func:`rewards.verify`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrt_env.lm.base import SamplingParams
from mrt_env.problems import Problem
from mrt_env.templates import TEMPLATES, ChatTemplate, resolve_template
from mrt_env.tinymath.problems import DEFAULT_LEVELS, TinyMathSource

TEMPLATE = TEMPLATES["tiny"]
"""The tiny LMs' prompt and end of thinking (a model whose forced answers explain declares
``tiny-explain``, the same prompt with another termination suffix: :func:`forced_template`)."""


def forced_template(lm: Any) -> ChatTemplate:
    """The template of ``lm``'s forced answers: the preset its tokenizer declares, else ``tiny``."""
    return resolve_template(None, lm)


@dataclass(frozen=True)
class EvalConfig:
    """What to measure.

    Attributes:
        n: Held-out problems.
        seed: Seeds the problems, samples and prefix cuts.
        temperature: Sampling temperature of the sampled pass@1 and the J rollouts.
        max_new_tokens: Response budget in tokens.
        k: Forced answers per J estimate.
        j_problems: Problems (sampled responses) whose J curves are measured.
        levels: TinyMath levels.
    """

    n: int = 500
    seed: int = 0
    temperature: float = 0.8
    max_new_tokens: int = 400
    k: int = 8
    j_problems: int = 200
    levels: tuple[int, ...] = DEFAULT_LEVELS


def segmenter() -> Any:
    """The tiny LM's episode splitter: every marker paragraph opens an episode."""
    from mrt_env.segmenters import MarkerSegmenter

    return MarkerSegmenter(min_paragraphs=1)


def respond(
    lm: Any, problems: list[Problem], temperature: float, max_new_tokens: int, seed: int
) -> list[str]:
    """One response per problem (greedy when ``temperature`` is 0)."""
    prompts = [TEMPLATE.render_prompt(p.problem) for p in problems]
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    seeds = [seed * 1_000_003 + i for i in range(len(prompts))]
    return [samples[0].text for samples in lm.generate(prompts, params, seeds)]


def pass_at_1(responses: list[str], problems: list[Problem]) -> float:
    """Fraction of responses verified correct."""
    from rewards import verify_many

    results = verify_many((r, p.answer) for r, p in zip(responses, problems, strict=True))
    return float(np.mean([result.correct for result in results]))


def episodes_of(response: str) -> list[str]:
    """The thinking episodes of a response."""
    from mrt_env.segmenters import thinking_part

    return list(segmenter().split(thinking_part(response, TEMPLATE.end_think)[0]))


def forced_well_formed(
    lm: Any, problems: list[Problem], responses: list[str], seed: int
) -> tuple[float, float]:
    """Force answers from random prefixes; returns (well-formed rate, correct rate).

    Each response's thinking is cut at a uniformly random character (0 = empty prefix); the
    forced answer is well formed when :func:`rewards.verify` finds a closed ``\\boxed{}``.
    """
    from mrt_env.segmenters import thinking_part
    from rewards import verify_many

    rng, template = np.random.default_rng(seed), forced_template(lm)
    prompts, forced = [], []
    for problem, response in zip(problems, responses, strict=True):
        thinking = thinking_part(response, TEMPLATE.end_think)[0]
        prefix = thinking[: int(rng.integers(len(thinking) + 1))]
        prompt = TEMPLATE.render_prompt(problem.problem)
        prompts.append(prompt)
        forced.append(template.render_forced(prompt, prefix))
    params = SamplingParams(max_new_tokens=template.answer_caps().forced, temperature=1.0)
    outs = lm.generate(forced, params, [seed + i for i in range(len(forced))])
    pairs = [
        (f[len(p) :] + out[0].text, problem.answer)
        for f, p, out, problem in zip(forced, prompts, outs, problems, strict=True)
    ]
    results = verify_many(pairs)
    formed = [r.status in ("correct", "wrong") for r in results]
    return float(np.mean(formed)), float(np.mean([r.correct for r in results]))


def j_curves(lm: Any, problems: list[Problem], responses: list[str], k: int, seed: int) -> dict:
    """J after every episode of each response (index 0 = empty thinking), with the prefixes'
    token counts and the mean length of the forced answers behind each J (``answer_tokens``;
    ``answer_cap`` is their token cap)."""
    from mrt_env.prover.base import ProverRequest
    from mrt_env.prover.sampled import SampledMetaProver

    template = forced_template(lm)
    caps = template.answer_caps()
    prover = SampledMetaProver(lm, template, k=k, max_answer_tokens=caps.forced, temperature=1.0)
    requests, owners = [], []
    for index, (problem, response) in enumerate(zip(problems, responses, strict=True)):
        prompt, prefix = TEMPLATE.render_prompt(problem.problem), ""
        for episode in ["", *episodes_of(response)]:
            prefix += episode
            requests.append(ProverRequest(problem.id, prompt, problem.answer, prefix, seed + index))
            owners.append(index)
    estimates = prover.estimate(requests)
    curves: list[list[float]] = [[] for _ in problems]
    tokens: list[list[int]] = [[] for _ in problems]
    answers: list[list[float]] = [[] for _ in problems]
    for request, estimate, owner in zip(requests, estimates, owners, strict=True):
        curves[owner].append(estimate.j)
        tokens[owner].append(lm.count_tokens(request.prefix))
        answers[owner].append(estimate.answer_tokens)
    return {"j": curves, "tokens": tokens, "answer_tokens": answers, "answer_cap": caps.forced}


def summarize_curves(curves: dict, max_episodes: int = 5, token_step: int = 10) -> dict[str, Any]:
    """Mean J curves over trajectories.

    By episode: J after ``i`` episodes, a finished trajectory keeping its last value. By
    tokens: each trajectory's J is a step function of its thinking tokens (J of the longest
    prefix read so far, flat after the end), averaged on a grid of ``token_step`` tokens.
    """
    j, tokens = curves["j"], curves["tokens"]
    flat = np.array([[c[min(i, len(c) - 1)] for i in range(max_episodes + 1)] for c in j])
    reached = [sum(len(c) > i for c in j) for i in range(max_episodes + 1)]
    longest = max(t[-1] for t in tokens)
    grid = np.arange(0, longest + token_step, token_step)
    steps = [
        np.asarray(c)[np.searchsorted(t, grid, side="right") - 1]
        for c, t in zip(j, tokens, strict=True)
    ]
    return {
        "mean_j_by_episode": flat.mean(axis=0).round(4).tolist(),
        "trajectories_reaching_episode": reached,
        "token_grid": grid.tolist(),
        "mean_j_by_tokens": np.mean(steps, axis=0).round(4).tolist(),
        "j_empty": float(flat[:, 0].mean()),
        "j_final": float(np.mean([c[-1] for c in j])),
    }


def plot_curves(summary: dict[str, Any], path: Path) -> None:
    """Write the mean-J-vs-episode and mean-J-vs-tokens plots to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    by_episode = summary["mean_j_by_episode"]
    left.plot(range(len(by_episode)), by_episode, marker="o")
    left.set(xlabel="episodes of thinking", ylabel="mean J", title="J vs episode", ylim=(0, 1))
    right.plot(summary["token_grid"], summary["mean_j_by_tokens"], drawstyle="steps-post")
    right.set(xlabel="thinking tokens", ylabel="mean J", title="J vs tokens", ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate(lm: Any, config: EvalConfig) -> dict[str, Any]:
    """All figures of the model card."""
    source = TinyMathSource(split="heldout", size=config.n, levels=config.levels, seed=config.seed)
    problems = list(source)
    start = time.monotonic()
    greedy = respond(lm, problems, 0.0, config.max_new_tokens, config.seed)
    sampled = respond(lm, problems, config.temperature, config.max_new_tokens, config.seed)
    levels = [p.metadata["level"] for p in problems]
    by_level = {
        str(level): pass_at_1(
            [r for r, lv in zip(greedy, levels, strict=True) if lv == level],
            [p for p, lv in zip(problems, levels, strict=True) if lv == level],
        )
        for level in sorted(set(levels))
    }
    formed, forced_correct = forced_well_formed(lm, problems, sampled, config.seed)
    subset = slice(0, config.j_problems)
    curves = j_curves(lm, problems[subset], sampled[subset], config.k, config.seed)
    return {
        "config": asdict(config),
        "greedy_pass_at_1": pass_at_1(greedy, problems),
        "greedy_pass_at_1_by_level": by_level,
        "sampled_pass_at_1": pass_at_1(sampled, problems),
        "extra_episodes_per_response_greedy": float(
            np.mean([len(episodes_of(r)) - 1 for r in greedy])
        ),
        "extra_episodes_per_response_sampled": float(
            np.mean([len(episodes_of(r)) - 1 for r in sampled])
        ),
        "mean_response_tokens_sampled": float(np.mean([lm.count_tokens(r) for r in sampled])),
        "forced_well_formed": formed,
        "forced_correct_from_random_prefix": forced_correct,
        **summarize_curves(curves),
        "seconds": time.monotonic() - start,
        "examples": [
            {"problem": p.problem, "response": r}
            for p, r in zip(problems[:3], sampled[:3], strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    import torch

    from mrt_env.lm.hf import HFLanguageModel
    from mrt_env.tinymath.card import write_card
    from mrt_env.tinymath.loading import tiny_lm_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=EvalConfig.n)
    parser.add_argument("--seed", type=int, default=EvalConfig.seed)
    parser.add_argument("--j-problems", type=int, default=EvalConfig.j_problems)
    parser.add_argument("--k", type=int, default=EvalConfig.k)
    parser.add_argument("--model", type=Path, default=tiny_lm_path("base"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    training = json.loads((args.model / "training.json").read_text())
    config = EvalConfig(
        n=args.n,
        seed=args.seed,
        j_problems=min(args.j_problems, args.n),
        k=args.k,
        levels=tuple(training["config"]["data"]["levels"]),
    )
    lm = HFLanguageModel.from_pretrained(str(args.model))
    figures = evaluate(lm, config)
    (args.model / "eval.json").write_text(json.dumps(figures, indent=2) + "\n")
    plot_curves(figures, args.model / "j_curves.png")
    write_card(args.model)
    shown = {k: v for k, v in figures.items() if k not in ("config", "examples")}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
