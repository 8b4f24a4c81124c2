"""The language-model protocol every backend implements (transformers, vLLM, test doubles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample continuations.

    Attributes:
        max_new_tokens: Hard cap on generated tokens per sample.
        temperature: Softmax temperature; ``0`` means greedy decoding.
        top_p: Nucleus sampling mass (``1.0`` disables it).
        stop: Stop strings. Generation of a sample ends when its generated text contains one of
            them *starting at character offset >= 1* (a match at offset 0 is ignored, so an
            episode may begin with the boundary that ended the previous one). The returned text
            excludes the stop string; ``Completion.stop_string`` names it.
        n: Samples per prompt.
    """

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    n: int = 1

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if isinstance(self.stop, str):
            raise TypeError(f"stop must be a tuple of str, not a str: use ({self.stop!r},)")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty str, got {self.stop!r}")


def find_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """The earliest stop string in ``text`` starting at character offset >= 1, if any.

    Ties at one offset go to the longest stop string.

    Example:
        >>> find_stop("Wait, 1. Wait", ["Wait"])
        (9, 'Wait')
    """
    best: tuple[int, str] | None = None
    for stop in stops:
        offset = text.find(stop, 1)
        if offset >= 0 and (
            best is None or offset < best[0] or (offset == best[0] and len(stop) > len(best[1]))
        ):
            best = (offset, stop)
    return best


def resolve_seeds(prompts: Sequence[str], seeds: Sequence[int] | None, rng: Any) -> list[int]:
    """One seed per prompt: ``seeds`` checked against ``prompts``, or drawn from ``rng`` (a
    ``numpy.random.Generator``) when ``None``; every backend's ``generate`` starts with it.

    Example:
        >>> resolve_seeds(["a", "b"], [3, 4], rng=None)
        [3, 4]
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of str, not a single str")
    if seeds is None:
        return [int(s) for s in rng.integers(0, 2**63 - 1, size=len(prompts))]
    if len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
    return [int(s) for s in seeds]


@dataclass(frozen=True)
class Completion:
    """One sampled continuation.

    Attributes:
        text: Generated text (stop string excluded).
        token_ids: Generated token ids that produced ``text`` (stop-string tokens excluded
            where they can be separated; see the backend's docs).
        logprobs: Log-probability of each token in ``token_ids`` under the sampling
            distribution's underlying model (temperature 1, no top-p), same length.
        finish_reason: ``"stop"`` (a stop string), ``"eos"`` (end-of-sequence token) or
            ``"length"`` (``max_new_tokens`` reached).
        stop_string: The stop string that ended generation, if any.
    """

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: FinishReason
    stop_string: str | None = None


@runtime_checkable
class LanguageModel(Protocol):
    """A causal LM that can count tokens and sample batched continuations.

    ``generate(prompts, params, seeds)`` returns, for each prompt, ``params.n`` completions.
    ``seeds[i]`` (when given) fully determines the samples of prompt ``i`` regardless of what
    else is in the batch, so results do not depend on batch composition.
    """

    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]: ...
