"""MRTStrategy-v0: a numeric twin of MRTMath-v0 that stable-baselines3 can train on.

The text env's observations and actions are strings, which SB3 cannot learn from. The twin keeps
what matters for test-time-compute strategy — how J and the token count move with each kind of
episode — and drops the text: the agent chooses *what kind* of episode comes next (or to stop
and answer) and sees a few statistics of the J curve so far. J dynamics come from a
:mod:`mrt_env.strategy.dynamics` model (parametric, or resampled from J curves recorded on the
real env with the classic tiny LM, ``tiny:classic``). Rewards are computed by the same
:mod:`rewards` modules as the text env (outcome + α·progress − token cost), from a
:class:`rewards.StepContext` per step.

Example:
    >>> import gymnasium as gym
    >>> import mrt_env
    >>> env = gym.make("MRTStrategy-v0", token_budget=128)
    >>> observation, info = env.reset(seed=0)
    >>> observation, reward, terminated, truncated, info = env.step(STOP)
    >>> terminated, info["episode_kind"]
    (True, 'answer')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mrt_env.strategy.dynamics import (
    DEFAULT_RECORDING,
    EpisodeKind,
    ParametricDynamics,
    RecordedDynamics,
    Recording,
    StrategyDynamics,
    TwinState,
)
from rewards.context import StepContext
from rewards.modules import LengthPenalty, OutcomeReward, ProgressBonus, WeightedSum

STOP, RECHECK, ATTEMPT = 0, 1, 2
"""Actions: stop thinking and answer; re-check the current answer; start a new attempt."""

ACTION_KINDS: dict[int, EpisodeKind] = {RECHECK: "recheck", ATTEMPT: "attempt"}

OBSERVATION_FIELDS: tuple[str, ...] = (
    "episode_fraction",
    "tokens_used",
    "j",
    "last_progress",
    "max_j",
    "mean_progress",
    "recheck_fraction",
    "initial_j",
)
"""Names of the observation vector's entries, in order (see :class:`MRTStrategyEnv`)."""


@dataclass(frozen=True)
class StrategyConfig:
    """Configuration of :class:`MRTStrategyEnv` (also accepted as ``gym.make`` kwargs).

    Attributes:
        token_budget: Thinking-token budget (the horizon); reaching it truncates the
            trajectory and the forced answer is graded.
        token_scale: Tokens that map to 1.0 in the ``tokens_used`` observation; ``None`` uses
            ``token_budget``. Keep the training value when evaluating at a longer budget
            (extrapolation) so the observation means the same thing.
        max_episodes: Episode cap (thinking episodes; the stop step is not counted).
        dynamics: ``"recorded"`` (resample the J curves of ``recording``, recorded on the
            tiny LM in MRTMath-v0) or ``"parametric"`` (:class:`ParametricDynamics`).
        recording: Path of the recorded J curves; ``None`` uses the shipped file.
        parametric: Parameters of the parametric model.
        alpha: Weight of the progress bonus (``0`` gives the outcome-only reward).
        token_cost: Reward subtracted per thinking token (``LengthPenalty``).
    """

    token_budget: int = 256
    token_scale: int | None = None
    max_episodes: int = 16
    dynamics: Literal["parametric", "recorded"] = "recorded"
    recording: str | None = None
    parametric: ParametricDynamics = field(default_factory=ParametricDynamics)
    alpha: float = 1.0
    token_cost: float = 0.001

    def __post_init__(self) -> None:
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {self.token_budget}")
        if self.token_scale is not None and self.token_scale < 1:
            raise ValueError(f"token_scale must be >= 1, got {self.token_scale}")
        if self.max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1, got {self.max_episodes}")
        if self.dynamics not in ("parametric", "recorded"):
            raise ValueError(f"dynamics must be 'parametric' or 'recorded', got {self.dynamics!r}")
        if self.token_cost < 0:
            raise ValueError(f"token_cost must be >= 0, got {self.token_cost}")

    @property
    def scale(self) -> int:
        """Tokens that map to 1.0 in the observation."""
        return self.token_scale if self.token_scale is not None else self.token_budget

    def build_dynamics(self) -> StrategyDynamics:
        """The dynamics model this config names."""
        if self.dynamics == "parametric":
            return self.parametric
        return RecordedDynamics(Recording.load(Path(self.recording or DEFAULT_RECORDING)))


