"""Regression tests for what breaks on a real BPE tokenizer (SmolLM2's), not on char doubles.

SmolLM2's tokenizer merges a space with the newline after it (``" \\n"``), so the boundary
``"\\n\\nWait"`` can start inside a token; it counts special tokens of the chat format as one
token each; and batched prefill pads prompts of different lengths.
"""

from __future__ import annotations

from typing import Any

import pytest

from agents.config import PolicyConfig
from agents.policy import split_continuation
from mrt_env.lm.base import Completion, SamplingParams
from mrt_env.lm.hf import HFLanguageModel
from mrt_env.lm.sampling import SampleState, check_stops
from mrt_env.segmenters import MarkerSegmenter
from mrt_env.templates import resolve_template

pytestmark = pytest.mark.realmodel

MERGED = "Thus x = 2. \n\nWait, no. Then x = 3."
"""Text whose boundary ``"\\n\\nWait"`` starts inside the BPE token ``" \\n"``."""
SEGMENTER = MarkerSegmenter(min_paragraphs=1)
"""A new episode at every ``"\\n\\nWait"`` paragraph (as the policy's env splits)."""


def _pieces(lm: Any, text: str) -> list[str]:
    return [lm.decode([i]) for i in lm.encode(text)]


def test_the_boundary_starts_inside_a_merged_token(real_lm: Any) -> None:
    assert " \n" in _pieces(real_lm, MERGED)  # the case the tests below exercise


def test_policy_episodes_never_hold_part_of_a_boundary(real_lm: Any) -> None:
    ids = tuple(real_lm.encode(MERGED))
    completion = Completion("", ids, (0.0,) * len(ids), "length")
    episodes = split_continuation(real_lm, completion, SEGMENTER, "\\boxed{", PolicyConfig())
    assert [e.text for e in episodes] == ["Thus x = 2.", " \n\nWait, no. Then x = 3."]
    assert [real_lm.decode(e.token_ids) for e in episodes] == [e.text for e in episodes]
    unmerged = tuple(real_lm.encode("Thus x = 2.\n\nWait, no."))
    completion = Completion("", unmerged, (0.0,) * len(unmerged), "length")
    episodes = split_continuation(real_lm, completion, SEGMENTER, "\\boxed{", PolicyConfig())
    assert [e.text for e in episodes] == ["Thus x = 2.", "\n\nWait, no."]


def test_stop_string_starting_inside_a_token_cuts_the_text_exactly(real_lm: Any) -> None:
    sample = SampleState(tokens=real_lm.encode(MERGED), logprobs=[0.0] * 20)
    sample.logprobs = [0.0] * len(sample.tokens)
    check_stops([sample], [0], ["\n\nWait"], real_lm._decode_many)
    assert sample.finish == "stop" and sample.stop == "\n\nWait"
    assert sample.text == "Thus x = 2. "
    # the tokens kept are those whose text ends before the stop string
    assert real_lm.decode(sample.tokens) == "Thus x = 2."
    assert len(sample.logprobs) == len(sample.tokens)


def test_special_tokens_of_the_chat_format_count_as_one_token(real_lm: Any) -> None:
    im_start = real_lm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    ids = real_lm.encode("<|im_start|>assistant\n")
    assert ids[0] == im_start and im_start not in ids[1:]
    assert len(ids) == 1 + real_lm.count_tokens("assistant\n")
    prompt = resolve_template("chat", real_lm).render_prompt("1+1?")
    assert real_lm.count_tokens(prompt + "x") - real_lm.count_tokens(prompt) == 1


def test_left_padded_batched_prefill_gives_the_unpadded_greedy_text(real_lm: Any) -> None:
    template = resolve_template("chat", real_lm)
    prompts = [
        template.render_prompt("What is 2+3?"),
        template.render_prompt("Compute the sum of the first ten positive integers."),
    ]
    params = SamplingParams(max_new_tokens=6, temperature=0.0)
    alone = [real_lm.generate([p], params, seeds=[0])[0][0].text for p in prompts]
    padded = HFLanguageModel(
        real_lm.model, real_lm.tokenizer, padding_tolerance=10.0, prefix_cache_size=0
    )
    together = [samples[0].text for samples in padded.generate(prompts, params, seeds=[0, 0])]
    assert padded.stats.prefill_padded_tokens > padded.stats.prefill_tokens  # padding happened
    assert together == alone
