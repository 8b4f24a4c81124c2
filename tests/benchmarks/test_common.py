"""The shared helpers of the benchmark scripts: CLI, statistics, caches, figures over records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mrt_env import stats
from tests.benchmarks.scripts import load_script

common = load_script("_common")


@dataclass
class _Args:
    """Test arguments."""

    count: int = 3
    """how many"""
    names: tuple[str, ...] = ("a", "b")
    """some names"""
    flag: bool = False
    """a switch"""
    ratio: float = 0.5
    """a number"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], _Args()),  # defaults
        (["--count", "7"], _Args(count=7)),  # int conversion
        (["--names", "x", "y", "z"], _Args(names=("x", "y", "z"))),  # tuple of strings
        (["--flag"], _Args(flag=True)),  # bare boolean flag
        (["--flag", "false", "--ratio", "2"], _Args(ratio=2.0)),  # explicit boolean, float
    ],
)
def test_parse_args_builds_the_dataclass(argv: list[str], expected: _Args) -> None:
    assert common.parse_args(_Args, argv) == expected


def test_parse_args_help_shows_field_docs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        common.parse_args(_Args, ["--help"])
    assert "how many" in capsys.readouterr().out


def test_statistics_are_the_librarys() -> None:
    assert common.bootstrap_ci is stats.bootstrap_ci
    assert common.probability_of_improvement is stats.probability_of_improvement


def test_settings_hash_is_stable_and_sensitive() -> None:
    assert common.settings_hash({"a": 1, "b": 2}) == common.settings_hash({"b": 2, "a": 1})
    assert common.settings_hash({"a": 1}) != common.settings_hash({"a": 2})


@pytest.mark.parametrize(
    ("spec", "kind", "min_paragraphs"),
    [
        ("marker", "MarkerSegmenter", 3),  # default minimum paragraphs per episode
        ("marker:1", "MarkerSegmenter", 1),  # explicit minimum
        ("paragraph", "ParagraphSegmenter", None),  # one paragraph per episode
        ("fallback:32", "FallbackSegmenter", None),  # marker rule, else 32-token paragraphs
    ],
)
def test_build_segmenter(spec: str, kind: str, min_paragraphs: int | None) -> None:
    segmenter = common.build_segmenter(spec)
    assert type(segmenter).__name__ == kind
    if min_paragraphs is not None:
        assert segmenter.min_paragraphs == min_paragraphs


def test_an_empty_segmenter_spec_leaves_the_choice_to_the_env() -> None:
    assert common.build_segmenter("") is None
    assert common.build_segmenter("fallback:32").min_tokens == 32


def test_build_segmenter_paragraph_rule() -> None:
    assert common.build_segmenter("marker:1").paragraph_rule == "official"
    blank = common.build_segmenter("marker:1+blank_lines")
    assert (blank.paragraph_rule, blank.min_paragraphs) == ("blank_lines", 1)
    assert common.build_segmenter("paragraph+blank_lines").paragraph_rule == "blank_lines"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tokens:8", "tokenizer"),  # needs an LM
        ("words", "unknown segmenter"),  # a typo
        ("marker+lines", "paragraph rule"),  # an unknown paragraph rule
    ],
)
def test_build_segmenter_rejects_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        common.build_segmenter(spec)