class MRTStrategyEnv(gym.Env[np.ndarray, int]):
    """A numeric twin of MRTMath-v0: choose episode kinds, watch J, minimise regret.

    ## Observation
    ``Box(8,)`` float32, in :data:`OBSERVATION_FIELDS` order: episodes so far / max_episodes;
    thinking tokens used / ``token_scale`` (up to ``token_budget / token_scale``); current J;
    last progress (J after − J before the last episode, in [−1, 1]); max J so far; mean
    progress per episode; fraction of episodes that were re-checks; J of the empty thinking.

    ## Action
    ``Discrete(3)``: ``0`` (:data:`STOP`) ends thinking and answers from the current context;
    ``1`` (:data:`RECHECK`) spends an episode re-checking the current answer; ``2``
    (:data:`ATTEMPT`) spends an episode on a new solution attempt. Token cost and the J after
    an episode come from the dynamics model.

    ## Reward
    The :mod:`rewards` modules of the text env: ``OutcomeReward`` (1 when the final answer is
    right, at the terminal step), ``ProgressBonus(alpha)`` (α·(J after − J before)) and
    ``LengthPenalty(token_cost)``; per-term values in ``info["reward_terms"]``.

    ## Termination / Truncation
    ``terminated`` when the agent stops (the answer is graded: correct with probability J).
    ``truncated`` when the token budget or the episode cap is reached; the forced answer at
    that point is graded the same way. An episode that overruns the budget is cut at the
    budget, with J interpolated linearly along the cut episode.

    ## Info
    ``episode_index``, ``episode_kind``, ``episode_tokens``, ``total_tokens``, ``j_before``,
    ``j_after``, ``progress``, ``outcome`` (``None`` before the end), ``reward_terms``,
    ``regret`` (cumulative Σ_j (1 − J(c_j)) over the steps taken, J* = 1, exact J) and
    ``j_curve`` (``(tokens, J)`` points read after each episode).

    ## Arguments
    Either a :class:`StrategyConfig` as ``config`` or its fields as keyword arguments.

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium convention

    def __init__(self, config: StrategyConfig | None = None, **kwargs: Any) -> None:
        if config is not None and kwargs:
            raise TypeError("pass either config or keyword arguments, not both")
        self.config = config if config is not None else StrategyConfig(**kwargs)
        self.dynamics = self.config.build_dynamics()
        self.reward_module = WeightedSum(
            (
                OutcomeReward(),
                ProgressBonus(alpha=self.config.alpha),
                LengthPenalty(per_token=self.config.token_cost),
            )
        )
        high_tokens = self.config.token_budget / self.config.scale
        low = np.array([0, 0, 0, -1, 0, -1, 0, 0], dtype=np.float32)
        high = np.array([1, high_tokens, 1, 1, 1, 1, 1, 1], dtype=np.float32)
        self._box = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = self._box
        self.action_space = spaces.Discrete(3)  # type: ignore[assignment]
        self._state: TwinState | None = None
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a trajectory; the dynamics draw its first state from ``self.np_random``."""
        super().reset(seed=seed)
        self._state = self.dynamics.initial(self.np_random)
        self._j0 = self._state.j
        self._tokens = 0
        self._episodes = 0
        self._rechecks = 0
        self._progress_sum = 0.0
        self._last_progress = 0.0
        self._max_j = self._state.j
        self._regret = 0.0
        self._curve: list[tuple[int, float]] = []
        self._done = False
        return self._observation(), {"j": self._state.j, "total_tokens": 0, "regret": 0.0}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Take one episode of the chosen kind, or stop and answer."""
        if self._done or self._state is None:
            raise RuntimeError("the trajectory has ended; call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (stop), 1 (re-check) or 2 (attempt), got {action}")
        action = int(action)
        j_before = self._state.j
        self._regret += 1.0 - j_before
        if action == STOP:
            kind, tokens, terminated, truncated = "answer", 0, True, False
        else:
            kind = ACTION_KINDS[action]
            tokens = self._advance(ACTION_KINDS[action])
            terminated = False
            at_cap = self._episodes >= self.config.max_episodes
            truncated = self._tokens >= self.config.token_budget or at_cap
        j_after = self._state.j
        outcome = None
        if terminated or truncated:
            outcome = self._grade(j_after)
            self._done = True
        episode_index = self._episodes - (0 if action == STOP else 1)
        context = StepContext(
            problem="",
            gold="",
            prefix="",
            episode=kind,
            episode_index=episode_index,
            episode_tokens=tokens,
            total_tokens=self._tokens,
            terminal=outcome is not None,
            response=None if outcome is None else "",
            j_before=j_before,
            j_after=j_after,
            metadata={"verification": None if outcome is None else _status(outcome)},
        )
        terms = self.reward_module(context)
        info = {
            "episode_index": episode_index,
            "episode_kind": kind,
            "episode_tokens": tokens,
            "total_tokens": self._tokens,
            "j_before": j_before,
            "j_after": j_after,
            "progress": j_after - j_before,
            "outcome": outcome,
            "reward_terms": dict(terms.terms),
            "regret": self._regret,
            "j_curve": tuple(self._curve),
        }
        return self._observation(), terms.total, terminated, truncated, info

    def _advance(self, kind: EpisodeKind) -> int:
        """Apply one thinking episode; cut it at the budget; update the statistics."""
        assert self._state is not None
        j_before = self._state.j
        state, tokens = self.dynamics.transition(self._state, kind, self.np_random)
        remaining = self.config.token_budget - self._tokens
        if tokens > remaining:
            fraction = remaining / tokens
            state = TwinState(j=j_before + fraction * (state.j - j_before), latent=state.latent)
            tokens = remaining
        self._state = state
        self._tokens += tokens
        self._episodes += 1
        self._rechecks += kind == "recheck"
        self._last_progress = state.j - j_before
        self._progress_sum += self._last_progress
        self._max_j = max(self._max_j, state.j)
        self._curve.append((self._tokens, state.j))
        return tokens

    def _grade(self, j: float) -> float:
        """The final answer's outcome: correct with probability J (a forced answer's odds)."""
        return float(self.np_random.random() < j)

    def _observation(self) -> np.ndarray:
        assert self._state is not None
        episodes = max(self._episodes, 1)
        values = [
            self._episodes / self.config.max_episodes,
            self._tokens / self.config.scale,
            self._state.j,
            self._last_progress,
            self._max_j,
            self._progress_sum / episodes,
            self._rechecks / episodes,
            self._j0,
        ]
        observation = np.asarray(values, dtype=np.float32)
        return np.clip(observation, self._box.low, self._box.high)


def _status(outcome: float) -> str:
    """The verification status the outcome module reads for a graded twin answer."""
    return "correct" if outcome == 1.0 else "wrong"
