"""Labels of a learned μ: validation with file and line, resumable collection, merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.problems import Problem
from mrt_env.prover.labels import (
    LabelError,
    LabelRow,
    collect_labels,
    read_labels,
    response_prefixes,
)
from mrt_env.prover.train import merge_rows
from mrt_env.templates import TEMPLATES

GOOD = {
    "problem_id": "p",
    "prompt": "P\n",
    "gold": "2",
    "prefix": "",
    "num_correct": 1,
    "num_samples": 8,
}


def _write(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not a JSON object"),
        ({**GOOD, "num_samples": 0}, r"num_samples \(K\) must be >= 1, got 0"),
        ({**GOOD, "num_correct": 9}, r"num_correct must be in \[0, num_samples=8\], got 9"),
        ({**GOOD, "num_correct": -1}, "num_correct must be in"),
        ({**GOOD, "num_samples": 8.5}, "num_samples must be an integer"),
        ({k: v for k, v in GOOD.items() if k != "gold"}, "missing gold"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, bad: object, message: str) -> None:
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(LabelError, match=f"{path}:2: {message}"):
        read_labels(tmp_path)


def test_good_rows_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, [GOOD, "", {**GOOD, "prefix": "x", "num_correct": 8}])
    rows = read_labels(path)
    assert [(r.prefix, r.j) for r in rows] == [("", 0.125), ("x", 1.0)]


def test_merge_pools_duplicate_prefixes() -> None:
    a = LabelRow("p", "P", "2", "", 1, 4, answer_tokens=2.0)
    b = LabelRow("p", "P", "2", "", 3, 8, answer_tokens=5.0)
    c = LabelRow("q", "P", "2", "", 0, 8)
    merged = merge_rows([a, b, c])
    assert [(r.num_correct, r.num_samples) for r in merged] == [(4, 12), (0, 8)]
    assert merged[0].answer_tokens == pytest.approx((2 * 4 + 5 * 8) / 12)


def test_prefixes_at_every_episode_boundary_and_the_natural_end() -> None:
    from mrt_env.segmenters import MarkerSegmenter

    template = TEMPLATES["tiny"]
    response = "1+1=3.\n\nWait, 1+1=2.\n</think>\n\\boxed{2}"
    prefixes = response_prefixes(response, template, MarkerSegmenter(min_paragraphs=1))
    assert prefixes[0] == "" and prefixes[-1] == response and len(prefixes) == 4
    assert prefixes[1].startswith("1+1=3.") and "Wait" not in prefixes[1]
    assert response_prefixes("1+1=", template, MarkerSegmenter(min_paragraphs=1)) == ["", "1+1="]


def _problems(n: int) -> list[Problem]:
    return [Problem(f"p{i}", f"{i}+1?", str(i + 1)) for i in range(n)]


def _policy() -> ScriptedLM:
    # responses write "i+1=..." then end thinking; forced answers after "\boxed{" say "1}"
    return ScriptedLM(
        {
            "<think>\n": "Try.\n\nWait, done.\n</think>\n\\boxed{1}",
            "{": "1}",
            "</think>": "\n\\boxed{1}",
        }
    )


def test_collect_resumes_and_records_policy_and_seed(tmp_path: Path) -> None:
    lm = _policy()
    path = collect_labels(
        lm,
        _problems(2),
        tmp_path,
        policy_id="scripted",
        k=4,
        responses_per_problem=1,
        template="tiny",
        progress=False,
    )
    first = read_labels(path)
    assert {r.problem_id for r in first} == {"p0", "p1"}
    assert all(r.policy == "scripted" and r.num_samples == 4 for r in first)
    # p0's gold is 1 and every forced answer says 1: J = 1; p1 (gold 2): J = 0
    assert {(r.problem_id, r.j) for r in first} == {("p0", 1.0), ("p1", 0.0)}
    assert [r.episode_index for r in first] == [0, 1, 2, 3] * 2
    calls = len(lm.calls)
    with path.open("a") as handle:  # a crash mid-write leaves a torn last line
        handle.write('{"problem_id": "p2", "pro')
    collect_labels(
        lm,
        _problems(3),
        tmp_path,
        policy_id="scripted",
        k=4,
        responses_per_problem=1,
        template="tiny",
        progress=False,
    )
    rows = read_labels(path)
    assert rows[: len(first)] == first and {r.problem_id for r in rows[len(first) :]} == {"p2"}
    assert len(lm.calls) == calls + 2  # one response call and one μ call for p2 only
    with pytest.raises(LabelError, match="this run collects policy 'other'"):
        collect_labels(lm, _problems(3), tmp_path, policy_id="other", k=4, progress=False)


def test_cli_names_the_bad_file_and_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mrt_env.prover.cli import app

    path = _write(tmp_path, [GOOD, {**GOOD, "num_correct": 12}])
    result = CliRunner().invoke(app, ["train", "--labels", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert f"{path}:2: num_correct must be in" in str(result.exception)
    result = CliRunner().invoke(app, ["collect", "--out", str(tmp_path / "c"), "--k", "0"])
    assert result.exit_code != 0 and "--k must be >= 1" in result.output
