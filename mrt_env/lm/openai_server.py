"""Helpers of :mod:`mrt_env.lm.openai_compat`: seeds, specs and the parsing of server answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def error_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("error")
        if detail:
            return str(detail)
    return str(getattr(error, "message", error))


def load_tokenizer(path_or_id: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id, local_files_only=True)
