"""The LanguageModel protocol's promises, checked on every backend.

Backends: the shipped tiny LM in process (``HFLanguageModel``), ``ScriptedLM``, the same tiny
LM behind a real ``transformers serve`` (``OpenAICompatibleLM``), ``VLLMLanguageModel`` over
the ``vllm`` test double (``tests/doubles/fake_vllm.py``) and, on a GPU with vLLM installed,
over the real ``vllm.LLM`` (``gpu``-marked). What a backend legitimately cannot
promise is a capability flag of :class:`Backend`, and the test checks the documented
alternative instead of passing silently.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from mrt_env.lm.base import LanguageModel, SamplingParams
from mrt_env.lm.scripted import ScriptedLM

PROMPT = "Problem: 17+25?\n<think>\n"
OTHER = "Problem: 3*4?\n<think>\n"
UNICODE = "Problème: 2+3 = ? ∑ 😀\n<think>\n"


@dataclass(frozen=True)
class Backend:
    """A backend under test and what it promises.

    Attributes:
        lm: The model.
        seeded: Different seeds give different samples (``False``: a scripted double).
        empty_prompt: ``"generates"`` (from BOS / the script) or ``"raises"`` (``ValueError``).
        logprobs: Completions carry real log-probabilities (``False``: NaN, documented).
    """

    lm: LanguageModel
    seeded: bool
    empty_prompt: Literal["generates", "raises"]
    logprobs: bool


def _scripted() -> Backend:
    def script(prompt: str, index: int) -> str:
        return f"{len(prompt)} then {index}. Step 1: add.\n\nWait, check {prompt[:4]}."

    return Backend(ScriptedLM(script), seeded=False, empty_prompt="generates", logprobs=True)


def _hf() -> Backend:
    from mrt_env.tinymath import load_tiny_lm

    return Backend(load_tiny_lm(), seeded=True, empty_prompt="generates", logprobs=True)


def _server(request: pytest.FixtureRequest) -> Backend:
    from mrt_env.lm.openai_compat import OpenAICompatibleLM

    server = request.getfixturevalue("tiny_lm_server")
    # transformers serve seeds one process-wide generator per request: one request at a time
    lm = OpenAICompatibleLM(server.base_url, max_concurrency=1)
    return Backend(lm, seeded=True, empty_prompt="raises", logprobs=False)


def _vllm_double() -> Iterator[Backend]:
    from mrt_env.lm.vllm_backend import VLLMLanguageModel
    from mrt_env.tinymath.loading import tiny_lm_path
    from tests.doubles import fake_vllm

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "vllm", fake_vllm)
        lm = VLLMLanguageModel.from_pretrained(str(tiny_lm_path()), max_model_len=640)
        yield Backend(lm, seeded=True, empty_prompt="generates", logprobs=True)


def _vllm_real() -> Backend:
    """The real vLLM on ``$MRT_TEST_VLLM_MODEL`` (default: the tiny LM folder); GPU only."""
    import importlib.util
    import os

    from mrt_env.lm.vllm_backend import VLLMLanguageModel
    from mrt_env.tinymath.loading import tiny_lm_path

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: pip install 'mrt-gym[vllm]'")
    model = os.environ.get("MRT_TEST_VLLM_MODEL", str(tiny_lm_path()))
    lm = VLLMLanguageModel.from_pretrained(model, gpu_memory_utilization=0.3)
    return Backend(lm, seeded=True, empty_prompt="generates", logprobs=True)


BACKENDS: dict[str, Callable[..., Any]] = {
    "hf-tiny": _hf,
    "scripted": _scripted,
    "server": _server,
    "vllm-double": _vllm_double,
    "vllm-real": _vllm_real,
}


@pytest.fixture(
    scope="module",
    params=[
        "hf-tiny",
        "scripted",
        pytest.param("server", marks=pytest.mark.server),
        "vllm-double",
        pytest.param("vllm-real", marks=pytest.mark.gpu),
    ],
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "server":
        yield _server(request)
    elif request.param == "vllm-double":
        yield from _vllm_double()
    else:
        yield BACKENDS[request.param]()


def texts(groups: list[list[Any]]) -> list[list[str]]:
    return [[c.text for c in group] for group in groups]


def test_n_samples_per_prompt_depend_only_on_their_seed(backend: Backend) -> None:
    params = SamplingParams(max_new_tokens=12, temperature=1.0, n=3)
    both = backend.lm.generate([PROMPT, OTHER], params, seeds=[5, 6])
    alone = backend.lm.generate([OTHER], params, seeds=[6])
    assert [len(group) for group in both] == [3, 3]
    assert texts(both)[1] == texts(alone)[0]
    again = backend.lm.generate([OTHER], params, seeds=[7])
    if backend.seeded:
        assert texts(again) != texts(alone), "another seed should give other samples"
    else:
        assert texts(again) == texts(alone), "a scripted double ignores seeds (documented)"


def test_stop_excluded_and_a_match_at_offset_0_ignored(backend: Backend) -> None:
    greedy = SamplingParams(max_new_tokens=40, temperature=0.0)
    [[free]] = backend.lm.generate([PROMPT], greedy, seeds=[0])
    text = free.text
    assert len(text) >= 12, f"need a longer greedy continuation to test stops, got {text!r}"
    for stop in (text[:2], text[6:9]):
        [[cut]] = backend.lm.generate([PROMPT], _with_stop(greedy, stop), seeds=[0])
        at = text.find(stop, 1)
        if at < 0:
            assert cut.text == text and cut.finish_reason == free.finish_reason
            continue
        assert (cut.text, cut.finish_reason, cut.stop_string) == (text[:at], "stop", stop)
        assert backend.lm.decode(cut.token_ids) == cut.text


def _with_stop(params: SamplingParams, stop: str) -> SamplingParams:
    return SamplingParams(params.max_new_tokens, params.temperature, stop=(stop,))


def test_finish_reasons_and_token_caps(backend: Backend) -> None:
    [[short]] = backend.lm.generate([PROMPT], SamplingParams(3, temperature=0.0), seeds=[0])
    assert short.finish_reason == "length" and len(short.token_ids) == 3
    [[long]] = backend.lm.generate([PROMPT], SamplingParams(200, temperature=0.0), seeds=[0])
    assert long.finish_reason in ("eos", "length")
    if long.finish_reason == "eos":
        assert len(long.token_ids) < 200
    else:
        assert len(long.token_ids) == 200
    for completion in (short, long):
        assert len(completion.logprobs) == len(completion.token_ids)
        if backend.logprobs:
            assert all(math.isfinite(v) and v <= 0 for v in completion.logprobs)
        else:
            assert all(math.isnan(v) for v in completion.logprobs), "documented: NaN"


def test_count_tokens_matches_encode(backend: Backend) -> None:
    for text in (PROMPT, UNICODE, "", "a\n\nb"):
        assert backend.lm.count_tokens(text) == len(backend.lm.encode(text))
    assert backend.lm.decode(backend.lm.encode(PROMPT)) == PROMPT


def test_max_new_tokens_zero_gives_empty_length_completions(backend: Backend) -> None:
    out = backend.lm.generate([PROMPT, OTHER], SamplingParams(0, n=2), seeds=[1, 2])
    assert [[(c.text, c.token_ids, c.finish_reason) for c in g] for g in out] == [
        [("", (), "length")] * 2
    ] * 2


def test_empty_prompt(backend: Backend) -> None:
    params = SamplingParams(4, temperature=0.0, n=2)
    if backend.empty_prompt == "raises":
        with pytest.raises(ValueError, match="empty prompt"):
            backend.lm.generate([""], params, seeds=[0])
        return
    [group] = backend.lm.generate([""], params, seeds=[0])
    assert len(group) == 2 and all(len(c.token_ids) <= 4 for c in group)


def test_unicode_prompts_give_text(backend: Backend) -> None:
    [group] = backend.lm.generate([UNICODE], SamplingParams(8, n=2), seeds=[3])
    assert len(group) == 2
    for completion in group:
        assert isinstance(completion.text, str) and len(completion.token_ids) <= 8
