"""JSON over HTTP with a real deadline: the transport of :mod:`mrt_env.lm.openai_compat`.

One request (connect, send, headers, body) takes at most ``timeout`` seconds of wall-clock time,
also against a server that accepts and never answers or sends a byte at a time: every socket
read and write waits only for what is left of the request's time. A reply larger than
``max_bytes`` is refused as soon as that many bytes have arrived. Redirects are never followed
(a 3xx answer is an error naming where it points). Errors:

- :class:`Unreachable` (connection refused, unknown host): nothing listens at the URL;
- :class:`Transient` (timeout, reset, 5xx, a malformed answer): worth retrying;
- :class:`Rejected` (4xx, 3xx): the server refused the request; not worth retrying;
- :class:`BadReply` (too large, not JSON): the server answered garbage; not worth retrying.

Example:
    >>> post_json("http://127.0.0.1:1/v1/completions", {}, timeout=1.0)  # nothing listens
    ... # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    mrt_env.lm.http_json.Unreachable: ConnectionRefusedError: [Errno 111] Connection refused
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit


class HTTPFailure(Exception):
    """A request that did not give a usable answer."""


class Unreachable(HTTPFailure):
    """Nothing accepts connections at the URL (refused, unknown host, no route)."""


class Transient(HTTPFailure):
    """A failure worth retrying: a timeout, a dropped connection, a 5xx answer."""


class Rejected(HTTPFailure):
    """A 4xx or 3xx answer: the server refused the request (``status``, ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"({status}): {message}")
        self.status = status
        self.message = message


class BadReply(HTTPFailure):
    """An answer that cannot be a reply of the API (too large, not JSON)."""


class _DeadlineReader(io.RawIOBase):
    """Socket reads that wait only for what is left before ``until``."""

    def __init__(self, sock: socket.socket, until: float) -> None:
        self._sock, self._until = sock, until

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_left(self._until))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The parts of a socket ``http.client`` uses, bounded by one deadline."""

    def __init__(self, sock: socket.socket, until: float) -> None:
        self._sock, self._until = sock, until

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_left(self._until))
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._until))

    def close(self) -> None:
        """Nothing: ``http.client`` closes the connection before the body is read; the socket
        is closed by :func:`request_json` once the answer is in."""

    def really_close(self) -> None:
        self._sock.close()


def _left(until: float) -> float:
    left = until - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline passed")
    return left


def _connection(url: str, until: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection

    class Connection(kind):  # type: ignore[valid-type,misc]
        sock: Any
        guarded: _DeadlineSocket

        def connect(self) -> None:
            self.timeout = _left(until)
            super().connect()
            self.sock = self.guarded = _DeadlineSocket(self.sock, until)

    path = parts.path or "/"
    return Connection(parts.hostname, parts.port, timeout=_left(until)), path + (
        f"?{parts.query}" if parts.query else ""
    )


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float,
    max_bytes: int = 8 << 20,
    headers: dict[str, str] | None = None,
) -> Any:
    """Send ``body`` as JSON and return the decoded JSON answer (see the module docs)."""
    until = time.monotonic() + timeout
    data = None if body is None else json.dumps(body).encode()
    sent = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    try:
        connection, path = _connection(url, until)
        try:
            connection.request(method, path, body=data, headers=sent)
            answer = connection.getresponse()
            raw = _read(answer, max_bytes)
        finally:
            guarded = getattr(connection, "guarded", None)
            connection.close()
            if guarded is not None:
                guarded.really_close()
    except (ConnectionRefusedError, socket.gaierror) as error:
        raise Unreachable(f"{type(error).__name__}: {error}") from error
    except TimeoutError as error:
        raise Transient(f"no complete answer within {timeout:g} s") from error
    except (OSError, http.client.HTTPException) as error:
        if isinstance(error, ssl.SSLCertVerificationError):
            raise Rejected(0, f"TLS: {error}") from error
        if isinstance(error, OSError) and error.errno in (101, 113):  # no route to host
            raise Unreachable(f"{type(error).__name__}: {error}") from error
        raise Transient(f"{type(error).__name__}: {error}") from error
    return _decode(answer, raw)


def _read(answer: http.client.HTTPResponse, max_bytes: int) -> bytes:
    length = answer.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise BadReply(f"the answer is {int(length)} bytes (more than {max_bytes})")
    raw = answer.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BadReply(f"the answer is longer than {max_bytes} bytes")
    return raw


def _decode(answer: http.client.HTTPResponse, raw: bytes) -> Any:
    status = answer.status
    if 300 <= status < 400:
        where = answer.getheader("Location") or "?"
        raise Rejected(status, f"redirect to {where} (redirects are not followed: use that URL)")
    try:
        payload = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as error:
        if status >= 500:
            raise Transient(f"{status} with a non-JSON body") from error
        if status >= 400:
            raise Rejected(status, raw[:300].decode("utf-8", "replace")) from error
        raise BadReply(f"the answer is not JSON: {raw[:80]!r}") from error
    if status >= 500:
        raise Transient(f"{status}: {_message(payload)}")
    if status >= 400:
        raise Rejected(status, _message(payload))
    return payload


def _message(payload: Any) -> str:
    """The error message of an error body (OpenAI's ``error.message``, FastAPI's ``detail``)."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("detail", "message", "error"):
            if payload.get(key):
                return str(payload[key])
    return str(payload)[:300]


def post_json(url: str, body: Any, **kwargs: Any) -> Any:
    """``request_json("POST", url, body, ...)``."""
    return request_json("POST", url, body, **kwargs)


def get_json(url: str, **kwargs: Any) -> Any:
    """``request_json("GET", url, ...)``."""
    return request_json("GET", url, **kwargs)
