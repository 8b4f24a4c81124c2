"""Reward modules, their composition and the registry."""

from __future__ import annotations

import importlib.metadata
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

import rewards
from rewards import (
    FormatReward,
    LengthPenalty,
    OutcomeReward,
    ProgressBonus,
    RewardModule,
    RewardTerms,
    StepContext,
    Verification,
    WeightedSum,
    call_batch,
    make_reward,
    register_reward,
)
from rewards.registry import ENTRY_POINT_GROUP, known_rewards


def step(**overrides: Any) -> StepContext:
    """A step context with sensible defaults."""
    fields: dict[str, Any] = {
        "problem": "What is 1+1?",
        "gold": "2",
        "prefix": "",
        "episode": "1+1=2.",
        "episode_index": 0,
        "episode_tokens": 100,
        "total_tokens": 100,
    }
    fields.update(overrides)
    return StepContext(**fields)


def terminal(response: str, **overrides: Any) -> StepContext:
    return step(terminal=True, response=response, **overrides)


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (step(), 0.0),  # not terminal: no outcome yet
        (terminal("</think>\\boxed{2}"), 1.0),  # correct final answer
        (terminal("</think>\\boxed{3}"), 0.0),  # wrong final answer
        (terminal("<think>\\boxed{2}"), 0.0),  # the answer only inside unfinished thinking
        (terminal("</think>\\boxed{3}", metadata={"verification": "correct"}), 1.0),  # reused
        (terminal("</think>\\boxed{2}", metadata={"verification": Verification("wrong")}), 0.0),
        (step(terminal=True), 0.0),  # terminal without a response
        (step(terminal=True, metadata={"expected_outcome": 0.25}), 0.25),  # graded by J
        (step(metadata={"expected_outcome": 0.25}), 0.0),  # not terminal
    ],
)
def test_outcome_reward(ctx: StepContext, expected: float) -> None:
    assert OutcomeReward()(ctx) == expected


def test_outcome_batch_matches_single_calls() -> None:
    ctxs = [terminal(f"</think>\\boxed{{{i}}}") for i in range(5)] + [step()]
    module = OutcomeReward()
    assert module.batch(ctxs) == [module(ctx) for ctx in ctxs] == [0, 0, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("j_before", "j_after", "alpha", "expected"),
    [
        (0.25, 0.75, 1.0, 0.5),  # progress
        (0.75, 0.25, 2.0, -1.0),  # regress, scaled
        (None, 0.5, 1.0, None),  # unknown before: abstain
        (0.5, None, 1.0, None),  # unknown after: abstain
    ],
)
def test_progress_bonus(
    j_before: float | None, j_after: float | None, alpha: float, expected: float | None
) -> None:
    assert ProgressBonus(alpha=alpha)(step(j_before=j_before, j_after=j_after)) == expected


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (terminal("<think>a</think>\\boxed{2}"), 1.0),  # well formed
        (terminal("</think>\\boxed{2} again \\boxed{2}"), 1.0),  # the same answer twice
        (terminal("</think>\\boxed{2} or \\boxed{3}"), 0.0),  # two different answers
        (terminal("</think>no box"), 0.0),  # no boxed answer
        (terminal("\\boxed{2}"), 0.0),  # thinking never ended
        (step(), 0.0),  # not terminal
    ],
)
def test_format_reward(ctx: StepContext, expected: float) -> None:
    assert FormatReward()(ctx) == expected


def test_length_penalty() -> None:
    assert LengthPenalty(per_token=0.01)(step(episode_tokens=30)) == pytest.approx(-0.3)


def test_weighted_sum_total_and_terms() -> None:
    total = WeightedSum(
        (OutcomeReward(), ProgressBonus(), LengthPenalty(0.001)), weights=(1.0, 0.5, 2.0)
    )
    result = total(terminal("</think>\\boxed{2}", j_before=0.2, j_after=0.6))
    assert result.terms == {"outcome": 1.0, "progress": pytest.approx(0.4), "length": -0.1}
    assert result.total == pytest.approx(1.0 + 0.2 - 0.2)


def test_weighted_sum_abstaining_term_is_none_and_adds_nothing() -> None:
    result = WeightedSum((ProgressBonus(), LengthPenalty(0.01)))(step(episode_tokens=10))
    assert result.terms == {"progress": None, "length": -0.1}
    assert result.total == pytest.approx(-0.1)
    assert isinstance(result, RewardTerms)


