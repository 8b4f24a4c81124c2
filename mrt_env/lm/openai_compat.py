"""A :class:`~mrt_env.lm.base.LanguageModel` over any server speaking the OpenAI completions API.

:class:`OpenAICompatibleLM` sends raw text prompts to ``POST {base_url}/completions`` (never
chat completions: a thinking prefix must be continued verbatim) of ``vllm serve``, SGLang,
``transformers serve`` or a hosted endpoint, as JSON over HTTP (:mod:`mrt_env.lm.http_json`,
the standard library: one request's deadline holds on the wall clock).

How the protocol's promises are kept on a server:

- **Seeds.** Each request carries its own seed, so a prompt's samples do not depend on what else
  is in the batch. ``n`` samples go out as one request with ``n`` (one prefill on vLLM). A
  server that returns fewer choices than ``n`` (``transformers serve`` ignores ``n``) is
  remembered as such, and every sample then goes out as its own request seeded with
  ``derive_seed(seed, j)``. Servers that seed a process-wide generator per request
  (``transformers serve``) are reproducible only with ``max_concurrency=1``.
- **Stops.** With ``stop_mode="server"`` (the default) the stop strings are sent. The text is
  then normalised to the protocol: a stop the server left in the text is cut (the earliest at
  offset >= 1, :func:`~mrt_env.lm.base.find_stop`); a sample the server ended at a stop at
  offset 0 (which the protocol ignores) is resumed from ``prompt + stop`` with a derived seed
  and the remaining token budget. Which stop ended a sample comes from the text, from vLLM's
  ``stop_reason`` or SGLang's ``matched_stop``; a server that trims stops and reports neither
  cannot tell a stop from an end-of-sequence token (a warning says so once): use
  ``stop_mode="client"``, which sends no stop strings and cuts locally (exact on every
  server, at the cost of generating past the stop up to EOS or ``max_new_tokens``).
  Resuming re-tokenises the stop string, which a BPE server may split differently from the
  sampled tokens.
- **Tokens.** ``encode``/``count_tokens``/``decode`` use ``tokenizer`` (a local path or a
  tokenizer object) when given, else the server's ``/tokenize`` and ``/detokenize``
  endpoints (vLLM). ``Completion.token_ids`` are the text re-encoded (the server's own ids are
  used with ``logprobs=True`` when it returns them as ``token_id:N``). ``Completion.logprobs``
  are NaN unless ``logprobs=True``; a server that then returns none raises an error.
- **Sampling.** With ``temperature > 0`` each request also carries ``generation_config``
  ``{"do_sample": true, "top_k": 0}`` (``transformers serve`` otherwise decodes greedily unless
  the model folder says ``do_sample``, and applies top-k 50); vLLM and SGLang ignore the
  field, and a server that rejects it is remembered and no longer sent it
  (``send_generation_config=False`` never sends it). A server whose samples of one prompt are
  all identical at ``temperature > 0`` (on the first three prompts sampled more than once
  with samples of at least 8 tokens) ignores the temperature: a warning says so once, with
  the fix.
- **Robustness.** The requests of one ``generate`` call run on a bounded thread pool. A
  refused connection is retried (each retry logs a line) for ``connect_deadline`` seconds, then
  raises ``ConnectionError``; timeouts, dropped connections and 5xx answers are retried with
  exponential backoff until ``deadline`` seconds have passed, then a ``ConnectionError`` names
  the URL. One request takes at most ``request_timeout`` seconds of wall-clock time in all
  (default: ``deadline + max_tokens * in_flight / min_tokens_per_second``, where ``in_flight``
  is the number of requests the call keeps in flight at once, at most ``max_concurrency``, and
  ``min_tokens_per_second`` is 1: as slow as a loaded CPU server can be), also against a server
  that never answers or sends a byte at a time. A 4xx answer raises
  ``ValueError`` with the server's message; redirects are not followed. Answers that are not
  the API's (text that is not a string, a chat reply, more choices than ``n``, a
  ``finish_reason`` other than ``stop``/``length``, more tokens than ``max_tokens``, a
  ``/tokenize`` without tokens, a body larger than the request can need) raise ``ValueError``
  naming the server. Empty prompts raise ``ValueError`` (servers reject them).

Example:
    >>> from mrt_env.lm.openai_server import CharTokenizer
    >>> lm = OpenAICompatibleLM("http://127.0.0.1:8000/v1", model="m",
    ...                         tokenizer=CharTokenizer())  # no request is made yet
    >>> lm.name, lm.count_tokens("abc")
    ('m', 3)
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Literal, TypeVar

import numpy as np

from mrt_env.lm import http_json
from mrt_env.lm.base import Completion, SamplingParams, find_stop, resolve_seeds
from mrt_env.lm.openai_server import (
    ServerSample,
    derive_seed,
    kept_tokens,
    load_tokenizer,
    names_stops,
    parse_choices,
    parse_openai_spec,
    reported_stop,
)

logger = logging.getLogger(__name__)

SAMPLING_CONFIG = {"do_sample": True, "top_k": 0}
"""``generation_config`` sent with ``temperature > 0`` (what ``transformers serve`` needs to
sample as asked: plain multinomial sampling, no top-k)."""

TOKEN_SLACK = 8
"""Tokens a re-encoded answer may exceed ``max_tokens`` by (BPE may split a text differently
from the sampled tokens) before the server is said not to enforce ``max_tokens``."""

IDENTICAL_PROMPTS = 3
"""Prompts sampled more than once at ``temperature > 0`` whose samples must all be identical
before the client warns that the server ignores the temperature."""

MIN_CHECKED_TOKENS = 8
"""Samples shorter than this (in tokens) do not count for that check (they may agree by
chance)."""

StopMode = Literal["server", "client"]
T = TypeVar("T")


class OpenAICompatibleLM:
    """:class:`~mrt_env.lm.base.LanguageModel` on an OpenAI-compatible completions server.

    See the module docs for how seeds, stops, tokens and failures are handled.

    Args:
        base_url: The API root, e.g. ``"http://127.0.0.1:8000/v1"``.
        model: Model name sent with each request (``None``: the one model of ``GET /models``;
            an error lists them when the server serves several).
        tokenizer: Local tokenizer path / hub id (loaded with ``AutoTokenizer``, no downloads)
            or an object with ``encode``/``decode``; ``None`` uses the server's ``/tokenize``,
            else the tokenizer of the served model's name if that is a local folder.
        api_key: Sent as a bearer token (``"EMPTY"`` by default: local servers ignore it).
        name: Display name (defaults to the model name).
        stop_mode: ``"server"`` (send stop strings) or ``"client"`` (cut locally).
        use_n: ``True``/``False`` forces one request with ``n`` / one request per sample;
            ``None`` detects a server that ignores ``n``.
        logprobs: Request each sampled token's log-probability (error if the server has none).
        max_concurrency: Requests in flight at once within one ``generate`` call
            (``transformers serve`` is reproducible only with 1).
        request_timeout: Seconds one HTTP request may take in all, on the wall clock
            (``None``: ``deadline + max_tokens * in_flight / min_tokens_per_second``, with
            ``in_flight`` the requests one call keeps in flight, at most ``max_concurrency``).
        deadline: Seconds after which a failing request is not retried again
            (``ConnectionError``, naming the URL).
        connect_deadline: Seconds a refused connection is retried for (nothing listening).
        min_tokens_per_second: The slowest generation (tokens per second of the server, for
            all the requests in flight together) the default ``request_timeout`` allows.
        send_generation_config: Send :data:`SAMPLING_CONFIG` as ``generation_config`` with
            ``temperature > 0`` (what ``transformers serve`` needs to sample).
        extra_body: Extra JSON fields of every completion request (server-specific
            options, e.g. ``{"top_k": -1}`` for vLLM); servers may reject unknown fields.
        seed: Seed of the generator that draws prompt seeds when ``generate`` gets none.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        tokenizer: Any = None,
        *,
        api_key: str = "EMPTY",
        name: str | None = None,
        stop_mode: StopMode = "server",
        use_n: bool | None = None,
        logprobs: bool = False,
        max_concurrency: int = 16,
        request_timeout: float | None = None,
        deadline: float = 60.0,
        connect_deadline: float = 5.0,
        min_tokens_per_second: float = 1.0,
        send_generation_config: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if stop_mode not in ("server", "client"):
            raise ValueError(f"stop_mode must be 'server' or 'client', got {stop_mode!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        positive = (deadline, connect_deadline, min_tokens_per_second, request_timeout or 1.0)
        if not all(value > 0 for value in positive):
            raise ValueError(
                "deadline, connect_deadline, min_tokens_per_second and request_timeout must be "
                "positive"
            )
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.stop_mode: StopMode = stop_mode
        self.use_n = use_n
        self.want_logprobs = logprobs
        self.max_concurrency = max_concurrency
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.connect_deadline = min(connect_deadline, deadline)
        self.min_tokens_per_second = min_tokens_per_second
        self.send_generation_config = send_generation_config
        self.extra_body = dict(extra_body or {})
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._rng = np.random.default_rng(seed)
        self._server_tokenizes = False
        self._lock = threading.Lock()
        self._in_flight = 1  # requests one generate call keeps in flight at once
        self._notes: list[str] = []  # warnings raised in worker threads, emitted by generate
        self._warned: set[str] = set()
        self._sampled_prompts = 0  # prompts sampled more than once at temperature > 0 ...
        self._identical_prompts = 0  # ... and those whose samples were all identical
        self.model = model if model is not None else self._served_model()
        self.name = name or self.model
        self.tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self._count = lru_cache(maxsize=65_536)(self._count_uncached)

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> OpenAICompatibleLM:
        """Build from ``"openai:URL"`` or ``"openai:URL#MODEL"`` (see :func:`parse_openai_spec`).

        Example:
            >>> from mrt_env.lm.openai_server import CharTokenizer
            >>> lm = OpenAICompatibleLM.from_spec("openai:http://127.0.0.1:1/v1#m",
            ...                                   tokenizer=CharTokenizer())
            >>> lm.base_url, lm.model
            ('http://127.0.0.1:1/v1', 'm')
        """
        url, model = parse_openai_spec(spec)
        return cls(url, model=kwargs.pop("model", None) or model, **kwargs)

    # ------------------------------------------------------------------ HTTP with retries
    def _timeout(self, max_tokens: int = 0) -> float:
        """Wall-clock seconds one request asking for ``max_tokens`` tokens may take: the
        requests in flight share the server, which must make ``min_tokens_per_second``."""
        if self.request_timeout is not None:
            return self.request_timeout
        return self.deadline + max_tokens * self._in_flight / self.min_tokens_per_second

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run ``request()``; retry transient failures with backoff (a refused connection for
        ``connect_deadline`` seconds, others for ``deadline``), starting no new attempt after
        that; each retry logs a line."""
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return request()
            except http_json.Rejected as error:
                raise ValueError(
                    f"server at {self.base_url} rejected {what} {error.args[0]}"
                ) from error
            except http_json.BadReply as error:
                raise ValueError(f"server at {self.base_url} answered {what}: {error}") from error
            except (http_json.Unreachable, http_json.Transient) as error:
                last: Exception = error
            refused = isinstance(last, http_json.Unreachable)
            limit = self.connect_deadline if refused else self.deadline
            attempt += 1
            pause = min(2.0, 0.1 * 2**attempt)
            elapsed = time.monotonic() - start
            if elapsed + pause >= limit:
                cause = "nothing accepts connections there" if refused else "no answer"
                raise ConnectionError(
                    f"server at {self.base_url} did not answer {what} ({cause}): {attempt} "
                    f"attempts in {elapsed:.1f} s (retry deadline {limit:g} s); last error "
                    f"{type(last).__name__}: {last}"
                ) from last
            logger.warning(
                "server at %s: %s failed (%s: %s); retry %d in %.1f s",
                self.base_url, what, type(last).__name__, last, attempt, pause,
            )  # fmt: skip
            time.sleep(pause)

    def _post(self, url: str, body: dict[str, Any], max_tokens: int, max_bytes: int) -> Any:
        return http_json.post_json(
            url, body, timeout=self._timeout(max_tokens), max_bytes=max_bytes,
            headers=self._headers,
        )  # fmt: skip

    def _served_model(self) -> str:
        url = f"{self.base_url}/models"
        listing = self._call(
            "GET /models",
            lambda: http_json.get_json(url, timeout=self._timeout(), headers=self._headers),
        )
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise ValueError(f"server at {self.base_url} answered GET /models without a list")
        ids = [m.get("id") for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if len(ids) != 1:
            raise ValueError(
                f"server at {self.base_url} serves {len(ids)} models {ids[:10]}: pass model=NAME "
                "(or the spec 'openai:URL#NAME')"
            )
        return str(ids[0])

    def _root_post(self, path: str, body: dict[str, Any], size: int) -> dict[str, Any]:
        """POST to a path at the server root (``/tokenize`` lives beside ``/v1``); ``size``
        bounds the answer (about the number of tokens or characters it carries)."""
        url = f"{self.base_url.removesuffix('/v1')}{path}"
        try:
            answer = self._call(
                f"POST {path}", lambda: self._post(url, body, 0, (1 << 20) + 64 * size)
            )
        except ValueError as error:
            raise ValueError(
                f"{error} (vLLM serves {path}; other servers need a tokenizer)"
            ) from error
        if not isinstance(answer, dict):
            raise ValueError(f"server at {self.base_url} answered {path} with {answer!r:.100}")
        return answer

    def _note(self, key: str, message: str) -> None:
        """Remember a warning (once per ``key``) to emit from the thread that called
        ``generate`` (a warning raised in a worker thread names the thread pool's code)."""
        with self._lock:
            if key not in self._warned:
                self._warned.add(key)
                self._notes.append(message)

    def _emit_notes(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        for message in notes:
            warnings.warn(message, UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ tokens
    def chat_tokenizer(self) -> Any | None:
        """A local Hugging Face tokenizer to render the model's chat template with
        (``tokenizer=``, else the served model's name when it is a local folder or a cached hub
        id), or ``None`` when there is none (``template="chat"`` then needs ``tokenizer=``)."""
        if self.tokenizer is not None:
            return self.tokenizer
        try:
            return load_tokenizer(self.model)
        except (OSError, ValueError):
            return None

    def _tokenizer(self) -> Any | None:
        """The local tokenizer, or ``None`` when the server's ``/tokenize`` is used.

        Without ``tokenizer=``, the server's ``/tokenize`` is probed once; a server without
        one (``transformers serve``) falls back to the tokenizer of the served model's name
        when that is a local folder or a cached hub id.
        """
        if self.tokenizer is not None or self._server_tokenizes:
            return self.tokenizer
        try:
            self._server_tokens("1")
            self._server_tokenizes = True
            return None
        except ValueError as error:
            try:
                self.tokenizer = load_tokenizer(self.model)
            except (OSError, ValueError) as load_error:
                raise ValueError(
                    f"{error}; and the served model {self.model!r} is no local tokenizer: "
                    "pass tokenizer=PATH_OR_ID"
                ) from load_error
        return self.tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        tokenizer = self._tokenizer()
        if tokenizer is not None:
            return list(tokenizer.encode(text, add_special_tokens=False))
        return list(self._server_tokens(text))

    def _server_tokens(self, text: str) -> tuple[int, ...]:
        """The server's ``/tokenize`` of ``text``, checked: a list of ints, non-empty for a
        non-empty text (no tokens would turn every token budget off)."""
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        tokens = self._root_post("/tokenize", body, len(text)).get("tokens")
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise ValueError(f"server at {self.base_url} answered /tokenize without token ids")
        if text and not tokens:
            raise ValueError(
                f"server at {self.base_url} answered /tokenize with no tokens for a non-empty "
                "text (token budgets would be off): pass tokenizer=PATH"
            )
        return tuple(tokens)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` (special tokens skipped)."""
        tokenizer = self._tokenizer()
        if tokenizer is not None:
            return str(tokenizer.decode(list(token_ids), skip_special_tokens=True))
        body = {"model": self.model, "tokens": list(token_ids)}
        text = self._root_post("/detokenize", body, len(token_ids)).get("prompt")
        if not isinstance(text, str):
            raise ValueError(f"server at {self.base_url} answered /detokenize without a text")
        return text

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under :meth:`encode` (cached)."""
        return int(self._count(text))

    def _count_uncached(self, text: str) -> int:
        return len(self.encode(text))

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """``params.n`` completions per prompt (see the module docs for the guarantees)."""
        seeds = resolve_seeds(prompts, seeds, self._rng)
        if any(not p for p in prompts):
            raise ValueError(
                "cannot generate from an empty prompt through a server (servers reject them)"
            )
        if params.max_new_tokens == 0:
            return [[Completion("", (), (), "length") for _ in range(params.n)] for _ in prompts]
        try:
            groups = self._sample_all(prompts, params, seeds)
            out = [[self._finish(s) for s in group] for group in groups]
            self._check_sampling(out, params)
        finally:
            self._emit_notes()
        return out

    def _sample_all(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int]
    ) -> list[list[ServerSample]]:
        requests = len(prompts) * (1 if self.use_n is not False and params.n > 1 else params.n)
        self._in_flight = max(1, min(self.max_concurrency, requests))
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            if self.use_n is not False and params.n > 1:
                batched = list(
                    pool.map(
                        lambda i: self._with_n(prompts[i], params, seeds[i]), range(len(prompts))
                    )
                )
                if all(group is not None for group in batched):
                    return [group or [] for group in batched]
            jobs = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
            self._in_flight = max(1, min(self.max_concurrency, len(jobs)))
            samples = list(
                pool.map(
                    lambda job: self._one(prompts[job[0]], params, seeds[job[0]], job[1]), jobs
                )
            )
        return [samples[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _check_sampling(self, groups: list[list[Completion]], params: SamplingParams) -> None:
        """Warn once when the first prompts sampled several times at ``temperature > 0`` got
        identical samples every time (a server that decodes greedily)."""
        if params.temperature <= 0 or params.n < 2 or self._sampled_prompts >= IDENTICAL_PROMPTS:
            return
        for group in groups:
            if self._sampled_prompts >= IDENTICAL_PROMPTS:
                break
            if min(len(c.token_ids) for c in group) < MIN_CHECKED_TOKENS:
                continue  # short answers may agree by chance
            self._sampled_prompts += 1
            self._identical_prompts += len({c.token_ids for c in group}) == 1
        if self._identical_prompts == IDENTICAL_PROMPTS:
            self._note(
                "greedy",
                f"server at {self.base_url} ignores the temperature: the {params.n} samples of "
                f"each of {IDENTICAL_PROMPTS} prompts at temperature {params.temperature:g} "
                "were identical, so J from its forced answers is 0 or 1. For transformers "
                'serve, put "do_sample": true (and "top_k": 0) in the model folder\'s '
                "generation_config.json or leave send_generation_config=True; for other "
                "servers, check that they sample",
            )

    def _with_n(self, prompt: str, params: SamplingParams, seed: int) -> list[ServerSample] | None:
        """All ``n`` samples from one request, or ``None`` when the server ignores ``n``."""
        if self.use_n is False:
            return None
        choices = self._complete(prompt, params, derive_seed(seed), params.n, params.max_new_tokens)
        if len(choices) < params.n:
            if self.use_n is None:
                self.use_n = False  # a server property: every later call goes per sample
            return None
        samples = [self._normalise(c, params) for c in choices[: params.n]]
        return [
            self._resume(prompt, params, s, derive_seed(seed, j, 1)) if s.resume_with else s
            for j, s in enumerate(samples)
        ]

    def _one(self, prompt: str, params: SamplingParams, seed: int, index: int) -> ServerSample:
        server_seed = derive_seed(seed, index)
        [choice, *_] = self._complete(prompt, params, server_seed, 1, params.max_new_tokens)
        sample = self._normalise(choice, params)
        if sample.resume_with:
            return self._resume(prompt, params, sample, derive_seed(seed, index, 1))
        return sample

    def _complete(
        self, prompt: str, params: SamplingParams, seed: int, n: int, max_tokens: int
    ) -> list[Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": seed,
        }
        if n > 1:
            body["n"] = n
        if params.stop and self.stop_mode == "server":
            body["stop"] = list(params.stop)
        if self.want_logprobs:
            body["logprobs"] = 0
        sampling = self.send_generation_config and params.temperature > 0
        if sampling:
            body["generation_config"] = json.dumps(SAMPLING_CONFIG)
        body.update(self.extra_body)
        url = f"{self.base_url}/completions"
        size = (1 << 20) + n * max_tokens * (1024 if self.want_logprobs else 64)
        try:
            answer = self._call(
                "POST /completions", lambda: self._post(url, body, max_tokens, size)
            )
        except ValueError as error:
            if not sampling or "generation_config" not in str(error):
                raise
            self.send_generation_config = False  # a server property: never sent again
            body.pop("generation_config")
            answer = self._call(
                "POST /completions", lambda: self._post(url, body, max_tokens, size)
            )
        choices = parse_choices(answer, self.base_url, n)
        for choice in choices:
            self._check_length(choice.text, max_tokens)
        return choices

    def _check_length(self, text: str, max_tokens: int) -> None:
        """A text of more than ``max_tokens`` tokens (beyond re-encoding slack) is an error."""
        if len(text.encode()) <= max_tokens:  # a (byte-level) token holds at least one byte
            return
        count = self.count_tokens(text)
        if count > max_tokens + TOKEN_SLACK:
            raise ValueError(
                f"server at {self.base_url} returned {count} tokens for max_tokens={max_tokens}: "
                "it does not enforce max_tokens"
            )

    def _normalise(self, choice: Any, params: SamplingParams) -> ServerSample:
        text = str(choice.text or "")
        ids, logprobs = self._token_logprobs(choice)
        found = find_stop(text, params.stop)
        if found is not None:
            return ServerSample(text[: found[0]], "stop", found[1], ids, logprobs)
        if choice.finish_reason == "length":
            return ServerSample(text, "length", None, ids, logprobs)
        reported = reported_stop(choice)
        at_start = next((s for s in params.stop if text == s), None)
        sent_stops = bool(params.stop) and self.stop_mode == "server"
        if sent_stops and (at_start or (reported and not text)):
            return ServerSample(
                text, "stop", at_start or reported, ids, logprobs, at_start or reported
            )
        if reported in params.stop:
            return ServerSample(text, "stop", reported, ids, logprobs)
        if sent_stops and not names_stops(choice):
            self._note(
                "ambiguous",
                f"server at {self.base_url} does not name the stop that ended a sample (as "
                "vLLM's stop_reason does): if it trims stop strings from the text, a sample it "
                "ended at a stop is reported as 'eos' (stop_mode='client' is exact everywhere)",
            )
        return ServerSample(text, "eos", None, ids, logprobs)

    def _resume(
        self, prompt: str, params: SamplingParams, sample: ServerSample, seed: int
    ) -> ServerSample:
        """Continue a sample that hit a stop at offset 0 (which the protocol ignores)."""
        stop = sample.resume_with or ""
        left = params.max_new_tokens - self.count_tokens(stop)
        if left <= 0:
            return ServerSample(stop, "length", None, None, None)
        [choice, *_] = self._complete(prompt + stop, params, seed, 1, left)
        rest = self._normalise(choice, params)
        text, finish, stop_string = stop + rest.text, rest.finish, rest.stop
        if rest.resume_with:  # a stop at the continuation's offset 0 is one at len(stop) >= 1
            text, finish, stop_string = stop, "stop", rest.resume_with
        found = find_stop(text, params.stop)
        if found is not None:
            text, finish, stop_string = text[: found[0]], "stop", found[1]
        if sample.ids is None or rest.ids is None or sample.logprobs is None:
            return ServerSample(text, finish, stop_string, None, None)
        ids, logprobs = sample.ids + rest.ids, sample.logprobs + (rest.logprobs or ())
        return ServerSample(text, finish, stop_string, ids, logprobs)

    def _token_logprobs(
        self, choice: Any
    ) -> tuple[tuple[int, ...] | None, tuple[float, ...] | None]:
        if not self.want_logprobs:
            return None, None
        logprobs = getattr(choice, "logprobs", None)
        tokens = getattr(logprobs, "tokens", None)
        values = getattr(logprobs, "token_logprobs", None)
        if not tokens or values is None:
            raise ValueError(
                f"server at {self.base_url} returned no token log-probabilities; "
                "this server cannot give them (use logprobs=False)"
            )
        if not all(str(t).startswith("token_id:") for t in tokens):
            raise ValueError(
                f"server at {self.base_url} returned log-probabilities without token ids: "
                "pass extra_body={'return_tokens_as_token_ids': True} (vLLM)"
            )
        ids = tuple(int(str(t).removeprefix("token_id:")) for t in tokens)
        return ids, tuple(float(v) for v in values)

    def _finish(self, sample: ServerSample) -> Completion:
        ids: tuple[int, ...]
        if sample.ids is not None and sample.logprobs is not None:
            ids, logprobs = kept_tokens(self.decode, sample.ids, sample.logprobs, sample.text)
        elif self.want_logprobs:
            raise ValueError(f"server at {self.base_url} returned no tokens for a resumed sample")
        else:
            ids = tuple(self.encode(sample.text))
            logprobs = (math.nan,) * len(ids)
        return Completion(sample.text, ids, logprobs, sample.finish, sample.stop)
