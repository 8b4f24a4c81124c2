"""VLLMLanguageModel: request shape on the ``vllm`` test double; real vLLM on a GPU.

The GPU tests run the real ``vllm.LLM`` on ``$MRT_TEST_VLLM_MODEL`` (default: the shipped tiny
LM folder) and skip, saying why, without CUDA or without vLLM installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.templates import get_template
from mrt_env.tinymath.loading import tiny_lm_path


@pytest.fixture(scope="module")
def double_lm() -> Iterator[Any]:
    from mrt_env.lm.vllm_backend import VLLMLanguageModel
    from tests.doubles import fake_vllm

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "vllm", fake_vllm)
        yield VLLMLanguageModel.from_pretrained(str(tiny_lm_path()), max_model_len=640)


def test_engine_options_reach_vllm_with_prefix_caching_on(double_lm: Any) -> None:
    args = double_lm.llm.engine_args
    assert args["enable_prefix_caching"] is True and args["max_model_len"] == 640
    assert args["tensor_parallel_size"] == 1 and 0 < args["gpu_memory_utilization"] <= 1


def test_k_forced_answers_per_prefix_go_out_as_one_request_with_n_k(
    double_lm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[Any]] = []
    generate = double_lm.llm.generate

    def spy(prompts: Any, sampling_params: Any, use_tqdm: bool = True) -> Any:
        seen.append(list(sampling_params))
        return generate(prompts, sampling_params, use_tqdm=use_tqdm)

    monkeypatch.setattr(double_lm.llm, "generate", spy)
    template = get_template("tiny")
    prompt = template.render_prompt("2+3")
    requests = [ProverRequest("p", prompt, "5", prefix, seed=i) for i, prefix in enumerate("ab")]
    SampledMetaProver(double_lm, "tiny", k=4, max_answer_tokens=4).estimate(requests)
    assert len(seen) == 1 and [p.n for p in seen[0]] == [4, 4]
    assert len({p.seed for p in seen[0]}) == 2  # each prefix its own seed


def test_a_stop_at_offset_0_is_resumed_from_the_sampled_tokens(double_lm: Any) -> None:
    prompt = get_template("tiny").render_prompt("17+25")
    greedy = SamplingParams(max_new_tokens=30, temperature=0.0)
    [[free]] = double_lm.generate([prompt], greedy, seeds=[0])
    calls = double_lm.llm.generate_calls
    stop = free.text[:3]
    [[cut]] = double_lm.generate([prompt], SamplingParams(30, 0.0, stop=(stop,)), seeds=[0])
    assert double_lm.llm.generate_calls == calls + 2  # vLLM stopped at offset 0: one resume
    at = free.text.find(stop, 1)
    assert cut.text == (free.text[:at] if at > 0 else free.text)


# ---------------------------------------------------------------- real vLLM (GPU)
def _real_model() -> str:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: pip install 'mrt-gym[vllm]'")
    return os.environ.get("MRT_TEST_VLLM_MODEL", str(tiny_lm_path()))


@pytest.mark.gpu
def test_real_vllm_prover_matches_the_hf_backend_and_is_timed() -> None:
    """The prover benchmark on one GPU: J from vLLM and from HFLanguageModel agree within
    their 95% intervals; the wall time of each is printed (run with ``-s``)."""
    from mrt_env.lm.hf import HFLanguageModel
    from mrt_env.lm.vllm_backend import VLLMLanguageModel

    model = _real_model()
    engine = VLLMLanguageModel.from_pretrained(model, gpu_memory_utilization=0.3)
    hf = HFLanguageModel.from_pretrained(model, device="cuda")
    template = get_template("tiny") if model == str(tiny_lm_path()) else get_template("plain")
    prompts = [template.render_prompt(f"{a}+{a + 7}") for a in range(12, 20)]
    requests = [
        ProverRequest(f"p{i}", p, str(2 * (12 + i) + 7), prefix, seed=i)
        for i, p in enumerate(prompts)
        for prefix in ("", f"{12 + i}+{19 + i}: ")
    ]
    figures = {}
    for name, lm in (("vllm", engine), ("hf", hf)):
        prover = SampledMetaProver(lm, template, k=32, max_answer_tokens=8, cache_size=0)
        prover.estimate(requests[:2])  # warm-up
        start = time.perf_counter()
        figures[name] = (prover.estimate(requests), time.perf_counter() - start)
    (ours, ours_s), (theirs, theirs_s) = figures["vllm"], figures["hf"]
    print(f"\nprover on {model}: vLLM {ours_s:.2f} s, HFLanguageModel {theirs_s:.2f} s")
    for a, b in zip(ours, theirs, strict=True):
        assert a.ci_low <= b.ci_high and b.ci_low <= a.ci_high
