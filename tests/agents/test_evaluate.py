"""Held-out evaluation: bootstrap CI, summary figures, and the command on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agents.evaluate import app, summarize
from agents.types import EpisodeRecord, Trajectory
from mrt_env.stats import bootstrap_ci
from tests.shared_data import DATA_DIR, require_shared_data


def _trajectory(
    group: int, outcome: float, tokens: tuple[float, ...], j: tuple[float, ...]
) -> Trajectory:
    trajectory = Trajectory("p", group, "q", [], outcome=outcome, total_tokens=int(tokens[-1]))
    trajectory.episodes.append(EpisodeRecord(0, 0, "", outcome, j[0], j[-1], 1))
    trajectory.j_curve = (tokens, j)
    return trajectory


def test_bootstrap_ci_brackets_the_mean_and_is_seeded() -> None:
    values = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1] * 4, dtype=float)
    stat = bootstrap_ci(values, seed=3)
    assert stat["ci_low"] < values.mean() < stat["ci_high"]
    assert stat == bootstrap_ci(values, seed=3)
    constant = bootstrap_ci([1.0, 1.0, 1.0])  # no spread: a point interval
    assert (constant["ci_low"], constant["ci_high"]) == (1.0, 1.0)


def test_summarize_hand_computed() -> None:
    # problem 0: both samples right; problem 1: one of two -> pass@1 = (1 + 0.5) / 2
    grouped = [
        [_trajectory(0, 1.0, (100.0,), (1.0,)), _trajectory(0, 1.0, (100.0,), (1.0,))],
        [_trajectory(1, 1.0, (100.0,), (1.0,)), _trajectory(1, 0.0, (100.0,), (0.0,))],
    ]
    summary = summarize(grouped, budgets=[200])
    assert summary.pass_at_1 == pytest.approx(0.75)
    assert summary.mean_tokens == pytest.approx(100.0)
    # areas: J = 1 at 100 tokens -> 0.75 at C0 = 200; J = 0 -> 0; problem means 0.75, 0.375
    assert summary.normalized_regret["200"] == pytest.approx(1 - (0.75 + 0.375) / 2)
    assert (summary.mean_episodes, summary.single_episode_share) == (1.0, 1.0)
    assert any("MRT reduces to outcome RL" in r for r in summary.degenerate)


def test_summarize_counts_episodes_and_flags_zero_j() -> None:
    two = _trajectory(0, 0.0, (50.0, 100.0), (0.0, 0.0))
    two.episodes.append(EpisodeRecord(0, 0, "", 0.0, 0.0, 0.0, 1))
    grouped = [[two, _trajectory(0, 0.0, (100.0,), (0.0,))]]
    summary = summarize(grouped, budgets=[200])
    assert (summary.mean_episodes, summary.single_episode_share) == (1.5, 0.5)
    assert [r.split(":")[0] for r in summary.degenerate] == [
        "pass@1 = 0",
        "J = 0 after every episode",
    ]


def test_evaluate_command_on_tiny_settings(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = CliRunner().invoke(
        app,
        [
            "--variants",
            "random-tiny",
            "--n",
            "3",
            "--token-budget",
            "16",
            "--budgets",
            "32,64",
            "--prover-samples",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "trajectories: 100%|" in result.output and "3/3" in result.output  # progress bar
    strict = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    figures = strict["random-tiny"]
    assert figures["problems"] == 3 and 0.0 <= figures["pass_at_1"] <= 1.0
    assert figures["mean_episodes"] >= 1.0 and 0.0 <= figures["single_episode_share"] <= 1.0
    assert "episodes/response" in result.output
    if figures["pass_at_1"] == 0.0:  # the random test double: flagged, not silent
        assert any(r.startswith("pass@1 = 0") for r in figures["degenerate"])
        assert "WARNING: degenerate run, random-tiny: pass@1 = 0" in result.output
    assert figures["ci_low"] <= figures["pass_at_1"] <= figures["ci_high"]
    assert set(figures["normalized_regret"]) == {"32", "64"}
    assert all(0.0 <= v <= 1.0 for v in figures["normalized_regret"].values())


MATH500 = DATA_DIR / "math500.jsonl"


def test_evaluate_command_on_math500_with_the_tiny_lm(tmp_path: Path) -> None:
    """The same knobs as training: problems file, template, device, K, answer caps."""
    require_shared_data(MATH500)  # skips without ../shared/data, fails under CI=true
    out = tmp_path / "results.json"
    options = ["--problems", str(MATH500), "--n", "2", "--template", "plain", "--device", "cpu"]
    options += ["--k", "2", "--token-budget", "24", "--budgets", "1024", "--seed", "0"]
    options += ["--max-answer-tokens", "8", "--forced-answer-tokens", "4", "--max-decode-rows", "2"]
    result = CliRunner().invoke(app, ["--variants", "base", *options, "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["problems"] == str(MATH500)
    settings = saved["settings"]
    assert (settings["template"], settings["prover_samples"]) == ("plain", 2)
    assert (settings["policy"]["max_answer_tokens"], settings["forced_answer_tokens"]) == (8, 4)
    figures = saved["base"]
    assert figures["problems"] == 2 and 0.0 <= figures["pass_at_1"] <= 1.0
    assert "answered" in result.output and 0.0 <= figures["answered"] <= 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--k", "0"], "--k must be >= 1"),  # named by its flag, not a config field
        (["--problems", "tinymath:heldout?level=99"], "no problem matches 'level=99'"),
    ],
)
def test_evaluate_reports_bad_options_by_name(options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--variants", "random-tiny", "--n", "2", *options])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and "prover_samples" not in result.output


def test_evaluate_rejects_more_problems_than_the_file_has(tmp_path: Path) -> None:
    source = tmp_path / "two.jsonl"
    source.write_text('{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n')
    result = CliRunner().invoke(app, ["--variants", "random-tiny", "--problems", str(source)])
    assert result.exit_code == 2  # a clean error, not a traceback
    assert "Error: --n 200 is more than the 2 problems" in result.output


def test_evaluate_rejects_a_regret_budget_inside_the_prompt() -> None:
    # the tiny tokenizer: a TinyMath prompt is 21-28 tokens, so C0 = 16 holds no thinking
    options = ["--variants", "random-tiny", "--n", "2", "--budgets", "16", "--k", "2"]
    result = CliRunner().invoke(app, options)
    assert result.exit_code == 2
    assert "C0=16 is not above the" in result.output and "prompt" in result.output


@pytest.mark.parametrize(
    ("options", "saved"),
    [
        ([], None),
        (["--answer-pattern", "none"], []),
        (["--answer-pattern", r"is (\d+)"], [r"is (\d+)"]),
    ],
)
def test_evaluate_answer_pattern_reaches_the_settings(
    tmp_path: Path, options: list[str], saved: list[str] | None
) -> None:
    out = tmp_path / "results.json"
    common = ["--variants", "random-tiny", "--n", "1", "--token-budget", "8", "--out", str(out)]
    result = CliRunner().invoke(app, [*common, *options])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["settings"]["answer_patterns"] == saved


def test_evaluate_rejects_a_bad_answer_pattern() -> None:
    result = CliRunner().invoke(app, ["--variants", "random-tiny", "--answer-pattern", "("])
    assert result.exit_code == 2 and "not a regular expression" in result.output


@pytest.mark.parametrize(("patterns", "outcome"), [(None, 1.0), ((), 0.0)])
def test_evaluate_grades_with_the_answer_patterns(
    patterns: tuple[str, ...] | None, outcome: float
) -> None:
    """A scripted chat model (a named double) that ends "So, the answer is 2." without a box:
    the chat default reads it, ``()`` (``--answer-pattern none``) grades boxed answers only."""
    from agents.evaluate import EvalSettings, sample_responses
    from mrt_env.lm.scripted import ScriptedLM
    from mrt_env.problems import Problem
    from mrt_env.templates import chat_template
    from tests.mrt_env.test_templates_chat import chatml_tokenizer

    lm = ScriptedLM(["1 plus 1 makes 2.\n\nSo, the answer is 2."])
    problems = [Problem(id="add", problem="What is 1+1?", answer="2")]
    template = chat_template(chatml_tokenizer())
    settings = EvalSettings(template=template, token_budget=200, answer_patterns=patterns)
    [[trajectory]] = sample_responses(lm, problems, settings, with_prover=False)
    assert trajectory.outcome == outcome
