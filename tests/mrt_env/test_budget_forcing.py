"""Budget forcing: the text operation, forced generation and the environment wrapper."""

from __future__ import annotations

import dataclasses
import doctest
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import pytest

from mrt_env import budget_forcing
from mrt_env.budget_forcing import (
    DEFAULT_CUES,
    BudgetForcedGeneration,
    BudgetForcing,
    BudgetForcingConfig,
    budget_forced_generate,
    budget_forced_generate_many,
    continue_thinking,
)
from mrt_env.lm.base import Completion, SamplingParams
from mrt_env.lm.scripted import ScriptedLM

# ------------------------------------------------------------------- continue_thinking
# (response, extension index, config, expected new thinking)
CONTINUE_CASES = [
    # the marker and the answer after it go; a blank line and the first cue come in
    ("x = 2.</think>\\boxed{2}", 0, BudgetForcingConfig(), "x = 2.\n\nWait"),
    # trailing whitespace before the marker is dropped so the separator is exactly one blank line
    ("x = 2.\n\n </think>", 0, BudgetForcingConfig(), "x = 2.\n\nWait"),
    # cues rotate: extension 1 -> "But wait", 2 -> "Alternatively", 3 -> "But hold on"
    ("a</think>", 1, BudgetForcingConfig(), "a\n\nBut wait"),
    ("a</think>", 2, BudgetForcingConfig(), "a\n\nAlternatively"),
    ("a</think>", 3, BudgetForcingConfig(), "a\n\nBut hold on"),
    # ... and wrap around after the fourth
    ("a</think>", 4, BudgetForcingConfig(), "a\n\nWait"),
    # only the first marker counts: everything after it is dropped
    ("a</think>b</think>c", 0, BudgetForcingConfig(), "a\n\nWait"),
    # nothing before the marker: the cue still follows a blank line
    ("</think>x", 0, BudgetForcingConfig(), "\n\nWait"),
    # custom marker, separator and cues
    (
        "a<end>b",
        1,
        BudgetForcingConfig(end_think="<end>", separator=" ", cues=("Hmm", "Check")),
        "a Check",
    ),
]


@pytest.mark.parametrize(("response", "index", "config", "expected"), CONTINUE_CASES)
def test_continue_thinking(
    response: str, index: int, config: BudgetForcingConfig, expected: str
) -> None:
    assert continue_thinking(response, index, config) == expected


def test_continue_thinking_needs_an_end_marker() -> None:
    with pytest.raises(ValueError, match="does not end thinking"):
        continue_thinking("still thinking", 0)


def test_default_config_matches_the_paper() -> None:
    config = BudgetForcingConfig()
    assert config.cues == DEFAULT_CUES == ("Wait", "But wait", "Alternatively", "But hold on")
    assert (config.max_extension_tokens, config.end_think) == (2048, "</think>")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extensions": -1},  # negative extension count
        {"extensions": 1.5},  # not an int
        {"max_extension_tokens": 0},  # an extension must allow a token
        {"cues": ()},  # no cue
        {"cues": ("Wait", "")},  # an empty cue
        {"cues": "Wait"},  # a bare string, not a tuple
        {"end_think": ""},  # no marker
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BudgetForcingConfig(**kwargs)


# -------------------------------------------------------------- budget_forced_generate
def always_stops_thinking(prompt: str, sample_index: int) -> str:
    """Script: whatever the prompt, reason a little and end thinking with an answer."""
    return " ok.</think>\\boxed{2}"


def test_generate_forces_w_extensions_with_rotating_cues() -> None:
    lm = ScriptedLM(always_stops_thinking)
    params = SamplingParams(max_new_tokens=100, temperature=0.6)
    config = BudgetForcingConfig(extensions=2, max_extension_tokens=50)
    out = budget_forced_generate(lm, "Q:", params, config, seed=3)
    # two cues inserted, the third generation's end of thinking and answer are kept
    assert out.text == " ok.\n\nWait ok.\n\nBut wait ok.</think>\\boxed{2}"
    assert out.extensions_used == 2 and out.ended_thinking
    # ScriptedLM counts characters: " ok.</think>\\boxed{2}" is 21 tokens per generation
    assert (out.initial_tokens, out.extension_tokens, out.total_tokens) == (21, (21, 21), 63)
    prompts = [call[0][0] for call in lm.calls]
    assert prompts == ["Q:", "Q: ok.\n\nWait", "Q: ok.\n\nWait ok.\n\nBut wait"]
    # extensions keep the sampling settings but cap tokens at max_extension_tokens
    assert [call[1].max_new_tokens for call in lm.calls] == [100, 50, 50]
    assert {call[1].temperature for call in lm.calls} == {0.6}


