"""Offline replay: step finished responses through the environment, episode by episode.

``replay(env, response, problem=...)`` splits the response's thinking with the env's segmenter
and steps each episode through the env (the last one carries the end of thinking and the
answer), so any model's traces get the env's J curve, progress, rewards and regret, as in the
paper's analysis of R1 traces. ``replay_many`` does the same for many responses with one
batched meta-prover call per round of episodes.

Example:
    >>> from mrt_env.env import MRTMathEnv
    >>> from mrt_env.lm.scripted import ScriptedLM
    >>> from mrt_env.prover.table import TableMetaProver
    >>> from mrt_env.segmenters import MarkerSegmenter
    >>> env = MRTMathEnv(problems=[{"id": "p", "problem": "1+1?", "answer": "2"}],
    ...                  lm=ScriptedLM(["2}"]), prover=TableMetaProver({}, default=0.5),
    ...                  segmenter=MarkerSegmenter(min_paragraphs=1))
    >>> response = "1+1=2.\\n\\nWait, yes.</think>\\\\boxed{2}"
    >>> trajectory = replay(env, response, problem=0)
    >>> trajectory.episodes[0], len(trajectory.episodes)
    ('1+1=2.', 2)
    >>> trajectory.j, trajectory.outcome, trajectory.terminated  # J after the end: μ's (0.5)
    ((0.5, 0.5, 0.5), 1.0, True)
    >>> env = MRTMathEnv(problems=[{"id": "p", "problem": "1+1?", "answer": "2"}],
    ...                  lm=ScriptedLM(["2}"]), prover=TableMetaProver({}, default=0.5),
    ...                  segmenter=MarkerSegmenter(min_paragraphs=1), final_j="outcome")
    >>> replay(env, response, problem=0).j  # final_j="outcome": the verified answer
    (0.5, 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from mrt_env.core import SEED_BOUND, StepCore
from mrt_env.problems import Problem
from mrt_env.segmenters import thinking_part
from mrt_env.spaces import FinalEpisode
from mrt_env.trajectory import PendingStep, TrajectoryState

__all__ = ["Trajectory", "curves_by_problem", "replay", "replay_many", "split_response"]

ProblemRef = Problem | Mapping[str, Any] | int | str
"""A problem: a ``Problem``, a dict with problem/answer, an index into the env's source or
(for a ``ListSource``) a problem id."""


@dataclass(frozen=True)
class Trajectory:
    """One response replayed through the env.

    Attributes:
        problem_id: The problem's id.
        episodes: The episodes as stepped (the last one may have been cut at the budget).
        episode_tokens: Tokens of each episode.
        total_tokens: Response tokens after each episode.
        j: J before the first episode, then after each episode (``None`` without μ);
            J(final) of a response that ended thinking is the env's ``final_j`` (μ's estimate
            from the natural end by default, or the outcome).
        progress: Progress of each episode (``None`` without μ).
        rewards: Reward of each step.
        regret: Cumulative regret after each episode (``None`` without μ).
        outcome: Final outcome (0/1, or J with ``truncation_outcome="expected"``).
        verification: Verification status of the graded response.
        terminated: The response ended (thinking, or the whole response without the marker)
            within the env's limits.
        truncated: The env's token budget, episode cap or size limit cut the replay short.
        curve: ``(tokens, J)`` points, in the paper's token accounting.
    """

    problem_id: str
    episodes: tuple[str, ...]
    episode_tokens: tuple[int, ...]
    total_tokens: tuple[int, ...]
    j: tuple[float | None, ...]
    progress: tuple[float | None, ...]
    rewards: tuple[float, ...]
    regret: tuple[float | None, ...]
    outcome: float | None
    verification: str | None
    terminated: bool
    truncated: bool
    curve: tuple[tuple[float, float], ...]

    def curve_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, j)`` as float arrays: one trace for ``mrt_env.regret.normalized_regret``."""
        points = np.asarray(self.curve, dtype=float).reshape(-1, 2)
        return points[:, 0], points[:, 1]


