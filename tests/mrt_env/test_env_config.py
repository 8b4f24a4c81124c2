"""EnvConfig: validated fields, keyword overrides, and sources that fail at build time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from mrt_env.config import EnvConfig, build_components
from mrt_env.env import MRTMathEnv
from mrt_env.sources import ProblemSourceError
from tests.mrt_env.env_doubles import env_kwargs


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("k", 0, ValueError, "k must be a positive int"),  # no samples
        ("k", 2.5, ValueError, "k must be a positive int"),  # not an int
        ("max_answer_tokens", -1, ValueError, "max_answer_tokens"),  # negative cap
        ("token_budget", 0, ValueError, "token_budget"),  # no budget
        ("max_episodes", True, ValueError, "max_episodes"),  # a bool is not a count
        ("max_observation_chars", 0, ValueError, "max_observation_chars"),  # no room
        ("prover_temperature", -0.1, ValueError, "prover_temperature"),  # negative temperature
        ("j_star", 1.5, ValueError, "j_star"),  # J* is a probability
        ("truncation_outcome", "mean", ValueError, "truncation_outcome"),  # unknown mode
        ("prover", "sampled", ValueError, "prover must be None"),  # unknown prover name
        ("prover", 3, TypeError, "prover must implement"),  # not a meta-prover
        ("lm", 3, TypeError, "lm must be a LanguageModel"),  # not a model
        ("truncation_lm", 3, TypeError, "truncation_lm must be"),  # not a model
        ("lm_options", [("max_decode_rows", 2)], TypeError, "lm_options must be a mapping"),
        ("template", "chatml", KeyError, "unknown template"),  # unknown template
        ("rewards", "outcome", TypeError, "tuple of names"),  # a bare string
        ("rewards", (), ValueError, "at least one"),  # no reward at all
        ("rewards", (3,), TypeError, "name or a callable"),  # not a module
        ("reward_weights", (1.0,), ValueError, "2 numbers"),  # one weight for two modules
        ("segmenter", "marker", TypeError, "segmenter must have"),  # not a segmenter
        ("problem_fields", {"problem_key": "q"}, TypeError, "FieldNames"),  # wrong type
        ("seed", "1", TypeError, "seed must be an int"),  # a string seed
        ("device", 0, TypeError, "device must be a str"),  # a device index without "cuda:"
    ],
)
def test_invalid_fields_are_rejected(field: str, value: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        EnvConfig(**{field: value})


@pytest.mark.parametrize(
    ("template", "override", "caps"),
    [
        ("tiny", None, (32, 16)),  # the tiny suffix opens \boxed{: a short forced answer
        ("r1-distill", None, (1024, 512)),  # R1's suffix opens "1. **": room to reach \boxed{}
        ("plain", None, (1024, 512)),  # the same R1 suffix
        ("r1-distill", 64, (1024, 64)),  # max_answer_tokens overrides the forced cap
    ],
)
def test_answer_caps_come_from_the_template(
    template: str, override: int | None, caps: tuple[int, int]
) -> None:
    from mrt_env.lm.scripted import ScriptedLM

    config = EnvConfig(lm=ScriptedLM(["4}"]), template=template, max_answer_tokens=override)
    answer_caps = build_components(config).answer_caps
    assert (answer_caps.natural, answer_caps.forced) == caps


def test_the_env_and_its_meta_prover_share_the_forced_answer_cap() -> None:
    from mrt_env.lm.scripted import ScriptedLM

    env = MRTMathEnv(lm=ScriptedLM(["4}"]), template="r1-distill")
    prover = env.core.components.prover
    assert prover.params.max_new_tokens == env.core.components.answer_caps.forced == 512


def test_a_truncated_trajectory_is_graded_on_the_truncation_lm() -> None:
    from mrt_env.lm.scripted import ScriptedLM

    # μ's model would answer wrong; the truncation model (the policy in training) is right
    kwargs = env_kwargs(token_budget=4, lm=ScriptedLM(["7}"]), truncation_lm=ScriptedLM(["2}"]))
    env = MRTMathEnv(**kwargs)
    env.reset(seed=0, options={"index": 0})
    _, _, _, truncated, info = env.step("1+1=2")
    assert truncated and (info["outcome"], info["verification"]) == (1.0, "correct")


def test_expected_outcome_needs_a_meta_prover() -> None:
    with pytest.raises(ValueError, match="needs a meta-prover"):
        EnvConfig(prover="none", truncation_outcome="expected")


def test_keyword_arguments_override_a_config() -> None:
    base = EnvConfig(k=4, token_budget=64)
    config = EnvConfig.from_kwargs(base, token_budget=32)
    assert (config.k, config.token_budget) == (4, 32)
    env = MRTMathEnv(config=EnvConfig(max_episodes=3), **env_kwargs(max_episodes=2))
    assert env.config.max_episodes == 2


def test_unknown_keyword_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"unknown EnvConfig field\(s\) \['budget'\]"):
        MRTMathEnv(**env_kwargs(budget=3))
    with pytest.raises(TypeError, match="config must be an EnvConfig"):
        MRTMathEnv(config={"k": 3})  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        EnvConfig().k = 3  # type: ignore[misc]


def test_a_malformed_jsonl_source_fails_when_the_env_is_built(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"problem": "a", "answer": "1"}) + "\n{not json\n")
    with pytest.raises(ProblemSourceError, match=r"bad\.jsonl:2"):
        gym.make("MRTMath-v0", **env_kwargs(problems=str(path)))


def test_a_jsonl_source_with_field_names(tmp_path: Path) -> None:
    from mrt_env.sources import FieldNames

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "What is 2+2?", "final": "4"}) + "\n")
    env = MRTMathEnv(**env_kwargs(problems=path, problem_fields=FieldNames("question", "final")))
    observation, _ = env.reset(seed=0)
    assert "What is 2+2?" in observation and env.problem is not None
    assert env.problem.answer == "4"


def test_invalid_render_mode() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        MRTMathEnv(render_mode="human", **env_kwargs())


def test_config_seed_seeds_the_first_unseeded_reset() -> None:
    def first_two(**overrides: Any) -> list[str]:
        env = MRTMathEnv(**env_kwargs(**overrides))
        return [env.reset()[1]["problem_id"] for _ in range(2)]

    assert first_two(seed=3) == first_two(seed=3)
    env = MRTMathEnv(**env_kwargs(seed=3))
    assert env.reset()[1]["problem_id"] == MRTMathEnv(**env_kwargs()).reset(seed=3)[1]["problem_id"]


def test_config_seed_in_the_vector_env() -> None:
    from mrt_env.vector import MRTMathVectorEnv

    seeded = MRTMathVectorEnv(3, **env_kwargs(seed=8)).reset()[0]
    assert seeded == MRTMathVectorEnv(3, **env_kwargs()).reset(seed=8)[0]


def test_bad_reset_options_change_nothing() -> None:
    env = MRTMathEnv(**env_kwargs())
    env.reset(seed=0)
    env.step("a")
    state = env.np_random.bit_generator.state
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=5, options={"bogus": 1})
    assert env.np_random.bit_generator.state == state
    assert env.trajectory.thinking == "a"


def test_gym_make_reaches_the_backend_options() -> None:
    env = gym.make("MRTMath-v0", lm="tiny", lm_options={"max_decode_rows": 3}, prover="none")
    assert env.unwrapped.lm.max_decode_rows == 3


def test_a_weights_file_as_lm_names_the_folder_to_pass(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match=f"is a file; pass the folder .*\\({tmp_path}\\)"):
        build_components(EnvConfig(problems=[{"problem": "1+1?", "answer": "2"}], lm=str(weights)))
    from agents.session import load_language_model

    with pytest.raises(ValueError, match="is a file; pass the folder") as caught:
        load_language_model(str(weights), "cpu")
    assert "huggingface-cli" not in str(caught.value)
