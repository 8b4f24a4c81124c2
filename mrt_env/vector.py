"""A native vector env for ``MRTMath-v0``: one batched meta-prover call per vector step.

``gym.make_vec("MRTMath-v0", num_envs=N)`` builds :class:`MRTMathVectorEnv` (the registered
``vector_entry_point``). All sub-environments share one language model and meta-prover; a
vector step prepares every sub-environment's step, makes *one* ``prover.estimate`` call (and
one forced-answer ``generate`` call) for all of them, then finishes each step. The step logic
is :class:`mrt_env.core.StepCore`, the same as the single environment's.

``gym.make_vec("MRTMath-v0", num_envs=N, vectorization_mode="async")`` runs ``N`` single
environments in worker processes instead (Gymnasium's ``AsyncVectorEnv``, each worker with its
own models): observations travel through shared memory (see :mod:`mrt_env.spaces`), and
workers forked after torch started its threads run torch single-threaded
(:func:`fork_safe_threads`); ``vector_kwargs={"context": "spawn"}`` or ``"forkserver"`` work
too (they need the usual ``if __name__ == "__main__":`` guard in scripts).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mrt_env.config import Components, EnvConfig, build_components
from mrt_env.core import StepCore
from mrt_env.exclusive import ExclusiveUse
from mrt_env.spaces import UnicodeText, check_action
from mrt_env.trajectory import Pending, PendingReset, PendingStep, TrajectoryState

_IMPORT_PID = os.getpid()


def fork_safe_threads() -> bool:
    """In a process forked from one that had imported torch, limit torch to one thread.

    GNU OpenMP (torch's CPU thread pool) is not fork-safe: a forked child whose parent had
    started the pool deadlocks at its first parallel operation. ``AsyncVectorEnv`` forks
    its workers on Linux by default, so every ``MRTMathEnv`` calls this before it builds
    models. Returns whether the limit was applied (``False`` in the importing process).
    """
    torch = sys.modules.get("torch")
    if os.getpid() == _IMPORT_PID or torch is None:
        return False
    torch.set_num_threads(1)
    return True


class MRTMathVectorEnv(VectorEnv):
    """``num_envs`` copies of ``MRTMath-v0`` stepped together with batched model calls.

    Observations are tuples of ``num_envs`` strings, actions sequences of ``num_envs``
    strings, rewards/terminations/truncations numpy arrays. Infos follow Gymnasium's vector
    convention: ``info[key]`` is an array over sub-environments and ``info["_" + key]`` marks
    which sub-environments set it (keys whose value is ``None`` are left unset).

    Autoreset follows Gymnasium's default :attr:`AutoresetMode.NEXT_STEP`: the step after a
    sub-environment terminated or truncated resets it (its action is ignored; it returns the
    new prompt, reward 0 and ``False`` flags, and the reset info). Sub-environment ``i`` of
    ``reset(seed=s)`` uses seed ``s + i``: it draws the same problems and request seeds as a
    single ``MRTMathEnv`` reset with ``seed=s + i`` (with a caching meta-prover, a prefix that
    two sub-environments share gets one shared J estimate).

    Args:
        num_envs: Number of sub-environments.
        config: Shared configuration (``kwargs`` override its fields).
        components: Prebuilt components to share (built from the config when ``None``).
        **kwargs: ``EnvConfig`` fields.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> from mrt_env.prover.table import TableMetaProver
        >>> envs = MRTMathVectorEnv(2, problems=[{"problem": "1+1?", "answer": "2"}],
        ...                         lm=ScriptedLM(["2}"]), prover=TableMetaProver({}, default=0.5))
        >>> observations, infos = envs.reset(seed=0)
        >>> _, rewards, terminated, truncated, infos = envs.step(["Hmm.", "\\boxed{2}</think>"])
        >>> terminated.tolist()
        [False, True]
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int = 1,
        config: EnvConfig | None = None,
        components: Components | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        kwargs.pop("render_mode", None)
        self.config = EnvConfig.from_kwargs(config, **kwargs)
        self.core = StepCore(self.config, components or build_components(self.config))
        self.num_envs = num_envs
        size = self.config.max_observation_chars
        self.single_observation_space = UnicodeText(size)
        self.single_action_space = UnicodeText(size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._trajectories = [TrajectoryState() for _ in range(num_envs)]
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._seeded = False
        self._exclusive = ExclusiveUse(type(self).__name__)

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """The segmenter's boundary strings (the policy's stop strings)."""
        return tuple(self.core.components.segmenter.boundaries)

    @property
    def timings(self) -> dict[str, float]:
        """Cumulative seconds in ``step``/``reset`` and in the model calls inside them."""
        return self.core.timings

    @property
    def trajectories(self) -> tuple[TrajectoryState, ...]:
        """The sub-environments' trajectory states (read them; do not modify them)."""
        return tuple(self._trajectories)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Reset all sub-environments (or those in ``options["reset_mask"]``).

        Args:
            seed: ``None``, an int (sub-environment ``i`` gets ``seed + i``) or one seed per
                sub-environment.
            options: Passed to every reset sub-environment (``"problem"``/``"index"``), plus
                an optional boolean ``"reset_mask"`` array of shape ``(num_envs,)``.

        Raises:
            ConcurrentUseError: Another thread is inside ``step`` or ``reset`` of this env.
        """
        with self._exclusive("reset"), self._rollback_rngs_on_error():
            return self._reset(seed, options)

    def _reset(
        self, seed: int | Sequence[int | None] | None, options: dict[str, Any] | None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        start = time.perf_counter()
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, dtype=bool)))
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},)")
        self.core.check_options(options)  # before anything changes
        if seed is None and not self._seeded:
            seed = self.config.seed
        seeds = self._seeds(seed)
        self._seeded = True
        indices = [i for i in range(self.num_envs) if mask[i]]
        for i in indices:
            if seeds[i] is not None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
        pendings = [self._prepare_reset(i, options) for i in indices]
        results = self.core.call_models(pendings, phase="reset")
        infos: dict[str, Any] = {}
        for i, pending, result in zip(indices, pendings, results, strict=True):
            self._trajectories[i], _, info = self.core.finish_reset(pending, result)
            infos = self._add_info(infos, _without_none(info), i)
            self._autoreset[i] = False
        self.core.timings["reset_s"] += time.perf_counter() - start
        return self._observations(), infos

    def step(
        self, actions: Sequence[str]
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment with one batched meta-prover call.

        A refused action (or a failed model call) raises before any sub-environment changes:
        trajectories and random states stay as they were, and the env can step again.

        Raises:
            ConcurrentUseError: Another thread is inside ``step`` or ``reset`` of this env.
        """
        with self._exclusive("step"), self._rollback_rngs_on_error():
            return self._step(actions)

    @contextmanager
    def _rollback_rngs_on_error(self) -> Iterator[None]:
        """Restore every sub-environment's random state if the block raises."""
        states = [rng.bit_generator.state for rng in self._rngs]
        seeded = self._seeded
        try:
            yield
        except BaseException:
            for rng, state in zip(self._rngs, states, strict=True):
                rng.bit_generator.state = state
            self._seeded = seeded
            raise

    def _step(
        self, actions: Sequence[str]
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        start = time.perf_counter()
        if any(t.problem is None for t in self._trajectories):
            raise ResetNeeded("Cannot call step() before reset()")
        actions = self._check_actions(actions)
        pendings: list[Pending] = [
            self._prepare_reset(i, {})
            if self._autoreset[i]
            else self.core.prepare_step(self._trajectories[i], actions[i], self._rngs[i])
            for i in range(self.num_envs)
        ]
        results = self.core.call_models(pendings, phase="step")
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        stepped = [i for i, p in enumerate(pendings) if isinstance(p, PendingStep)]
        outputs = self.core.finish_steps(
            [self._trajectories[i] for i in stepped],
            [cast(PendingStep, pendings[i]) for i in stepped],
            [results[i] for i in stepped],
        )
        step_infos = {}
        for i, (_, reward, term, trunc, info) in zip(stepped, outputs, strict=True):
            rewards[i], terminated[i], truncated[i], step_infos[i] = reward, term, trunc, info
        infos: dict[str, Any] = {}
        for i, (pending, result) in enumerate(zip(pendings, results, strict=True)):
            if isinstance(pending, PendingReset):
                self._trajectories[i], _, info = self.core.finish_reset(pending, result)
            else:
                info = step_infos[i]
            infos = self._add_info(infos, _without_none(info), i)
        self._autoreset = terminated | truncated
        self.core.timings["step_s"] += time.perf_counter() - start
        return self._observations(), rewards, terminated, truncated, infos

    def _prepare_reset(self, index: int, options: dict[str, Any]) -> PendingReset:
        problem = self.core.choose_problem(self._rngs[index], options)
        return self.core.prepare_reset(problem, self._rngs[index])

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        return seeds

    def _check_actions(self, actions: Sequence[str]) -> list[str]:
        if isinstance(actions, str) or not isinstance(actions, Sequence | np.ndarray):
            raise TypeError(
                f"actions must be a sequence of {self.num_envs} str, got {type(actions).__name__}"
            )
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        for i, action in enumerate(actions):
            if not self._autoreset[i]:  # an autoresetting sub-environment ignores its action
                check_action(action, f"actions[{i}]")
        return actions

    def _observations(self) -> tuple[str, ...]:
        return tuple(t.prompt + t.thinking for t in self._trajectories)


def _without_none(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` without ``None`` values (recursively), for Gymnasium's vector info arrays."""
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in info.items()
        if value is not None
    }
