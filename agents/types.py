"""Small typed containers for sampled episodes and collected trajectories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EpisodeEnd = Literal["boundary", "end_think", "episode_cap", "length", "eos"]
"""Why an episode ended: the segmenter opened the next one, thinking ended (the episode holds
the final answer), the per-episode safety cap was reached, the trajectory's sampling cap was
reached, or the model ended its output (EOS) without ending thinking (the response's last
episode; the env grades the response as it stands)."""


@dataclass(frozen=True)
class EpisodeSample:
    """One sampled episode (the action of one env step).

    Attributes:
        text: The episode text (decoded ``token_ids``).
        token_ids: Sampled token ids of this episode.
        logprobs: Log-probability of each token under the model at temperature 1.
        end: Why the episode ended.
    """

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    end: EpisodeEnd


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode of a collected trajectory with what the env said about it.

    Attributes:
        token_start: Index of the episode's first token in the trajectory's response ids.
        token_end: One past its last token.
        text: The episode text.
        reward: The env's reward for this step.
        j_before: ``J(c_j)`` (``None`` when the env has no meta-prover).
        j_after: ``J(c_{j+1})``.
        episode_tokens: Tokens the env counted for this episode.
        trainable: Whether this episode's tokens receive gradient (prefix episodes replayed
            from another trajectory do not).
        end: Why the policy ended the episode (``None`` for replayed prefix episodes).
        verification: The env's verification status at the final step (``None`` before).
    """

    token_start: int
    token_end: int
    text: str
    reward: float
    j_before: float | None
    j_after: float | None
    episode_tokens: int
    trainable: bool = True
    end: EpisodeEnd | None = None
    verification: str | None = None

    @property
    def progress(self) -> float | None:
        """``j_after - j_before`` when both are known."""
        if self.j_before is None or self.j_after is None:
            return None
        return self.j_after - self.j_before


@dataclass
class Trajectory:
    """One problem from reset to done.

    Attributes:
        problem_id: The problem's id.
        group: Index of the group (problem slot) within the rollout batch.
        prompt: The rendered prompt (the observation at reset).
        prompt_ids: Token ids of ``prompt`` as the policy conditioned on them.
        response_ids: Concatenated token ids of all episodes.
        episodes: Per-episode records, in order.
        outcome: 0/1 verified outcome of the final (or forced) answer.
        terminated: The policy ended thinking (``False``: truncated by a budget).
        total_tokens: Response tokens the env counted.
        regret: The env's cumulative regret at the end.
        j_curve: ``(tokens, J)`` points read during the trajectory (for normalized regret).
        j_source: Where J after the last episode came from (the env's ``info["j_source"]``:
            ``"prover"``, ``"outcome"``, or ``None`` without a meta-prover).
    """

    problem_id: str
    group: int
    prompt: str
    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    episodes: list[EpisodeRecord] = field(default_factory=list)
    outcome: float = 0.0
    terminated: bool = False
    total_tokens: int = 0
    regret: float = 0.0
    j_curve: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    j_source: str | None = None

    @property
    def response_text(self) -> str:
        """The whole response (concatenated episodes)."""
        return "".join(episode.text for episode in self.episodes)

    @property
    def env_return(self) -> float:
        """Sum of the env's step rewards over the trajectory."""
        return float(sum(episode.reward for episode in self.episodes))

    @property
    def j_values(self) -> list[float | None]:
        """``J(c_0), J(c_1), ..., J(c_k)``: before the first episode, then after each."""
        if not self.episodes:
            return []
        return [self.episodes[0].j_before, *(episode.j_after for episode in self.episodes)]
