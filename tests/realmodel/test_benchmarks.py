"""benchmarks/regret.py and benchmarks/analyze_traces.py on SmolLM2 and MATH-500 (2 problems)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.scripts import run_script

pytestmark = pytest.mark.realmodel


def test_regret_then_trace_analysis_on_the_real_model(
    engine_spec: str, math500: Path, tmp_path: Path
) -> None:
    lm_spec = engine_spec
    runs = tmp_path / "runs"
    argv = [
        "--policies", f"smollm2={lm_spec}", "--problems", str(math500),
        "--num-problems", "2", "--samples", "2", "--k", "2", "--token-budget", "48",
        "--budgets", "256", "384", "--extensions", "1", "--extension-tokens", "16",
        "--max-answer-tokens", "12", "--run-dir", str(runs), "--name", "real",
    ]  # fmt: skip
    result = run_script("regret", *argv, timeout=600)
    assert "tokenizer's chat template" in result.stderr  # the notice of the default template
    summary = json.loads((runs / "real" / "results.json").read_text())["policies"]["smollm2"]
    assert 0.0 <= summary["pass@1"]["mean"] <= 1.0
    for budget in ("256", "384"):
        stat = summary["normalized_regret"][budget]
        assert 0.0 <= stat["ci_low"] <= stat["mean"] <= stat["ci_high"] <= 1.0
    traces = runs / "real" / "traces.jsonl"
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    assert len(records) == 4 and all(r["response"] for r in records)

    argv = [
        "--traces", str(traces), "--problems", str(math500), "--model", lm_spec,
        "--k", "2", "--max-answer-tokens", "12", "--budgets", "256", "384",
        "--run-dir", str(runs), "--name", "analysis",
    ]  # fmt: skip
    run_script("analyze_traces", *argv, timeout=600)
    analysis = json.loads((runs / "analysis" / "results.json").read_text())
    assert analysis  # written; its numbers are checked by the tiny-LM tests
    assert (runs / "analysis" / "results.md").stat().st_size > 0
