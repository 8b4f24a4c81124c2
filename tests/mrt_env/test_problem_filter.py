"""Problem filters: metadata, ids, seeded shuffle/sample; nothing matched is an error."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mrt_env.env import MRTMathEnv
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.problem_filter import ProblemFilterError, parse_filter, split_spec
from mrt_env.prover.table import TableMetaProver
from mrt_env.sources import resolve_source
from tests.shared_data import DATA_DIR, require_shared_data

ROWS = [
    {"id": f"p{i}", "problem": f"{i}+1?", "answer": str(i + 1), "level": 1 + i % 5,
     "subject": ["Algebra", "Counting & Probability", "Geometry"][i % 3]}
    for i in range(30)
]  # fmt: skip


@pytest.fixture
def jsonl(tmp_path: Path) -> str:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return str(path)


def ids(spec: str) -> list[str]:
    source = resolve_source(spec)
    return [source[i].id for i in range(len(source))]


def test_metadata_filters_keep_matching_problems_in_file_order(jsonl: str) -> None:
    expected = [r["id"] for r in ROWS if r["level"] in (1, 2) and r["subject"] == "Algebra"]
    assert ids(f"{jsonl}?level=1,2&subject=algebra") == expected  # case-insensitive
    assert ids(f"{jsonl}?level=1-2&subject=Algebra") == expected  # an integer range
    amp = [r["id"] for r in ROWS if r["subject"] == "Counting & Probability"]
    assert ids(f"{jsonl}?subject=Counting%20%26%20Probability") == amp  # percent-encoded &


def test_ids_filter_and_seeded_sample(jsonl: str) -> None:
    assert ids(f"{jsonl}?ids=p7,p3") == ["p3", "p7"]
    drawn = ids(f"{jsonl}?level=3&sample=4&seed=5")
    pool = [r["id"] for r in ROWS if r["level"] == 3]
    # independent of the code: numpy's generator with the same seed
    expected = [pool[int(i)] for i in np.random.default_rng(5).choice(len(pool), 4, replace=False)]
    assert drawn == expected
    assert ids(f"{jsonl}?level=3&sample=4&seed=5") == drawn  # same seed, same draw
    assert ids(f"{jsonl}?level=3&sample=4&seed=6") != drawn
    shuffled = ids(f"{jsonl}?shuffle&seed=1")
    assert sorted(shuffled) == sorted(r["id"] for r in ROWS) and shuffled != ids(jsonl)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("level=9", r"no problem matches 'level=9' \(level present: 1, 2, 3, 4, 5\)"),
        ("levl=1", r"no problem has a field 'levl'; fields: level, subject"),
        ("ids=p1,zz", r"no problem with id 'zz'"),
        ("level=1&sample=50", r"sample=50 but only 6 problems match"),
        ("sample=many", r"sample must be an int"),
        ("level=", r"has no value"),
        ("", r"nothing after '\?'"),
    ],
)
def test_bad_or_empty_filters_are_clear_errors(jsonl: str, query: str, message: str) -> None:
    with pytest.raises(ProblemFilterError, match=message):
        resolve_source(f"{jsonl}?{query}")


def test_query_text_round_trips() -> None:
    query = "subject=Counting%20%26%20Probability,Algebra&level=1-2&ids=a/b.json&sample=3&seed=2"
    parsed = parse_filter(query)
    assert parse_filter(parsed.query()) == parsed
    assert split_spec("x.jsonl") == ("x.jsonl", None)


def test_the_env_takes_a_filtered_set_and_reset_by_id(jsonl: str) -> None:
    env = MRTMathEnv(
        problems=f"{jsonl}?subject=Geometry&level=3",
        lm=ScriptedLM(["x"]),
        prover=TableMetaProver({}, default=0.0),
    )
    expected = [r["id"] for r in ROWS if r["subject"] == "Geometry" and r["level"] == 3]
    seen = {env.reset(seed=s)[1]["problem_id"] for s in range(20)}
    assert seen == set(expected)
    assert env.reset(options={"index": 1})[1]["problem_id"] == expected[1]
    assert env.reset(options={"id": expected[0]})[1]["problem_id"] == expected[0]


def test_math500_levels_and_subjects() -> None:
    path = require_shared_data(DATA_DIR / "math500.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    counts = Counter((r["level"], r["subject"]) for r in rows)
    assert len(resolve_source(f"{path}?level=1&subject=Algebra")) == counts[(1, "Algebra")]
    assert len(resolve_source(f"{path}?level=1-2")) == sum(r["level"] <= 2 for r in rows)


def test_docstring_examples_hold() -> None:
    import doctest

    from mrt_env import diagnostics, problem_filter

    for module in (problem_filter, diagnostics):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