def split_response(env: gym.Env, response: str, finished: bool = True) -> list[str]:
    """The episodes ``replay`` steps: the thinking split by the env's segmenter, with the
    end of thinking and the answer appended to the last episode (lossless).

    With ``finished`` (the default) the last episode is a
    :class:`~mrt_env.spaces.FinalEpisode`: the response is finished, so one without the
    end-of-thinking marker (a model without think tags, or one that stopped early) terminates
    there and is graded as it stands, like an online trajectory that ended with EOS.
    """
    core = _core(env)
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    thinking, rest = thinking_part(response, core.components.template.end_think)
    episodes = list(core.components.segmenter.split(thinking)) or [""]
    episodes[-1] += rest
    if finished:
        episodes[-1] = FinalEpisode(episodes[-1])
    return episodes


def replay(
    env: gym.Env,
    response: str,
    problem: ProblemRef,
    seed: int | None = None,
    finished: bool = True,
) -> Trajectory:
    """Step a finished ``response`` to ``problem`` through ``env``, one episode per step.

    Args:
        env: An ``MRTMath-v0`` env (wrappers are looked through).
        response: The model's full response (thinking, end marker, answer).
        problem: The problem it answers (see :data:`ProblemRef`).
        seed: Seed of the replay's meta-prover sampling (``None``: continue the env's RNG).
        finished: The response is complete: its last episode ends it (graded as it stands
            when it never ends thinking). ``False`` replays an unfinished prefix, whose J
            after the last episode is μ's estimate.

    Returns:
        The replayed trajectory. Replay stops early if the env truncates (token budget,
        episode cap): raise ``token_budget``/``max_episodes`` to replay long traces whole.
    """
    return replay_many(env, [response], [problem], seed=seed, finished=finished)[0]


def replay_many(
    env: gym.Env,
    responses: Sequence[str],
    problems: Sequence[ProblemRef],
    seed: int | None = None,
    batch_size: int = 64,
    finished: bool = True,
    progress: Callable[[list[int]], None] | None = None,
) -> list[Trajectory]:
    """Replay many responses; each round of episodes shares one ``prover.estimate`` call.

    Args:
        env: An ``MRTMath-v0`` env (its config and models are used; its own trajectory is
            left untouched).
        responses: Finished responses.
        problems: The problem of each response.
        seed: Seed of the meta-prover sampling (``None``: drawn from the env's RNG).
        batch_size: Responses replayed together (bounds the size of one prover call).
        finished: See :func:`replay`.
        progress: Called after every round of episodes with the indices (into
            ``responses``) of the responses whose replay ended in that round, each index
            exactly once (e.g. ``lambda ended: bar.update(len(ended))``); the results do not
            depend on it.

    Returns:
        One :class:`Trajectory` per response, in order.
    """
    if len(responses) != len(problems):
        raise ValueError(f"{len(responses)} responses but {len(problems)} problems")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    core = _core(env)
    if seed is None:
        seed = int(env.unwrapped.np_random.integers(SEED_BOUND))
    rng = np.random.default_rng(seed)
    episodes = [split_response(env, response, finished) for response in responses]
    resolved = [_problem(core, ref) for ref in problems]
    out: list[Trajectory] = []
    for start in range(0, len(responses), batch_size):
        stop = start + batch_size
        told = None if progress is None else _offset(progress, start)
        out.extend(_replay_batch(core, resolved[start:stop], episodes[start:stop], rng, told))
    return out


