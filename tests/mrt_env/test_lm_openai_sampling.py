"""OpenAICompatibleLM asks servers to sample, warns about one that does not, takes lm_options.

The server is a named double (``tests.attacks.hostile_http``) that records each request; the
real ``transformers serve`` path is in ``tests/realmodel/test_episodes_and_sampling.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import mrt_env  # noqa: F401  (registers MRTMath-v0)
from mrt_env.config import build_lm
from mrt_env.lm.base import SamplingParams
from mrt_env.lm.openai_compat import SAMPLING_CONFIG, OpenAICompatibleLM
from mrt_env.lm.openai_server import CharTokenizer
from tests.attacks.hostile_http import Connection, Request, completion, hostile_server

LONG = "The answer is 4, since 2 + 2 = 4."
"""A greedy server's answer: long enough (>= 8 tokens) to count as evidence."""


def greedy(connection: Connection, request: Request) -> None:
    """A server that ignores temperature and seed: the same text every time."""
    text = LONG[: request.body["max_tokens"]]
    connection.answer(200, completion({"index": 0, "text": text, "finish_reason": "length"}))


def seeded(connection: Connection, request: Request) -> None:
    text = f"sample {request.body['seed']} of a sampling server"[: request.body["max_tokens"]]
    connection.answer(200, completion({"index": 0, "text": text, "finish_reason": "length"}))


def client(url: str, **kwargs: Any) -> OpenAICompatibleLM:
    return OpenAICompatibleLM(url, model="m", tokenizer=CharTokenizer(), deadline=5.0, **kwargs)


def test_sampling_requests_carry_transformers_serves_generation_config() -> None:
    with hostile_server(seeded) as server:
        lm = client(server.base_url)
        lm.generate(["Q"], SamplingParams(40, temperature=0.7), seeds=[0])
        lm.generate(["Q"], SamplingParams(40, temperature=0.0), seeds=[0])
    sampled, greedy_body = (r.body for r in server.requests)
    assert json.loads(sampled["generation_config"]) == {"do_sample": True, "top_k": 0}
    assert SAMPLING_CONFIG == {"do_sample": True, "top_k": 0}
    assert "generation_config" not in greedy_body  # temperature 0 is greedy anyway


def test_a_server_that_rejects_generation_config_is_asked_once_more_without_it() -> None:
    def strict(connection: Connection, request: Request) -> None:
        if "generation_config" in request.body:
            detail = "Unexpected fields in the request: {'generation_config'}"
            return connection.answer(422, {"detail": detail})
        return seeded(connection, request)

    with hostile_server(strict) as server:
        lm = client(server.base_url)
        [[first]] = lm.generate(["Q"], SamplingParams(40), seeds=[0])
        lm.generate(["Q"], SamplingParams(40), seeds=[1])
    assert first.text.startswith("sample ")
    assert ["generation_config" in r.body for r in server.requests] == [True, False, False]


def test_a_server_that_ignores_temperature_is_flagged_once_at_the_callers_line() -> None:
    with hostile_server(greedy) as server:
        lm = client(server.base_url)
        params = SamplingParams(40, temperature=1.0, n=4)
        with pytest.warns(UserWarning, match="ignores the temperature") as record:
            lm.generate(["A", "B", "C"], params, seeds=[0, 1, 2])
        assert [Path(w.filename).name for w in record] == [Path(__file__).name]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lm.generate(["D"], params, seeds=[3])  # once only


def test_a_sampling_server_and_short_answers_are_not_flagged() -> None:
    with hostile_server(seeded) as server, warnings.catch_warnings():
        warnings.simplefilter("error")
        client(server.base_url).generate(["A", "B", "C"], SamplingParams(40, n=3), [0, 1, 2])
    with hostile_server(greedy) as server, warnings.catch_warnings():
        warnings.simplefilter("error")  # 4-character answers may agree by chance
        client(server.base_url).generate(["A", "B", "C"], SamplingParams(4, n=3), [0, 1, 2])


def test_lm_options_reach_the_server_backend_and_unknown_ones_raise() -> None:
    spec = "openai:http://127.0.0.1:1/v1#m"
    options = {"max_concurrency": 1, "stop_mode": "client", "tokenizer": CharTokenizer()}
    lm = build_lm(spec, None, options)
    assert isinstance(lm, OpenAICompatibleLM)
    assert (lm.max_concurrency, lm.stop_mode) == (1, "client")
    with pytest.raises(TypeError, match=r"\['max_concurency'\] are not options of an Open"):
        build_lm(spec, None, {"max_concurency": 1})
    with pytest.raises(TypeError, match="max_concurency"):
        gym.make(
            "MRTMath-v0", lm=spec, lm_options={"max_concurency": 1}, template="tiny",
            prover="none",
        )  # fmt: skip


def test_load_language_model_passes_options_to_the_server_backend() -> None:
    from agents.session import load_language_model

    spec = "openai:http://127.0.0.1:1/v1#m"
    lm = load_language_model(spec, "cpu", tokenizer=CharTokenizer(), max_concurrency=2)
    assert lm.max_concurrency == 2
    with pytest.raises(TypeError, match="prefix_cache_size"):
        load_language_model(spec, "cpu", prefix_cache_size=8)
