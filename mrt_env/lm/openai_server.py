"""Helpers of :mod:`mrt_env.lm.openai_compat`: seeds, specs, the parsing of server answers,
their normalisation to the protocol's stop semantics (:func:`normalise`, :func:`join_resumed`)
and the checks that a server keeps ``max_tokens`` and samples (:func:`check_length`,
:class:`GreedyCheck`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from mrt_env.lm.base import Completion, FinishReason, SamplingParams, find_stop

SERVER_SEED_BOUND = 2**31 - 1
"""Seeds sent to a server lie in ``[0, SERVER_SEED_BOUND)`` (every server accepts int32)."""


TOKEN_SLACK = 8
"""Tokens a re-encoded answer may exceed ``max_tokens`` by (BPE may split a text differently
from the sampled tokens) before the server is said not to enforce ``max_tokens``."""

IDENTICAL_PROMPTS = 3
"""Prompts sampled more than once at ``temperature > 0`` whose samples must all be identical
before the client warns that the server ignores the temperature."""

MIN_CHECKED_TOKENS = 8
"""Samples shorter than this (in tokens) do not count for that check (they may agree by
chance)."""


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


def token_logprobs(choice: Any, server: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The token ids and log-probabilities a server returned with ``choice``; ``ValueError``
    naming ``server`` when it returned none, or no ids (``token_id:N`` tokens, vLLM's
    ``return_tokens_as_token_ids``)."""
    logprobs = getattr(choice, "logprobs", None)
    tokens = getattr(logprobs, "tokens", None)
    values = getattr(logprobs, "token_logprobs", None)
    if not tokens or values is None:
        raise ValueError(
            f"server at {server} returned no token log-probabilities; "
            "this server cannot give them (use logprobs=False)"
        )
    if not all(str(t).startswith("token_id:") for t in tokens):
        raise ValueError(
            f"server at {server} returned log-probabilities without token ids: "
            "pass extra_body={'return_tokens_as_token_ids': True} (vLLM)"
        )
    ids = tuple(int(str(t).removeprefix("token_id:")) for t in tokens)
    return ids, tuple(float(v) for v in values)


def normalise(
    choice: Any,
    stops: Sequence[str],
    sent_stops: bool,
    ids: tuple[int, ...] | None = None,
    logprobs: tuple[float, ...] | None = None,
) -> ServerSample:
    """``choice`` under the protocol's stop semantics: cut at the earliest of ``stops`` at
    offset >= 1 in its text (:func:`~mrt_env.lm.base.find_stop`), ended at a stop the server
    named or, when the stops were sent (``sent_stops``), at one at offset 0 (``resume_with``:
    the protocol ignores it); else ended by ``"length"`` or ``"eos"``.

    Example:
        >>> kept = SimpleNamespace(text="4.\\n\\nWait", finish_reason="stop", model_extra={})
        >>> sample = normalise(kept, ["\\n\\nWait"], sent_stops=True)  # the server kept the stop
        >>> sample.text, sample.finish, sample.stop
        ('4.', 'stop', '\\n\\nWait')
        >>> named = {"stop_reason": "\\n\\nWait"}  # vLLM trims the stop and names it
        >>> at_0 = SimpleNamespace(text="", finish_reason="stop", model_extra=named)
        >>> normalise(at_0, ["\\n\\nWait"], sent_stops=True).resume_with  # a stop at offset 0
        '\\n\\nWait'
    """
    text = str(choice.text or "")
    found = find_stop(text, stops)
    if found is not None:
        return ServerSample(text[: found[0]], "stop", found[1], ids, logprobs)
    if choice.finish_reason == "length":
        return ServerSample(text, "length", None, ids, logprobs)
    reported = reported_stop(choice)
    at_start = next((s for s in stops if text == s), None)
    if sent_stops and (at_start or (reported and not text)):
        return ServerSample(text, "stop", at_start or reported, ids, logprobs, at_start or reported)
    if reported in stops:
        return ServerSample(text, "stop", reported, ids, logprobs)
    return ServerSample(text, "eos", None, ids, logprobs)


