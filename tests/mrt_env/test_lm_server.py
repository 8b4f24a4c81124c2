"""OpenAICompatibleLM against a real ``transformers serve`` on loopback serving the tiny LM.

The in-process ``HFLanguageModel`` on the same weights is the reference: greedy texts must be
equal and sampled J estimates must agree within their 95% Wilson intervals.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from mrt_env.lm.base import LanguageModel, SamplingParams
from mrt_env.lm.openai_compat import OpenAICompatibleLM, parse_openai_spec
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.replay import replay
from mrt_env.templates import get_template
from mrt_env.vector import MRTMathVectorEnv
from tests.servers import Server, free_port

pytestmark = pytest.mark.server

ENV_KWARGS: dict[str, Any] = {
    "problems": "tinymath:heldout",
    "template": "tiny",
    "k": 4,
    "max_answer_tokens": 8,
    "token_budget": 96,
    "max_episodes": 3,
}


@pytest.fixture(scope="module")
def server_lm(tiny_lm_server: Server) -> OpenAICompatibleLM:
    # transformers serve seeds one process-wide generator per request: one request at a time
    return OpenAICompatibleLM(tiny_lm_server.base_url, max_concurrency=1)


@pytest.fixture(scope="module")
def local_lm() -> LanguageModel:
    from mrt_env.tinymath import load_tiny_lm

    return load_tiny_lm()


def prompts(count: int) -> list[str]:
    from mrt_env.tinymath import TinyMathSource

    source = TinyMathSource("heldout")
    template = get_template("tiny")
    return [template.render_prompt(source[i].problem) for i in range(count)]


def test_model_name_comes_from_the_server(server_lm: OpenAICompatibleLM, tiny_lm_server: Server):
    assert server_lm.model == tiny_lm_server.model
    assert parse_openai_spec(f"openai:{tiny_lm_server.base_url}#x") == (
        tiny_lm_server.base_url,
        "x",
    )


def test_greedy_texts_equal_the_in_process_backend(
    server_lm: OpenAICompatibleLM, local_lm: LanguageModel
) -> None:
    params = SamplingParams(max_new_tokens=48, temperature=0.0, stop=("\n\n",))
    batch = prompts(4)
    remote = server_lm.generate(batch, params, seeds=[0, 1, 2, 3])
    local = local_lm.generate(batch, params, seeds=[0, 1, 2, 3])
    summary = [[(c.text, c.finish_reason, c.stop_string) for c in g] for g in remote]
    assert summary == [[(c.text, c.finish_reason, c.stop_string) for c in g] for g in local]
    assert server_lm.use_n is None  # n = 1: nothing learnt about the server's n yet


def test_a_server_that_ignores_n_falls_back_to_one_request_per_sample(
    server_lm: OpenAICompatibleLM,
) -> None:
    [group] = server_lm.generate(prompts(1), SamplingParams(6, n=3), seeds=[11])
    assert len(group) == 3
    assert server_lm.use_n is False  # transformers serve answers one choice whatever n


def test_sampled_j_agrees_with_the_in_process_backend(
    server_lm: OpenAICompatibleLM, local_lm: LanguageModel
) -> None:
    k, temperature = 32, 2.0
    batch = prompts(3)
    greedy = local_lm.generate(batch, SamplingParams(200, temperature=0.0), seeds=[0, 0, 0])
    requests = []
    for i, [response] in enumerate(greedy):
        # the model's first paragraph ends "so ANSWER."; at temperature 2 its forced answer
        # repeats ANSWER with probability well inside (0, 1)
        paragraph = response.text.split("\n\n")[0]
        gold = re.findall(r"-?\d+", paragraph)[-1]
        requests.append(ProverRequest(f"p{i}", batch[i], gold, paragraph, seed=i))
    figures = []
    for lm in (server_lm, local_lm):
        prover = SampledMetaProver(
            lm, "tiny", k=k, max_answer_tokens=8, temperature=temperature, cache_size=0
        )
        figures.append(prover.estimate(requests))
    assert any(0 < e.j < 1 for e in figures[1]), "degenerate prefixes: J is 0 or 1 everywhere"
    for request, remote, local in zip(requests, *figures, strict=True):
        print(
            f"\n{request.problem_id} (T={temperature}): "
            f"J server {remote.j:.3f} [{remote.ci_low:.3f}, {remote.ci_high:.3f}] "
            f"in-process {local.j:.3f} [{local.ci_low:.3f}, {local.ci_high:.3f}] (K={k})"
        )
        assert remote.ci_low <= local.ci_high and local.ci_low <= remote.ci_high


def rollout(env: Any, lm: LanguageModel, seed: int) -> list[Any]:
    observation, info = env.reset(seed=seed)
    infos = [info]
    params = SamplingParams(max_new_tokens=32, stop=env.unwrapped.stop_strings)
    for index in range(10):
        [[completion]] = lm.generate([observation], params, seeds=[seed * 100 + index])
        observation, _, terminated, truncated, info = env.step(completion.text)
        infos.append(info)
        if terminated or truncated:
            return infos
    raise AssertionError("the trajectory did not end within 10 steps")


def test_a_full_trajectory_through_gym_make_with_an_openai_spec(tiny_lm_server: Server) -> None:
    env = gym.make("MRTMath-v0", lm=f"openai:{tiny_lm_server.base_url}", **ENV_KWARGS)
    lm = env.unwrapped.core.components.lm
    assert isinstance(lm, OpenAICompatibleLM) and lm.model == tiny_lm_server.model
    lm.max_concurrency = 1
    infos = rollout(env, lm, seed=3)
    assert len(infos) >= 2 and all(0 <= i["j_after"] <= 1 for i in infos[1:])


def test_vector_env_and_replay_on_the_server(server_lm: OpenAICompatibleLM) -> None:
    envs = MRTMathVectorEnv(num_envs=2, lm=server_lm, **ENV_KWARGS)
    observations, _ = envs.reset(seed=0)
    params = SamplingParams(max_new_tokens=24, stop=envs.stop_strings)
    actions = [g[0].text for g in server_lm.generate(list(observations), params, seeds=[1, 2])]
    _, rewards, _, _, infos = envs.step(actions)
    assert rewards.shape == (2,) and all(0 <= j <= 1 for j in infos["j_after"])
    env = gym.make("MRTMath-v0", lm=server_lm, **ENV_KWARGS)
    trajectory = replay(env, "Add them.\n\nSo 5.</think>\\boxed{5}", problem=0, seed=0)
    assert trajectory.j is not None and len(trajectory.j) == len(trajectory.episodes) + 1


def test_a_dead_server_raises_naming_the_url_without_hanging() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"server at {url} did not answer"):
        OpenAICompatibleLM(url, deadline=1.0)
    assert time.monotonic() - start < 5


def test_logprobs_a_server_cannot_give_raise(tiny_lm_server: Server) -> None:
    lm = OpenAICompatibleLM(tiny_lm_server.base_url, logprobs=True, max_concurrency=1)
    with pytest.raises(ValueError, match="no token log-probabilities"):
        lm.generate(prompts(1), SamplingParams(4), seeds=[0])


@pytest.mark.slow
def test_regret_and_trace_analysis_scripts_run_on_the_server(
    tiny_lm_server: Server, tmp_path: Path
) -> None:
    from tests.benchmarks.scripts import load_script

    regret, analyze = load_script("regret"), load_script("analyze_traces")
    spec = f"openai:{tiny_lm_server.base_url}"
    argv = [
        "--policies", f"served={spec}", "--problems", "tinymath:heldout", "--num-problems", "2",
        "--samples", "1", "--k", "2", "--token-budget", "48", "--budgets", "32", "64",
        "--extensions", "0", "--episode-budget", "2", "--run-dir", str(tmp_path), "--name", "r",
    ]  # fmt: skip
    regret.main(regret.parse_args(regret.Args, argv))
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(results["policies"]) == {"served"}
    analyze.main(
        analyze.parse_args(
            analyze.Args,
            [
                "--traces", str(tmp_path / "r" / "traces.jsonl"), "--problems", "tinymath:heldout",
                "--model", spec, "--k", "2", "--budgets", "32", "--run-dir", str(tmp_path),
                "--name", "t",
            ],
        )
    )  # fmt: skip
    assert (tmp_path / "t" / "results.json").exists()
