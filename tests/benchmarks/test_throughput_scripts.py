"""Smoke tests of prover.py and verifier.py: finite ratios, equal work on both sides; prover.py
loads the tiny LM variant its --model names."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from tests.benchmarks.scripts import load_script, run_script

RATIO = re.compile(r"(\d+\.\d+)x")


def ratios(line: str) -> list[float]:
    return [float(value) for value in RATIO.findall(line)]


def test_prover_script_prints_finite_ratios_over_equal_work() -> None:
    args = ("--num-problems", "2", "--episodes", "1", "--k", "2", "--repeats", "2")
    out = run_script("prover", *args, "--max-answer-tokens", "4", "--env-check", "false").stdout
    [work] = [line for line in out.splitlines() if line.startswith("work:")]
    counts = [int(n) for n in re.findall(r"\d+", work.split("{", 1)[1])]
    assert len(counts) == 6 and len(set(counts)) == 1 and "(equal)" in work  # 3 methods x 2
    rows = [line for line in out.splitlines() if line.startswith("prover, ")]
    assert len(rows) == 2
    for row in rows:
        # seconds, end-to-end median [min, max], sampling median [min, max], prefill / minimum
        values = [float(v) for v in re.findall(r"\d+\.\d+", row)]
        assert len(values) == 8 and all(math.isfinite(v) and v > 0 for v in values)
        assert values[2] <= values[1] <= values[3] and values[5] <= values[4] <= values[6]


@pytest.mark.parametrize(
    ("spec", "folder"), [("tiny", "tiny-lm-explain"), ("tiny:classic", "tiny-lm")]
)
def test_prover_script_loads_the_tiny_variant_named(spec: str, folder: str) -> None:
    prover = load_script("prover")
    lm = prover.load_lm(prover.Args(model=spec))
    assert Path(lm.name).name == folder


def test_verifier_script_prints_finite_ratios_over_equal_work(tmp_path: Path) -> None:
    golds = ["2", "\\frac{1}{2}", "3\\sqrt{2}", "0.5", "x^2+1", "2"]
    data = tmp_path / "golds.jsonl"
    data.write_text("".join(json.dumps({"answer": g}) + "\n" for g in golds))
    out = run_script(
        "verifier", "--data", str(data), "--workers", "1", "--adversarial", "false",
        "--repeats", "2",
    ).stdout  # fmt: skip
    lines = out.splitlines()
    # (a): 5 distinct golds -> 5 tasks on both sides, no duplicates, in each of the 2 rounds
    work_a = [line for line in lines if line.startswith("(a) work:")]
    assert len(work_a) == 2 and all(re.findall(r"\d+", line) == ["5", "5"] for line in work_a)
    ratio_a = [line for line in lines if line.startswith("(a) pool (")]
    assert len(ratio_a) == 2 and all(math.isfinite(ratios(line)[0]) for line in ratio_a)
    assert all("timeouts: 0" in line for line in ratio_a)
    # (b): 6 golds x 3 variants on both sides
    work_b = [line for line in lines if line.startswith("(b) work:")]
    assert len(work_b) == 2 and all(re.findall(r"\d+", w) == ["18", "18"] for w in work_b)
    ratio_b = [ratios(line)[0] for line in lines if line.startswith("(b) verify_many (")]
    assert len(ratio_b) == 2 and all(math.isfinite(r) for r in ratio_b)
    # the summary: median [min, max] over the rounds, equal to the per-round figures
    [summary_b] = [line for line in lines if line.startswith("(b) verify_many / raw")]
    median, low, high = (float(v) for v in re.findall(r"\d+\.\d+", summary_b)[:3])
    assert low == round(min(ratio_b), 2) and high == round(max(ratio_b), 2)
    assert low <= median <= high and "(n = 2)" in summary_b
    assert any(line.startswith("load: before load ") for line in lines)
