"""``examples/vf_eval/done_proxy.py`` between a client and a real (loopback) upstream server.

The upstream is a small Starlette app under uvicorn that streams SSE events the way
``transformers serve`` does (no ``data: [DONE]``), or with the sentinel, or answers JSON.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "vf_eval" / "done_proxy.py"
EVENTS = [b'data: {"choices":[{"delta":{"content":"5"}}]}\n\n', b'data: {"usage":{"x":1}}\n\n']


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("done_proxy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _upstream(request: Request) -> Response:
    payload = await request.json()
    if not payload.get("stream"):
        return JSONResponse({"echo": payload})
    events = [*EVENTS, b"data: [DONE]\n\n"] if payload.get("with_done") else EVENTS

    async def stream() -> Any:
        for event in events:
            yield event

    return StreamingResponse(stream(), media_type="text/event-stream")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(app: Any) -> tuple[uvicorn.Server, str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "a loopback server did not start"
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    upstream = Starlette(routes=[Route("/v1/chat/completions", _upstream, methods=["POST"])])
    upstream_server, upstream_url = _serve(upstream)
    proxy_server, proxy_url = _serve(_load().build_app(upstream_url))
    yield proxy_url
    proxy_server.should_exit = upstream_server.should_exit = True


def _post(url: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=30)


def test_a_stream_without_the_sentinel_gets_it(proxy: str) -> None:
    answer = _post(proxy, {"stream": True})
    assert answer.status_code == 200
    assert answer.content == b"".join(EVENTS) + b"data: [DONE]\n\n"


def test_a_stream_with_the_sentinel_is_unchanged(proxy: str) -> None:
    answer = _post(proxy, {"stream": True, "with_done": True})
    assert answer.content == b"".join(EVENTS) + b"data: [DONE]\n\n"  # once, not twice


def test_a_json_answer_passes_through(proxy: str) -> None:
    answer = _post(proxy, {"model": "m", "messages": []})
    assert answer.json() == {"echo": {"model": "m", "messages": []}}
