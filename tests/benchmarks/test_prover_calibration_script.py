"""prover_calibration.py on a tiny configuration: its outputs agree with figures recomputed
here from the per-prefix rows it writes and the J* labels it collected."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from mrt_env.prover.learned import shipped_prover
from tests.benchmarks.scripts import run_script

K_REF = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("calibration")
    args = ["--model", "tiny", "--prover", str(shipped_prover("tiny")), "--num-problems", "3"]
    args += ["--k-ref", str(K_REF), "--ks", "1,2", "--repeats", "2", "--call-size", "3"]
    result = run_script("prover_calibration", *args, "--out", str(out), timeout=600)
    return out, result.stdout


def test_outputs_have_every_estimator_and_prefix(run: tuple[Path, str]) -> None:
    out, stdout = run
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "estimates.jsonl").read_text().splitlines()]
    names = {"sampled K=1", "sampled K=2", "learned"}
    assert set(summary["results"]) == names and len(rows) == summary["prefixes"] > 3
    assert all(set(row["estimates"]) == names for row in rows)
    assert (out / "calibration.png").stat().st_size > 0
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 2 + len(names) and all(f"| {n} |" in stdout for n in names)
    for result in summary["results"].values():
        assert len(result["walls"]) == 2 and result["wall_s"] == statistics.median(result["walls"])
    assert summary["results"]["learned"]["forward_passes_per_call"] == 1.0
    assert summary["results"]["learned"]["gen_tokens"] == 0.0
    assert summary["results"]["sampled K=2"]["gen_tokens"] > 0
    assert "load average at start" in stdout and "load average at end" in stdout


def test_j_star_rows_are_the_collected_labels(run: tuple[Path, str]) -> None:
    out, _ = run
    labels = [
        json.loads(line) for line in (out / "jstar" / "labels.jsonl").read_text().splitlines()
    ]
    rows = [json.loads(line) for line in (out / "estimates.jsonl").read_text().splitlines()]
    assert [row["j_star"] for row in rows] == [r["num_correct"] / r["num_samples"] for r in labels]
    assert {r["num_samples"] for r in labels} == {K_REF}
    for row in rows:  # K answers give multiples of 1/K
        assert row["estimates"]["sampled K=1"] in (0.0, 1.0)
        assert row["estimates"]["sampled K=2"] in (0.0, 0.5, 1.0)


def test_brier_histogram_and_equal_k_recomputed_from_the_rows(run: tuple[Path, str]) -> None:
    out, _ = run
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "estimates.jsonl").read_text().splitlines()]
    j = np.array([row["j_star"] for row in rows], dtype=np.float64)
    for name in ("sampled K=1", "sampled K=2", "learned"):
        p = np.array([row["estimates"][name] for row in rows], dtype=np.float64)
        # Brier less J*'s binomial noise: mean((p - J*)^2 - J*(1 - J*)/(K* - 1))
        expected = sum(
            (a - b) ** 2 - b * (1 - b) / (K_REF - 1) for a, b in zip(p, j, strict=True)
        ) / len(j)
        assert summary["results"][name]["brier"] == pytest.approx(expected, abs=1e-12)
    counts = [0] * 10
    for value in j:
        counts[min(int(value * 10), 9)] += 1
    assert summary["jstar_histogram"] == counts
    graded = sum(0.1 < value < 0.9 for value in j) / len(j)
    assert summary["jstar_share_graded"] == pytest.approx(graded, abs=1e-12)
    variance = sum(value * (1 - value) * K_REF / (K_REF - 1) for value in j) / len(j)
    learned = summary["results"]["learned"]["brier"]
    worth = summary["worth"]["learned"]
    assert summary["jstar_variance"] == pytest.approx(variance, abs=1e-12)
    if learned > 0:  # below zero the learned μ is within J*'s noise: no finite equal K
        assert worth["equal_brier_k_expected"] == pytest.approx(variance / learned, rel=1e-9)
    else:
        assert worth["equal_brier_k_expected"] is None
    sampled_wall = summary["results"]["sampled K=2"]["wall_s"]
    ratio = sampled_wall / summary["results"]["learned"]["wall_s"]
    assert worth["cost_ratio"]["K=2"] == pytest.approx(ratio, rel=1e-9)
