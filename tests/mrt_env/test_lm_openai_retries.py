"""OpenAICompatibleLM over HTTP against a named double of a completions server.

The double (a ``http.server`` on loopback) fails on demand, which a real server cannot be made
to do: it answers 5xx a set number of times, rejects a marked request with 400 and honours
``n`` like vLLM. The real-server tests are in ``test_lm_server.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.lm.openai_compat import OpenAICompatibleLM
from mrt_env.lm.openai_server import CharTokenizer


class FlakyCompletionsDouble(BaseHTTPRequestHandler):
    """``POST /v1/completions`` double: ``failures`` 500s first, 400 for ``max_tokens=999``,
    ``n`` choices, token ids and log-probabilities when ``logprobs`` is set."""

    failures: ClassVar[int] = 0
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if type(self).failures > 0:
            type(self).failures -= 1
            return self._send(500, {"error": {"message": "busy"}})
        if body["max_tokens"] == 999:
            return self._send(400, {"detail": "max_tokens is too large"})
        choices: list[dict[str, Any]] = [
            {
                "index": j,
                "text": f"s{body['seed']}.{j}"[: body["max_tokens"]],
                "finish_reason": "length",
            }
            for j in range(body.get("n", 1))
        ]
        if body.get("logprobs") is not None:  # vLLM with return_tokens_as_token_ids
            for choice in choices:
                tokens = [f"token_id:{ord(c)}" for c in choice["text"]]
                choice["logprobs"] = {"tokens": tokens, "token_logprobs": [-0.5] * len(tokens)}
        created = {"id": "c", "object": "text_completion", "created": 0, "model": "m"}
        return self._send(200, {**created, "choices": choices})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def double_url() -> Iterator[str]:
    FlakyCompletionsDouble.failures, FlakyCompletionsDouble.bodies = 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyCompletionsDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def make(url: str) -> OpenAICompatibleLM:
    return OpenAICompatibleLM(url, model="m", tokenizer=CharTokenizer(), deadline=10.0)


def test_5xx_answers_are_retried_with_backoff(double_url: str) -> None:
    FlakyCompletionsDouble.failures = 2
    [[c]] = make(double_url).generate(["Q"], SamplingParams(4), seeds=[0])
    assert len(FlakyCompletionsDouble.bodies) == 3 and c.finish_reason == "length"


def test_a_4xx_answer_raises_with_the_servers_message_without_retrying(double_url: str) -> None:
    with pytest.raises(ValueError, match=r"rejected POST /completions \(400\).*too large"):
        make(double_url).generate(["Q"], SamplingParams(999), seeds=[0])
    assert len(FlakyCompletionsDouble.bodies) == 1


def test_a_server_that_honours_n_gets_one_request_per_prompt(double_url: str) -> None:
    lm = make(double_url)
    out = lm.generate(["Q", "R"], SamplingParams(4, n=3), seeds=[5, 6])
    assert [len(g) for g in out] == [3, 3] and len(FlakyCompletionsDouble.bodies) == 2
    assert {b["n"] for b in FlakyCompletionsDouble.bodies} == {3} and lm.use_n is None
    alone = lm.generate(["R"], SamplingParams(4, n=3), seeds=[6])
    assert [c.text for c in alone[0]] == [c.text for c in out[1]]  # the seed alone decides


def test_token_ids_and_logprobs_come_from_the_server_when_asked(double_url: str) -> None:
    lm = OpenAICompatibleLM(double_url, model="m", tokenizer=CharTokenizer(), logprobs=True)
    [[c]] = lm.generate(["Q"], SamplingParams(4), seeds=[0])
    assert c.token_ids == tuple(ord(ch) for ch in c.text) and set(c.logprobs) == {-0.5}
