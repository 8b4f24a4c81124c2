"""Dynamics of the strategy twin: how J and token counts evolve with each kind of episode.

The twin (:class:`mrt_env.strategy.MRTStrategyEnv`) abstracts a reasoning trajectory into a
sequence of episode *kinds* ("attempt" = a new solution attempt, "recheck" = a verification
of the current answer). A dynamics model says, for each kind, how many tokens the episode
costs and what the meta-prover's success probability J is afterwards. Two models ship:

* :class:`ParametricDynamics`: a small documented latent-state model (the default).
* :class:`RecordedDynamics`: resamples transitions ``(J before, kind) -> (tokens, J after)``
  recorded from the real env on the tiny LM (``python -m mrt_env.strategy.record``).

Both are immutable; the per-trajectory state travels in a :class:`TwinState` and all
randomness comes from the ``numpy.random.Generator`` passed in.

Example:
    >>> import numpy as np
    >>> dyn = ParametricDynamics()
    >>> rng = np.random.default_rng(0)
    >>> state = dyn.initial(rng)
    >>> state, tokens = dyn.transition(state, "attempt", rng)
    >>> 0.0 <= state.j <= 1.0 and tokens >= 1
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

EpisodeKind = Literal["attempt", "recheck"]
EPISODE_KINDS: tuple[EpisodeKind, ...] = ("attempt", "recheck")

DEFAULT_RECORDING = Path(__file__).parents[1] / "assets" / "strategy" / "tiny-lm-base.json"
"""The shipped recording of J curves (tiny LM, held-out TinyMath)."""

RECORDING_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TwinState:
    """Per-trajectory state of a dynamics model.

    Attributes:
        j: The meta-prover's success probability J of the current context.
        latent: Model-specific hidden variables (the parametric model's candidate answer,
            confirmation count and difficulty); empty for the recorded model.
    """

    j: float
    latent: tuple[float, ...] = ()


@runtime_checkable
class StrategyDynamics(Protocol):
    """Draws a trajectory's first state and the outcome of each episode."""

    def initial(self, rng: np.random.Generator) -> TwinState: ...

    def transition(
        self, state: TwinState, kind: EpisodeKind, rng: np.random.Generator
    ) -> tuple[TwinState, int]: ...


_NONE, _RIGHT, _WRONG = 0.0, 1.0, 2.0


