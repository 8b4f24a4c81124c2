"""SmolLM2 gets a real MRT signal: episodes without marker words, a served μ that samples.

SmolLM2-135M-Instruct writes no marker words ("Wait", ...), so the official marker rule leaves
each reply one episode; the env's default segmenter for ``template="chat"`` on a model without
thinking tags falls back to paragraphs of a minimum token size. ``transformers serve`` on the
model folder as it is (the README's command) decodes greedily unless the request carries a
``generation_config``; the client sends one, and warns when a server still ignores the
temperature. Settings are small so that each test takes about a minute on a 2-core CPU.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import mrt_env  # noqa: F401  (registers MRTMath-v0)
from mrt_env.lm.base import SamplingParams
from mrt_env.lm.openai_compat import OpenAICompatibleLM
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.segmenters import FallbackSegmenter, MarkerSegmenter, thinking_part

pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(900)]  # ~1-4 min each under load

EASY_IDS = ("test/number_theory/132.json", "test/algebra/1004.json", "test/prealgebra/192.json")
"""Short level-1 MATH-500 problems (remainder of 2004 / 12; 2^8 = 4^x; 2^3 * 3^x = 72)."""


def easy_problems(math500: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in math500.read_text().splitlines() if line.strip()]
    by_id = {r["id"]: r for r in records}
    return [by_id[i] for i in EASY_IDS]


def chat_env(lm: Any, math500: Path, **kwargs: Any) -> gym.Env:
    return gym.make("MRTMath-v0", problems=str(math500), lm=lm, template="chat", **kwargs)


@pytest.fixture(scope="module")
def plain_server(smollm2_path: Path) -> Iterator[Any]:
    """``transformers serve`` on the model folder as it is (its generation config is greedy)."""
    from tests.servers import serve_model

    with serve_model(smollm2_path) as server:
        yield server


def test_default_segmenter_splits_smollm2_replies_into_several_episodes(
    real_lm: Any, math500: Path
) -> None:
    env = chat_env(real_lm, math500, prover="none")
    components = env.unwrapped.core.components
    segmenter, template = components.segmenter, components.template
    assert isinstance(segmenter, FallbackSegmenter) and template.end_think == "\\boxed{"
    prompts = [template.render_prompt(p["problem"]) for p in easy_problems(math500)]
    params = SamplingParams(max_new_tokens=256, temperature=0.7, n=2)
    replies = [
        c.text for group in real_lm.generate(prompts, params, seeds=[0, 1, 2]) for c in group
    ]
    thinking = [thinking_part(text, template.end_think)[0] for text in replies]
    fallback = [len(segmenter.split(t)) for t in thinking]
    official = [len(MarkerSegmenter().split(t)) for t in thinking]
    print(f"\nepisodes per reply: fallback {fallback}, official marker rule {official}")
    assert np.mean(fallback) >= 2.0
    assert np.mean(official) < np.mean(fallback)
    for text, pieces in zip(thinking, (segmenter.split(t) for t in thinking), strict=True):
        assert "".join(pieces) == text
        if len(pieces) > 1:
            assert all(real_lm.count_tokens(p) >= segmenter.min_tokens - 2 for p in pieces)


def test_served_smollm2_samples_with_the_readmes_command(
    plain_server: Any, smollm2_path: Path
) -> None:
    """K forced answers through a server on the unchanged folder: distinct, as asked."""
    prompts = [
        "The capital of France is",
        "Once upon a time,",
        "My favourite number is",  # greedy: " 11." (too short to count as evidence)
        "In a small village by the sea,",
    ]
    params = SamplingParams(max_new_tokens=12, temperature=1.0, n=4)
    served = OpenAICompatibleLM(plain_server.base_url, max_concurrency=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sampling server raises no "ignores" warning
        groups = served.generate(prompts, params, seeds=[0, 1, 2, 3])
    assert all(len({c.text for c in group}) >= 2 for group in groups)

    greedy = OpenAICompatibleLM(
        plain_server.base_url, max_concurrency=1, send_generation_config=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        groups = greedy.generate(prompts, params, seeds=[0, 1, 2, 3])
    print("\nwithout generation_config:", [[c.text for c in g] for g in groups], caught)
    assert all(len({c.text for c in group}) == 1 for group in groups)  # greedy
    assert any("ignores the temperature" in str(w.message) for w in caught)


def test_served_and_in_process_j_agree_within_their_intervals(
    plain_server: Any, real_lm: Any, math500: Path
) -> None:
    env = chat_env(real_lm, math500, prover="none")
    template = env.unwrapped.core.components.template
    problem = easy_problems(math500)[0]  # the remainder of 2004 / 12: 0
    prompt = template.render_prompt(problem["problem"])
    prefixes = ["", "2004 divided by 12 is 167 with remainder 0.\n\nSo the remainder is 0."]
    requests = [
        ProverRequest(problem["id"], prompt, problem["answer"], prefix, seed=i)
        for i, prefix in enumerate(prefixes)
    ]
    served = OpenAICompatibleLM(
        plain_server.base_url, max_concurrency=1, tokenizer=real_lm.tokenizer
    )
    figures = []
    for lm in (served, real_lm):
        prover = SampledMetaProver(
            lm, template, k=16, max_answer_tokens=6, temperature=1.0, cache_size=0
        )
        figures.append(prover.estimate(requests))
    for prefix, remote, local in zip(prefixes, *figures, strict=True):
        print(
            f"\nprefix {prefix!r}: J served {remote.j:.3f} [{remote.ci_low:.3f}, "
            f"{remote.ci_high:.3f}], in-process {local.j:.3f} [{local.ci_low:.3f}, "
            f"{local.ci_high:.3f}] (K=16)"
        )
        assert remote.ci_low <= local.ci_high and local.ci_low <= remote.ci_high
    assert any(e.j > 0 for e in figures[1]), "J is 0 on every prefix: the check is vacuous"


def test_served_and_in_process_forced_answers_are_the_same_tokens_when_greedy(
    plain_server: Any, real_lm: Any, math500: Path
) -> None:
    """μ's exact request on both engines: the same prompt text, tokens, special tokens, answer
    cap and end of sequence give the same greedy forced answers, token for token. (Sampled,
    the engines differ only in their random numbers.)"""
    env = chat_env(real_lm, math500, prover="none")
    template = env.unwrapped.core.components.template
    problem = easy_problems(math500)[0]  # the remainder of 2004 / 12: 0
    prompt = template.render_prompt(problem["problem"])
    prefixes = [
        "",
        "To find the remainder, divide 2004 by 12.\n\n2004 = 12 * 167 + 0.",
        "12 * 100 = 1200 and 2004 - 1200 = 804.\n\nSo the answer is \\boxed{",  # natural end
    ]
    inputs = [template.render_meta(prompt, prefix) for prefix in prefixes]
    params = SamplingParams(max_new_tokens=12, temperature=0.0, n=1)
    served = OpenAICompatibleLM(
        plain_server.base_url, max_concurrency=1, tokenizer=real_lm.tokenizer
    )
    remote = [group[0] for group in served.generate(inputs, params, seeds=[0, 1, 2])]
    local = [group[0] for group in real_lm.generate(inputs, params, seeds=[0, 1, 2])]
    print("\nserved:", [c.text for c in remote], "\nin-process:", [c.text for c in local])
    for a, b in zip(remote, local, strict=True):
        assert (a.text, a.token_ids, a.finish_reason) == (b.text, b.token_ids, b.finish_reason)
    assert len({c.text for c in local}) > 1, "every prefix got one answer: the check is vacuous"
