"""Requests to an OpenAI-compatible server, retried within deadlines.

:class:`ServerTransport` is the HTTP side of :class:`~mrt_env.lm.openai_compat.OpenAICompatibleLM`:
JSON over HTTP with :mod:`mrt_env.lm.http_json` (the standard library: one request's deadline
holds on the wall clock), ``GET /models`` and the endpoints beside ``/v1`` (``/tokenize``).

- A refused connection is retried (each retry logs a line) for ``connect_deadline`` seconds,
  then raises ``ConnectionError``; timeouts, dropped connections and 5xx answers are retried
  with exponential backoff until ``deadline`` seconds have passed, then a ``ConnectionError``
  names the URL. No new attempt starts after the deadline.
- One request takes at most ``request_timeout`` seconds of wall-clock time in all (default:
  ``deadline + max_tokens * in_flight / min_tokens_per_second``, with ``in_flight`` the
  requests the client keeps in flight at once, and ``min_tokens_per_second`` 1 by default: as
  slow as a loaded CPU server can be), also against a server that never answers or sends a
  byte at a time.
- A 4xx answer raises ``ValueError`` with the server's message, an answer that is no JSON (or
  too large) ``ValueError`` naming the server; redirects are not followed.

Retries log under the client's logger, ``mrt_env.lm.openai_compat``.

Example:
    >>> transport = ServerTransport("http://127.0.0.1:1/v1", deadline=60.0)  # no request yet
    >>> transport.timeout(max_tokens=100)  # deadline + 100 tokens at 1 token/s, 1 in flight
    160.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mrt_env.lm import http_json

logger = logging.getLogger("mrt_env.lm.openai_compat")

T = TypeVar("T")


class ServerTransport:
    """Requests to one server with retries and wall-clock deadlines (see the module docs).

    Args:
        base_url: The API root without a trailing slash, e.g. ``"http://127.0.0.1:8000/v1"``.
        api_key: Sent as a bearer token.
        request_timeout: Seconds one HTTP request may take in all (``None``: ``deadline +
            max_tokens * in_flight / min_tokens_per_second``).
        deadline: Seconds after which a failing request is not retried again.
        connect_deadline: Seconds a refused connection is retried for (at most ``deadline``).
        min_tokens_per_second: The slowest generation the default ``request_timeout`` allows.

    Attributes:
        in_flight: Requests the client keeps in flight at once (it sets this per call).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "EMPTY",
        request_timeout: float | None = None,
        deadline: float = 60.0,
        connect_deadline: float = 5.0,
        min_tokens_per_second: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.connect_deadline = min(connect_deadline, deadline)
        self.min_tokens_per_second = min_tokens_per_second
        self.in_flight = 1
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def timeout(self, max_tokens: int = 0) -> float:
        """Wall-clock seconds one request asking for ``max_tokens`` tokens may take: the
        requests in flight share the server, which must make ``min_tokens_per_second``."""
        if self.request_timeout is not None:
            return self.request_timeout
        return self.deadline + max_tokens * self.in_flight / self.min_tokens_per_second

    def call(self, what: str, request: Callable[[], T]) -> T:
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

    def post(self, url: str, body: dict[str, Any], max_tokens: int, max_bytes: int) -> Any:
        """One ``POST`` of ``body`` (no retry), timed for ``max_tokens`` tokens; an answer
        larger than ``max_bytes`` is refused."""
        return http_json.post_json(
            url, body, timeout=self.timeout(max_tokens), max_bytes=max_bytes,
            headers=self._headers,
        )  # fmt: skip

    def complete(self, body: dict[str, Any], max_tokens: int, max_bytes: int) -> Any:
        """``POST /completions`` of ``body`` with retries (:meth:`call`), timed for
        ``max_tokens`` tokens; an answer larger than ``max_bytes`` is refused."""
        url = f"{self.base_url}/completions"
        return self.call("POST /completions", lambda: self.post(url, body, max_tokens, max_bytes))

    def served_model(self) -> str:
        """The one model of ``GET /models`` (an error lists them when there are several)."""
        url = f"{self.base_url}/models"
        listing = self.call(
            "GET /models",
            lambda: http_json.get_json(url, timeout=self.timeout(), headers=self._headers),
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

    def root_post(self, path: str, body: dict[str, Any], size: int) -> dict[str, Any]:
        """POST to a path at the server root (``/tokenize`` lives beside ``/v1``); ``size``
        bounds the answer (about the number of tokens or characters it carries)."""
        url = f"{self.base_url.removesuffix('/v1')}{path}"
        try:
            answer = self.call(
                f"POST {path}", lambda: self.post(url, body, 0, (1 << 20) + 64 * size)
            )
        except ValueError as error:
            raise ValueError(
                f"{error} (vLLM serves {path}; other servers need a tokenizer)"
            ) from error
        if not isinstance(answer, dict):
            raise ValueError(f"server at {self.base_url} answered {path} with {answer!r:.100}")
        return answer