def test_weighted_sum_batch_matches_single_calls() -> None:
    total = WeightedSum((OutcomeReward(), ProgressBonus()))
    ctxs = [terminal("</think>\\boxed{2}", j_before=0.1, j_after=0.2), step()]
    assert total.batch(ctxs) == [total(ctx) for ctx in ctxs]


@pytest.mark.parametrize(
    "bad",
    [
        {"modules": (ProgressBonus(),), "weights": (1.0, 2.0)},  # weight count mismatch
        {"modules": (ProgressBonus(), ProgressBonus(alpha=2.0))},  # duplicate names
    ],
)
def test_weighted_sum_rejects_bad_configs(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WeightedSum(**bad)


@pytest.mark.parametrize(
    "module",
    [
        OutcomeReward(),
        ProgressBonus(alpha=0.3),
        FormatReward(),
        LengthPenalty(0.002),
        WeightedSum((OutcomeReward(), ProgressBonus())),
    ],
)
def test_modules_pickle_round_trip(module: Any) -> None:
    clone = pickle.loads(pickle.dumps(module))
    assert clone == module
    ctx = terminal("</think>\\boxed{2}", j_before=0.5, j_after=1.0)
    assert clone(ctx) == module(ctx)


def test_builtins_satisfy_the_protocol() -> None:
    for module in (OutcomeReward(), ProgressBonus(), FormatReward(), LengthPenalty()):
        assert isinstance(module, RewardModule)


def test_call_batch_falls_back_to_single_calls() -> None:
    @dataclass(frozen=True)
    class EpisodeIndexReward:
        name: str = "index"

        def __call__(self, ctx: StepContext) -> float:
            return float(ctx.episode_index)

    ctxs = [step(episode_index=i) for i in range(3)]
    assert call_batch(EpisodeIndexReward(), ctxs) == [0.0, 1.0, 2.0]


# --- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConstantReward:
    """A third-party-style reward module used by the registry tests."""

    value: float = 1.0
    name: str = "constant"

    def __call__(self, ctx: StepContext) -> float:
        return self.value


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("outcome", {}, OutcomeReward()),  # short names
        ("progress", {"alpha": 0.5}, ProgressBonus(alpha=0.5)),
        ("format", {}, FormatReward()),
        ("length", {"per_token": 0.01}, LengthPenalty(per_token=0.01)),
        ("rewards.modules:ProgressBonus", {"alpha": 2.0}, ProgressBonus(alpha=2.0)),  # a path
        (f"{__name__}:ConstantReward", {"value": 3.0}, ConstantReward(3.0)),  # any module
    ],
)
def test_make_reward(name: str, kwargs: dict[str, Any], expected: Any) -> None:
    assert make_reward(name, **kwargs) == expected


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"known rewards: .*'outcome'.*'progress'"):
        make_reward("no-such-reward")


@pytest.mark.parametrize("path", ["rewards.modules:NoSuchClass", "no_such_package.mod:Class"])
def test_bad_paths_raise_clearly(path: str) -> None:
    with pytest.raises(ValueError, match="cannot load reward"):
        make_reward(path)


def test_non_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="no 'name'"):
        make_reward("builtins:dict")


def test_register_reward() -> None:
    register_reward("test-constant", ConstantReward)
    assert make_reward("test-constant", value=2.0) == ConstantReward(2.0)
    assert "test-constant" in known_rewards()
    with pytest.raises(ValueError, match="already registered"):
        register_reward("test-constant", LengthPenalty)


def test_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    entry_point = importlib.metadata.EntryPoint(
        name="third-party", value=f"{__name__}:ConstantReward", group=ENTRY_POINT_GROUP
    )

    def fake_entry_points(**params: Any) -> list[importlib.metadata.EntryPoint]:
        assert params == {"group": ENTRY_POINT_GROUP}
        return [entry_point]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    assert "third-party" in known_rewards()
    assert make_reward("third-party", value=5.0) == ConstantReward(5.0)


def test_import_is_light() -> None:
    code = (
        "import sys, rewards; "
        "heavy = ('torch', 'transformers', 'math_verify', 'sympy'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert set(rewards.__all__) >= {"verify", "Verification", "make_reward", "WeightedSum"}
