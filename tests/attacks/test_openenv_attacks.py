"""Hostile clients of the served MRTMath-v0 (real server under uvicorn on loopback).

Each attack asserts what the server did (an OpenEnv error message with its code, or a clean
close with its code), and that the server still serves an ordinary client afterwards, with
the attacker's session freed (``/mrt/stats``: sessions, child processes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

pytest.importorskip("openenv")
pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.openenv_servers import EnvServer, serve_env

TOKEN = "s3cret-test-token"
MAX_SESSIONS = 3
MAX_ACTION_CHARS = 1000
MAX_MESSAGE_BYTES = 20_000
IDLE_TIMEOUT_S = 6


@pytest.fixture(scope="module")
def guarded() -> Iterator[EnvServer]:
    """A server with a token and small limits; its step timeout (1 ms) fails every reset."""
    args = ["--k", "1", "--token-budget", "32", "--max-sessions", str(MAX_SESSIONS)]
    args += ["--max-action-chars", str(MAX_ACTION_CHARS)]
    args += ["--max-message-bytes", str(MAX_MESSAGE_BYTES)]
    args += ["--idle-timeout", str(IDLE_TIMEOUT_S), "--step-timeout", "0.001"]
    with serve_env(*args, token=TOKEN) as server:
        yield server


def _ws(server: EnvServer, token: str | None = TOKEN, query: str = "") -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/ws" + query
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(url, additional_headers=headers, open_timeout=10, max_size=2**24)


def _ask(ws: ClientConnection, message: Any) -> dict[str, Any]:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return dict(json.loads(ws.recv(timeout=60)))


def _error(answer: dict[str, Any], code: str, text: str = "") -> None:
    assert answer["type"] == "error", answer
    assert answer["data"]["code"] == code, answer
    assert text in answer["data"]["message"], answer


def _still_serves(server: EnvServer, token: str | None = TOKEN) -> None:
    """An ordinary client gets an answer (a reset, or the timeout error on the guarded one)."""
    with _ws(server, token) as ws:
        answer = _ask(ws, {"type": "reset", "data": {"seed": 0}})
    if answer["type"] == "error":
        _error(answer, "EXECUTION_ERROR", "step_timeout_s")
    else:
        assert answer["data"]["observation"]["text"].endswith("<think>\n")


def _closed_code(ws: ClientConnection, seconds: float) -> int | None:
    """Read until the server closes; its close code."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None
    except TimeoutError:
        return None
    return None


# ------------------------------------------------------------------ authentication
def test_missing_or_wrong_token_is_refused(guarded: EnvServer) -> None:
    for token in (None, "wrong"):
        with pytest.raises(InvalidStatus) as refused:
            _ws(guarded, token)
        assert refused.value.response.status_code == 403  # handshake refused (close 1008)
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(f"{guarded.base_url}/mrt/stats", timeout=10)
    assert http.value.code == 401
    _still_serves(guarded)


# ------------------------------------------------------------------ malformed messages
@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ("{not json", "INVALID_JSON", "Invalid JSON"),
        ({"type": "teleport"}, "UNKNOWN_TYPE", "teleport"),
        ({"type": "step", "data": {"txt": "hi"}}, "VALIDATION_ERROR", "Invalid"),
        ({"type": "step", "data": {"text": 42}}, "VALIDATION_ERROR", "Invalid"),
        (
            {"type": "step", "data": {"text": "x" * (MAX_ACTION_CHARS + 1)}},
            "EXECUTION_ERROR",
            "limit",
        ),
        ({"type": "step", "data": {"text": "hi"}}, "EXECUTION_ERROR", "before reset"),
        ({"type": "reset", "data": {"seed": -1}}, "EXECUTION_ERROR", "seed"),
        ({"type": "reset", "data": {"seed": "abc"}}, "EXECUTION_ERROR", "seed"),
        ({"type": "reset", "data": "not an object"}, "VALIDATION_ERROR", "Invalid"),
    ],
)
def test_malformed_messages_get_an_error_and_the_session_lives_on(
    guarded: EnvServer, message: Any, code: str, text: str
) -> None:
    with _ws(guarded) as ws:
        _error(_ask(ws, message), code, text)
        _error(_ask(ws, {"type": "nothing"}), "UNKNOWN_TYPE")  # same socket still answers


def test_oversized_message_closes_the_socket(guarded: EnvServer) -> None:
    with _ws(guarded) as ws:
        ws.send(json.dumps({"type": "step", "data": {"text": "x" * (MAX_MESSAGE_BYTES * 2)}}))
        assert _closed_code(ws, 10) == 1009  # message too big
    _still_serves(guarded)


