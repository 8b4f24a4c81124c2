"""``MRTMath-v0``: math reasoning as a meta-RL environment, one episode of thinking per step."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from mrt_env.config import Components, EnvConfig, build_components
from mrt_env.core import StepCore
from mrt_env.exclusive import ExclusiveUse
from mrt_env.lm.base import LanguageModel
from mrt_env.problems import Problem, ProblemSource
from mrt_env.spaces import UnicodeText
from mrt_env.trajectory import TrajectoryState
from mrt_env.vector import fork_safe_threads


class MRTMathEnv(gym.Env[str, str]):
    r"""Math reasoning where each step appends one *episode* of thinking to the response.

    A trajectory is one problem: the policy writes its thinking as a stream of episodes
    (segments that end at the segmenter's boundary strings, :attr:`stop_strings`) and finally
    ends thinking (``</think>``) and states ``\boxed{answer}``. After every episode the
    meta-prover μ estimates J, the probability that an answer forced from the thinking so far
    is correct; progress is the change of J (see PAPER.md).

    ## Observation
    The text the policy continues: the rendered prompt followed by the thinking so far, in a
    :class:`~mrt_env.spaces.UnicodeText` space (any Unicode string of at most
    ``max_observation_chars`` characters). The gold answer is never part of it.

    ## Action
    The next episode's text (any ``str``, possibly empty). An episode containing the template's
    end-of-thinking marker ends the trajectory; text after the marker is the final answer. A
    :class:`~mrt_env.spaces.FinalEpisode` (a ``str``) is the last episode of a finished
    response (the model's output ended): it ends the trajectory even without the marker.

    ## Reward
    The weighted sum of the configured reward modules (default: outcome + progress with
    α = 1), evaluated on a ``rewards.StepContext`` per step; per-term values are in
    ``info["reward_terms"]``. The outcome (0/1; J with ``truncation_outcome="expected"``) is
    known only at the final step.

    ## Termination/Truncation
    ``terminated`` when the episode ends thinking, or is a ``FinalEpisode``: the response (all
    episodes, as it stands) is verified with ``rewards.verify`` (the outcome), and J(final) is
    μ's K-sample estimate from the natural end of thinking (``final_j="prover"``, PAPER.md) or
    that outcome (``final_j="outcome"``).
    ``truncated`` when the response reaches ``token_budget`` tokens (an overrunning episode
    is cut at the budget, by tokens), ``max_episodes`` steps or ``max_observation_chars``
    characters; the outcome is that of one forced answer sampled from ``truncation_lm``
    (default: ``lm``; capped at ``Components.answer_caps.forced`` tokens;
    ``truncation_outcome="forced_answer"``, the paper's
    evaluation at a budget) or J of the final prefix (``"expected"``). Never both.
    Stepping after the trajectory ended, or before the first reset, raises
    :class:`gymnasium.error.ResetNeeded`.

    ## Info
    ``reset``: ``problem_id``, ``j`` (J of the empty thinking, ``None`` without μ), ``j_ci``,
    ``curve``. ``step``: ``problem_id``, ``episode_index``, ``episode_tokens``,
    ``total_tokens``, ``episode_cut``, ``j_before``, ``j_after``, ``progress``, ``outcome``,
    ``verification``, ``reward_terms``, ``j_source`` (``"prover"`` or ``"outcome"``: what
    ``j_after`` is; ``None`` without μ), ``j_estimator`` (the ``JEstimate.source`` of μ's
    estimate behind ``j_after``: ``"sampled"``, ``"learned"``, ``"table"``, ...; ``None`` when
    ``j_source`` is not ``"prover"``), ``regret`` (cumulative, Δ_k = Σ_{j<k} (J* − J(c_j))
    over the contexts before each episode) and ``curve`` (``(tokens, J)`` points as in the
    paper's regret plots: tokens = prompt + thinking + the forced answer's mean tokens, made
    non-decreasing; the last point of a terminated trajectory is (prompt + response, J(final))).
    Tokens are counted with the model's tokenizer: ``episode_tokens`` is
    ``count(prefix + episode) - count(prefix)``. μ's sampling seeds are drawn from
    ``self.np_random``, so a seeded reset makes the whole trajectory reproducible.

    ## Arguments
    ``MRTMathEnv(config=None, render_mode=None, components=None, **kwargs)``: ``config`` is an
    :class:`~mrt_env.config.EnvConfig`; ``kwargs`` are its fields (they override ``config``),
    so ``gym.make("MRTMath-v0", token_budget=256, k=4)`` works. ``components`` shares
    already-built models between environments. ``reset(options=...)`` accepts
    ``{"problem": Problem | dict}``, ``{"index": int}`` or ``{"id": str}``.

    ## Version History
    * v0: Initial version.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> from mrt_env.prover.table import TableMetaProver
        >>> env = MRTMathEnv(problems=[{"id": "p", "problem": "1+1?", "answer": "2"}],
        ...                  lm=ScriptedLM(["2}"]), prover=TableMetaProver({}, default=0.5))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step("1+1=2.\n</think>\n\\boxed{2}")
        >>> terminated, info["outcome"], info["j_after"], info["j_source"]
        (True, 1.0, 0.5, 'prover')
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        components: Components | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.config = EnvConfig.from_kwargs(config, **kwargs)
        self.render_mode = render_mode
        fork_safe_threads()  # an AsyncVectorEnv worker forked after torch started threads
        self.core = StepCore(self.config, components or build_components(self.config))
        size = self.config.max_observation_chars
        self.observation_space = UnicodeText(size)
        self.action_space = UnicodeText(size)
        self._trajectory = TrajectoryState()
        self._exclusive = ExclusiveUse(type(self).__name__)

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """The segmenter's boundary strings: where the policy should stop an episode."""
        return tuple(self.core.components.segmenter.boundaries)

    @property
    def lm(self) -> LanguageModel:
        """The language model that counts tokens and answers for μ (reusable as a policy)."""
        return self.core.components.lm

    @property
    def timings(self) -> dict[str, float]:
        """Cumulative seconds in ``step``/``reset`` and in the model calls inside them."""
        return self.core.timings

    @property
    def problems(self) -> ProblemSource:
        """The env's problem set (after its filter); ``reset(options={"index": i})`` picks
        ``problems[i]``."""
        return self.core.components.source

    @property
    def problem(self) -> Problem | None:
        """The current problem (``None`` before the first reset)."""
        return self._trajectory.problem

    @property
    def trajectory(self) -> TrajectoryState:
        """The current trajectory's state (read it; do not modify it)."""
        return self._trajectory

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a trajectory on a problem drawn with ``self.np_random`` (or from ``options``).

        Returns:
            The prompt (observation) and info with ``problem_id``, ``j``, ``j_ci``, ``curve``.

        Raises:
            ConcurrentUseError: Another thread is inside ``step`` or ``reset`` of this env.
        """
        with self._exclusive("reset"):
            return self._reset(seed, options)

    def _reset(
        self, seed: int | None, options: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        start = time.perf_counter()
        options = self.core.check_options(options)  # before anything changes
        if seed is None and self._np_random is None:
            seed = self.config.seed
        super().reset(seed=seed)
        problem = self.core.choose_problem(self.np_random, options)
        pending = self.core.prepare_reset(problem, self.np_random)
        [result] = self.core.call_models([pending], phase="reset")
        self._trajectory, observation, info = self.core.finish_reset(pending, result)
        self.core.timings["reset_s"] += time.perf_counter() - start
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Append the episode ``action`` to the thinking; see the class docstring.

        Raises:
            ConcurrentUseError: Another thread is inside ``step`` or ``reset`` of this env.
        """
        with self._exclusive("step"):
            return self._step(action)

    def _step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        start = time.perf_counter()
        pending = self.core.prepare_step(self._trajectory, action, self.np_random)
        [result] = self.core.call_models([pending], phase="step")
        [outcome] = self.core.finish_steps([self._trajectory], [pending], [result])
        self.core.timings["step_s"] += time.perf_counter() - start
        return outcome

    def render(self) -> str | None:  # type: ignore[override]
        """The observation text when ``render_mode="ansi"``, else ``None``."""
        if self.render_mode != "ansi":
            return None
        return self._trajectory.prompt + self._trajectory.thinking
