"""benchmarks/reproduce.py: statistics across training seeds and a tiny end-to-end run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.scripts import load_script, run_script

reproduce = load_script("reproduce")


def test_seed_interval_is_a_student_t_interval_and_leaves_out_undefined_seeds() -> None:
    stat = reproduce.seed_interval([0.50, 0.52, 0.54, float("nan")])
    # mean 0.52, sd 0.02, t(0.975, 2) = 4.303: half-width 4.303 * 0.02 / sqrt(3) = 0.0497
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(0.52)
    assert (stat["ci_low"], stat["ci_high"]) == pytest.approx((0.4703, 0.5697), abs=1e-4)
    assert reproduce.seed_interval([float("nan")])["n"] == 0


def test_paired_seed_problem_bootstrap_covers_the_mean_and_widens_with_seed_spread() -> None:
    rng = np.random.default_rng(0)
    same = np.full((3, 40), 0.1) + rng.normal(0, 0.01, (3, 40))
    spread = same + np.array([[-0.2], [0.0], [0.2]])  # seeds disagree
    tight, wide = (reproduce.paired_seed_problem(d, seed=1) for d in (same, spread))
    assert tight["ci_low"] < tight["mean"] < tight["ci_high"]
    assert tight["mean"] == pytest.approx(wide["mean"])
    assert wide["ci_high"] - wide["ci_low"] > 5 * (tight["ci_high"] - tight["ci_low"])


def test_relative_gain_of_means_is_undefined_when_grpo_does_not_beat_the_base() -> None:
    def method(mean: float) -> dict[str, object]:
        return {"across_seeds": {"pass@1": {"mean": mean}}}

    methods = {"base": {"pass@1": 0.2}, "grpo": method(0.3), "mrt-progress": method(0.4)}
    gain = reproduce.relative_gain_of_means(methods, ("grpo", "mrt-progress"))
    assert gain == {"mrt-progress": pytest.approx(2.0)}
    methods["grpo"] = method(0.1)
    assert np.isnan(
        reproduce.relative_gain_of_means(methods, ("grpo", "mrt-progress"))["mrt-progress"]
    )


@pytest.mark.slow
def test_two_seeds_train_evaluate_and_aggregate(tmp_path: Path) -> None:
    argv = [
        "--seeds", "0", "1", "--methods", "grpo", "mrt-progress", "--train-minutes", "0",
        "--train-steps", "1", "--num-problems", "3", "--samples", "2", "--k", "2",
        "--eval-flags", "--budgets 64 128 --extensions 2 --chunk-problems 3",
        "--curve-interval", "1", "--curve-problems", "2", "--curve-budget", "64",
        "--run-dir", str(tmp_path), "--name", "smoke",
    ]  # fmt: skip
    run_script("reproduce", *argv, timeout=1200)
    summary = json.loads((tmp_path / "smoke" / "summary.json").read_text())
    assert summary["methods"]["grpo"]["steps"] == [1, 1]
    assert set(summary["minus_grpo"]) == {"mrt-progress"}
    assert summary["budgets"] == ["64", "128", "256(w=2)"]
    assert (tmp_path / "smoke" / "regret_seeds.png").stat().st_size > 0
    curves = summary["curves"]
    assert set(curves) == {"grpo", "mrt-progress"}
    assert [p["step"] for p in curves["grpo"]] == [0, 1]  # the base model, then after step 1
    assert (tmp_path / "smoke" / "curves.png").stat().st_size > 0
    assert set(summary["minimum_detectable_effect"]["mrt-progress"]) >= {"pass@1", "tokens"}


def _write_curve(out: Path, rows: list[tuple[int, float, float, float]]) -> None:
    """A run folder whose metrics.jsonl holds evaluations (step, seconds, pass@1, regret)
    between training rows without any, as mrt-train writes them."""
    (out / "tb").mkdir(parents=True)
    lines = []
    for step, seconds, pass_at_1, regret in rows:
        lines.append({"step": step, "reward/outcome": 0.5, "charts/elapsed_s": seconds})
        lines.append(
            {"step": step, "charts/elapsed_s": seconds, "eval/pass@1": pass_at_1,
             "eval/regret@64": regret}
        )  # fmt: skip
    (out / "tb" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_curves_are_averaged_across_seeds_over_the_steps_every_seed_reached(
    tmp_path: Path,
) -> None:
    args = reproduce.Args(methods=("grpo",), seeds=(0, 1), curve_budget=64)
    # seed 0 reached step 40, seed 1 only step 20 (equal wall-clock, different speeds)
    _write_curve(tmp_path / "train" / "grpo-s0", [(0, 0.0, 0.2, 0.9), (20, 10.0, 0.4, 0.7),
                                                  (40, 20.0, 0.5, 0.6)])  # fmt: skip
    _write_curve(tmp_path / "train" / "grpo-s1", [(0, 0.0, 0.2, 0.9), (20, 14.0, 0.3, 0.8)])
    [start, step20] = reproduce.aggregate_curves(args, tmp_path)["grpo"]
    assert start["step"] == 0 and step20["step"] == 20
    assert step20["elapsed_s"] == pytest.approx(12.0)  # (10 + 14) / 2
    assert step20["pass@1"]["mean"] == pytest.approx(0.35)  # (0.4 + 0.3) / 2
    assert step20["regret"]["mean"] == pytest.approx(0.75)
    # t-interval over 2 seeds: 0.35 ± t(0.975, 1) * sd / sqrt(2), sd = 0.0707107, t = 12.7062
    half = 12.706205 * 0.070710678 / np.sqrt(2)
    assert step20["pass@1"]["ci_low"] == pytest.approx(0.35 - half, abs=1e-5)
    text = "\n".join(reproduce.curves_markdown({"grpo": [start, step20]}, args))
    assert "| grpo | 20 | 12 |" in text
    assert reproduce.curves_markdown({}, args) == []  # no table without data


def test_equal_steps_compares_every_method_at_the_last_step_every_run_reached(
    tmp_path: Path,
) -> None:
    args = reproduce.Args(methods=("grpo", "mrt-progress"), seeds=(0, 1), curve_budget=64)
    train = tmp_path / "train"
    # GRPO ran faster (step 40); the slower MRT seed 1 stopped at 20: equal steps = step 20
    _write_curve(train / "grpo-s0", [(0, 0, 0.2, 0.9), (20, 5, 0.3, 0.8), (40, 9, 0.5, 0.6)])
    _write_curve(train / "grpo-s1", [(0, 0, 0.2, 0.9), (20, 5, 0.2, 0.8), (40, 9, 0.4, 0.7)])
    _write_curve(
        train / "mrt-progress-s0", [(0, 0, 0.2, 0.9), (20, 7, 0.4, 0.7), (40, 14, 0.6, 0.5)]
    )
    _write_curve(train / "mrt-progress-s1", [(0, 0, 0.2, 0.9), (20, 8, 0.4, 0.6)])
    table = reproduce.equal_steps(args, tmp_path)
    assert table["step"] == 20
    assert table["methods"]["grpo"]["pass@1"]["mean"] == pytest.approx(0.25)
    assert table["methods"]["mrt-progress"]["regret"]["mean"] == pytest.approx(0.65)
    # paired by seed: pass@1 differences 0.4 - 0.3 = 0.1 and 0.4 - 0.2 = 0.2
    diff = table["minus_grpo"]["mrt-progress"]["pass@1"]
    half = 12.706205 * np.std([0.1, 0.2], ddof=1) / np.sqrt(2)
    assert diff["mean"] == pytest.approx(0.15)
    assert diff["ci_high"] == pytest.approx(0.15 + half, abs=1e-5)
    assert table["minus_grpo"]["mrt-progress"]["regret"]["mean"] == pytest.approx(-0.15)
    text = "\n".join(reproduce.equal_steps_markdown(table, args))
    assert "after 20 optimizer steps" in text and "| grpo |" in text
    (train / "mrt-progress-s1" / "tb" / "metrics.jsonl").write_text("")
    assert reproduce.equal_steps(args, tmp_path) == {}  # a run without evaluations: no table


def test_the_representative_seed_is_closest_to_the_mean_and_the_budget_check_needs_both() -> None:
    args = reproduce.Args(methods=("grpo",), seeds=(0, 1, 2, 3))
    rows = {"pass@1": [0.10, 0.32, 0.20, 0.30], "tokens": [1.0, 1.0, 1.0, 1.0]}  # mean 0.23
    assert reproduce.representative_seeds({"grpo": {"per_seed": rows}}, args) == {"grpo": 2}
    gain = {"seeds_above_base": 3, "across_seeds": {"ci_low": 0.02}}
    assert reproduce.budget_check(gain, 4) == "FAIL"  # 3 of 4 < 80%
    assert reproduce.budget_check(gain | {"seeds_above_base": 4}, 4) == "PASS"
    assert reproduce.budget_check(gain | {"seeds_above_base": 4}, 5) == "PASS"
    assert reproduce.budget_check({"seeds_above_base": 5, "across_seeds": {"ci_low": 0.0}}, 5) == (
        "FAIL"
    )


def test_the_hybrid_method_trains_mrt_with_the_hybrid_learned_prover(tmp_path: Path) -> None:
    args = reproduce.Args(
        methods=("grpo", "mrt-hybrid"),
        train_minutes=0,
        train_steps=1,
        curve_interval=0,
        prover_sample_share=1.0,  # every J request also sampled: online labels for sure
        train_flags="--problems-per-step 1 --group-size 2 --token-budget 48 --k 2",
    )
    out = tmp_path / "mrt-hybrid-s0"
    command = reproduce.train_command(args, "mrt-hybrid", 0, out)
    text = " ".join(command)
    assert "--algo mrt --credit progress" in text
    assert "--prover hybrid:tiny --prover-sample-share 1.0" in text  # prover-tiny-explain
    assert "--prover" not in reproduce.train_command(args, "mrt-progress", 0, out)
    assert "--prover" not in reproduce.train_command(args, "grpo", 0, out)
    classic = reproduce.method_flags(reproduce.Args(model="tiny:classic"), "mrt-hybrid")
    assert classic[classic.index("--prover") + 1] == "hybrid:tiny:classic"  # its own μ
    with pytest.raises(SystemExit, match="no learned μ is shipped for --model runs/x/model"):
        reproduce.method_flags(reproduce.Args(model="runs/x/model"), "mrt-hybrid")
    folder = Path(reproduce.__file__).parents[1] / "mrt_env" / "assets" / "prover-tiny"
    by_path = reproduce.method_flags(reproduce.Args(hybrid_prover=str(folder)), "mrt-hybrid")
    assert by_path[by_path.index("--prover") + 1] == f"hybrid:{folder.resolve()}"
    # the command trains: one MRT step whose J came from the learned μ, updated online
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    [row] = [json.loads(line) for line in (out / "tb" / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == 1 and row["prover/learned"] == 1.0
    assert row["prover/online_labels"] > 0 and np.isfinite(row["prover/drift"])
    assert reproduce.mark_done(out)["steps"] == 1


def test_the_starting_model_trains_every_run_and_is_the_evaluations_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = reproduce.Args(model="tiny:explain", methods=("grpo", "mrt-progress"))
    for method in args.methods:
        command = reproduce.train_command(args, method, 0, tmp_path / method)
        assert command[command.index("--model") + 1] == "tiny:explain"
    seen: list[list[str]] = []
    monkeypatch.setattr(reproduce.subprocess, "run", lambda command, check: seen.append(command))
    reproduce.evaluate_all(args, tmp_path, {"grpo-s0": "runs/g"})
    [command] = seen
    start = command.index("--policies") + 1
    assert command[start : start + 2] == ["base=explain", "grpo-s0=runs/g"]
    default = reproduce.train_command(reproduce.Args(), "grpo", 0, tmp_path)
    assert default[default.index("--model") + 1] == "tiny"
    assert reproduce.base_policy("tiny") == "base"  # regret.py's shipped base tiny LM
