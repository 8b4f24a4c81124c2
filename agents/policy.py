"""An LLM policy for MRTMath-v0: observation text in, next episode out.

The policy samples a trajectory's remaining text in one continuous generation call and hands
it to the env one episode at a time. That is exactly the distribution of stopping at every
boundary and continuing from the same context, but the backend keeps its KV cache for the whole
trajectory instead of re-encoding prompt + prefix at every env step. An episode ends where a
boundary string begins (the boundary opens the next episode, as in the segmenters' lossless
split), where thinking ends (the final answer, capped, stays in that last episode), or at the
per-episode token cap. When the env hands back an observation the policy did not plan (a
wrapper edited the text), the policy samples afresh from that observation. When the model ended
its output (EOS) without ending thinking, later episodes are empty (``end="eos"``): the model
has nothing more to say, and the env truncates the trajectory at its episode cap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from agents.config import PolicyConfig
from agents.types import EpisodeEnd, EpisodeSample
from mrt_env.lm.base import Completion, LanguageModel, SamplingParams


@dataclass
class _Plan:
    """Episodes sampled ahead for one trajectory."""

    expected_observation: str
    episodes: deque[EpisodeSample] = field(default_factory=deque)
    consumed_tokens: int = 0
    ended: bool = False


def token_offsets(lm: LanguageModel, token_ids: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded text of ``token_ids`` and each token's start offset in it.

    Returns:
        ``(text, offsets)`` with ``len(offsets) == len(token_ids) + 1`` and
        ``offsets[-1] == len(text)``; ``text[offsets[i]:offsets[j]]`` is the text of tokens
        ``i..j-1``. Per-token decoding is used when it concatenates to the whole decode;
        otherwise (multi-byte characters split across tokens) prefix decoding.
    """
    text = lm.decode(token_ids)
    pieces = [lm.decode([token]) for token in token_ids]
    if "".join(pieces) == text:
        offsets = [0]
        for piece in pieces:
            offsets.append(offsets[-1] + len(piece))
        return text, offsets
    offsets = [len(lm.decode(token_ids[:i])) for i in range(len(token_ids))]
    return text, [*offsets, len(text)]


def _first_token_at_or_after(offsets: Sequence[int], char: int, start: int) -> int:
    """Smallest token index ``t > start`` whose start offset is ``>= char`` (or the end)."""
    for index in range(start + 1, len(offsets) - 1):
        if offsets[index] >= char:
            return index
    return len(offsets) - 1


def _token_boundary_before(offsets: Sequence[int], char: int, start: int) -> int:
    """The token index at which an episode ending before character ``char`` ends.

    That is the token holding ``char`` (or the first token at or after it). A BPE token that
    merges the text before a boundary with the boundary's start (``" \\n"`` before
    ``"\\n\\nWait"``) goes to the next episode, so an episode never holds part of the boundary
    and the next one starts with all of it; only a first token of the episode stays in it.
    """
    after = _first_token_at_or_after(offsets, char, start)
    if offsets[after] > char and after - 1 > start:
        return after - 1
    return after


def _next_boundary(text: str, stops: Sequence[str], begin: int, limit: int) -> int | None:
    """Earliest start ``>= begin`` (and ``< limit``) of any stop string, or ``None``."""
    found = [text.find(stop, begin, limit + len(stop)) for stop in stops if stop]
    found = [position for position in found if 0 <= position < limit]
    return min(found) if found else None


def split_continuation(
    lm: LanguageModel,
    completion: Completion,
    stops: Sequence[str],
    end_think: str,
    config: PolicyConfig,
) -> list[EpisodeSample]:
    """Split one sampled continuation into episodes at token boundaries.

    Args:
        lm: The model that sampled ``completion`` (for decoding).
        completion: The continuation of an observation.
        stops: Boundary strings; a match at offset >= 1 of an episode ends it before the match.
        end_think: End-of-thinking marker; the episode containing it also holds up to
            ``config.max_answer_tokens`` tokens after it and is the last one.
        config: Per-episode and answer caps.

    Returns:
        The episodes in order; their token ids concatenate to a prefix of the completion's.

    Example:
        >>> from mrt_env.lm.testing import tiny_random_lm
        >>> lm = tiny_random_lm(0)
        >>> ids = tuple(lm.encode("a\\n\\nWait b</think>7"))
        >>> done = Completion("", ids, (0.0,) * len(ids), "eos")
        >>> [e.text for e in split_continuation(lm, done, ["\\n\\nWait"], "</think>",
        ...                                     PolicyConfig())]
        ['a', '\\n\\nWait b</think>7']
    """
    ids, logprobs = completion.token_ids, completion.logprobs
    text, offsets = token_offsets(lm, ids)
    think_at = text.find(end_think) if end_think else -1
    thinking_end = think_at if think_at >= 0 else len(text)
    episodes: list[EpisodeSample] = []
    start = 0
    while start < len(ids):
        cap_end = min(start + config.max_episode_tokens, len(ids))
        begin = offsets[start]
        # a boundary that starts inside the episode's first token is the one that opened it
        boundary = _next_boundary(text, stops, max(begin + 1, offsets[start + 1]), thinking_end)
        end: int
        reason: EpisodeEnd
        if boundary is not None and _token_boundary_before(offsets, boundary, start) <= cap_end:
            end, reason = _token_boundary_before(offsets, boundary, start), "boundary"
        elif think_at >= 0 and offsets[cap_end] > think_at:
            marker_end = _first_token_at_or_after(offsets, think_at + len(end_think), start)
            end, reason = min(len(ids), marker_end + config.max_answer_tokens), "end_think"
        elif cap_end < len(ids):
            end, reason = cap_end, "episode_cap"
        else:
            end, reason = len(ids), "length"
        episodes.append(
            EpisodeSample(
                text[offsets[start] : offsets[end]], ids[start:end], logprobs[start:end], reason
            )
        )
        if reason == "end_think":
            break
        start = end
    return episodes


