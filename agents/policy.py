"""An LLM policy for MRTMath-v0: observation text in, next episode out.

The policy samples a trajectory's remaining text in one continuous generation call and hands
it to the env one episode at a time. That is exactly the distribution of stopping at every
boundary and continuing from the same context, but the backend keeps its KV cache for the whole
trajectory instead of re-encoding prompt + prefix at every env step. Episodes end where the
env's segmenter (the same object offline analysis and ``replay`` use) splits the thinking,
moved to the next token boundary, and where thinking ends (the final answer, capped, stays in
that last episode); an optional per-episode token cap is a safety net only. A continuation is
segmented on its own: when the policy continues a given prefix (MRT's cut trajectories), the
segmenter's paragraph counting starts at the continuation. When the env hands back an
observation the policy did not plan (a wrapper edited the text), the policy samples afresh
from that observation. When the model ends its output (EOS) without ending thinking, its last
episode is marked ``end="eos"``: send it as a :class:`mrt_env.spaces.FinalEpisode`, and the env
grades the response as it stands.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agents.config import PolicyConfig
from agents.types import EpisodeEnd, EpisodeSample
from mrt_env.lm.base import Completion, LanguageModel, SamplingParams
from mrt_env.templates import FULL_ANSWER_TOKENS


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


def _segment_starts(segmenter: Any, thinking: str, offsets: Sequence[int]) -> list[int]:
    """Token indices where the segmenter's episodes after the first begin (see
    :func:`_token_boundary_before` for a token that straddles a boundary)."""
    starts: list[int] = []
    char = 0
    for piece in list(segmenter.split(thinking))[:-1]:
        char += len(piece)
        token = _token_boundary_before(offsets, char, starts[-1] if starts else 0)
        if token < len(offsets) - 1 and (not starts or token > starts[-1]):
            starts.append(token)
    return starts


def _capped(
    spans: list[tuple[int, int, EpisodeEnd]], cap: int | None
) -> list[tuple[int, int, EpisodeEnd]]:
    """``spans`` with every span longer than the safety cap cut into ``cap``-token pieces."""
    if cap is None:
        return spans
    out: list[tuple[int, int, EpisodeEnd]] = []
    for start, end, reason in spans:
        while end - start > cap:
            out.append((start, start + cap, "episode_cap"))
            start += cap
        out.append((start, end, reason))
    return out


def split_continuation(
    lm: LanguageModel,
    completion: Completion,
    segmenter: Any,
    end_think: str,
    config: PolicyConfig,
    answer_tokens: int = FULL_ANSWER_TOKENS,
) -> list[EpisodeSample]:
    """Split one sampled continuation into episodes at the segmenter's boundaries.

    Args:
        lm: The model that sampled ``completion`` (for decoding).
        completion: The continuation of an observation.
        segmenter: The env's segmenter (``.split(thinking)``); its episode starts, moved to
            the next token boundary, end episodes.
        end_think: End-of-thinking marker; the episode containing it also holds up to
            ``config.max_answer_tokens`` (or ``answer_tokens``) tokens after it and is the last.
        config: The optional per-episode safety cap and the answer cap.
        answer_tokens: Answer cap used when ``config.max_answer_tokens`` is ``None``.

    Returns:
        The episodes in order; their token ids concatenate to a prefix of the completion's.
        The last one ends with ``"end_think"``, ``"eos"`` (the model stopped without ending
        thinking: the response is finished) or ``"length"`` (the sampling cap).

    Example:
        >>> from mrt_env.lm.testing import tiny_random_lm
        >>> from mrt_env.segmenters import MarkerSegmenter
        >>> lm = tiny_random_lm(0)
        >>> ids = tuple(lm.encode("a\\n\\nWait b</think>7"))
        >>> done = Completion("", ids, (0.0,) * len(ids), "eos")
        >>> seg = MarkerSegmenter(min_paragraphs=1)
        >>> [e.text for e in split_continuation(lm, done, seg, "</think>", PolicyConfig())]
        ['a', '\\n\\nWait b</think>7']
    """
    ids, logprobs = completion.token_ids, completion.logprobs
    text, offsets = token_offsets(lm, ids)
    think_at = text.find(end_think) if end_think else -1
    thinking = text if think_at < 0 else text[:think_at]
    starts = _segment_starts(segmenter, thinking, offsets) if thinking else []
    last: EpisodeEnd = "eos" if completion.finish_reason == "eos" else "length"
    stop = len(ids)
    if think_at >= 0:
        cap = config.max_answer_tokens or answer_tokens
        marker_end = _first_token_at_or_after(offsets, think_at + len(end_think), 0)
        stop, last = min(len(ids), marker_end + cap), "end_think"
        starts = [start for start in starts if start < stop]
    bounds = [0, *starts, stop]
    spans: list[tuple[int, int, EpisodeEnd]] = [
        (a, b, "boundary") for a, b in itertools.pairwise(bounds)
    ]
    spans[-1] = (spans[-1][0], spans[-1][1], last)
    return [
        EpisodeSample(text[offsets[a] : offsets[b]], ids[a:b], logprobs[a:b], reason)
        for a, b, reason in _capped(spans, config.max_episode_tokens)
    ]


class LLMPolicy:
    """Samples the next episode for a batch of observations from a :class:`LanguageModel`.

    Args:
        lm: Any ``mrt_env`` language model (transformers, vLLM, a test double).
        config: Sampling temperature and token caps; ``max_trajectory_tokens`` must be set
            (:meth:`for_env` sets it from the env's token budget).
        segmenter: The env's segmenter (``env.unwrapped.core.components.segmenter``), the same
            object ``replay`` and the offline analysis split with.
        end_think: The template's end-of-thinking marker.
        answer_tokens: Cap of the final answer when ``config.max_answer_tokens`` is ``None``
            (the template's natural-answer cap).

    Example:
        >>> from mrt_env.lm.testing import tiny_random_lm
        >>> from mrt_env.segmenters import MarkerSegmenter
        >>> policy = LLMPolicy(tiny_random_lm(0), PolicyConfig(max_trajectory_tokens=8),
        ...                    MarkerSegmenter())
        >>> [episode] = policy.act(["Problem: 1+1?\\n<think>\\n"], seeds=[0])[:1]
        >>> len(episode.token_ids) <= 8
        True
    """

    def __init__(
        self,
        lm: LanguageModel,
        config: PolicyConfig,
        segmenter: Any,
        end_think: str = "</think>",
        answer_tokens: int = FULL_ANSWER_TOKENS,
    ) -> None:
        if config.max_trajectory_tokens is None:
            raise ValueError(
                "PolicyConfig.max_trajectory_tokens is None: set it, or build the policy with "
                "LLMPolicy.for_env(lm, config, components, token_budget)"
            )
        if not callable(getattr(segmenter, "split", None)):
            raise TypeError(f"segmenter must have .split(text), got {segmenter!r}")
        self.lm = lm
        self.config = config
        self.segmenter = segmenter
        self.end_think = end_think
        self.answer_tokens = config.max_answer_tokens or answer_tokens
        self._plans: dict[Hashable, _Plan] = {}
        self.sampled_tokens = 0
        """Tokens generated by the backend so far (for throughput figures)."""

    @classmethod
    def for_env(
        cls, lm: LanguageModel, config: PolicyConfig, components: Any, token_budget: int
    ) -> LLMPolicy:
        """A policy for an env's components: its segmenter, end marker and answer cap, and a
        sampling cap of ``token_budget`` plus the answer cap unless ``config`` sets one.

        Example:
            >>> from mrt_env.config import EnvConfig, build_components
            >>> from mrt_env.lm.scripted import ScriptedLM
            >>> components = build_components(EnvConfig(lm=ScriptedLM(["x"]), prover="none"))
            >>> policy = LLMPolicy.for_env(components.lm, PolicyConfig(), components, 512)
            >>> policy.config.max_trajectory_tokens, policy.segmenter is components.segmenter
            (544, True)
        """
        caps = components.template.answer_caps(natural=config.max_answer_tokens)
        if config.max_trajectory_tokens is None:
            config = replace(config, max_trajectory_tokens=token_budget + caps.natural)
        end_think = components.template.end_think
        return cls(lm, config, components.segmenter, end_think, caps.natural)

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
        if not plan.episodes:  # asked again after the final "eos" episode (the env ended it)
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
            cap = self.config.max_trajectory_tokens
            assert cap is not None  # checked in __init__
            budgets.append(max(1, cap - consumed))
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
            self.lm, completion, self.segmenter, self.end_think, self.config, self.answer_tokens
        )
        previous = self._plans.get(key)
        consumed = previous.consumed_tokens if previous is not None else 0
        ended = completion.finish_reason == "eos" and episodes[-1].end != "end_think"
        self._plans[key] = _Plan(observation, deque(episodes), consumed, ended)
        self.sampled_tokens += len(completion.token_ids)
