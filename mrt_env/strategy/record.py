"""Record J curves from the real env for the strategy twin's ``dynamics="recorded"``.

Samples responses of a language model (by default the classic tiny LM, ``tiny:classic``, whose
J is a step function of the prefix) to problems (by default
held-out TinyMath), replays their thinking through ``MRTMath-v0`` episode by episode (the
meta-prover reads J after every episode) and writes, per trajectory, J of the empty thinking
and each episode's kind, tokens and J after it. An episode's kind is ``"attempt"`` for the
first episode and for episodes opening with a new-attempt marker (``"Alternatively"``,
``"Is there another way to think about this?"``); every other episode is a ``"recheck"``.

Command (regenerates the shipped file)::

    python -m mrt_env.strategy.record --out mrt_env/assets/strategy/tiny-lm-base.json

Example:
    >>> classify_episode("\\n\\nAlternatively, 2+2: 4.", index=1)
    'attempt'
    >>> classify_episode("\\n\\nWait, check: 4-2 = 2. Yes.", index=2)
    'recheck'
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrt_env.problems import Problem
from mrt_env.strategy.dynamics import (
    DEFAULT_RECORDING,
    EpisodeKind,
    RecordedEpisode,
    RecordedTrajectory,
    Recording,
)

ATTEMPT_MARKERS: tuple[str, ...] = ("Alternatively", "Is there another way to think about this?")
"""Paragraph openings of a new solution attempt; other marker episodes are re-checks."""


@dataclass(frozen=True)
class RecordSettings:
    """What to record.

    Attributes:
        model: ``"tiny"``/``"tiny:VARIANT"`` (shipped tiny LM) or a local path / hub id.
        problems: Problem source spec (``"tinymath:heldout"``, a JSONL path, ...).
        num_problems: Problems used (the first ones of the source).
        samples: Responses per problem.
        k: Forced answers per J estimate.
        token_budget: Maximum new tokens of a response.
        temperature: Sampling temperature of the responses.
        template: Chat/termination template preset (the classic tiny LM's ``"tiny"``).
        min_paragraphs: ``MarkerSegmenter(min_paragraphs=...)`` of the split.
        seed: Seed of sampling and of the meta-prover.
        batch_size: Responses generated and replayed together.
    """

    model: str = "tiny:classic"
    problems: str = "tinymath:heldout"
    num_problems: int = 60
    samples: int = 4
    k: int = 8
    token_budget: int = 256
    temperature: float = 0.8
    template: str = "tiny"
    min_paragraphs: int = 1
    seed: int = 0
    batch_size: int = 64


def classify_episode(episode: str, index: int) -> EpisodeKind:
    """``"attempt"`` for the first episode and new-attempt markers, else ``"recheck"``."""
    if index == 0 or episode.lstrip().startswith(ATTEMPT_MARKERS):
        return "attempt"
    return "recheck"


def recorded_trajectory(trajectory: Any) -> RecordedTrajectory:
    """A :class:`RecordedTrajectory` from a ``mrt_env.replay.Trajectory`` of thinking text.

    The replayed text must not end thinking, so that J after the last episode is the
    meta-prover's estimate (not the 0/1 outcome of a natural answer).
    """
    if any(value is None for value in trajectory.j):
        raise ValueError("the replay has no J estimates: the env needs a meta-prover")
    j = [float(value) for value in trajectory.j]
    steps = tuple(
        RecordedEpisode(classify_episode(text, i), int(tokens), j[i + 1])
        for i, (text, tokens) in enumerate(
            zip(trajectory.episodes, trajectory.episode_tokens, strict=True)
        )
    )
    return RecordedTrajectory(problem_id=trajectory.problem_id, j0=j[0], episodes=steps)


def _load_lm(model: str) -> Any:
    from mrt_env.tinymath import load_tiny_lm, tiny_variant

    variant = tiny_variant(model)
    if variant is not None:
        return load_tiny_lm(variant)
    from mrt_env.lm.hf import HFLanguageModel

    return HFLanguageModel.from_pretrained(model)


def _sample(lm: Any, prompts: list[str], seeds: list[int], settings: RecordSettings) -> list[str]:
    from mrt_env.lm.base import SamplingParams

    params = SamplingParams(max_new_tokens=settings.token_budget, temperature=settings.temperature)
    return [samples[0].text for samples in lm.generate(prompts, params, seeds)]


def record(settings: RecordSettings, lm: Any | None = None, progress: bool = True) -> Recording:
    """Sample, replay and record trajectories (see the module docs).

    Args:
        settings: What to record.
        lm: The language model (policy and meta-prover); ``None`` loads ``settings.model``.
        progress: Show a tqdm progress bar.

    Returns:
        The recording, with ``settings`` and the wall time in its settings.
    """
    from tqdm import tqdm

    from mrt_env.env import MRTMathEnv
    from mrt_env.replay import replay_many
    from mrt_env.segmenters import MarkerSegmenter, thinking_part
    from mrt_env.sources import FieldNames, resolve_source
    from mrt_env.templates import get_template

    start = time.perf_counter()
    lm = lm if lm is not None else _load_lm(settings.model)
    source = resolve_source(settings.problems, FieldNames())
    problems: list[Problem] = [source[i] for i in range(min(settings.num_problems, len(source)))]
    segmenter = MarkerSegmenter(min_paragraphs=settings.min_paragraphs)
    env = MRTMathEnv(
        problems=problems,
        lm=lm,
        template=settings.template,
        k=settings.k,
        token_budget=settings.token_budget * 2,
        max_episodes=256,
        segmenter=segmenter,
    )
    template = get_template(settings.template)
    jobs = [(p, s) for p in range(len(problems)) for s in range(settings.samples)]
    seed_stream = np.random.SeedSequence(settings.seed).generate_state(len(jobs) + 1)
    trajectories: list[RecordedTrajectory] = []
    batches = range(0, len(jobs), settings.batch_size)
    for begin in tqdm(batches, desc="recording", disable=not progress):
        batch = jobs[begin : begin + settings.batch_size]
        prompts = [template.render_prompt(problems[p].problem) for p, _ in batch]
        seeds = [int(seed_stream[begin + i]) for i in range(len(batch))]
        thinking = [thinking_part(text)[0] for text in _sample(lm, prompts, seeds, settings)]
        replayed = replay_many(
            env, thinking, [p for p, _ in batch], seed=int(seed_stream[-1]) + begin, finished=False
        )
        trajectories += [recorded_trajectory(t) for t in replayed if t.episodes]
    meta = {**vars(settings), "wall_time_s": round(time.perf_counter() - start, 1)}
    return Recording(trajectories=tuple(trajectories), settings=meta)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``python -m mrt_env.strategy.record --help``)."""
    import json

    defaults = RecordSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in vars(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--out", type=Path, default=DEFAULT_RECORDING, help="output JSON file")
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    recording = record(RecordSettings(**args))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(recording.to_json(), separators=(",", ":")) + "\n")
    episodes = sum(len(t.episodes) for t in recording.trajectories)
    print(f"wrote {len(recording.trajectories)} trajectories ({episodes} episodes) to {out}")


if __name__ == "__main__":
    main()