def test_generate_without_an_end_of_thinking_does_not_force() -> None:
    # the model runs out of tokens while thinking: nothing to force
    lm = ScriptedLM(["thinking on and on"])
    out = budget_forced_generate(lm, "Q:", SamplingParams(max_new_tokens=8))
    assert out.text == "thinking"
    assert out.extension_tokens == () and not out.ended_thinking
    assert len(lm.calls) == 1


def test_extension_is_capped_at_max_extension_tokens() -> None:
    lm = ScriptedLM({"Q:": "a</think>", "Wait": " and a long continuation</think>"})
    config = BudgetForcingConfig(extensions=3, max_extension_tokens=5)
    out = budget_forced_generate(lm, "Q:", SamplingParams(max_new_tokens=20), config)
    # the continuation is cut at 5 characters, so it never ends thinking: no second cue
    assert out.text == "a\n\nWait and "
    assert out.extension_tokens == (5,) and not out.ended_thinking
    assert out.completions[-1].finish_reason == "length"


def test_end_marker_as_a_stop_string_is_forced_and_restored_at_the_end() -> None:
    lm = ScriptedLM({"Q:": "a</think>answer", "Wait": " b</think>answer"})
    params = SamplingParams(max_new_tokens=40, stop=("</think>",))
    out = budget_forced_generate(lm, "Q:", params, BudgetForcingConfig(extensions=1))
    # both generations stop at the marker (excluded from their text); the last is restored
    assert [c.stop_string for c in out.completions] == ["</think>", "</think>"]
    assert out.text == "a\n\nWait b</think>"
    assert out.ended_thinking


def test_zero_extensions_is_plain_generation() -> None:
    lm = ScriptedLM(always_stops_thinking)
    out = budget_forced_generate(
        lm, "Q:", SamplingParams(max_new_tokens=100), BudgetForcingConfig(extensions=0)
    )
    assert out.text == " ok.</think>\\boxed{2}" and out.extensions_used == 0


def test_generate_rejects_several_samples() -> None:
    lm = ScriptedLM(always_stops_thinking)
    with pytest.raises(ValueError, match=r"params.n=2"):
        budget_forced_generate(lm, "Q:", SamplingParams(max_new_tokens=10, n=2))


class SeedRecordingLM(ScriptedLM):
    """Test double: a scripted LM that also records the seeds of every call."""

    def __init__(self) -> None:
        super().__init__(always_stops_thinking)
        self.seeds: list[Sequence[int] | None] = []

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        self.seeds.append(None if seeds is None else list(seeds))
        return super().generate(prompts, params, seeds)


def test_generation_seeds_flow_from_the_seed() -> None:
    config = BudgetForcingConfig(extensions=2)
    params = SamplingParams(max_new_tokens=100)
    first, second, other = SeedRecordingLM(), SeedRecordingLM(), SeedRecordingLM()
    budget_forced_generate(first, "Q:", params, config, seed=7)
    budget_forced_generate(second, "Q:", params, config, seed=7)
    budget_forced_generate(other, "Q:", params, config, seed=8)
    assert first.seeds == second.seeds  # same seed, same generations
    assert first.seeds != other.seeds
    assert len({s[0] for s in first.seeds if s is not None}) == 3  # one distinct seed per call
    unseeded = SeedRecordingLM()
    budget_forced_generate(unseeded, "Q:", params, config)
    assert unseeded.seeds == [None, None, None]


def test_result_is_a_frozen_dataclass() -> None:
    out = budget_forced_generate(ScriptedLM(always_stops_thinking), "Q:", SamplingParams(50))
    assert isinstance(out, BudgetForcedGeneration)
    with pytest.raises(AttributeError):
        out.text = "changed"  # type: ignore[misc]


# ------------------------------------------------------------------- BudgetForcing wrapper
class FakeThinkingEnv(gym.Env[str, str]):
    """Test double: a str-action env that appends episodes and counts words as tokens.

    Terminates when an action contains ``</think>``; truncates at ``token_budget`` words,
    which it also exposes as ``config.token_budget`` like ``MRTMath-v0``.
    """

    observation_space = gym.spaces.Text(max_length=10_000)
    action_space = gym.spaces.Text(max_length=10_000)

    def __init__(self, token_budget: int = 100) -> None:
        self.token_budget = token_budget
        self.config = SimpleNamespace(token_budget=token_budget)
        self.thinking = ""
        self.actions: list[str] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.thinking, self.actions = "", []
        return "Q:", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, got {type(action).__name__}")
        self.actions.append(action)
        self.thinking += action
        total = len(self.thinking.split())
        terminated = "</think>" in action
        truncated = not terminated and total >= self.token_budget
        return "Q:" + self.thinking, 0.0, terminated, truncated, {"total_tokens": total}


