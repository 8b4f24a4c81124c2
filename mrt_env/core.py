"""The two-phase step machinery shared by ``MRTMathEnv``, its vector env and ``replay``.

A step is split so that many trajectories can share one batched model call:

1. ``prepare_*`` validates the input and computes everything that needs no model call
   (token counts, the budget cut, termination) plus the model requests; it never mutates a
   trajectory, so bad input leaves the environment as it was;
2. :meth:`StepCore.call_models` runs *one* ``prover.estimate`` over all J requests and one
   ``lm.generate`` over all forced answers of a batch of trajectories;
3. ``finish_*`` commits the step to the trajectory and computes rewards and info.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded

from mrt_env.budget import fit_episode
from mrt_env.config import Components, EnvConfig
from mrt_env.grading import (
    end_j,
    end_outcome,
    forced_prompt,
    forced_response,
    needs_final_estimate,
    needs_forced_answer,
)
from mrt_env.lm.base import Completion, SamplingParams
from mrt_env.problems import Problem
from mrt_env.prover.base import JEstimate, ProverRequest
from mrt_env.sources import problem_from_record
from mrt_env.spaces import FinalEpisode, check_action
from mrt_env.trajectory import (
    ModelResult,
    Pending,
    PendingReset,
    PendingStep,
    StepOutput,
    TrajectoryState,
)
from rewards.context import StepContext

SEED_BOUND = 2**31 - 1
"""Per-request seeds are drawn uniformly from ``[0, SEED_BOUND)``."""

__all__ = [
    "SEED_BOUND",
    "TIMING_KEYS",
    "ModelResult",
    "Pending",
    "PendingReset",
    "PendingStep",
    "StepCore",
    "StepOutput",
    "TrajectoryState",
]

TIMING_KEYS: tuple[str, ...] = (
    "step_s",
    "step_model_s",
    "reset_s",
    "reset_model_s",
    "prover_s",
    "generate_s",
)
"""Cumulative seconds: whole ``step``/``reset`` calls, the model calls inside them, and the
model calls split by kind (``prover.estimate`` vs forced-answer ``lm.generate``)."""


class StepCore:
    """Builds resets and steps for any number of trajectories over shared components.

    Args:
        config: The environment configuration.
        components: Objects built from ``config`` (shared, e.g. by all sub-environments).
    """

    def __init__(self, config: EnvConfig, components: Components) -> None:
        self.config = config
        self.components = components
        self.timings: dict[str, float] = dict.fromkeys(TIMING_KEYS, 0.0)

    def overhead_share(self) -> float:
        """Fraction of ``step`` time spent outside model calls (``nan`` before any step)."""
        total = self.timings["step_s"]
        return 1.0 - self.timings["step_model_s"] / total if total > 0 else float("nan")

    # ---------------------------------------------------------------- reset
    def check_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate reset ``options`` (``"problem"``, ``"index"`` or ``"id"``; an ``"id"``
        becomes its ``"index"``); raise on anything else."""
        options = dict(options or {})
        unknown = sorted(set(options) - {"problem", "index", "id"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; use 'problem', 'index' or 'id'")
        if len(set(options) & {"problem", "index", "id"}) > 1:
            raise ValueError("pass one of options['problem'], ['index'] or ['id'], not several")
        if "problem" in options:
            where = "options['problem']"
            options["problem"] = problem_from_record(options["problem"], where, "custom")
        if "id" in options:
            options["index"] = self._index_of(str(options.pop("id")))
        if "index" in options:
            index, size = options["index"], len(self.components.source)
            if isinstance(index, bool) or not isinstance(index, int | np.integer):
                raise TypeError(f"options['index'] must be an int, got {type(index).__name__}")
            if not -size <= index < size:
                raise IndexError(f"options['index']={index} out of range for {size} problems")
        return options

    def _index_of(self, problem_id: str) -> int:
        source = self.components.source
        index_of = getattr(source, "index_of", None)
        if index_of is not None:
            return int(index_of(problem_id))
        for index in range(len(source)):
            if source[index].id == problem_id:
                return index
        raise KeyError(f"no problem with id {problem_id!r} in the env's {len(source)} problems")

    def choose_problem(
        self, rng: np.random.Generator, options: Mapping[str, Any] | None
    ) -> Problem:
        """The problem from ``options`` (``"problem"``, ``"index"``, ``"id"``) or drawn with
        ``rng``."""
        options = self.check_options(options)
        source = self.components.source
        if "problem" in options:
            problem: Problem = options["problem"]
            return problem
        if "index" in options:
            return source[int(options["index"])]
        return source[int(rng.integers(len(source)))]

    def prepare_reset(self, problem: Problem, rng: np.random.Generator) -> PendingReset:
        """Render the prompt and request J of the empty thinking."""
        lm, template = self.components.lm, self.components.template
        prompt = template.render_prompt(problem.problem)
        if len(prompt) > self.config.max_observation_chars:
            raise ValueError(
                f"problem {problem.id!r}: the prompt has {len(prompt)} characters, more than "
                f"max_observation_chars={self.config.max_observation_chars}"
            )
        request = self._prover_request(problem, prompt, "", rng)
        return PendingReset(problem, prompt, lm.count_tokens(prompt), request)

    def finish_reset(
        self, pending: PendingReset, result: ModelResult
    ) -> tuple[TrajectoryState, str, dict[str, Any]]:
        """A new trajectory on the pending problem, its observation and its reset info."""
        state = TrajectoryState(pending.problem, pending.prompt, pending.prompt_tokens)
        info: dict[str, Any] = {"problem_id": pending.problem.id, "j": None, "curve": []}
        if result.estimate is not None:
            state.j = float(result.estimate.j)
            tokens = pending.prompt_tokens + result.estimate.answer_tokens
            state.curve.append((float(tokens), state.j))
            info.update(j=state.j, j_ci=(result.estimate.ci_low, result.estimate.ci_high))
            info["curve"] = list(state.curve)
        return state, pending.prompt, info

    # ----------------------------------------------------------------- step
    def prepare_step(
        self, state: TrajectoryState, action: Any, rng: np.random.Generator
    ) -> PendingStep:
        """Validate ``action``, cut it at the budget, decide termination; mutate nothing."""
        if state.problem is None:
            raise ResetNeeded("Cannot call step() before reset()")
        if state.done:
            raise ResetNeeded("The trajectory has ended (terminated or truncated); call reset()")
        check_action(action)
        episode, total, cut = self._fit_episode(state, action)
        thinking = state.thinking + episode
        end = self.components.template.end_think
        terminated = end in thinking[max(0, len(state.thinking) - len(end) + 1) :]
        # the model's output ended (EOS) without the marker: grade the response as it stands
        terminated = terminated or (isinstance(action, FinalEpisode) and not cut)
        at_cap = state.episode_index + 1 >= self.config.max_episodes
        truncated = not terminated and (cut or total >= self.config.token_budget or at_cap)
        request = None
        if needs_final_estimate(terminated, self.config.final_j):  # natural end if terminated
            request = self._prover_request(state.problem, state.prompt, thinking, rng)
        forced = None
        if needs_forced_answer(truncated, self.config.truncation_outcome):
            prompt = forced_prompt(self.components.template, state.prompt, thinking)
            forced = (prompt, int(rng.integers(SEED_BOUND)))
        return PendingStep(
            episode=episode,
            thinking=thinking,
            episode_tokens=total - state.total_tokens,
            total_tokens=total,
            cut=cut,
            terminated=terminated,
            truncated=truncated,
            prover_request=request,
            forced_request=forced,
        )

    def _fit_episode(self, state: TrajectoryState, episode: str) -> tuple[str, int, bool]:
        """Cut ``episode`` at the observation size and the token budget; return the count
        (near-linear in the episode, see :mod:`mrt_env.budget`)."""
        room = self.config.max_observation_chars - len(state.prompt) - len(state.thinking)
        too_long = len(episode) > room
        episode = episode[: max(room, 0)] if too_long else episode
        episode, total, cut = fit_episode(
            self.components.lm,
            state.thinking,
            state.total_tokens,
            episode,
            self.config.token_budget,
        )
        return episode, total, cut or too_long

    def finish_steps(
        self,
        states: Sequence[TrajectoryState],
        pendings: Sequence[PendingStep],
        results: Sequence[ModelResult],
    ) -> list[StepOutput]:
        """Commit each pending step to its trajectory (verification and rewards batched).

        Returns:
            ``(observation, reward, terminated, truncated, info)`` per trajectory.
        """
        graded = [
            self._graded_response(s, p, r)
            for s, p, r in zip(states, pendings, results, strict=True)
        ]
        todo = [(i, response) for i, response in enumerate(graded) if response is not None]
        verifications: list[Any] = [None] * len(states)
        if todo:
            import rewards

            pairs = [(response, _gold(states[i])) for i, response in todo]
            from mrt_env.answer_patterns import answer_verifier_config

            verifier = rewards.get_verifier(answer_verifier_config(self.components.answer_patterns))
            for (i, _), verification in zip(todo, verifier.verify_many(pairs), strict=True):
                verifications[i] = verification
        contexts = [
            self._context(s, p, r, g, v)
            for s, p, r, g, v in zip(states, pendings, results, graded, verifications, strict=True)
        ]
        terms = self.components.reward.batch(contexts)
        return [
            self._commit(s, p, c, t)
            for s, p, c, t in zip(states, pendings, contexts, terms, strict=True)
        ]

    def _graded_response(
        self, state: TrajectoryState, pending: PendingStep, result: ModelResult
    ) -> str | None:
        """The response graded at a terminal step: the policy's own, or a forced answer."""
        if pending.terminated:
            return pending.thinking
        if pending.truncated and result.forced is not None:
            template = self.components.template
            return forced_response(template, state.prompt, pending.thinking, result.forced.text)
        return None

    def _context(
        self,
        state: TrajectoryState,
        pending: PendingStep,
        result: ModelResult,
        response: str | None,
        verification: Any,
    ) -> StepContext:
        """The reward modules' view of this step (outcome and J after it included)."""
        assert state.problem is not None
        verified = None if verification is None else float(verification.correct)
        estimate = _j(result.estimate)
        outcome = end_outcome(verified, pending.truncated, estimate)  # mrt_env.grading
        j_after, j_source = end_j(pending.terminated, outcome, estimate, self.config.final_j)
        j_estimator = result.estimate.source if j_source == "prover" and result.estimate else None
        answer_tokens = 0.0 if pending.terminated else _answer_tokens(result.estimate)
        return StepContext(
            problem=state.problem.problem,
            gold=state.problem.answer,
            prefix=state.thinking,
            episode=pending.episode,
            episode_index=state.episode_index,
            episode_tokens=pending.episode_tokens,
            total_tokens=pending.total_tokens,
            terminal=pending.terminated or pending.truncated,
            response=response,
            j_before=state.j,
            j_after=j_after,
            metadata={
                "problem_id": state.problem.id,
                "verification": verification,
                "outcome": outcome,
                "expected_outcome": outcome if verification is None else None,
                "answer_tokens": answer_tokens,
                "episode_cut": pending.cut,
                "j_source": j_source,
                "j_estimator": j_estimator,
            },
        )

    def _commit(
        self, state: TrajectoryState, pending: PendingStep, context: StepContext, terms: Any
    ) -> StepOutput:
        """Advance ``state`` by the step in ``context``; build the step's return values."""
        j_before, j_after = context.j_before, context.j_after
        if j_before is not None:
            state.regret += self.config.j_star - j_before
        state.thinking, state.total_tokens, state.j = (
            pending.thinking,
            pending.total_tokens,
            j_after,
        )
        if j_after is not None:
            tokens = state.prompt_tokens + pending.total_tokens + context.metadata["answer_tokens"]
            if state.curve:  # a short final answer may take fewer tokens than a forced one
                tokens = max(tokens, state.curve[-1][0])
            state.curve.append((float(tokens), float(j_after)))
        state.done = pending.terminated or pending.truncated
        verification = context.metadata["verification"]
        info = {
            "problem_id": context.metadata["problem_id"],
            "episode_index": state.episode_index,
            "episode_tokens": pending.episode_tokens,
            "total_tokens": pending.total_tokens,
            "episode_cut": pending.cut,
            "j_before": j_before,
            "j_after": j_after,
            "progress": context.progress,
            "outcome": context.metadata["outcome"],
            "verification": None if verification is None else verification.status,
            "reward_terms": dict(terms.terms),
            "j_source": context.metadata["j_source"],
            "j_estimator": context.metadata["j_estimator"],
            "regret": state.regret if j_before is not None else None,
            "curve": list(state.curve),
        }
        state.episode_index += 1
        observation = state.prompt + state.thinking
        return observation, float(terms.total), pending.terminated, pending.truncated, info

    # -------------------------------------------------------- model calls
    def call_models(self, pendings: Sequence[Pending], phase: str = "step") -> list[ModelResult]:
        """One ``prover.estimate`` and one ``lm.generate`` for all of ``pendings``.

        ``phase`` (``"step"`` or ``"reset"``) names the timing bucket the calls count in.
        """
        requests = [p.prover_request for p in pendings if p.prover_request is not None]
        forced = [p.forced_request for p in pendings if p.forced_request is not None]
        estimates: list[JEstimate] = []
        completions: list[Completion] = []
        start = time.perf_counter()
        if requests:
            prover = self.components.prover
            assert prover is not None
            estimates = list(prover.estimate(requests))
            if len(estimates) != len(requests):
                raise RuntimeError(
                    f"prover returned {len(estimates)} estimates for {len(requests)}"
                )
        middle = time.perf_counter()
        if forced:
            completions = self._generate_forced(forced)
        end = time.perf_counter()
        self.timings["prover_s"] += middle - start
        self.timings["generate_s"] += end - middle
        self.timings[f"{phase}_model_s"] += end - start
        estimate_iter, completion_iter = iter(estimates), iter(completions)
        return [
            ModelResult(
                estimate=next(estimate_iter) if p.prover_request is not None else None,
                forced=next(completion_iter) if p.forced_request is not None else None,
            )
            for p in pendings
        ]

    def _generate_forced(self, forced: Sequence[tuple[str, int]]) -> list[Completion]:
        params = SamplingParams(
            max_new_tokens=self.components.answer_caps.forced,
            temperature=self.config.prover_temperature,
        )
        lm = self.components.truncation_lm or self.components.lm
        outputs = lm.generate(
            [prompt for prompt, _ in forced], params, seeds=[seed for _, seed in forced]
        )
        return [samples[0] for samples in outputs]

    def _prover_request(
        self, problem: Problem, prompt: str, prefix: str, rng: np.random.Generator
    ) -> ProverRequest | None:
        if self.components.prover is None:
            return None
        seed = int(rng.integers(SEED_BOUND))
        return ProverRequest(problem.id, prompt, problem.answer, prefix, seed=seed)


def _gold(state: TrajectoryState) -> str:
    assert state.problem is not None
    return state.problem.answer


def _j(estimate: JEstimate | None) -> float | None:
    return None if estimate is None else float(estimate.j)


def _answer_tokens(estimate: JEstimate | None) -> float:
    return 0.0 if estimate is None else float(estimate.answer_tokens)
