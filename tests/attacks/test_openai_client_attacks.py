"""Attacks on the OpenAI-compatible client by a hostile server on 127.0.0.1.

Each answer that is not the completions API's must end in a clear error naming the server,
within the documented deadline, never in a number (issue 17, section 4). The server is
``tests.attacks.hostile_http`` (a named double: real servers cannot be made to misbehave).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.lm.openai_compat import OpenAICompatibleLM
from mrt_env.lm.openai_server import CharTokenizer
from tests.attacks.hostile_http import Connection, Request, completion, head, hostile_server

PARAMS = SamplingParams(max_new_tokens=4, temperature=1.0)


def client(url: str, **kwargs: Any) -> OpenAICompatibleLM:
    options: dict[str, Any] = {"model": "m", "tokenizer": CharTokenizer(), "deadline": 2.0}
    return OpenAICompatibleLM(url, **{**options, **kwargs})


def answering(*choices: Any) -> Any:
    def behave(connection: Connection, request: Request) -> None:
        connection.answer(200, completion(*choices))

    return behave


def choice(**fields: Any) -> dict[str, Any]:
    return {"index": 0, "text": "4}", "finish_reason": "stop", **fields}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (choice(text=None), "text is NoneType"),
        ({"index": 0, "finish_reason": "stop"}, "text is NoneType"),
        (choice(text=42), "text is int"),
        ({"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"},
         "chat reply"),
        (choice(finish_reason="abort"), "finish_reason='abort'"),
        (choice(finish_reason="content_filter"), "finish_reason='content_filter'"),
        (choice(finish_reason=None), "finish_reason=None"),
        (choice(text="x" * 400, finish_reason="length"), "does not enforce max_tokens"),
        (choice(index=5), r"choice indices \[5\]"),
    ],
)  # fmt: skip
def test_a_reply_that_is_not_the_apis_is_an_error_naming_the_server(
    bad: dict[str, Any], message: str
) -> None:
    with (
        hostile_server(answering(bad), lifetime=20) as server,
        pytest.raises(ValueError, match=message) as caught,
    ):
        client(server.base_url).generate(["Q"], PARAMS, seeds=[0])
    assert f"server at {server.base_url}" in str(caught.value)
    assert len(server.requests) == 1  # garbage is not retried


def test_more_choices_than_n_is_an_error() -> None:
    three = answering(choice(), choice(index=1), choice(index=2))
    with (
        hostile_server(three) as server,
        pytest.raises(ValueError, match=r"3 choices for a request of n=2"),
    ):
        client(server.base_url).generate(["Q"], SamplingParams(4, n=2), seeds=[0])


def test_a_tokenize_endpoint_without_tokens_does_not_turn_the_budget_off() -> None:
    def behave(connection: Connection, request: Request) -> None:
        connection.answer(200, {"tokens": [], "count": 0})

    with hostile_server(behave) as server:
        lm = client(server.base_url, tokenizer=None)
        with pytest.raises(ValueError, match="no tokens for a non-empty text") as caught:
            lm.count_tokens("three tokens here")
    assert server.base_url.removesuffix("/v1") in str(caught.value)
    assert server.requests[0].path == "/tokenize"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "unannounced"])
def test_a_50_mb_body_is_refused_quickly(declared: bool) -> None:
    size = 50 << 20

    def behave(connection: Connection, request: Request) -> None:
        headers = {"Content-Length": str(size)} if declared else {}
        connection.send(head(200, headers) + b'{"choices": [{"text": "')
        block = b"9" * (1 << 16)
        for _ in range(size // len(block)):
            if connection.done():
                return
            connection.send(block)

    with hostile_server(behave, lifetime=30) as server:
        start = time.monotonic()
        with pytest.raises(ValueError, match=r"bytes") as caught:
            client(server.base_url).generate(["Q"], PARAMS, seeds=[0])
        elapsed = time.monotonic() - start
    assert server.base_url in str(caught.value) and elapsed < 10.0
    assert len(server.requests) == 1


def test_a_server_that_accepts_and_never_answers_fails_within_the_deadline() -> None:
    def behave(connection: Connection, request: Request) -> None:
        connection.wait()

    with hostile_server(behave, lifetime=40) as server:
        lm = client(server.base_url, deadline=2.0, request_timeout=2.0)
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="did not answer POST /completions") as caught:
            lm.generate(["Q"], PARAMS, seeds=[0])
        elapsed = time.monotonic() - start
    assert server.base_url in str(caught.value) and 1.5 < elapsed < 8.0


def test_the_default_request_deadline_follows_deadline_and_requested_tokens() -> None:
    def behave(connection: Connection, request: Request) -> None:
        connection.wait()

    with hostile_server(behave, lifetime=40) as server:
        lm = client(server.base_url, deadline=1.0, min_tokens_per_second=4.0)
        start = time.monotonic()
        with pytest.raises(ConnectionError):  # 2 requests in flight: 1 s + 4 * 2 / 4 s = 3 s
            lm.generate(["Q", "R"], PARAMS, seeds=[0, 1])
        elapsed = time.monotonic() - start
    assert 2.5 < elapsed < 9.0


@pytest.mark.parametrize("where", ["status line", "body"])
def test_a_server_that_drips_a_byte_at_a_time_fails_within_the_deadline(where: str) -> None:
    data = b'{"choices": [{"index": 0, "text": "4}", "finish_reason": "stop"}]}' * 50

    def behave(connection: Connection, request: Request) -> None:
        answer = head(200, {"Content-Length": str(len(data))})
        if where == "body":
            connection.send(answer)
            connection.drip(data, pause=0.1)
        else:
            connection.drip(answer + data, pause=0.1)

    with hostile_server(behave, lifetime=40) as server:
        lm = client(server.base_url, deadline=2.0, request_timeout=2.0)
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="did not answer"):
            lm.generate(["Q"], PARAMS, seeds=[0])
        elapsed = time.monotonic() - start
    assert (
        elapsed < 8.0
    )  # each byte arrives within any per-read timeout: only a total bound ends it


def test_redirects_to_another_host_are_not_followed() -> None:
    with hostile_server(answering(choice())) as elsewhere:
        target = elsewhere.base_url.replace("127.0.0.1", "localhost") + "/completions"

        def behave(connection: Connection, request: Request) -> None:
            connection.send(head(307, {"Location": target, "Content-Length": "0"}))

        redirect = r"rejected POST /completions \(307\).*redirect"
        with hostile_server(behave) as server, pytest.raises(ValueError, match=redirect):
            client(server.base_url).generate(["Q"], PARAMS, seeds=[0])
    assert elsewhere.requests == []


def test_a_refused_connection_fails_in_seconds_and_logs_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lm = client(f"http://127.0.0.1:{port}/v1", deadline=60.0)
    start = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="mrt_env.lm.openai_compat"),
        pytest.raises(ConnectionError, match="nothing accepts connections") as caught,
    ):
        lm.generate(["Q"], PARAMS, seeds=[0])
    elapsed = time.monotonic() - start
    assert f"127.0.0.1:{port}" in str(caught.value) and elapsed < 8.0
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all(f"127.0.0.1:{port}" in r.getMessage() for r in retries)