# ------------------------------------------------------------------ reset options allow-list
@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"rewards": ["os:system"]}, "not allowed"),
        ({"rewards": ["rewards.modules:LengthPenalty"]}, "not allowed"),
        ({"problem_set": "/etc/passwd"}, "not served"),
        ({"problem_set": "../data/math500.jsonl"}, "not served"),  # any path, relative too
        ({"template": "HuggingFaceTB/SmolLM2-135M-Instruct"}, "not allowed"),
        ({"lm": "gpt2"}, "unknown reset option"),
        ({"prover": "none"}, "unknown reset option"),
        ({"problems": "/etc/passwd"}, "unknown reset option"),
        ({"k": 10_000}, "k must be an int"),
        ({"token_budget": 0}, "token_budget must be an int"),
        ({"problem": {"problem": "1+1", "answer": "2", "path": "/etc"}}, "problem must be"),
        ({"problem_id": "no-such-problem"}, "not in the problem set"),
    ],
)
def test_reset_options_outside_the_allow_list_are_refused(
    mrt_env_server: EnvServer, options: dict[str, Any], text: str
) -> None:
    with _ws(mrt_env_server, None) as ws:
        _error(_ask(ws, {"type": "reset", "data": {"seed": 1, **options}}), "EXECUTION_ERROR", text)
        answer = _ask(ws, {"type": "reset", "data": {"seed": 1, "k": 1}})
        assert answer["type"] == "observation"  # the same session resets normally afterwards


# ------------------------------------------------------------------ sessions
def test_unknown_session_id_is_refused(guarded: EnvServer) -> None:
    with _ws(guarded, query="?session_id=no-such-session") as ws:
        _error(json.loads(ws.recv(timeout=30)), "SESSION_ERROR", "Unknown session_id")
        assert _closed_code(ws, 10) == 1000
    _still_serves(guarded)


def test_closed_session_is_gone(guarded: EnvServer) -> None:
    with _ws(guarded) as ws:
        ws.send(json.dumps({"type": "close"}))
        assert _closed_code(ws, 10) == 1000
        with pytest.raises(ConnectionClosed):
            _ask(ws, {"type": "state"})
    assert guarded.wait_for("sessions_live", 0)["sessions_live"] == 0


def test_flood_of_connections_gets_capacity_errors(guarded: EnvServer) -> None:
    baseline = guarded.wait_for("sessions_live", 0)
    codes = []
    with ExitStack() as stack:
        sockets = [stack.enter_context(_ws(guarded)) for _ in range(MAX_SESSIONS + 5)]
        for ws in sockets:
            try:  # a refused session is told at once, unprompted (well within the idle timeout)
                codes.append(json.loads(ws.recv(timeout=0.5))["data"]["code"])
            except TimeoutError:
                codes.append("open")
            except ConnectionClosed:
                codes.append("closed without a message")
        assert codes.count("open") == MAX_SESSIONS, codes
        assert codes.count("CAPACITY_REACHED") == 5, codes
    after = guarded.wait_for("sessions_live", 0)
    assert after["sessions_live"] == 0
    assert after["child_processes"] <= max(baseline["child_processes"], 0)
    _still_serves(guarded)


def test_idle_session_is_closed(guarded: EnvServer) -> None:
    with _ws(guarded) as ws:
        assert _ask(ws, {"type": "state"})["type"] == "state"
        start = time.monotonic()
        assert _closed_code(ws, IDLE_TIMEOUT_S + 20) == 1001
        assert time.monotonic() - start >= IDLE_TIMEOUT_S - 0.5
    assert guarded.wait_for("sessions_live", 0)["sessions_live"] == 0


def test_step_timeout_answers_an_error_and_the_server_serves_on(guarded: EnvServer) -> None:
    with _ws(guarded) as ws:
        _error(
            _ask(ws, {"type": "reset", "data": {"seed": 0}}), "EXECUTION_ERROR", "step_timeout_s"
        )
        _error(_ask(ws, {"type": "step", "data": {"text": "hi"}}), "EXECUTION_ERROR", "reset")
    _still_serves(guarded)


# ------------------------------------------------------------------ trajectories
def test_step_after_done_is_an_error(mrt_env_server: EnvServer) -> None:
    with _ws(mrt_env_server, None) as ws:
        assert _ask(ws, {"type": "reset", "data": {"seed": 2, "k": 1}})["type"] == "observation"
        done = _ask(ws, {"type": "step", "data": {"text": "</think> \\boxed{1}"}})
        assert done["data"]["done"] is True
        _error(
            _ask(ws, {"type": "step", "data": {"text": "more"}}), "EXECUTION_ERROR", "call reset()"
        )
        assert _ask(ws, {"type": "reset", "data": {"seed": 2, "k": 1}})["type"] == "observation"


def test_disconnect_mid_trajectory_frees_the_session(mrt_env_server: EnvServer) -> None:
    # sessions of earlier tests on this server may still be closing: count relative to them
    baseline = mrt_env_server.wait_for("sessions_live", 0)
    live = baseline["sessions_live"]
    ws = _ws(mrt_env_server, None).__enter__()
    assert _ask(ws, {"type": "reset", "data": {"seed": 4, "k": 1}})["type"] == "observation"
    ws.send(json.dumps({"type": "step", "data": {"text": "Let me think.\n\n"}}))
    assert mrt_env_server.stats()["sessions_live"] == live + 1
    ws.socket.close()  # drop the TCP connection without a close handshake, mid-step
    after = mrt_env_server.wait_for("sessions_live", 0)
    assert after["sessions_live"] <= live
    assert after["child_processes"] <= max(baseline["child_processes"], 0) + 1
    _still_serves(mrt_env_server, None)
