"""LLMPolicy: episode splitting, one generation per trajectory, logprobs of the real backend."""

from __future__ import annotations

import pytest

import rewards
from agents.config import PolicyConfig
from agents.policy import LLMPolicy, split_continuation
from mrt_env.lm.base import Completion
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.segmenters import MarkerSegmenter
from mrt_env.templates import get_template

STOPS = MarkerSegmenter(min_paragraphs=1, markers=("Wait", "Alternatively"))
TRACE = "Let x = 1.\n\nWait, x = 2.\n\nAlternatively x = 2.\n</think>\n\\boxed{2}"


def _completion(lm: ScriptedLM, text: str) -> Completion:
    ids = tuple(lm.encode(text))
    return Completion(text, ids, tuple(-0.5 for _ in ids), "eos")


@pytest.mark.parametrize(
    ("text", "config", "expected"),
    [
        # boundaries open new episodes; the answer stays in the last episode
        (
            TRACE,
            PolicyConfig(),
            [
                ("Let x = 1.", "boundary"),
                ("\n\nWait, x = 2.", "boundary"),
                ("\n\nAlternatively x = 2.\n</think>\n\\boxed{2}", "end_think"),
            ],
        ),
        # a boundary at offset 0 does not end an episode; EOS marks the response's last one
        ("\n\nWait, yes.", PolicyConfig(), [("\n\nWait, yes.", "eos")]),
        # the per-episode safety cap cuts a long run of thinking
        (
            "abcdefgh",
            PolicyConfig(max_episode_tokens=3),
            [("abc", "episode_cap"), ("def", "episode_cap"), ("gh", "eos")],
        ),
        # no cap by default: only the segmenter's boundaries end episodes
        ("x" * 600, PolicyConfig(), [("x" * 600, "eos")]),
        # a marker mid-paragraph is no boundary for the segmenter (it was for stop strings)
        ("a. Wait, b.\n\nc.", PolicyConfig(), [("a. Wait, b.\n\nc.", "eos")]),
        # the answer after the end of thinking is capped; the rest is dropped
        (
            "ok</think>\\boxed{12345}",
            PolicyConfig(max_answer_tokens=4),
            [("ok</think>\\box", "end_think")],
        ),
    ],
)
def test_split_continuation(
    text: str, config: PolicyConfig, expected: list[tuple[str, str]]
) -> None:
    lm = ScriptedLM([""])
    episodes = split_continuation(lm, _completion(lm, text), STOPS, "</think>", config)
    assert [(e.text, e.end) for e in episodes] == expected
    for episode in episodes:
        assert lm.decode(episode.token_ids) == episode.text
        assert len(episode.logprobs) == len(episode.token_ids)


def test_policy_samples_a_trajectory_once_and_hands_out_its_episodes() -> None:
    lm = ScriptedLM([TRACE])
    policy = LLMPolicy(lm, PolicyConfig(max_trajectory_tokens=512), STOPS)
    observation = "Q: 1+1?\n<think>\n"
    episodes = []
    for _ in range(3):
        [episode] = policy.act([observation], seeds=[0], keys=["t"])
        episodes.append(episode)
        observation += episode.text
    assert "".join(e.text for e in episodes) == TRACE
    assert len(lm.calls) == 1  # one generation (one KV cache) for the whole trajectory


def test_policy_resamples_when_the_observation_was_edited() -> None:
    lm = ScriptedLM([TRACE])
    policy = LLMPolicy(lm, PolicyConfig(max_trajectory_tokens=512), STOPS)
    [first] = policy.act(["Q\n"], seeds=[0], keys=["t"])
    policy.act(["Q\n" + first.text + " (edited)"], seeds=[1], keys=["t"])
    assert len(lm.calls) == 2


def test_policy_rejects_mismatched_seeds() -> None:
    policy = LLMPolicy(ScriptedLM([TRACE]), PolicyConfig(max_trajectory_tokens=512), STOPS)
    with pytest.raises(ValueError, match="seeds"):
        policy.act(["a", "b"], seeds=[0])


def test_hf_policy_logprobs_match_a_teacher_forced_forward() -> None:
    """The real backend: sampled logprobs equal the loss's log-probabilities (T = 1)."""
    import torch

    from agents.losses import token_logprobs
    from mrt_env.lm.testing import tiny_random_lm

    lm = tiny_random_lm(0)
    policy = LLMPolicy(lm, PolicyConfig(temperature=1.0, max_trajectory_tokens=12), STOPS)
    prompt = "Problem: 2+2?\n<think>\n"
    [episode] = policy.act([prompt], seeds=[3])
    assert 0 < len(episode.token_ids) == len(episode.logprobs)
    ids = torch.tensor([lm.encode(prompt) + list(episode.token_ids)])
    with torch.no_grad():
        forced = token_logprobs(lm.model, ids, torch.ones_like(ids), temperature=1.0)
    tail = forced[0, -len(episode.token_ids) :]
    torch.testing.assert_close(tail, torch.tensor(episode.logprobs), atol=1e-4, rtol=1e-4)


def test_eos_without_ending_thinking_marks_the_last_episode() -> None:
    lm = ScriptedLM(["Let x = 1.\n\nWait, x = 2."])  # stops (EOS) without closing thinking
    policy = LLMPolicy(lm, PolicyConfig(max_trajectory_tokens=512), STOPS)
    [first] = policy.act(["Q\n"], seeds=[0], keys=["t"])
    [second] = policy.act(["Q\n" + first.text], seeds=[1], keys=["t"])
    assert [(e.text, e.end) for e in (first, second)] == [
        ("Let x = 1.", "boundary"),
        ("\n\nWait, x = 2.", "eos"),  # no empty episodes after it
    ]
    assert len(lm.calls) == 1


R1_RESPONSE = (
    "First, 6 times 7.\n\nThat is 42.\n\nLet me check.\n\nWait, 7 + 7 + 7 + 7 + 7 + 7 = 42."
    "\n</think>\n\n**Step-by-Step Explanation and Answer:**\n\n1. **Understand the problem**: "
    "we need the product of 6 and 7.\n\n2. **Compute**: 6 x 7 = 42, checked by repeated "
    "addition of 7 six times.\n\n**Answer:** \\boxed{42}"
)


@pytest.mark.parametrize(
    ("answer_cap", "status"),
    [
        (None, "correct"),  # the template's natural-answer cap keeps the whole answer
        (32, "no_answer"),  # the old 32-token default cut it before \boxed{}
    ],
)
def test_r1_style_response_survives_the_policy_split(answer_cap: int | None, status: str) -> None:
    """A correct R1-style response, split by the official segmenter, still verifies."""
    lm = ScriptedLM([R1_RESPONSE], tokenization="word")
    template = get_template("r1-distill")
    config = PolicyConfig(max_answer_tokens=answer_cap)
    natural = template.answer_caps().natural
    episodes = split_continuation(
        lm, _completion(lm, R1_RESPONSE), MarkerSegmenter(), "</think>", config, natural
    )
    assert rewards.verify(R1_RESPONSE, "42").status == "correct"  # in full
    response = "".join(e.text for e in episodes)
    assert rewards.verify(response, "42").status == status
    assert episodes[-1].end == "end_think"
