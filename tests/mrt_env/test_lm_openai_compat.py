"""OpenAICompatibleLM's normalisation of server answers, on emulated server behaviours.

The real-server path is tested in ``test_lm_server.py`` (``transformers serve``, which keeps stop
strings in the text). Here ``_complete`` is replaced by emulations of the other documented
behaviours: a vLLM-like server that trims stops and names them (``stop_reason``), and one that
trims them silently.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.lm.openai_compat import OpenAICompatibleLM, parse_openai_spec
from mrt_env.lm.openai_server import CharTokenizer

PROMPT = "Q: 2+3?\n"
WORLD = "\n\nWait, 5.\n\nSo 5."
"""What the emulated model writes after ``PROMPT`` (and after ``PROMPT + WORLD[:i]``, the rest)."""


def emulated(lm: OpenAICompatibleLM, name_stop: bool) -> Any:
    """``_complete`` of a server that trims stops (matched at any offset, 0 included)."""

    def complete(prompt: str, params: SamplingParams, seed: int, n: int, max_tokens: int):
        assert prompt.startswith(PROMPT)
        text = WORLD[len(prompt) - len(PROMPT) :]
        sent = params.stop if lm.stop_mode == "server" else ()
        hits = [(text.find(s), s) for s in sent if text.find(s) >= 0]
        if hits:
            at, stop = min(hits)
            if at < max_tokens:
                extra = {"stop_reason": stop} if name_stop else {}
                return [SimpleNamespace(text=text[:at], finish_reason="stop", model_extra=extra)]
        finish = "length" if len(text) > max_tokens else "stop"
        extra = {"stop_reason": None} if name_stop else {}
        return [SimpleNamespace(text=text[:max_tokens], finish_reason=finish, model_extra=extra)]

    return complete


def make(name_stop: bool = True, **kwargs: Any) -> OpenAICompatibleLM:
    lm = OpenAICompatibleLM("http://127.0.0.1:1/v1", model="m", tokenizer=CharTokenizer(), **kwargs)
    lm._complete = emulated(lm, name_stop)  # type: ignore[method-assign]
    return lm


def test_a_stop_at_offset_0_is_resumed_and_the_next_one_cuts() -> None:
    params = SamplingParams(max_new_tokens=64, stop=("\n\nWait", "\n\nSo"))
    [[c]] = make().generate([PROMPT], params, seeds=[0])
    assert (c.text, c.finish_reason, c.stop_string) == ("\n\nWait, 5.", "stop", "\n\nSo")
    assert c.token_ids == tuple(ord(ch) for ch in c.text)


def test_a_resumed_sample_keeps_the_token_budget() -> None:
    [[c]] = make().generate([PROMPT], SamplingParams(9, stop=("\n\nWait",)), seeds=[0])
    assert (c.text, c.finish_reason) == ("\n\nWait, 5", "length")
    [[c]] = make().generate([PROMPT], SamplingParams(6, stop=("\n\nWait",)), seeds=[0])
    assert (c.text, c.finish_reason) == ("\n\nWait", "length")  # the ignored stop used it all


def test_end_of_sequence_is_eos() -> None:
    [[c]] = make().generate([PROMPT], SamplingParams(64, stop=("\n\nWait",)), seeds=[0])
    assert (c.text, c.finish_reason, c.stop_string) == (WORLD, "eos", None)


def test_a_server_that_trims_stops_silently_is_flagged() -> None:
    params = SamplingParams(max_new_tokens=64, stop=("Never",))
    with pytest.warns(UserWarning, match="does not name the stop"):
        [[c]] = make(name_stop=False).generate([PROMPT], params, seeds=[0])
    assert c.finish_reason == "eos"


def test_client_stop_mode_sends_no_stops_and_cuts_locally() -> None:
    lm = make(name_stop=False, stop_mode="client")
    params = SamplingParams(max_new_tokens=64, stop=("\n\nWait", "\n\nSo"))
    [[c]] = lm.generate([PROMPT], params, seeds=[0])
    assert (c.text, c.finish_reason, c.stop_string) == ("\n\nWait, 5.", "stop", "\n\nSo")


def test_bad_settings_and_specs_raise() -> None:
    with pytest.raises(ValueError, match="stop_mode"):
        make(stop_mode="both")
    with pytest.raises(ValueError, match="openai:http"):
        parse_openai_spec("openai:127.0.0.1:8000")
    with pytest.raises(ValueError, match="empty prompt"):
        make().generate([""], SamplingParams(4), seeds=[0])
    with pytest.raises(ValueError, match="2 seeds for 1 prompts"):
        make().generate([PROMPT], SamplingParams(4), seeds=[0, 1])


def test_build_lm_understands_openai_and_vllm_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mrt_env.config import build_lm
    from mrt_env.lm.vllm_backend import VLLMLanguageModel
    from mrt_env.tinymath.loading import tiny_lm_path
    from tests.doubles import fake_vllm

    lm = build_lm("openai:http://127.0.0.1:1/v1#served", None)  # no request: the model is named
    assert isinstance(lm, OpenAICompatibleLM)
    assert (lm.base_url, lm.model, lm.name) == ("http://127.0.0.1:1/v1", "served", "served")
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    engine = build_lm(f"vllm:{tiny_lm_path()}", None)
    assert isinstance(engine, VLLMLanguageModel) and engine.name == str(tiny_lm_path())
