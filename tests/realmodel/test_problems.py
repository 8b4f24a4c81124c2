"""Choosing MATH-500 problems and stating budgets with SmolLM2 (template="chat")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import mrt_env  # noqa: F401  (registers MRTMath-v0)
from mrt_env.regret import check_budgets_above_prompts

pytestmark = pytest.mark.realmodel


def test_a_filtered_math500_set_and_resets_by_id(real_lm: Any, math500: Path) -> None:
    rows = [json.loads(line) for line in math500.read_text().splitlines() if line.strip()]
    expected = [r["id"] for r in rows if r["level"] == 1 and r["subject"] == "Algebra"]
    env = gym.make(
        "MRTMath-v0",
        problems=f"{math500}?level=1&subject=algebra",
        lm=real_lm,
        template="chat",
        prover="none",
    )
    problems = env.unwrapped.problems
    assert [problems[i].id for i in range(len(problems))] == expected
    _, info = env.reset(options={"id": expected[2]})
    assert info["problem_id"] == expected[2]
    with pytest.raises(ValueError, match="no problem matches 'level=0'"):
        gym.make("MRTMath-v0", problems=f"{math500}?level=0", lm=real_lm, prover="none")


def test_a_weights_file_as_the_model_names_its_folder(smollm2_path: Path) -> None:
    [weights] = sorted(smollm2_path.glob("*.safetensors"))[:1]
    with pytest.raises(ValueError, match="is a file; pass the folder") as caught:
        gym.make("MRTMath-v0", lm=str(weights), template="chat")
    assert str(smollm2_path) in str(caught.value) and "huggingface-cli" not in str(caught.value)


def test_regret_budgets_count_the_chat_prompt(real_lm: Any, math500: Path) -> None:
    from mrt_env.sources import resolve_source
    from mrt_env.templates import resolve_template

    template = resolve_template("chat", real_lm)
    first = resolve_source(str(math500))[0]
    tokens = real_lm.count_tokens(template.render_prompt(first.problem))
    assert tokens > 20  # the chat template's system turn alone is longer than 20 tokens
    with pytest.raises(ValueError, match=f"C0=20 is not above the {tokens}-token prompt"):
        check_budgets_above_prompts([20], {first.id: tokens})
    check_budgets_above_prompts([tokens + 1], {first.id: tokens})
