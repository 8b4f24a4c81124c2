"""The ``"chat"`` template and token counting on SmolLM2's real BPE tokenizer (ChatML)."""

from __future__ import annotations

from typing import Any

import pytest

from mrt_env.templates import DIRECT_TERMINATION, MATH_INSTRUCTION, resolve_template

pytestmark = pytest.mark.realmodel


def _messages(problem: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{problem}\n{MATH_INSTRUCTION}"}]


def test_chat_prompt_is_the_tokenizers_own_rendering(real_lm: Any) -> None:
    template = resolve_template("chat", real_lm)
    problem = "Compute $\\frac{1}{2} + {3}$."  # braces survive the format string
    expected = real_lm.tokenizer.apply_chat_template(
        _messages(problem), tokenize=False, add_generation_prompt=True
    )
    assert template.render_prompt(problem) == expected
    assert expected.endswith("<|im_start|>assistant\n")
    # SmolLM2 has no think tags: the first boxed answer ends the reply's "thinking"
    assert template.end_think == "\\boxed{"
    assert template.termination == DIRECT_TERMINATION


def test_forced_input_equals_continue_final_message(real_lm: Any) -> None:
    template = resolve_template("chat", real_lm)
    prompt = template.render_prompt("What is 2+3?")
    prefix = "We add 2 and 3.\n\nThat gives 5."
    forced = template.render_forced(prompt, prefix)
    messages = [
        *_messages("What is 2+3?"),
        {"role": "assistant", "content": prefix + template.separator + template.termination},
    ]
    # SmolLM2's template injects its default system prompt in both renderings
    continued = real_lm.tokenizer.apply_chat_template(
        messages, tokenize=False, continue_final_message=True
    )
    assert forced == continued


def test_prompt_tokens_are_the_models_tokens_special_tokens_counted_once(real_lm: Any) -> None:
    template = resolve_template("chat", real_lm)
    prompt = template.render_prompt("What is 2+3?")
    ids = real_lm.tokenizer.apply_chat_template(
        _messages("What is 2+3?"), tokenize=True, add_generation_prompt=True
    )
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert real_lm.encode(prompt) == ids
    assert real_lm.count_tokens(prompt) == len(ids)
    im_start = real_lm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(im_start) == prompt.count("<|im_start|>")
    # no BOS is added on top of the template's text
    assert ids[0] == im_start


def test_episode_tokens_are_differences_of_model_token_counts(real_lm: Any) -> None:
    prefix, episode = "Let x = 3.", "\n\nThen 2x = 6."
    whole = real_lm.count_tokens(prefix + episode)
    assert whole == len(real_lm.tokenizer.encode(prefix + episode, add_special_tokens=False))
    assert whole - real_lm.count_tokens(prefix) >= 1
