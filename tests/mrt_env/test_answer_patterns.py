"""Which patterns read the policy's unboxed final answer, and that the choice reaches the env's
verifier (``EnvConfig.answer_patterns``; ``gym.make(..., answer_patterns=...)``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from mrt_env.answer_patterns import default_answer_patterns
from mrt_env.env import MRTMathEnv
from mrt_env.spaces import FinalEpisode
from mrt_env.templates import TEMPLATES, chat_template
from rewards.extraction import ANSWER_IS_PATTERN
from tests.mrt_env.env_doubles import env_kwargs
from tests.mrt_env.test_templates_chat import R1_STYLE, chatml_tokenizer

SMOLLM2_STYLE = "1 plus 1 makes 2.\n\nSo, the answer is 2."
"""How SmolLM2-135M-Instruct ends a reply: a sentence, no box (gold of problem 0 is 2)."""


def chatml() -> Any:
    """The ``chat`` template of a ChatML model without thinking tags (SmolLM2-like)."""
    return chat_template(chatml_tokenizer())


def test_the_default_reads_answer_is_only_for_chat_models_without_thinking_tags() -> None:
    assert default_answer_patterns(chatml()) == (ANSWER_IS_PATTERN,)
    r1_style = chat_template(chatml_tokenizer(think_tokens=True, template=R1_STYLE))
    assert r1_style.end_think == "</think>"
    assert default_answer_patterns(r1_style) == ()
    for name in ("tiny", "r1-distill", "plain"):
        assert default_answer_patterns(TEMPLATES[name]) == (), name


def final_step(reply: str, **overrides: Any) -> dict[str, Any]:
    env = MRTMathEnv(**env_kwargs(final_j="outcome", **overrides))
    env.reset(seed=0, options={"index": 0})
    _, _, terminated, _, info = env.step(FinalEpisode(reply))
    assert terminated
    return info


@pytest.mark.parametrize(
    ("overrides", "reply", "outcome", "status"),
    [
        ({}, SMOLLM2_STYLE, 1.0, "correct"),  # chat default: the sentence is read
        ({"answer_patterns": ()}, SMOLLM2_STYLE, 0.0, "no_answer"),  # the paper: box only
        ({}, SMOLLM2_STYLE.replace("2.", "3."), 0.0, "wrong"),
        ({}, "So, the answer is 2. No: \\boxed{3}", 0.0, "wrong"),  # a box wins
        ({"answer_patterns": [r"result=(\d+)"]}, "result=2", 1.0, "correct"),
        ({"answer_patterns": [r"result=(\d+)"]}, SMOLLM2_STYLE, 0.0, "no_answer"),
    ],
)
def test_answer_patterns_reach_the_envs_verifier(
    overrides: dict[str, Any], reply: str, outcome: float, status: str
) -> None:
    info = final_step(reply, template=chatml(), **overrides)
    assert (info["outcome"], info["verification"]) == (outcome, status)


def test_the_tiny_template_grades_boxed_answers_only_by_default() -> None:
    info = final_step(SMOLLM2_STYLE, template="tiny")
    assert (info["outcome"], info["verification"]) == (0.0, "no_answer")
    info = final_step(SMOLLM2_STYLE, template="tiny", answer_patterns=[ANSWER_IS_PATTERN])
    assert (info["outcome"], info["verification"]) == (1.0, "correct")


def test_gym_make_passes_answer_patterns() -> None:
    env = gym.make("MRTMath-v0", **env_kwargs(template=chatml(), answer_patterns=()))
    assert env.unwrapped.config.answer_patterns == ()
    env.close()


@pytest.mark.parametrize(("patterns", "error"), [(["("], ValueError), ("answer: (.*)", TypeError)])
def test_bad_answer_patterns_are_errors(patterns: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="answer"):
        MRTMathEnv(**env_kwargs(answer_patterns=patterns))
