"""Helpers of :mod:`mrt_env.lm.openai_compat`: seeds, specs and the parsing of server answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from mrt_env.lm.base import FinishReason

SERVER_SEED_BOUND = 2**31 - 1
"""Seeds sent to a server lie in ``[0, SERVER_SEED_BOUND)`` (every server accepts int32)."""


def derive_seed(seed: int, *path: int) -> int:
    """A server seed derived from a prompt seed and a path (sample index, resume round).

    Example:
        >>> derive_seed(7, 0) == derive_seed(7, 0) != derive_seed(7, 1)
        True
    """
    sequence = np.random.SeedSequence([seed % 2**64, *path])
    return int(sequence.generate_state(1, dtype=np.uint64)[0]) % SERVER_SEED_BOUND


def parse_openai_spec(spec: str) -> tuple[str, str | None]:
    """``(base_url, model)`` of an ``lm`` spec ``"openai:URL"`` or ``"openai:URL#MODEL"``.

    The model name is whatever follows ``#`` (``None``: ask the server's ``/models``).

    Example:
        >>> parse_openai_spec("openai:http://127.0.0.1:8000/v1#Qwen/Qwen3-0.6B")
        ('http://127.0.0.1:8000/v1', 'Qwen/Qwen3-0.6B')
    """
    if not spec.startswith("openai:"):
        raise ValueError(f"an OpenAI-compatible spec starts with 'openai:', got {spec!r}")
    url, _, model = spec[len("openai:") :].partition("#")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected 'openai:http(s)://HOST:PORT/v1[#MODEL]', got {spec!r}")
    return url.rstrip("/"), model or None


@dataclass(frozen=True)
class ServerSample:
    """One server answer, already normalised to the protocol's stop semantics."""

    text: str
    finish: FinishReason
    stop: str | None
    ids: tuple[int, ...] | None
    logprobs: tuple[float, ...] | None
    resume_with: str | None = None  # a stop matched at offset 0: resume from prompt + this


class CharTokenizer:
    """A one-token-per-character tokenizer (a double for doctests and tests)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int], **kwargs: Any) -> str:
        return "".join(chr(i) for i in ids)


def kept_tokens(
    decode: Any, ids: tuple[int, ...], logprobs: tuple[float, ...], text: str
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The longest start of ``ids`` whose text is a prefix of ``text`` (drops stop tokens)."""
    count = len(ids)
    while count and not text.startswith(decode(ids[:count])):
        count -= 1
    return ids[:count], logprobs[:count]


def reported_stop(choice: Any) -> str | None:
    """The stop string a server says ended ``choice`` (vLLM ``stop_reason``, SGLang
    ``matched_stop``), if any."""
    extra = getattr(choice, "model_extra", None) or {}
    for key in ("stop_reason", "matched_stop"):
        value = extra.get(key)
        if isinstance(value, str):
            return value
    return None


def names_stops(choice: Any) -> bool:
    """Whether the server reports which stop ended a choice (even ``None`` for EOS)."""
    extra = getattr(choice, "model_extra", None) or {}
    return "stop_reason" in extra or "matched_stop" in extra


FINISH_REASONS = ("stop", "length")
"""The ``finish_reason`` values of the completions API; any other (``abort``,
``content_filter``) is an error, never a silent end of sequence."""


def parse_choices(payload: Any, server: str, n: int) -> list[SimpleNamespace]:
    """The choices of a ``/completions`` answer, checked: each has a string ``text``, a known
    ``finish_reason`` and a distinct ``index`` below ``n``; at most ``n`` of them. Anything else
    raises ``ValueError`` naming ``server`` (a reply of the chat API says so).

    Returns:
        ``SimpleNamespace(index, text, finish_reason, logprobs, model_extra)`` per choice,
        sorted by index; ``model_extra`` holds vLLM's ``stop_reason`` / SGLang's
        ``matched_stop`` when present.

    Example:
        >>> [c.text for c in parse_choices({"choices": [{"text": "4}", "index": 0,
        ...     "finish_reason": "stop"}]}, "http://h/v1", 1)]
        ['4}']
        >>> parse_choices({"choices": [{"index": 0, "message": {"content": "4"},
        ...     "finish_reason": "stop"}]}, "http://h/v1", 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: server at http://h/v1 answered /completions with a chat reply ...
    """
    where = f"server at {server}"
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"{where} returned no choices for a completion: {str(payload)[:200]}")
    if len(choices) > n:
        raise ValueError(f"{where} returned {len(choices)} choices for a request of n={n}")
    parsed = [_choice(choice, position, where) for position, choice in enumerate(choices)]
    indices = [c.index for c in parsed]
    if len(set(indices)) != len(indices) or not all(0 <= i < n for i in indices):
        raise ValueError(f"{where} returned choice indices {indices} for a request of n={n}")
    return sorted(parsed, key=lambda c: c.index)


def _choice(choice: Any, position: int, where: str) -> SimpleNamespace:
    if not isinstance(choice, dict):
        raise ValueError(f"{where} returned a choice that is not an object: {str(choice)[:100]}")
    if "text" not in choice and "message" in choice:
        raise ValueError(
            f"{where} answered /completions with a chat reply (choices[].message): serve the "
            "completions API at this URL"
        )
    text = choice.get("text")
    if not isinstance(text, str):
        raise ValueError(
            f"{where} returned a choice whose text is {type(text).__name__}, not a string"
        )
    finish = choice.get("finish_reason")
    if finish not in FINISH_REASONS:
        raise ValueError(
            f"{where} ended a sample with finish_reason={finish!r}; only {FINISH_REASONS} say how "
            "a sample ended (an aborted or filtered sample is no answer)"
        )
    index = choice.get("index", position)
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f"{where} returned a choice index {index!r}")
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict):
        logprobs = SimpleNamespace(
            tokens=logprobs.get("tokens"), token_logprobs=logprobs.get("token_logprobs")
        )
    extra = {key: choice[key] for key in ("stop_reason", "matched_stop") if key in choice}
    return SimpleNamespace(
        index=index, text=text, finish_reason=finish, logprobs=logprobs, model_extra=extra
    )


def load_tokenizer(path_or_id: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id, local_files_only=True)
