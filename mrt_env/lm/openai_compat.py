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
- **Robustness.** The requests of one ``generate`` call run on a bounded thread pool
  (``max_concurrency``) through :class:`~mrt_env.lm.openai_transport.ServerTransport`, which
  retries a refused connection for ``connect_deadline`` seconds and timeouts, dropped
  connections and 5xx answers for ``deadline`` seconds (then a ``ConnectionError`` names the
  URL), and bounds one request by ``request_timeout`` seconds of wall-clock time in all (see
  there). A 4xx answer raises ``ValueError`` with the server's message. Answers that are not
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
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from mrt_env.lm.base import Completion, SamplingParams, resolve_seeds
from mrt_env.lm.openai_server import (
    IDENTICAL_PROMPTS,  # noqa: F401 (a name of this module)
    MIN_CHECKED_TOKENS,  # noqa: F401 (a name of this module)
    TOKEN_SLACK,  # noqa: F401 (a name of this module)
    GreedyCheck,
    ServerSample,
    check_length,
    derive_seed,
    join_resumed,
    kept_tokens,
    names_stops,
    normalise,
    parse_choices,
    parse_openai_spec,
    token_logprobs,
)
from mrt_env.lm.openai_tokens import ServerTokenizer
from mrt_env.lm.openai_transport import ServerTransport

logger = logging.getLogger(__name__)  # retries log here (see mrt_env.lm.openai_transport)

SAMPLING_CONFIG = {"do_sample": True, "top_k": 0}
"""``generation_config`` sent with ``temperature > 0`` (what ``transformers serve`` needs to
sample as asked: plain multinomial sampling, no top-k)."""

StopMode = Literal["server", "client"]


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
        self._http = ServerTransport(
            base_url.rstrip("/"), api_key=api_key, request_timeout=request_timeout,
            deadline=deadline, connect_deadline=connect_deadline,
            min_tokens_per_second=min_tokens_per_second,
        )  # fmt: skip
        self.base_url = self._http.base_url
        self.stop_mode: StopMode = stop_mode
        self.use_n = use_n
        self.want_logprobs = logprobs
        self.max_concurrency = max_concurrency
        self.send_generation_config = send_generation_config
        self.extra_body = dict(extra_body or {})
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._notes: list[str] = []  # warnings raised in worker threads, emitted by generate
        self._warned: set[str] = set()
        self._greedy = GreedyCheck(self._http.base_url)  # does it sample at temperature > 0?
        self.model = model if model is not None else self._http.served_model()
        self.name = name or self.model
        self._tokens = ServerTokenizer(self._http, self.model, tokenizer)

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

    # ------------------------------------------------------------------ transport settings
    @property
    def request_timeout(self) -> float | None:
        """Seconds one HTTP request may take in all (``None``: from ``deadline``)."""
        return self._http.request_timeout

    @property
    def deadline(self) -> float:
        """Seconds after which a failing request is not retried again."""
        return self._http.deadline

    @property
    def connect_deadline(self) -> float:
        """Seconds a refused connection is retried for (at most ``deadline``)."""
        return self._http.connect_deadline

    @property
    def min_tokens_per_second(self) -> float:
        """The slowest generation the default ``request_timeout`` allows."""
        return self._http.min_tokens_per_second

    # ------------------------------------------------------------------ warnings
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
    @property
    def tokenizer(self) -> Any:
        """The local tokenizer, or ``None`` while the server's ``/tokenize`` is used."""
        return self._tokens.tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Any) -> None:
        self._tokens.tokenizer = tokenizer

    def chat_tokenizer(self) -> Any | None:
        """A local Hugging Face tokenizer to render the model's chat template with
        (``tokenizer=``, else the served model's name when it is a local folder or a cached hub
        id), or ``None`` when there is none (``template="chat"`` then needs ``tokenizer=``)."""
        return self._tokens.chat_tokenizer()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self._tokens.encode(text)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` (special tokens skipped)."""
        return self._tokens.decode(token_ids)

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under :meth:`encode` (cached)."""
        return self._tokens.count_tokens(text)

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
            greedy = self._greedy.update(out, params)  # the server ignores the temperature
            if greedy:
                self._note("greedy", greedy)
        finally:
            self._emit_notes()
        return out

    def _sample_all(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int]
    ) -> list[list[ServerSample]]:
        requests = len(prompts) * (1 if self.use_n is not False and params.n > 1 else params.n)
        self._http.in_flight = max(1, min(self.max_concurrency, requests))
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
            self._http.in_flight = max(1, min(self.max_concurrency, len(jobs)))
            samples = list(
                pool.map(
                    lambda job: self._one(prompts[job[0]], params, seeds[job[0]], job[1]), jobs
                )
            )
        return [samples[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

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
        size = (1 << 20) + n * max_tokens * (1024 if self.want_logprobs else 64)
        try:
            answer = self._http.complete(body, max_tokens, size)
        except ValueError as error:
            if not sampling or "generation_config" not in str(error):
                raise
            self.send_generation_config = False  # a server property: never sent again
            body.pop("generation_config")
            answer = self._http.complete(body, max_tokens, size)
        choices = parse_choices(answer, self.base_url, n)
        for choice in choices:
            check_length(choice.text, max_tokens, self.count_tokens, self.base_url)
        return choices

    def _normalise(self, choice: Any, params: SamplingParams) -> ServerSample:
        """``choice`` under the protocol's stop semantics (:func:`normalise`); warns once when
        the server may have ended it at a stop it trimmed and did not name."""
        ids, logprobs = (
            token_logprobs(choice, self.base_url) if self.want_logprobs else (None, None)
        )
        sent_stops = bool(params.stop) and self.stop_mode == "server"
        sample = normalise(choice, params.stop, sent_stops, ids, logprobs)
        if sample.finish == "eos" and sent_stops and not names_stops(choice):
            self._note(
                "ambiguous",
                f"server at {self.base_url} does not name the stop that ended a sample (as "
                "vLLM's stop_reason does): if it trims stop strings from the text, a sample it "
                "ended at a stop is reported as 'eos' (stop_mode='client' is exact everywhere)",
            )
        return sample

    def _resume(
        self, prompt: str, params: SamplingParams, sample: ServerSample, seed: int
    ) -> ServerSample:
        """Continue a sample that hit a stop at offset 0 (which the protocol ignores)."""
        stop = sample.resume_with or ""
        left = params.max_new_tokens - self.count_tokens(stop)
        if left <= 0:
            return ServerSample(stop, "length", None, None, None)
        [choice, *_] = self._complete(prompt + stop, params, seed, 1, left)
        return join_resumed(sample, self._normalise(choice, params), params.stop)

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
