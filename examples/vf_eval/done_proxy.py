"""A loopback proxy that ends every chat-completions stream with ``data: [DONE]``.

``vf-eval`` (verifiers 0.4) relays model calls through its interception server, which waits
for the OpenAI ``data: [DONE]`` sentinel to close a streamed reply; ``transformers serve``
(5.x) ends its streams with a usage chunk and no sentinel, so every call fails with
"upstream stream ended before its terminal event". This proxy forwards ``/v1/*`` unchanged
and appends the sentinel to an event stream that lacks it.

    python examples/vf_eval/done_proxy.py http://127.0.0.1:8772 8773   # UPSTREAM PORT
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

DONE = b"data: [DONE]\n\n"


def build_app(upstream: str) -> Starlette:
    """The proxy in front of ``upstream`` (``http://HOST:PORT``, without ``/v1``)."""
    upstream = upstream.rstrip("/")
    client = httpx.AsyncClient(timeout=None)

    async def relay(request: Request) -> Response:
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        outgoing = client.build_request(
            request.method,
            upstream + request.url.path,
            content=await request.body(),
            headers=headers,
        )
        answer = await client.send(outgoing, stream=True)
        media = answer.headers.get("content-type", "")
        if "text/event-stream" not in media:
            body = await answer.aread()
            await answer.aclose()
            return Response(body, status_code=answer.status_code, media_type=media or None)
        return StreamingResponse(
            _with_done(answer), status_code=answer.status_code, media_type="text/event-stream"
        )

    return Starlette(routes=[Route("/v1/{path:path}", relay, methods=["GET", "POST"])])


async def _with_done(answer: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream events, then the ``[DONE]`` sentinel unless the last event was one."""
    tail = b""
    try:
        async for chunk in answer.aiter_raw():
            tail = (tail + chunk)[-64:]
            yield chunk
    finally:
        await answer.aclose()
    if not tail.rstrip().endswith(b"data: [DONE]"):
        yield DONE


def main(argv: list[str]) -> None:
    """``done_proxy.py UPSTREAM PORT``: serve the proxy on 127.0.0.1:PORT."""
    import uvicorn

    if len(argv) != 2:
        sys.exit("usage: done_proxy.py UPSTREAM PORT   (e.g. http://127.0.0.1:8772 8773)")
    uvicorn.run(build_app(argv[0]), host="127.0.0.1", port=int(argv[1]), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
