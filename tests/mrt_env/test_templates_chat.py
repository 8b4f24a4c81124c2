"""The ``"chat"`` template preset on hand-made tokenizers (named doubles of real chat formats).

The real SmolLM2 tokenizer is exercised in ``tests/realmodel``; these doubles cover the three
kinds of chat format offline and in milliseconds: ChatML without think tags (SmolLM2, Llama
instruct), a Qwen3-style format whose vocabulary has ``<think>`` but whose template does not
open it, and an R1-style format whose generation prompt opens ``<think>``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.lm.testing import char_tokenizer, tiny_random_lm, tiny_random_model
from mrt_env.templates import (
    DIRECT_TERMINATION,
    THINKING_TERMINATION,
    chat_template,
    get_template,
    resolve_template,
)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A ChatML template as SmolLM2 and Qwen ship it (content printed verbatim)."""

R1_STYLE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<|User|>"
    "{{ m['content'] }}{% else %}<|Assistant|>{{ m['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}"
)
"""An R1-distill-style template: BOS written by the template, ``<think>`` opened by it."""


def chatml_tokenizer(*, think_tokens: bool = False, template: str = CHATML) -> Any:
    """Test double: the char tokenizer with ChatML special tokens and a chat template."""
    tokenizer = char_tokenizer()
    specials = ["<|im_start|>", "<|im_end|>", "<|User|>", "<|Assistant|>"]
    if think_tokens:
        specials += ["<think>", "</think>"]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.chat_template = template
    tokenizer.name_or_path = "chatml-double"
    return tokenizer


def test_chatml_without_think_tags_asks_for_the_boxed_answer_directly() -> None:
    template = chat_template(chatml_tokenizer())
    prompt = template.render_prompt("What is {x} if x = 2?")
    assert prompt == (
        "<|im_start|>user\nWhat is {x} if x = 2?\nPlease reason step by step, and put your "
        "final answer within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert template.name == "chat"
    assert template.end_think == "\\boxed{"
    assert template.termination == DIRECT_TERMINATION
    assert template.end_think in template.termination  # the forced answer ends the thinking


def test_forced_input_is_the_assistant_message_continued() -> None:
    tokenizer = chatml_tokenizer()
    template = chat_template(tokenizer, system="Be brief.")
    prompt = template.render_prompt("1+1?")
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    prefix = "1 plus 1 is 2.\n\n"
    forced = template.render_forced(prompt, prefix)
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": "1+1?\n" + "Please reason step by step, and put your "
            "final answer within \\boxed{}.",
        },
        {"role": "assistant", "content": "1 plus 1 is 2.\n\n" + template.termination},
    ]
    continued = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    assert forced == continued


def test_qwen3_style_vocabulary_gets_think_opened_after_the_generation_prompt() -> None:
    template = chat_template(chatml_tokenizer(think_tokens=True))
    assert template.render_prompt("1+1?").endswith("<|im_start|>assistant\n<think>\n")
    assert template.end_think == "</think>"
    assert template.termination == THINKING_TERMINATION
    assert template.termination.endswith("</think>\n\nThe final answer is \\boxed{")


def test_r1_style_template_that_opens_think_is_not_opened_twice() -> None:
    template = chat_template(chatml_tokenizer(think_tokens=True, template=R1_STYLE))
    prompt = template.render_prompt("1+1?")
    assert prompt.startswith("<s><|User|>1+1?\n")  # BOS from the template, once
    assert prompt.endswith("<|Assistant|><think>\n")
    assert prompt.count("<think>") == 1
    assert template.end_think == "</think>"


def test_bos_that_the_tokenizer_adds_but_the_template_omits_is_written_into_the_prompt() -> None:
    from tokenizers.processors import TemplateProcessing

    tokenizer = chatml_tokenizer()
    bos_id = tokenizer.bos_token_id
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos_id)]
    )
    assert tokenizer("x", add_special_tokens=True)["input_ids"][0] == bos_id
    prompt = chat_template(tokenizer).render_prompt("1+1?")
    assert prompt.startswith("<s><|im_start|>user\n")
    # the models encode without special tokens: BOS is counted exactly once
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    assert ids.count(bos_id) == 1 and ids[0] == bos_id


def test_a_template_that_rewrites_the_message_is_a_clear_error() -> None:
    tokenizer = chatml_tokenizer(template="{{ messages[0]['content'] | upper }}")
    with pytest.raises(ValueError, match="verbatim"):
        chat_template(tokenizer)


def test_no_chat_template_names_the_model_and_the_presets_that_work() -> None:
    with pytest.raises(ValueError, match=r"'my-base-model' has no chat template.*plain"):
        chat_template(char_tokenizer(), model_name="my-base-model")
    lm = tiny_random_lm(0, name="my-base-model")
    with pytest.raises(ValueError, match=r"'my-base-model' has no chat template.*plain"):
        resolve_template(None, lm)
    with pytest.raises(ValueError, match=r"'my-base-model' has no chat template.*plain"):
        resolve_template("chat", lm)


def test_chat_needs_a_tokenizer() -> None:
    with pytest.raises(ValueError, match="needs a model with a Hugging Face tokenizer"):
        resolve_template("chat", ScriptedLM(["2}"]))
    with pytest.raises(ValueError, match="resolve_template"):
        get_template("chat")


def _chat_lm() -> Any:
    from mrt_env.lm.hf import HFLanguageModel

    tokenizer = chatml_tokenizer()
    return HFLanguageModel(tiny_random_model(0, len(tokenizer)), tokenizer, name="chat-double")


def test_unset_template_is_tiny_for_tiny_models_and_chat_with_a_notice_otherwise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert resolve_template(None, ScriptedLM(["2}"])).name == "tiny"
    assert resolve_template(None, tiny_random_lm(0)).name == "tiny"
    with caplog.at_level(logging.WARNING, logger="mrt_env.templates"):
        template = resolve_template(None, _chat_lm())
    assert template.name == "chat"
    assert "tokenizer's chat template" in caplog.text and "chat-double" in caplog.text


def test_env_with_the_chat_template_runs_a_trajectory() -> None:
    import gymnasium as gym

    import mrt_env  # noqa: F401  (registers MRTMath-v0)
    from mrt_env.prover.table import TableMetaProver

    env = gym.make(
        "MRTMath-v0",
        problems=[{"id": "p", "problem": "1+1?", "answer": "2"}],
        lm=_chat_lm(),
        prover=TableMetaProver({}, default=0.5),
        template="chat",
        token_budget=64,
    )
    observation, _ = env.reset(seed=0)
    assert observation.endswith("<|im_start|>assistant\n")
    _, _, terminated, _, info = env.step("1+1=2, so the answer is \\boxed{2}.")
    assert terminated and info["outcome"] == 1.0


def test_a_tiny_lm_saved_to_another_folder_keeps_the_tiny_template(tmp_path: Path) -> None:
    """A fine-tuned tiny checkpoint (``mrt-train`` exports it to ``OUT/model``) is recognised
    by its TinyMath tokenizer, or by the template its tokenizer config declares, not by its
    folder name."""
    from mrt_env.lm.hf import HFLanguageModel
    from mrt_env.tinymath import load_tiny_lm

    for variant, template in [("classic", "tiny"), ("base", "tiny-explain")]:
        tiny = load_tiny_lm(variant)
        tiny.model.save_pretrained(tmp_path / variant)
        tiny.tokenizer.save_pretrained(tmp_path / variant)  # the default's declares its own
        saved = HFLanguageModel.from_pretrained(str(tmp_path / variant))
        assert resolve_template(None, saved).name == template
