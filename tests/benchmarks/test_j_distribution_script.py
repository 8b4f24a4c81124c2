"""Smoke test of j_distribution.py: its share, histogram and curve agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrt_env.tinymath.loading import tiny_lm_path
from tests.benchmarks.scripts import run_script

MODEL = tiny_lm_path("graded")


@pytest.mark.skipif(not (MODEL / "model.safetensors").is_file(), reason="graded tiny LM missing")
def test_j_distribution_script_reports_a_consistent_distribution(tmp_path: Path) -> None:
    args = ("--model", str(MODEL), "--out", str(tmp_path), "--trajectories", "6", "--k", "4")
    out = run_script("j_distribution", *args, "--pass-problems", "10").stdout
    result = json.loads((tmp_path / "j_distribution.json").read_text())
    assert (tmp_path / "j_distribution.png").stat().st_size > 0
    histogram, prefixes = result["histogram"], result["prefixes"]
    assert len(histogram) == 10 and sum(histogram) == prefixes
    assert prefixes >= 2 * 6  # the empty thinking and at least one episode per trajectory
    reached = result["trajectories_reaching_episode"]
    assert reached[0] == reached[1] == 6 and sum(reached) == prefixes
    # K = 4: J* is 0, 0.25, 0.5, 0.75 or 1, so the graded share is bins [0.2, 0.3), [0.5, 0.6)
    # and [0.7, 0.8) and nothing lands on a bin edge of the (0.1, 0.9) interval.
    assert result["share_graded"] == pytest.approx(sum(histogram[1:9]) / prefixes, abs=1e-12)
    assert histogram[1] == histogram[3] == histogram[4] == histogram[6] == histogram[8] == 0
    curve = result["mean_j_by_episode"]
    assert len(curve) == len(reached) and np.all(np.array(curve) >= 0)
    assert f"share of prefixes with J* in (0.1, 0.9): {result['share_graded']:.3f}" in out
    assert "load average" in out and 0 <= result["greedy_pass_at_1"] <= 1
    kinds = result["by_prefix_kind"]
    assert sum(row["prefixes"] for row in kinds.values()) == prefixes
    assert kinds["empty thinking"]["prefixes"] == 6  # one empty thinking per trajectory
    assert sum(row["graded"] for row in kinds.values()) == round(result["share_graded"] * prefixes)
    levels = result["by_level"]
    assert sum(row["prefixes"] for row in levels.values()) == prefixes
    assert sum(row["graded"] for row in levels.values()) == round(result["share_graded"] * prefixes)
    assert "by TinyMath level: L" in out
    # the targets: share, rising J*, greedy and sampled pass@1 in the base's band (the base's
    # pass@1 measured here on the same 10 problems, its recorded figures being on 500)
    names = [check["name"] for check in result["checks"]]
    assert len(names) == 4 and "greedy pass@1 in the base's band" in names
    assert result["base"]["pass_at_1"]["greedy"] is not None
    for check in result["checks"]:
        assert f"{'PASS' if check['passed'] else 'FAIL'}  {check['name']}: " in out
    tokens = result["forced_answer_tokens"]  # the tiny template opens \boxed{: a number
    assert tokens["cap"] == 16 and 1 <= tokens["mean"] <= tokens["max_prefix_mean"] <= 16


EXPLAIN = tiny_lm_path("explain")


@pytest.mark.skipif(not (EXPLAIN / "model.safetensors").is_file(), reason="explain LM missing")
def test_forced_answers_that_explain_are_longer_and_under_their_cap(tmp_path: Path) -> None:
    """``tiny-lm-explain`` writes a line of column work before ``\\boxed{}`` where it does not
    trust a stated answer (always from the empty thinking): far more than the tiny template's
    16-token cap, under the explain template's 128."""
    args = ("--model", str(EXPLAIN), "--out", str(tmp_path), "--trajectories", "4", "--k", "4")
    out = run_script("j_distribution", *args, "--pass-problems", "0").stdout
    tokens = json.loads((tmp_path / "j_distribution.json").read_text())["forced_answer_tokens"]
    assert tokens["cap"] == 128 and 16 < tokens["max_prefix_mean"] < 0.9 * 128
    assert tokens["mean"] > 10 and "forced answers (mu's cost per sample)" in out
    assert "nearly fill their cap" not in out