@dataclass(frozen=True)
class ParametricDynamics:
    """A latent-state model of attempts and re-checks.

    Hidden state: a candidate answer in the context (none / right / wrong), the number ``v``
    of consistent confirmations of it, and the problem's attempt success rate ``q`` drawn
    once per trajectory from ``Beta(difficulty_a, difficulty_b)``. J depends on the state:

    * no candidate: ``J = guess_j``;
    * right candidate: ``J = 1 - (1 - right_j) * confirm_decay**v`` (confirmations help, with
      diminishing returns: redundant re-checks earn little);
    * wrong candidate: ``J = wrong_j * confirm_decay**v`` (a confirmed error is worse).

    An *attempt* produces a right answer with probability ``q`` (agreeing with a right
    candidate adds a confirmation; otherwise it replaces the candidate with ``v = 0``). A
    *recheck* of a right candidate adds a confirmation; of a wrong candidate it catches the
    error with probability ``catch_rate`` (then fixes it with probability ``fix_rate``,
    else drops to no candidate) or, missing it, confirms the error; with no candidate it
    changes nothing. Token counts are uniform integers in the given inclusive ranges.

    Attributes:
        difficulty_a: Beta ``a`` of the per-trajectory attempt success rate ``q``.
        difficulty_b: Beta ``b`` of ``q``.
        guess_j: J with no candidate answer in the context.
        right_j: J with an unconfirmed right candidate.
        wrong_j: J with an unconfirmed wrong candidate.
        confirm_decay: Factor applied per confirmation (see the formulas above), in (0, 1).
        catch_rate: Probability that a re-check catches a wrong candidate.
        fix_rate: Probability that a caught error is fixed within the same re-check.
        attempt_tokens: Inclusive ``(low, high)`` token range of an attempt.
        recheck_tokens: Inclusive ``(low, high)`` token range of a re-check.
    """

    difficulty_a: float = 2.0
    difficulty_b: float = 2.0
    guess_j: float = 0.05
    right_j: float = 0.6
    wrong_j: float = 0.2
    confirm_decay: float = 0.5
    catch_rate: float = 0.5
    fix_rate: float = 0.5
    attempt_tokens: tuple[int, int] = (40, 80)
    recheck_tokens: tuple[int, int] = (15, 35)

    def __post_init__(self) -> None:
        for name in ("guess_j", "right_j", "wrong_j", "catch_rate", "fix_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < self.confirm_decay < 1.0:
            raise ValueError(f"confirm_decay must be in (0, 1), got {self.confirm_decay}")
        if self.difficulty_a <= 0 or self.difficulty_b <= 0:
            raise ValueError("difficulty_a and difficulty_b must be > 0")
        for name in ("attempt_tokens", "recheck_tokens"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must satisfy 1 <= low <= high, got {(low, high)}")

    def j_of(self, candidate: float, confirmations: float) -> float:
        """J for a latent state (``candidate`` 0 = none, 1 = right, 2 = wrong)."""
        if candidate == _RIGHT:
            return 1.0 - (1.0 - self.right_j) * self.confirm_decay**confirmations
        if candidate == _WRONG:
            return self.wrong_j * self.confirm_decay**confirmations
        return self.guess_j

    def initial(self, rng: np.random.Generator) -> TwinState:
        """A fresh trajectory: no candidate, ``q`` drawn from the difficulty prior."""
        q = float(rng.beta(self.difficulty_a, self.difficulty_b))
        return TwinState(j=self.guess_j, latent=(_NONE, 0.0, q))

    def transition(
        self, state: TwinState, kind: EpisodeKind, rng: np.random.Generator
    ) -> tuple[TwinState, int]:
        """Apply one episode of ``kind``; returns the new state and the episode's tokens."""
        candidate, confirmations, q = state.latent
        if kind == "attempt":
            right = bool(rng.random() < q)
            if right and candidate == _RIGHT:
                confirmations += 1.0
            else:
                candidate, confirmations = (_RIGHT if right else _WRONG), 0.0
            low, high = self.attempt_tokens
        elif kind == "recheck":
            candidate, confirmations = self._recheck(candidate, confirmations, rng)
            low, high = self.recheck_tokens
        else:
            raise ValueError(f"unknown episode kind {kind!r}; known: {EPISODE_KINDS}")
        tokens = int(rng.integers(low, high + 1))
        j = self.j_of(candidate, confirmations)
        return TwinState(j=j, latent=(candidate, confirmations, q)), tokens

    def _recheck(
        self, candidate: float, confirmations: float, rng: np.random.Generator
    ) -> tuple[float, float]:
        if candidate == _RIGHT:
            return candidate, confirmations + 1.0
        if candidate == _WRONG:
            if rng.random() < self.catch_rate:
                return (_RIGHT if rng.random() < self.fix_rate else _NONE), 0.0
            return candidate, confirmations + 1.0
        return candidate, confirmations


@dataclass(frozen=True)
class RecordedEpisode:
    """One recorded episode of a real trajectory.

    Attributes:
        kind: ``"attempt"`` or ``"recheck"``.
        tokens: Episode tokens (the policy's tokenizer).
        j: J after the episode (meta-prover estimate).
    """

    kind: EpisodeKind
    tokens: int
    j: float


@dataclass(frozen=True)
class RecordedTrajectory:
    """One recorded trajectory: J of the empty thinking, then its episodes."""

    problem_id: str
    j0: float
    episodes: tuple[RecordedEpisode, ...]


@dataclass(frozen=True)
class Recording:
    """A file of recorded trajectories plus the settings that produced it."""

    trajectories: tuple[RecordedTrajectory, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the on-disk format)."""
        return {
            "format_version": RECORDING_FORMAT_VERSION,
            "settings": dict(self.settings),
            "trajectories": [
                {
                    "problem_id": t.problem_id,
                    "j0": t.j0,
                    "episodes": [[e.kind, e.tokens, e.j] for e in t.episodes],
                }
                for t in self.trajectories
            ],
        }

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """Read a recording written by ``python -m mrt_env.strategy.record``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no J-curve recording at {path}; record one with "
                "`python -m mrt_env.strategy.record --out PATH` or use dynamics='parametric'"
            )
        data = json.loads(path.read_text())
        if data.get("format_version") != RECORDING_FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported format_version {data.get('format_version')}")
        trajectories = []
        for i, raw in enumerate(data["trajectories"]):
            episodes = []
            for kind, tokens, j in raw["episodes"]:
                if kind not in EPISODE_KINDS or not 0.0 <= j <= 1.0 or tokens < 0:
                    raise ValueError(f"{path}: bad episode {[kind, tokens, j]} in trajectory {i}")
                episodes.append(RecordedEpisode(kind=kind, tokens=int(tokens), j=float(j)))
            trajectories.append(
                RecordedTrajectory(str(raw["problem_id"]), float(raw["j0"]), tuple(episodes))
            )
        if not trajectories:
            raise ValueError(f"{path}: the recording holds no trajectories")
        return cls(trajectories=tuple(trajectories), settings=data.get("settings", {}))


class RecordedDynamics:
    """Resamples recorded transitions, binned by J before the episode.

    ``initial`` draws J of the empty thinking from the recorded ones. ``transition(state,
    kind)`` draws uniformly among the recorded episodes of that kind whose J before lies in
    the same of ``num_bins`` equal-width bins as ``state.j`` (the nearest non-empty bin when
    that one is empty; the other kind when a kind was never recorded), and returns its
    tokens and J after.

    Args:
        recording: The recorded trajectories (see :class:`Recording`).
        num_bins: Number of J bins over [0, 1].

    Example:
        >>> import numpy as np
        >>> rec = Recording((RecordedTrajectory("p", 0.0, (RecordedEpisode("attempt", 9, 0.5),)),))
        >>> dyn = RecordedDynamics(rec)
        >>> dyn.transition(dyn.initial(np.random.default_rng(0)), "recheck",
        ...                np.random.default_rng(0))
        (TwinState(j=0.5, latent=()), 9)
    """

    def __init__(self, recording: Recording, num_bins: int = 5) -> None:
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        self.num_bins = num_bins
        self.initial_j = np.array([t.j0 for t in recording.trajectories], dtype=np.float64)
        table: dict[EpisodeKind, list[list[tuple[int, float]]]] = {
            kind: [[] for _ in range(num_bins)] for kind in EPISODE_KINDS
        }
        for trajectory in recording.trajectories:
            j_before = trajectory.j0
            for episode in trajectory.episodes:
                table[episode.kind][self._bin(j_before)].append((episode.tokens, episode.j))
                j_before = episode.j
        if not any(any(bins) for bins in table.values()):
            raise ValueError("the recording holds no episodes")
        self._table = table

    def _bin(self, j: float) -> int:
        return min(int(j * self.num_bins), self.num_bins - 1)

    def _candidates(self, kind: EpisodeKind, j: float) -> list[tuple[int, float]]:
        kinds: Sequence[EpisodeKind] = (kind, *(k for k in EPISODE_KINDS if k != kind))
        home = self._bin(j)
        for k in kinds:
            bins = self._table[k]
            for distance in range(self.num_bins):
                for b in (home - distance, home + distance):
                    if 0 <= b < self.num_bins and bins[b]:
                        return bins[b]
        raise AssertionError("unreachable: the table holds at least one episode")

    def initial(self, rng: np.random.Generator) -> TwinState:
        """J of the empty thinking, drawn from the recorded trajectories."""
        return TwinState(j=float(self.initial_j[rng.integers(len(self.initial_j))]))

    def transition(
        self, state: TwinState, kind: EpisodeKind, rng: np.random.Generator
    ) -> tuple[TwinState, int]:
        """Draw a recorded episode of ``kind`` starting near ``state.j``."""
        if kind not in EPISODE_KINDS:
            raise ValueError(f"unknown episode kind {kind!r}; known: {EPISODE_KINDS}")
        candidates = self._candidates(kind, state.j)
        tokens, j = candidates[int(rng.integers(len(candidates)))]
        return TwinState(j=j), max(int(tokens), 1)