def curves_by_problem(
    trajectories: Sequence[Trajectory],
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Group J curves by problem (first-seen order): the input of ``normalized_regret``.

    Example:
        >>> from mrt_env.regret import normalized_regret
        >>> t = Trajectory("p", ("x",), (1,), (1,), (0.0, 1.0), (1.0,), (1.0,), (1.0,), 1.0,
        ...                "correct", True, False, ((10.0, 0.0), (20.0, 1.0)))
        >>> round(normalized_regret(curves_by_problem([t, t]), budget=40.0), 4)
        0.375
    """
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for trajectory in trajectories:
        groups.setdefault(trajectory.problem_id, []).append(trajectory.curve_arrays())
    return list(groups.values())


def _replay_batch(
    core: StepCore,
    problems: Sequence[Problem],
    episodes: Sequence[list[str]],
    rng: np.random.Generator,
    progress: Callable[[list[int]], None] | None = None,
) -> list[Trajectory]:
    resets = [core.prepare_reset(problem, rng) for problem in problems]
    results = core.call_models(resets, phase="reset")
    states: list[TrajectoryState] = []
    records: list[dict[str, Any]] = []
    for reset, result in zip(resets, results, strict=True):
        state, _, info = core.finish_reset(reset, result)
        states.append(state)
        records.append({"j": [info["j"]], "steps": []})
    reported: set[int] = set()  # responses whose replay has ended, as told to ``progress``
    for index in range(max(len(e) for e in episodes)):
        live = [i for i, s in enumerate(states) if not s.done and index < len(episodes[i])]
        if not live:
            break
        steps: list[PendingStep] = [
            core.prepare_step(states[i], episodes[i][index], rng) for i in live
        ]
        step_results = core.call_models(steps, phase="step")
        outputs = core.finish_steps([states[i] for i in live], steps, step_results)
        for i, step, output in zip(live, steps, outputs, strict=True):
            records[i]["steps"].append((step.episode, output))
        if progress is not None:
            ended = [
                i
                for i, (s, e) in enumerate(zip(states, episodes, strict=True))
                if i not in reported and (s.done or index + 1 >= len(e))
            ]
            reported.update(ended)
            progress(ended)
    if progress is not None and len(reported) < len(states):
        progress([i for i in range(len(states)) if i not in reported])
    return [_trajectory(state, record) for state, record in zip(states, records, strict=True)]


def _offset(progress: Callable[[list[int]], None], start: int) -> Callable[[list[int]], None]:
    """``progress`` told indices into the whole list, from a batch that starts at ``start``."""
    return lambda ended: progress([start + i for i in ended])


def _trajectory(state: TrajectoryState, record: dict[str, Any]) -> Trajectory:
    steps = record["steps"]
    infos = [info for _, (_, _, _, _, info) in steps]
    last = infos[-1] if infos else {}
    assert state.problem is not None
    return Trajectory(
        problem_id=state.problem.id,
        episodes=tuple(episode for episode, _ in steps),
        episode_tokens=tuple(info["episode_tokens"] for info in infos),
        total_tokens=tuple(info["total_tokens"] for info in infos),
        j=tuple(record["j"] + [info["j_after"] for info in infos]),
        progress=tuple(info["progress"] for info in infos),
        rewards=tuple(reward for _, (_, reward, _, _, _) in steps),
        regret=tuple(info["regret"] for info in infos),
        outcome=last.get("outcome"),
        verification=last.get("verification"),
        terminated=bool(steps and steps[-1][1][2]),
        truncated=bool(steps and steps[-1][1][3]),
        curve=tuple(state.curve),
    )


def _core(env: gym.Env) -> StepCore:
    core = getattr(env.unwrapped, "core", None)
    if not isinstance(core, StepCore):
        raise TypeError(f"replay needs an MRTMath-v0 env, got {env!r}")
    return core


def _problem(core: StepCore, ref: ProblemRef) -> Problem:
    if isinstance(ref, str):
        index_of = getattr(core.components.source, "index_of", None)
        if index_of is None:
            raise TypeError("problem ids need a source with index_of(); pass a Problem or index")
        return core.components.source[index_of(ref)]
    if isinstance(ref, int | np.integer):
        return core.choose_problem(np.random.default_rng(0), {"index": int(ref)})
    return core.choose_problem(np.random.default_rng(0), {"problem": ref})