def test_policy_fingerprint_follows_the_weights(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1")
    first = common.policy_fingerprint(str(model))
    assert common.policy_fingerprint(str(model)) == first  # stable
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert common.policy_fingerprint(str(model)) != first  # retrained weights: new results
    assert common.policy_fingerprint("org/hub-model") == "org/hub-model"


def test_cache_round_trip_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    assert common.read_cache(path) == {}
    records = [{"policy": "a", "problem_id": "q1", "x": 1}, {"policy": "b", "problem_id": "q1"}]
    common.append_cache(path, records)
    with path.open("a") as handle:
        handle.write('{"policy": "a", "probl')  # a run killed mid-write
    assert common.read_cache(path) == {("a", "q1"): records[0], ("b", "q1"): records[1]}


def _record(problem_id: str, answers: list[str], correct: list[bool]) -> dict[str, Any]:
    """A regret.py record: sample i reads J = 0.5 at 10 tokens, then its 0/1 outcome at 20."""
    samples = [
        {
            "response": f"r{i}",
            "answer": answer,
            "correct": ok,
            "tokens": 20,
            "episodes": 2,
            "j": [0.5, float(ok)],
            "curve": [[10, 0.5], [20, float(ok)]],
            "forced": {"2": {"tokens": 40, "curve": [[10, 0.5], [40, 1.0]], "episodes": 3}},
        }
        for i, (answer, ok) in enumerate(zip(answers, correct, strict=True))
    ]
    return {"problem_id": problem_id, "samples": samples}


RECORDS = [_record("q1", ["2", "2"], [True, True]), _record("q2", ["3", "4"], [False, False])]


def test_figures_over_records() -> None:
    assert len(common.curves(RECORDS)) == 2 and len(common.curves(RECORDS, w=2)[0]) == 2
    assert common.curves(RECORDS, w=4) == []  # no trace was forced 4 times
    # at budget 20: area (10 * 0.25 + 10 * 0.75) / 20 = 0.5 when correct, 0.25 when wrong
    np.testing.assert_allclose(common.regret_per_problem(RECORDS, 20), [0.5, 0.75])
    maj = common.maj_curve(RECORDS, samples=2)
    assert maj == {"k": [1, 2], "tokens": [20.0, 40.0], "accuracy": [0.5, 0.5]}
    grid = np.array([0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(common.mean_j_on_grid(RECORDS, grid), [0.0, 0.5, 0.5, 0.5])
    a, b = common.common_problems(RECORDS, RECORDS[1:])
    assert a == b == RECORDS[1:]


def test_summary_comparison_and_markdown() -> None:
    summary = {
        name: common.summarize_records(RECORDS, [20], {2: 84}, samples=2, episode_budget=3)
        for name in ("a", "b")
    }
    stats = summary["a"]
    assert stats["pass@1"]["mean"] == 0.5 and stats["mean_episodes"] == 2.0
    assert stats["normalized_regret"]["20"]["mean"] == pytest.approx(0.625)
    assert set(stats["normalized_regret_extrapolated"]) == {"84"}
    assert len(stats["regret_over_episodes"]) == 4
    comparisons = common.compare_records({"a": RECORDS, "b": RECORDS}, summary, [20], {2: 84})
    assert set(comparisons["probability_lower_regret"]) == {"a<b", "b<a"}
    assert comparisons["probability_lower_regret"]["a<b"]["20"]["mean"] == 0.5  # all ties
    text = common.regret_markdown(summary, comparisons, [20], {2: 84}, ["a note"])
    assert "regret@84 (w=2)" in text and "| a vs b | 0.50" in text and "- a note" in text
    assert "| P(lower regret) at budget | 20 | 84 (w=2) |" in text


def test_probability_of_lower_regret_on_different_records_is_hand_computed() -> None:
    wrong_q1 = _record("q1", ["3", "3"], [False, False])
    extra = _record("q3", ["5", "5"], [True, True])  # only policy a has q3: not compared
    policies = {"a": [*RECORDS, extra], "b": [wrong_q1, RECORDS[1]]}
    summary = {
        name: common.summarize_records(records, [20], {2: 84}, samples=2, episode_budget=3)
        for name, records in policies.items()
    }
    comparisons = common.compare_records(policies, summary, [20], {2: 84})
    # regret at 20 (see test_figures_over_records): a = [0.5, 0.75], b = [0.75, 0.75] on q1, q2
    # -> a wins q1, ties q2: (1 + 0.5) / 2; b: (0 + 0.5) / 2
    lower = comparisons["probability_lower_regret"]
    assert lower["a<b"]["20"]["mean"] == pytest.approx(0.75)
    assert lower["b<a"]["20"]["mean"] == pytest.approx(0.25)
    assert lower["a<b"]["20"]["n"] == 2
    assert lower["a<b"]["84"]["mean"] == pytest.approx(0.5)  # equal forced curves: ties
    # b's mean J at 20 is 0 (both wrong): no J level to reach, the efficiency is undefined
    assert comparisons["token_efficiency_j"]["a_vs_b"]["20"] is None
    text = common.regret_markdown(summary, comparisons, [20], {2: 84}, [])
    assert "| P(lower regret) at budget | 20 | 84 (w=2) |" in text
    assert "| a vs b | 0.75 [" in text


def test_j_token_efficiency_is_the_ratio_of_tokens_to_the_same_mean_j() -> None:
    fast = [{"problem_id": "q", "samples": [{"curve": [[10, 1.0]]}]}]
    slow = [{"problem_id": "q", "samples": [{"curve": [[40, 1.0]]}]}]
    # J rises linearly from 0 to 1 over 10 (fast) or 40 (slow) tokens; slow reaches 1 at 40
    assert common.j_token_efficiency(fast, slow, budget=40) == pytest.approx(4.0)
    assert common.j_token_efficiency(slow, fast, budget=40) == pytest.approx(0.25)


def test_traces_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    common.write_traces({"a": RECORDS}, path)
    traces = common.read_traces(path)
    assert [(t["problem_id"], t["sample"], t["response"]) for t in traces] == [
        ("q1", 0, "r0"),
        ("q1", 1, "r1"),
        ("q2", 0, "r0"),
        ("q2", 1, "r1"),
    ]
    assert len(common.read_traces(path, limit=3)) == 3
    path.write_text('{"problem_id": "q1"}\n')
    with pytest.raises(SystemExit, match="response"):
        common.read_traces(path)


def test_save_line_plot_writes_a_png(tmp_path: Path) -> None:
    lines = [common.Line([0, 1], [0.2, 0.4], "a", "o-", "C0", ([0.1, 0.3], [0.3, 0.5]))]
    common.save_line_plot(tmp_path / "plot.png", lines, "x", "y")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def _saved_axes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Axes of the figures ``save_line_plot`` closes (inspected after the PNG is written)."""
    import matplotlib.pyplot as plt

    closed: list[Any] = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (closed.append(fig.axes[0]), real_close(fig)))
    return closed


def test_plots_use_fixed_unit_axes_a_title_and_say_no_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    axes = _saved_axes(monkeypatch)
    flat = [common.Line([0, 64, 128], [0.0, 0.01, 0.02], "base")]  # J near 0: not auto-scaled
    title = common.plot_title("run-x", "math500.jsonl?level=1", 6, ["base", "mrt"])
    common.save_line_plot(tmp_path / "a.png", flat, "tokens", "J", title)
    low, high = axes[0].get_ylim()
    assert low < 0.0 < 1.0 < high and high - low < 1.1  # [0, 1] plus a small margin
    assert axes[0].get_title() == "run-x · math500.jsonl?level=1 (6 problems)\npolicies: base, mrt"
    assert [t.get_text() for t in axes[0].texts] == []
    common.save_line_plot(tmp_path / "b.png", [], "tokens", "J", title)
    common.save_line_plot(tmp_path / "c.png", [common.Line([0], [float("nan")])], "t", "J")
    assert [[t.get_text() for t in ax.texts] for ax in axes[1:]] == [["no data"], ["no data"]]


def test_one_policy_markdown_has_no_header_only_tables_and_flags_degenerate_runs() -> None:
    summary = {"a": common.summarize_records(RECORDS, [20], {}, samples=2, episode_budget=3)}
    comparisons = common.compare_records({"a": RECORDS}, summary, [20], {})
    flags = {"a": ["pass@1 = 0: no response was correct"]}
    text = common.regret_markdown(summary, comparisons, [20], {}, [], flags)
    assert "P(lower regret)" not in text and "token efficiency" not in text  # no pairs
    assert text.startswith("**Degenerate run")
    assert "- a: pass@1 = 0: no response was correct" in text
    # RECORDS: every sample has 2 episodes -> mean 2.00, no one-episode response
    assert "| a | 0.500 [" in text and "| 2.00 | 0% |" in text


def test_results_json_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    common.write_json(path, {"a": float("nan"), "b": [np.float64("inf"), 1.5], "c": Path("x")})
    text = path.read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "a": None,
        "b": [None, 1.5],
        "c": "x",
    }