def test_wrapper_replaces_early_ends_then_lets_the_trajectory_end() -> None:
    env = BudgetForcing(FakeThinkingEnv(), BudgetForcingConfig(extensions=2))
    _, info = env.reset(seed=0)
    assert info["budget_forcing"]["extensions_left"] == 2
    # first end of thinking -> "Wait"
    obs, _, terminated, _, info = env.step("one two</think>\\boxed{2}")
    assert not terminated and obs == "Q:one two\n\nWait"
    assert info["budget_forcing"] == {
        "extensions_used": 1,
        "extensions_left": 1,
        "forced": True,
        "cue": "Wait",
        "extension_tokens": (0,),
    }
    # three more words of thinking count towards the first extension
    _, _, terminated, _, info = env.step(", three four five")
    assert not terminated and info["budget_forcing"]["extension_tokens"] == (3,)
    assert info["budget_forcing"]["forced"] is False
    # second end of thinking -> "But wait"
    obs, _, terminated, _, info = env.step(" six</think>")
    assert not terminated and obs.endswith(" six\n\nBut wait")
    assert info["budget_forcing"]["cue"] == "But wait"
    # extensions used up: the end of thinking passes through and the trajectory terminates
    _, _, terminated, _, info = env.step(" seven</think>\\boxed{2}")
    assert terminated and env.unwrapped.actions[-1] == " seven</think>\\boxed{2}"  # type: ignore[attr-defined]
    assert info["budget_forcing"]["extensions_used"] == 2
    assert info["budget_forcing"]["extension_tokens"] == (3, 1)


class NoConfigEnv(FakeThinkingEnv):
    """Test double: the fake env without a ``config`` attribute (no known budget)."""

    def __init__(self) -> None:
        super().__init__(token_budget=10**9)
        del self.config


def test_wrapper_reads_the_budget_from_the_env() -> None:
    assert BudgetForcing(FakeThinkingEnv(token_budget=7)).token_budget == 7
    # without a known budget only the extension count limits forcing
    env = BudgetForcing(NoConfigEnv(), BudgetForcingConfig(extensions=3))
    assert env.token_budget is None
    env.reset()
    forced = [env.step("a b c</think>")[4]["budget_forcing"]["forced"] for _ in range(4)]
    assert forced == [True, True, True, False]


def test_wrapper_explicit_budget_and_reset() -> None:
    env = BudgetForcing(FakeThinkingEnv(token_budget=100), token_budget=1)
    assert env.token_budget == 1
    env.reset()
    env.step("a b")  # 2 words >= 1: budget spent
    _, _, terminated, _, info = env.step("</think>")
    assert terminated and not info["budget_forcing"]["forced"]
    # a new trajectory starts with every extension and an empty token count
    _, info = env.reset()
    assert info["budget_forcing"]["extensions_used"] == 0
    _, _, terminated, _, info = env.step("x</think>")
    assert not terminated and info["budget_forcing"]["forced"]


def test_wrapper_passes_non_str_actions_to_the_env() -> None:
    env = BudgetForcing(FakeThinkingEnv())
    env.reset()
    with pytest.raises(TypeError, match="int"):
        env.step(3)  # type: ignore[arg-type]


def test_wrapper_on_the_real_environment() -> None:
    from mrt_env.env import MRTMathEnv
    from tests.mrt_env.env_doubles import env_kwargs

    env = BudgetForcing(
        MRTMathEnv(**env_kwargs(token_budget=200)), BudgetForcingConfig(extensions=1)
    )
    assert env.token_budget == 200
    env.reset(seed=0, options={"index": 0})
    _, _, terminated, _, info = env.step("1+1=2.\n</think>\n\\boxed{2}")
    assert not terminated and info["budget_forcing"]["forced"]
    assert env.unwrapped.trajectory.thinking == "1+1=2.\n\nWait"  # type: ignore[attr-defined]
    _, _, terminated, _, info = env.step(", 1+1=2 indeed.\n</think>\n\\boxed{2}")
    assert terminated and info["outcome"] == 1.0
    assert info["budget_forcing"]["extensions_used"] == 1


def test_docstring_examples_run() -> None:
    result = doctest.testmod(budget_forcing)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------- budget_forced_generate_many
def _never_ends_for_q3(prompt: str, sample_index: int) -> str:
    """Script: "Q3:" thinks on and on; every other prompt ends thinking at once."""
    return "thinking on" if prompt == "Q3:" else " ok.</think>"


def _scripted_lm() -> ScriptedLM:
    return ScriptedLM(_never_ends_for_q3)


