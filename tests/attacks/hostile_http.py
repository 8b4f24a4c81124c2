"""A hostile HTTP server on 127.0.0.1 for attacks on the OpenAI-compatible client.

:func:`hostile_server` runs a threaded TCP server whose every connection is handed to one
``behave(connection, request)`` function: it may answer garbage, answer too much, answer a byte
at a time or never. The server stops itself after ``lifetime`` seconds at the latest (and when
the ``with`` block ends); every handler returns within ``lifetime`` too, so no test can hang.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Behaviour = Callable[["Connection", "Request"], None]


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    body: Any


@dataclass
class Connection:
    """The accepted socket and the time its handler must be done by."""

    sock: socket.socket
    until: float
    stopped: threading.Event = field(default_factory=threading.Event)

    def done(self) -> bool:
        return self.stopped.is_set() or time.monotonic() >= self.until

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """A complete JSON answer."""
        data = json.dumps(payload).encode()
        self.send(head(status, {"Content-Length": str(len(data)), **(headers or {})}) + data)

    def wait(self) -> None:
        """Hold the connection open, answering nothing, until the handler's time is up."""
        while not self.done():
            time.sleep(0.05)

    def drip(self, data: bytes, pause: float = 0.2) -> None:
        """Send ``data`` one byte at a time (until it is sent or the handler's time is up)."""
        for byte in data:
            if self.done():
                return
            self.send(bytes([byte]))
            time.sleep(pause)


@dataclass
class HostileServer:
    """A running hostile server: its API root and the requests it has read."""

    base_url: str
    requests: list[Request] = field(default_factory=list)


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def completion(*choices: Any) -> dict[str, Any]:
    """A ``/completions`` answer body holding ``choices``."""
    base = {"id": "c", "object": "text_completion", "created": 0, "model": "m"}
    return {**base, "choices": list(choices)}


def read_request(sock: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    method, path, *_ = [*lines[0].split(" "), "", ""]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, json.loads(body) if body else None)


@contextmanager
def hostile_server(
    behave: Behaviour, *, lifetime: float = 30.0, host: str = "127.0.0.1"
) -> Iterator[HostileServer]:
    """Serve ``behave`` on ``host`` (a free port) for at most ``lifetime`` seconds."""
    stop_at = time.monotonic() + lifetime
    server_info = HostileServer("")
    stopped = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(max(0.1, stop_at - time.monotonic()))
            try:
                request = read_request(self.request)
                server_info.requests.append(request)
                behave(Connection(self.request, stop_at, stopped), request)
            except OSError:  # the client gave up: that is the point of most attacks
                pass

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((host, 0), Handler)
    server.daemon_threads = True
    server_info.base_url = f"http://{host}:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield server_info
    finally:
        stopped.set()
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
