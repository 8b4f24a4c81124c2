"""Token sampling and stop-string helpers shared by the transformers backend (imports torch).

Sampling is inverse-CDF sampling from per-row uniforms drawn up front from one
``torch.Generator`` per sample, so a sample's tokens depend only on its own seed and logits,
never on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mrt_env.lm.base import FinishReason, find_stop

SAMPLING_BYTES_PER_VOCAB_ENTRY = 40
"""Bytes per row and vocabulary entry that :func:`sample_tokens` holds at once (float32
logits, log-probabilities, probabilities and sorted probabilities, a float64 CDF, int64 order)."""


def sample_seed(seed: int, sample_index: int) -> int:
    """The generator seed of sample ``sample_index`` of a prompt seeded with ``seed``."""
    sequence = np.random.SeedSequence([seed % 2**64, sample_index])
    return int(sequence.generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def draw_uniforms(seeds: Sequence[int], steps: int) -> torch.Tensor:
    """``[len(seeds), steps]`` float64 uniforms in [0, 1), row ``i`` from ``seeds[i]`` alone."""
    rows = [
        torch.rand(steps, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
        for s in seeds
    ]
    return torch.stack(rows) if rows else torch.zeros(0, steps, dtype=torch.float64)


def sample_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row and return it with its temperature-1 log-probability.

    Args:
        logits: ``[batch, vocab]`` next-token logits.
        uniforms: ``[batch]`` uniforms in [0, 1) (ignored when ``temperature == 0``).
        temperature: Softmax temperature; ``0`` picks the argmax.
        top_p: Nucleus mass; only the smallest set of most likely tokens whose mass reaches
            ``top_p`` can be drawn.

    Returns:
        ``(tokens, logprobs)``, both of shape ``[batch]``; logprobs are under the untempered,
        untruncated distribution ``log_softmax(logits)``.
    """
    logits = logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    if temperature == 0:
        tokens = logits.argmax(dim=-1)
    else:
        probs = torch.softmax(logits / temperature, dim=-1)
        order = None
        if top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            keep = (probs.cumsum(dim=-1) - probs) < top_p
            probs = probs * keep
        cdf = probs.double().cumsum(dim=-1)
        target = uniforms.to(cdf.device).unsqueeze(1) * cdf[:, -1:]
        choice = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
        tokens = (order.gather(1, choice) if order is not None else choice).squeeze(1)
    return tokens, logprobs.gather(1, tokens.unsqueeze(1)).squeeze(1)


@dataclass
class SampleState:
    """Decoding state of one sample: tokens so far and, once finished, why."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: FinishReason | None = None
    text: str | None = None
    stop: str | None = None


def check_stops(
    samples: list[SampleState],
    rows: Sequence[int],
    stops: Sequence[str],
    decode_many: Callable[[list[list[int]]], list[str]],
) -> None:
    """Finish the samples ``rows`` whose text holds a stop string at offset >= 1.

    Only the last few tokens of each sample are decoded each step; the whole text is decoded
    only when that window contains a stop string.
    """
    window = 4 * max(len(s) for s in stops) + 4
    active = [r for r in rows if samples[r].finish is None]
    texts = decode_many([samples[r].tokens[-window:] for r in active])
    candidates = [
        r for r, text in zip(active, texts, strict=True) if any(stop in text for stop in stops)
    ]
    if not candidates:
        return
    full = decode_many([samples[r].tokens for r in candidates])
    for row, text in zip(candidates, full, strict=True):
        found = find_stop(text, stops)
        if found is not None:
            cut_at_stop(samples[row], text, *found, decode_many)


def cut_at_stop(
    sample: SampleState,
    text: str,
    offset: int,
    stop: str,
    decode_many: Callable[[list[list[int]]], list[str]],
) -> None:
    """End ``sample`` at the stop string found at ``offset`` of its decoded ``text``.

    The text is cut exactly; the tokens kept are those whose text ends before the stop string.
    """
    kept = len(sample.tokens)
    while kept > 0 and len(decode_many([sample.tokens[:kept]])[0]) > offset:
        kept -= 1
    sample.tokens, sample.logprobs = sample.tokens[:kept], sample.logprobs[:kept]
    sample.text, sample.stop, sample.finish = text[:offset], stop, "stop"


@dataclass
class GenerationStats:
    """Work counters of an :class:`HFLanguageModel` (cumulative; call :meth:`reset`).

    Attributes:
        prefill_tokens: Prompt tokens run through the model (excluding padding and reused
            cached prefixes).
        prefill_padded_tokens: Prompt positions run through the model, padding included.
        reused_prefix_tokens: Prompt tokens whose keys/values came from the prefix cache.
        prefix_cache_hits: Distinct prompts that reused a cached prefix.
        prefill_calls: Forward passes spent on prefill.
        decode_steps: Forward passes spent on decoding (one per new token for the batch).
        forward_calls: All forward passes.
        generated_tokens: Tokens sampled, over all samples.
    """

    prefill_tokens: int = 0
    prefill_padded_tokens: int = 0
    reused_prefix_tokens: int = 0
    prefix_cache_hits: int = 0
    prefill_calls: int = 0
    decode_steps: int = 0
    forward_calls: int = 0
    generated_tokens: int = 0

    def reset(self) -> None:
        """Set every counter to zero."""
        for name in asdict(self):
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)