def _tiny_random_lm() -> Any:
    from mrt_env.lm.testing import tiny_random_lm

    return tiny_random_lm(seed=0)


# (model factory, sampling settings, config): the batch must equal prompt-by-prompt generation
MANY_CASES = [
    # scripted double: two responses forced three times, one that never ends thinking
    (_scripted_lm, SamplingParams(40), BudgetForcingConfig(extensions=3, max_extension_tokens=20)),
    # the end marker as a stop string: it is restored in every response
    (
        _scripted_lm,
        SamplingParams(40, stop=("</think>",)),
        BudgetForcingConfig(extensions=2, max_extension_tokens=20),
    ),
    # the real transformers path; "C" (frequent in its random text) plays the end marker
    (
        _tiny_random_lm,
        SamplingParams(16, temperature=1.0),
        BudgetForcingConfig(extensions=3, max_extension_tokens=8, end_think="C"),
    ),
]


def _exact(out: BudgetForcedGeneration) -> BudgetForcedGeneration:
    """``out`` without log-probabilities (texts, token ids and counts compare exactly)."""
    completions = tuple(dataclasses.replace(c, logprobs=()) for c in out.completions)
    return dataclasses.replace(out, completions=completions)


@pytest.mark.parametrize(("make_lm", "params", "config"), MANY_CASES)
def test_many_equals_one_by_one(
    make_lm: Any, params: SamplingParams, config: BudgetForcingConfig
) -> None:
    prompts, seeds = ["Q1:", "Q2:", "Q3:", "Q4:"], [11, 12, 13, 14]
    batched = budget_forced_generate_many(make_lm(), prompts, params, config, seeds)
    lm = make_lm()
    singles = [
        budget_forced_generate(lm, p, params, config, s)
        for p, s in zip(prompts, seeds, strict=True)
    ]
    assert [_exact(out) for out in batched] == [_exact(out) for out in singles]
    for out, single in zip(batched, singles, strict=True):  # padding moves the last float bits
        for completion, reference in zip(out.completions, single.completions, strict=True):
            assert completion.logprobs == pytest.approx(reference.logprobs, abs=1e-4)
    assert sum(out.extensions_used for out in batched) >= 2  # forcing really happened
    for out in batched:
        assert len(out.responses) == out.extensions_used + 1 and out.responses[-1] == out.text
        # responses[w] is what w extensions give
        for w, response in enumerate(out.responses):
            fewer = dataclasses.replace(config, extensions=w)
            index = batched.index(out)
            single = budget_forced_generate(lm, prompts[index], params, fewer, seeds[index])
            assert single.text == response


def test_many_batches_each_round_and_forces_only_the_flagged_prompts() -> None:
    lm = _scripted_lm()
    config = BudgetForcingConfig(extensions=2, max_extension_tokens=20)
    outs = budget_forced_generate_many(
        lm, ["Q1:", "Q2:", "Q3:"], SamplingParams(40), config, [1, 2, 3], forced=[True, False, True]
    )
    assert [out.extensions_used for out in outs] == [2, 0, 0]  # Q2 not forced, Q3 never ends
    assert outs[1].text == " ok.</think>"
    assert [len(call[0]) for call in lm.calls] == [3, 1, 1]  # one generate call per round


def test_many_stops_extending_before_the_context_overflows() -> None:
    config = BudgetForcingConfig(extensions=3, max_extension_tokens=12)
    lm = _scripted_lm()
    # ScriptedLM counts characters: "Q1: ok.\n\nWait" is 13 tokens (13 + 12 <= 30: extend),
    # "Q1: ok.\n\nWait ok.\n\nBut wait" is 27 (27 + 12 > 30: stop)
    out = budget_forced_generate(lm, "Q1:", SamplingParams(40), config, max_context_tokens=30)
    assert out.extensions_used == 1 and out.ended_thinking
    assert out.text == " ok.\n\nWait ok.</think>"
    unlimited = budget_forced_generate(_scripted_lm(), "Q1:", SamplingParams(40), config)
    assert unlimited.extensions_used == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seeds": [1]},  # one seed for two prompts
        {"forced": [True]},  # one flag for two prompts
        {"params": SamplingParams(10, n=2)},  # several samples per prompt
    ],
)
def test_many_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    arguments = {"params": SamplingParams(10), **kwargs}
    with pytest.raises(ValueError):
        budget_forced_generate_many(_scripted_lm(), ["Q1:", "Q2:"], **arguments)


def test_many_of_no_prompts_is_empty() -> None:
    assert budget_forced_generate_many(_scripted_lm(), [], SamplingParams(10)) == []
