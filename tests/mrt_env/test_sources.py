"""Problem loaders: valid sources load; malformed ones fail naming the file and line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mrt_env.problems import Problem
from mrt_env.sources import (
    FieldNames,
    ListSource,
    ProblemSourceError,
    from_hf,
    from_list,
    gold_answer_error,
    load_jsonl,
    resolve_source,
)
from tests.shared_data import DATA_DIR, require_shared_data

MATH500 = DATA_DIR / "math500.jsonl"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_jsonl_reads_fields_and_metadata(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            json.dumps({"id": "a", "problem": "1+1?", "answer": "2", "level": 1}),
            "",  # blank lines are skipped
            json.dumps({"problem": "2+2?", "answer": 4}),
        ],
    )
    source = load_jsonl(path)
    assert len(source) == 2
    assert source[0] == Problem("a", "1+1?", "2", {"level": 1})
    assert source[1].id == "p-3" and source[1].answer == "4"  # id from file stem and line
    assert source.index_of("a") == 0


def test_load_jsonl_field_mapping(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.jsonl", [json.dumps({"question": "3*3?", "solution": "9"})])
    source = load_jsonl(path, FieldNames(problem_key="question", answer_key="solution"))
    assert (source[0].problem, source[0].answer) == ("3*3?", "9")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        # not JSON on the second line
        ([json.dumps({"problem": "a", "answer": "1"}), "{oops"], r"p\.jsonl:2: invalid JSON"),
        # the problem field is missing
        ([json.dumps({"answer": "1"})], r"p\.jsonl:1: missing field 'problem'"),
        # the answer field is missing, on line 3
        (["", "", json.dumps({"problem": "a"})], r"p\.jsonl:3: missing field 'answer'"),
        # a JSON value that is not an object
        (["[1, 2]"], r"p\.jsonl:1: expected an object, got list"),
        # an empty answer
        ([json.dumps({"problem": "a", "answer": " "})], r"p\.jsonl:1: field 'answer' is empty"),
        # a problem that is not text
        ([json.dumps({"problem": 5, "answer": "1"})], r"p\.jsonl:1: field 'problem'"),
        # two records with the same id
        ([json.dumps({"id": "x", "problem": "a", "answer": "1"})] * 2, "duplicate problem id"),
        # only blank lines: no problem at all
        (["", "  "], "empty"),
    ],
)
def test_malformed_jsonl_names_file_and_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = write_lines(tmp_path / "p.jsonl", lines)
    with pytest.raises(ProblemSourceError, match=message):
        load_jsonl(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ProblemSourceError, match=r"empty\.jsonl: the problem source is empty"):
        load_jsonl(path)


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        load_jsonl("nope.jsonl")


def test_math500_loads() -> None:
    source = load_jsonl(require_shared_data(MATH500))
    assert len(source) == 500
    assert all(p.problem and p.answer for p in source.problems)


def test_from_list_accepts_problems_and_dicts() -> None:
    source = from_list([Problem("p", "1+1?", "2"), {"problem": "2+2?", "answer": "4"}])
    assert [p.id for p in source.problems] == ["p", "1"]


def test_from_list_error_names_the_index() -> None:
    with pytest.raises(ProblemSourceError, match=r"list\[1\]: missing field 'answer'"):
        from_list([{"problem": "a", "answer": "1"}, {"problem": "b"}])


def test_from_hf_without_datasets_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # a missing package: import fails
    with pytest.raises(ImportError, match=r"pip install 'mrt-gym\[datasets\]'"):
        from_hf("HuggingFaceH4/MATH-500", "test")


def test_resolve_source_dispatch(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.jsonl", [json.dumps({"problem": "a", "answer": "1"})])
    assert isinstance(resolve_source(str(path)), ListSource)
    assert isinstance(resolve_source(path), ListSource)
    listed = resolve_source([{"problem": "a", "answer": "1"}])
    assert isinstance(listed, ListSource)
    assert resolve_source(listed) is listed


def test_resolve_source_tinymath_splits() -> None:
    train, heldout = resolve_source("tinymath"), resolve_source("tinymath:heldout")
    assert len(train) > 0 and len(heldout) > 0
    assert not {train[i].id for i in range(len(train))} & {
        heldout[i].id for i in range(len(heldout))
    }


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("hf:only-name", ValueError, "hf:NAME:SPLIT"),  # missing split
        ("tinymath:test", ValueError, "unknown TinyMath split"),  # not a TinyMath split
        (42, TypeError, "problems must be"),  # not a source at all
    ],
)
def test_resolve_source_rejects_bad_specs(spec: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_source(spec)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (float("nan"), "is not a finite number"),
        (float("-inf"), "is not a finite number"),
        ("NaN", "is not a number"),
        ("\\frac{1}{2", "has unbalanced braces"),
        ("\\{1, 2\\}", None),  # escaped braces are not structural
        ("$ $", "has no answer left after normalisation"),
        ("7" * 5000, None),  # a long integer as text is fine
        (0.5, None),
    ],
)
def test_gold_answer_error(answer: str | float, reason: str | None) -> None:
    assert gold_answer_error(answer) == reason
