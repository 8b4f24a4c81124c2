"""``benchmarks/memory.py``: the R1-1.5B estimate and the measurements of one tiny setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.scripts import load_script, run_script


def test_r1_parameters_match_the_published_size() -> None:
    memory = load_script("memory")
    assert memory.r1_parameters() == 1_777_088_000  # "1.78B params" on the model's Hub page


def test_readme_gpu_settings_fit_and_the_old_ones_do_not() -> None:
    memory = load_script("memory")
    limit = memory.GPU_USABLE * memory.GPU_BYTES
    readme = memory.r1_estimate(memory.README_GPU)
    before = memory.r1_estimate(memory.BEFORE)
    assert max(readme["peak: rollout"], readme["peak: train"]) <= limit
    assert max(before["peak: rollout"], before["peak: train"]) > limit
    # the figure: 512 rows of bf16 KV preallocated to 16k tokens ~ 235 GB
    preallocated = 512 * 16_384 * 28_672
    assert preallocated == pytest.approx(240e9, rel=0.02)


@pytest.mark.slow  # three fresh processes, each loading the model
def test_measurements_are_positive_and_written(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    args = ("--model", "random-tiny", "--contexts", "32", "--rows", "2", "--k", "2")
    run_script("memory", *args, "--out", str(out), timeout=300)
    results = json.loads(out.read_text())
    kinds = {row["kind"]: row for row in results["measurements"]}
    assert set(kinds) == {"mu", "rollout", "train"}
    assert all(row["peak_bytes"] > 0 for row in kinds.values())
    assert [row["fits"] for row in results["r1_estimate"]] == [True, False]
