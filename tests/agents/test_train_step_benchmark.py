"""``benchmarks/train_step.py`` runs on tiny settings and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a fresh process, five model copies, four steps a repeat: ~100 s at load 9
def test_train_step_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "train_step.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_step.py"),
            "--model",
            "tiny",
            "--provers",
            "sampled",
            "learned:tiny",
            "hybrid:tiny",
            "--repeats",
            "1",
            "--token-budget",
            "16",
            "--problems-per-step",
            "2",
            "--group-size",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["mrt_over_grpo"] > 0 and figures["sampling_over_raw"] > 0
    per_trajectory = figures["trajectory_vs_episode_generation"]["one generation per trajectory"]
    assert per_trajectory["generated_tokens"] > 0
    low, high = figures["mrt_over_grpo_range"]
    assert low <= figures["mrt_over_grpo"] <= high
    [repeat] = figures["repeats"]
    # μ's own counters of the timed step: one model call per env step, K answers per prefix
    assert repeat["prover_model_calls"] >= 1 and repeat["prover_unique_prefixes"] >= 1
    assert repeat["prover_answers"] == repeat["prover_unique_prefixes"] * 4
    assert 0 < repeat["prover_generate_s"] <= repeat["mrt_prover_s"]
    assert figures["load_average_before"]["cpus"] >= 1
    assert "MRT step breakdown (medians)" in result.stdout and "load: before" in result.stdout
    # every μ timed against the same GRPO step: sampled (the headline), learned, hybrid
    by_prover = figures["mrt_over_grpo_by_prover"]
    assert list(by_prover) == ["sampled", "learned:tiny", "hybrid:tiny"]
    assert by_prover["sampled"]["mrt_over_grpo"] == figures["mrt_over_grpo"]
    for mu, row in by_prover.items():
        step = repeat["mrt_by_prover"][mu]
        assert row["mrt_over_grpo"] == pytest.approx(step["mrt_s"] / repeat["grpo_s"])
        assert 0 < step["mrt_prover_s"] < step["mrt_s"]
        assert f"MRT with μ={mu}:" in result.stdout
    assert "prover_model_calls" not in repeat["mrt_by_prover"]["learned:tiny"]  # no sampling