class LLMPolicy:
    """Samples the next episode for a batch of observations from a :class:`LanguageModel`.

    Args:
        lm: Any ``mrt_env`` language model (transformers, vLLM, a test double).
        config: Sampling temperature and token caps.
        stop_strings: The segmenter's boundary strings (``env.unwrapped.stop_strings``).
        end_think: The template's end-of-thinking marker.

    Example:
        >>> from mrt_env.lm.testing import tiny_random_lm
        >>> policy = LLMPolicy(tiny_random_lm(0), PolicyConfig(max_trajectory_tokens=8),
        ...                    stop_strings=["\\n\\nWait"])
        >>> [episode] = policy.act(["Problem: 1+1?\\n<think>\\n"], seeds=[0])[:1]
        >>> len(episode.token_ids) <= 8
        True
    """

    def __init__(
        self,
        lm: LanguageModel,
        config: PolicyConfig,
        stop_strings: Sequence[str] = (),
        end_think: str = "</think>",
    ) -> None:
        self.lm = lm
        self.config = config
        self.stop_strings = tuple(stop_strings)
        self.end_think = end_think
        self._plans: dict[Hashable, _Plan] = {}
        self.sampled_tokens = 0
        """Tokens generated by the backend so far (for throughput figures)."""

    def reset(self, keys: Sequence[Hashable] | None = None) -> None:
        """Forget the episodes sampled ahead for ``keys`` (all when ``None``).

        Call it when a trajectory ends (its key may then be reused) and after a weight update.
        """
        if keys is None:
            self._plans.clear()
            return
        for key in keys:
            self._plans.pop(key, None)

    def act(
        self,
        observations: Sequence[str],
        seeds: Sequence[int],
        keys: Sequence[Hashable] | None = None,
    ) -> list[EpisodeSample]:
        """The next episode for each observation.

        Args:
            observations: Env observations (prompt + thinking so far).
            seeds: One seed per observation; it determines a fresh sample from it.
            keys: Stable identity of each trajectory (defaults to the batch position); the
                episodes sampled ahead for a key are used while the observation matches.

        Returns:
            One :class:`EpisodeSample` per observation.
        """
        if len(seeds) != len(observations):
            raise ValueError(f"got {len(observations)} observations but {len(seeds)} seeds")
        row_keys = list(keys) if keys is not None else list(range(len(observations)))
        if len(row_keys) != len(observations):
            raise ValueError(f"got {len(observations)} observations but {len(row_keys)} keys")
        stale = [i for i, key in enumerate(row_keys) if not self._planned(key, observations[i])]
        if stale:
            self._sample(stale, observations, seeds, row_keys)
        return [self._pop(key) for key in row_keys]

    def _planned(self, key: Hashable, observation: str) -> bool:
        plan = self._plans.get(key)
        usable = plan is not None and (bool(plan.episodes) or plan.ended)
        return bool(usable and plan is not None and plan.expected_observation == observation)

    def _pop(self, key: Hashable) -> EpisodeSample:
        plan = self._plans[key]
        if not plan.episodes:  # the model ended its output (EOS) without ending thinking
            return EpisodeSample("", (), (), "eos")
        episode = plan.episodes.popleft()
        plan.expected_observation += episode.text
        plan.consumed_tokens += len(episode.token_ids)
        return episode

    def _sample(
        self,
        rows: Sequence[int],
        observations: Sequence[str],
        seeds: Sequence[int],
        keys: Sequence[Hashable],
    ) -> None:
        """One batched generation call for the rows without a usable plan."""
        budgets = []
        for row in rows:
            previous = self._plans.get(keys[row])
            consumed = previous.consumed_tokens if previous is not None else 0
            budgets.append(max(1, self.config.max_trajectory_tokens - consumed))
        # Rows are grouped by remaining budget so every call uses one SamplingParams.
        for budget in sorted(set(budgets)):
            batch = [row for row, b in zip(rows, budgets, strict=True) if b == budget]
            params = SamplingParams(
                max_new_tokens=budget,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
            )
            outputs = self.lm.generate(
                [observations[row] for row in batch], params, [seeds[row] for row in batch]
            )
            for row, [completion] in zip(batch, outputs, strict=True):
                self._store(keys[row], observations[row], completion)

    def _store(self, key: Hashable, observation: str, completion: Completion) -> None:
        episodes = split_continuation(
            self.lm, completion, self.stop_strings, self.end_think, self.config
        )
        if not episodes:
            episodes = [EpisodeSample("", (), (), "length")]
        previous = self._plans.get(key)
        consumed = previous.consumed_tokens if previous is not None else 0
        ended = completion.finish_reason == "eos" and episodes[-1].end != "end_think"
        self._plans[key] = _Plan(observation, deque(episodes), consumed, ended)
        self.sampled_tokens += len(completion.token_ids)
