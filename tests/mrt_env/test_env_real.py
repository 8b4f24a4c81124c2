"""MRTMath-v0 on the real code path: a tiny random transformers model and SampledMetaProver."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from mrt_env.env import MRTMathEnv
from mrt_env.lm.base import LanguageModel, SamplingParams
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.prover.table import TableMetaProver
from tests.mrt_env.env_doubles import PROBLEMS, scripted_lm


@pytest.fixture(scope="module")
def tiny_lm() -> LanguageModel:
    from mrt_env.lm.testing import tiny_random_lm

    return tiny_random_lm(seed=0)


def real_kwargs(lm: LanguageModel, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "problems": PROBLEMS,
        "lm": lm,
        "prover": None,  # a SampledMetaProver on lm, seeded from the env's RNG
        "k": 2,
        "max_answer_tokens": 3,
        "token_budget": 48,
        "max_episodes": 3,
    }
    kwargs.update(overrides)
    return kwargs


def rollout(env: gym.Env, lm: LanguageModel, seed: int) -> list[tuple[Any, ...]]:
    """One trajectory whose episodes the same model writes (seeded), stopping at boundaries."""
    observation, info = env.reset(seed=seed)
    steps: list[tuple[Any, ...]] = [(observation, info)]
    params = SamplingParams(max_new_tokens=12, stop=env.unwrapped.stop_strings)
    for index in range(10):
        [[completion]] = lm.generate([observation], params, seeds=[seed * 100 + index])
        observation, reward, terminated, truncated, info = env.step(completion.text)
        steps.append((observation, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return steps


def test_default_prover_is_a_sampled_meta_prover(tiny_lm: LanguageModel) -> None:
    env = MRTMathEnv(**real_kwargs(tiny_lm))
    prover = env.core.components.prover
    assert isinstance(prover, SampledMetaProver)
    assert prover.k == 2 and prover.lm is tiny_lm


def test_check_env_passes_on_the_real_path(tiny_lm: LanguageModel) -> None:
    env = gym.make("MRTMath-v0", **real_kwargs(tiny_lm))
    check_env(env.unwrapped)


def test_check_env_passes_with_doubles() -> None:
    prover = TableMetaProver(lambda r: min(1.0, len(r.prefix) / 100))
    env = gym.make("MRTMath-v0", problems=PROBLEMS, lm=scripted_lm(), prover=prover)
    check_env(env.unwrapped)


def test_same_seed_gives_identical_rollouts(tiny_lm: LanguageModel) -> None:
    first = rollout(MRTMathEnv(**real_kwargs(tiny_lm)), tiny_lm, seed=5)
    second = rollout(MRTMathEnv(**real_kwargs(tiny_lm)), tiny_lm, seed=5)
    assert len(first) >= 2
    assert first == second
    final_info = first[-1][-1]
    assert final_info["curve"]  # J was read along the way
    assert all(0.0 <= j <= 1.0 for _, j in final_info["curve"])


def test_same_seed_gives_identical_rollouts_with_doubles() -> None:
    def make() -> MRTMathEnv:
        prover = TableMetaProver(lambda r: min(1.0, r.prefix.count("=") / 4))
        return MRTMathEnv(problems=PROBLEMS, lm=scripted_lm(), prover=prover, max_episodes=3)

    runs = []
    for _ in range(2):
        env = make()
        observation, info = env.reset(seed=11)
        outputs = [(observation, info)] + [env.step(e) for e in ("a=1", " b=2", " c")]
        runs.append(outputs)
    assert runs[0] == runs[1]


def test_forced_answer_at_the_budget_is_sampled_with_the_model(tiny_lm: LanguageModel) -> None:
    env = MRTMathEnv(**real_kwargs(tiny_lm, token_budget=5))
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("1+1=2 and more")
    assert (terminated, truncated) == (False, True)
    assert info["total_tokens"] == 5 and info["episode_cut"]
    assert info["outcome"] in (0.0, 1.0)
    assert info["verification"] in ("correct", "wrong", "no_answer")


def test_budget_cut_keeps_the_policys_own_text(tiny_lm: LanguageModel) -> None:
    # characters outside the tokenizer's vocabulary decode as <unk>; the cut must not
    env = MRTMathEnv(**real_kwargs(tiny_lm, token_budget=4))
    observation, _ = env.reset(seed=0)
    stepped, _, _, truncated, _ = env.step("中文ab中文")
    assert truncated and stepped == observation + "中文ab"


def test_lm_given_as_a_local_path(tmp_path: Any) -> None:
    from mrt_env.lm.testing import char_tokenizer, tiny_random_model

    tiny_random_model(seed=1).save_pretrained(tmp_path)
    char_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="has no chat template"):  # a base model: say which
        MRTMathEnv(**real_kwargs(str(tmp_path), device="cpu"))
    env = MRTMathEnv(**real_kwargs(str(tmp_path), device="cpu", template="plain"))
    observation, info = env.reset(seed=0)
    assert env.core.components.lm.count_tokens(observation) == len(observation)
    assert 0.0 <= info["j"] <= 1.0


def test_replay_many_on_the_real_path(tiny_lm: LanguageModel) -> None:
    from mrt_env.regret import normalized_regret
    from mrt_env.replay import curves_by_problem, replay_many
    from mrt_env.segmenters import MarkerSegmenter

    def make() -> MRTMathEnv:
        return MRTMathEnv(**real_kwargs(tiny_lm, segmenter=MarkerSegmenter(min_paragraphs=1)))

    responses = ["1+1=2.\n\nWait, 2.</think>\\boxed{2}", "3*4=12.</think>\\boxed{12}"]
    first = replay_many(make(), responses, ["add", "mul"], seed=4)
    again = replay_many(make(), responses, ["add", "mul"], seed=4)
    assert [t.outcome for t in first] == [1.0, 1.0]
    assert [len(t.episodes) for t in first] == [2, 1]
    assert [t.curve for t in first] == [t.curve for t in again]
    assert 0.0 <= normalized_regret(curves_by_problem(first), budget=100.0) <= 1.0


def test_default_env_is_tinymath_with_the_tiny_lm() -> None:
    env = gym.make("MRTMath-v0", k=2, max_answer_tokens=4)
    _, info = env.reset(seed=0)
    assert info["problem_id"].startswith("tinymath-")
    assert 0.0 <= info["j"] <= 1.0
    assert env.unwrapped.lm.name.endswith("tiny-lm-explain")  # the graded tiny world
    assert env.unwrapped.core.config.template is None  # resolved: the one its folder declares
    assert env.unwrapped.core.components.template.name == "tiny-explain"
    _, _, terminated, _, info = env.step(env.unwrapped.stop_strings[0] + " no.")
    assert not terminated and info["episode_index"] == 0