def join_resumed(sample: ServerSample, rest: ServerSample, stops: Sequence[str]) -> ServerSample:
    """A sample that hit a stop at offset 0 (``sample.resume_with``) joined with ``rest``, its
    continuation from ``prompt + sample.resume_with`` (normalised), cut at its first stop."""
    stop = sample.resume_with or ""
    text, finish, stop_string = stop + rest.text, rest.finish, rest.stop
    if rest.resume_with:  # a stop at the continuation's offset 0 is one at len(stop) >= 1
        text, finish, stop_string = stop, "stop", rest.resume_with
    found = find_stop(text, stops)
    if found is not None:
        text, finish, stop_string = text[: found[0]], "stop", found[1]
    if sample.ids is None or rest.ids is None or sample.logprobs is None:
        return ServerSample(text, finish, stop_string, None, None)
    ids, logprobs = sample.ids + rest.ids, sample.logprobs + (rest.logprobs or ())
    return ServerSample(text, finish, stop_string, ids, logprobs)


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


def check_length(
    text: str, max_tokens: int, count_tokens: Callable[[str], int], server: str
) -> None:
    """A text of more than ``max_tokens`` tokens (beyond :data:`TOKEN_SLACK`) is an error
    naming ``server``: it does not enforce ``max_tokens``."""
    if len(text.encode()) <= max_tokens:  # a (byte-level) token holds at least one byte
        return
    count = count_tokens(text)
    if count > max_tokens + TOKEN_SLACK:
        raise ValueError(
            f"server at {server} returned {count} tokens for max_tokens={max_tokens}: "
            "it does not enforce max_tokens"
        )


@dataclass
class GreedyCheck:
    """Whether a server ignores the temperature: of the first :data:`IDENTICAL_PROMPTS`
    prompts sampled more than once at ``temperature > 0`` (samples of at least
    :data:`MIN_CHECKED_TOKENS` tokens), how many got identical samples.

    Example:
        >>> check, params = GreedyCheck("http://h/v1"), SamplingParams(16, temperature=1.0, n=2)
        >>> same = [Completion("x" * 8, tuple(range(8)), (0.0,) * 8, "length")] * 2
        >>> [bool(check.update([same], params)) for _ in range(IDENTICAL_PROMPTS)]
        [False, False, True]
    """

    server: str
    """The server's URL (named in the warning)."""
    sampled: int = 0
    """Prompts counted so far (at most :data:`IDENTICAL_PROMPTS`)."""
    identical: int = 0
    """Those whose samples were all identical."""

    def update(self, groups: Sequence[Sequence[Completion]], params: SamplingParams) -> str:
        """Count the samples of each prompt in ``groups``; the warning (with the fix) when all
        :data:`IDENTICAL_PROMPTS` counted prompts got identical samples, else ``""``."""
        if params.temperature <= 0 or params.n < 2 or self.sampled >= IDENTICAL_PROMPTS:
            return ""
        for group in groups:
            if self.sampled >= IDENTICAL_PROMPTS:
                break
            if min(len(c.token_ids) for c in group) < MIN_CHECKED_TOKENS:
                continue  # short answers may agree by chance
            self.sampled += 1
            self.identical += len({c.token_ids for c in group}) == 1
        if self.identical != IDENTICAL_PROMPTS:
            return ""
        return (
            f"server at {self.server} ignores the temperature: the {params.n} samples of "
            f"each of {IDENTICAL_PROMPTS} prompts at temperature {params.temperature:g} "
            "were identical, so J from its forced answers is 0 or 1. For transformers "
            'serve, put "do_sample": true (and "top_k": 0) in the model folder\'s '
            "generation_config.json or leave send_generation_config=True; for other "
            "servers, check that they sample"
        )


def load_tokenizer(path_or_id: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id, local_files_only=True)
