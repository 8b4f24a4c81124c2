"""benchmarks/regret.py (the main job) and benchmarks/analyze_traces.py on tiny settings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from mrt_env.budget_forcing import BudgetForcingConfig, budget_forced_generate
from mrt_env.lm.base import SamplingParams
from mrt_env.lm.scripted import ScriptedLM
from tests.benchmarks.scripts import load_script, run_script

regret = load_script("regret")


def _script(prompt: str, sample_index: int) -> str:
    if prompt.endswith("<think>\n"):
        return "1+1=2.</think>\\boxed{2}"
    return ", yes 2.</think>\\boxed{2}"


def test_forced_responses_gives_every_extension_count() -> None:
    args = regret.Args(token_budget=64, extensions=(1, 3), extension_tokens=32, temperature=0.0)
    prompts = ["Problem: 1+1\n<think>\n", "Problem: 2+0\n<think>\n"]
    texts = regret.forced_responses(ScriptedLM(_script), prompts, [3, 4], [True, False], args)
    params = SamplingParams(max_new_tokens=64, temperature=0.0)
    for w, text in enumerate(texts[0]):  # natural response, then after 1, 2, 3 extensions
        config = BudgetForcingConfig(extensions=w, max_extension_tokens=32)
        reference = budget_forced_generate(ScriptedLM(_script), prompts[0], params, config, 3)
        assert text == reference.text
    assert texts[0][2] == "1+1=2.\n\nWait, yes 2.\n\nBut wait, yes 2.</think>\\boxed{2}"
    assert texts[1] == ["1+1=2.</think>\\boxed{2}"] * 4  # not forced: the natural response


def test_forced_responses_stop_before_the_context_overflows() -> None:
    # ScriptedLM counts characters. Limit: 150 - 63 (tiny termination) - 16 (answer) - 4 = 67.
    # First extension: 22 (prompt) + 12 ("1+1=2.\n\nWait") + 32 (extension) = 66 fits;
    # second: 22 + 30 + 32 = 84 does not, so the last entry repeats the first extension
    args = regret.Args(
        token_budget=64, extensions=(2,), extension_tokens=32, max_context_tokens=150
    )
    prompt = "Problem: 1+1\n<think>\n"
    assert regret.forcing_context_limit(ScriptedLM(_script), args) == 67
    [texts] = regret.forced_responses(ScriptedLM(_script), [prompt], [3], [True], args)
    assert texts == [
        "1+1=2.</think>\\boxed{2}",
        "1+1=2.\n\nWait, yes 2.</think>\\boxed{2}",
        "1+1=2.\n\nWait, yes 2.</think>\\boxed{2}",
    ]
    assert regret.forcing_context_limit(ScriptedLM(_script), regret.Args()) is None  # unknown


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("base", ("base", "tiny:base")),  # a shipped tiny variant
        ("mine=/models/x", ("mine", "/models/x")),  # NAME=SPEC names a checkpoint
        ("org/model", ("org/model", "org/model")),  # a hub id names itself
    ],
)
def test_policy_specs(entry: str, expected: tuple[str, str]) -> None:
    specs = regret.policy_specs(regret.Args(policies=(entry,)), trained={})
    assert list(specs.items()) == [expected]


def _problems(path: Path) -> Path:
    lines = [
        json.dumps({"id": f"q{i}", "problem": f"{i}+{i + 1}", "answer": str(2 * i + 1)})
        for i in range(3)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _check_stat(stat: dict, low: float = 0.0, high: float = 1.0) -> None:
    assert low <= stat["ci_low"] <= stat["mean"] <= stat["ci_high"] <= high


def _strict(text: str) -> dict:
    """``text`` parsed as strict JSON (a bare NaN or Infinity fails the test)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_regret_script_end_to_end_resumes_and_feeds_trace_analysis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = _problems(tmp_path / "problems.jsonl")
    argv = [
        "--policies", "a=random-tiny", "gone=/nonexistent/checkpoint",
        "--problems", str(problems), "--num-problems", "2", "--samples", "2", "--k", "2",
        "--token-budget", "24", "--budgets", "32", "48", "--extensions", "2",
        "--extension-tokens", "8", "--forced-samples", "1", "--chunk-problems", "1",
        "--run-dir", str(tmp_path / "runs"), "--name", "smoke",
    ]  # fmt: skip
    first = run_script("regret", *argv)
    run = tmp_path / "runs" / "smoke"
    results = _strict((run / "results.json").read_text())
    assert "skipped" in first.stderr + first.stdout  # the missing policy is reported
    assert "policy x problem" in first.stderr  # a progress bar over (policy, problem)
    for phase in (
        "sampling 2 responses",
        "reading J (K=2) after every episode: 3/3 responses",
        "grading",
    ):
        assert phase in first.stderr  # what the chunk is doing, beside the bar
    assert any("gone" in note for note in results["notes"])
    assert set(results["policies"]) == {"a"}
    summary = results["policies"]["a"]
    _check_stat(summary["pass@1"])
    for budget in ("32", "48"):
        _check_stat(summary["normalized_regret"][budget])
    assert set(summary["normalized_regret_extrapolated"]) == {"64"}  # 48 + 2 * 8
    assert summary["maj@k"]["k"] == [1, 2]
    assert len(summary["regret_over_episodes"]) == 9  # episode budget 8, plus Δ_0
    for key in ("k", "segmenter", "temperature", "template", "seed", "policy_specs"):
        assert key in results["settings"]
    assert results["environment"]["numpy"]
    assert results["compute_time_s"]["a"] > 0
    for name in ("results.md", "regret.png", "accuracy_tokens.png", "j_tokens.png"):
        assert (run / name).stat().st_size > 0
    cache_lines = (run / "cache.jsonl").read_text().splitlines()
    assert len(cache_lines) == 2  # one per (policy, problem)
    # episodes per response, computed here from the cached records
    episodes = [s["episodes"] for line in cache_lines for s in _strict(line)["samples"]]
    assert summary["mean_episodes"] == pytest.approx(sum(episodes) / len(episodes))
    assert summary["single_episode_share"] == pytest.approx(
        sum(e == 1 for e in episodes) / len(episodes)
    )
    assert f"episodes per response, a: mean {sum(episodes) / len(episodes):.2f}" in first.stdout
    # the random test double solves nothing: a degenerate run, flagged everywhere
    assert summary["pass@1"]["mean"] == 0.0
    assert any(r.startswith("pass@1 = 0") for r in results["degenerate"]["a"])
    assert "WARNING: degenerate run, policy 'a': pass@1 = 0" in first.stderr
    markdown = (run / "results.md").read_text()
    assert markdown.startswith("**Degenerate run") and "- a: pass@1 = 0" in markdown
    assert "P(lower regret)" not in markdown  # one policy: no header-only comparison tables

    # rerun with the same arguments (in-process, to save start-up time): nothing recomputed
    capsys.readouterr()
    regret.main(regret.parse_args(regret.Args, argv))
    assert "policy x problem: 100%|" in capsys.readouterr().err  # resumed: starts at 2/2
    assert (run / "cache.jsonl").read_text().splitlines() == cache_lines
    assert json.loads((run / "results.json").read_text())["policies"] == results["policies"]

    traces = run / "traces.jsonl"
    assert len(traces.read_text().splitlines()) == 4  # 2 problems x 2 samples
    analyze = load_script("analyze_traces")
    analyze.main(
        analyze.parse_args(
            analyze.Args,
            [
                "--traces", str(traces), "--problems", str(problems),
                "--model", "random-tiny", "--k", "2", "--budgets", "32",
                "--run-dir", str(tmp_path / "runs"), "--name", "traces",
            ],
        )
    )  # fmt: skip
    analysis = _strict((tmp_path / "runs" / "traces" / "results.json").read_text())
    group = analysis["groups"]["a"]
    assert group["traces"] == 4
    assert 0.0 <= group["single_episode_share"] <= 1.0 and group["mean_episodes"] >= 1.0
    assert any(r.startswith("pass@1 = 0") for r in analysis["degenerate"]["a"])
    _check_stat(group["normalized_regret"]["32"])
    assert all(0.0 <= s["mean"] <= 1.0 for s in group["j_by_episode"])
    assert (tmp_path / "runs" / "traces" / "progress_hist.png").stat().st_size > 0

    # a filter keeps the traces of the chosen problems; without --name nothing is overwritten
    first_id = _strict(cache_lines[0])["problem_id"]
    parent = tmp_path / "analyses"
    for _ in range(2):
        analyze.main(
            analyze.parse_args(
                analyze.Args,
                [
                    "--traces", str(traces), "--problems", f"{problems}?ids={first_id}",
                    "--model", "random-tiny", "--k", "2", "--budgets", "32",
                    "--run-dir", str(parent),
                ],
            )
        )  # fmt: skip
    folders = sorted(parent.iterdir())
    assert len(folders) == 2  # two reruns, two folders named by their time
    filtered = _strict((folders[0] / "results.json").read_text())
    assert filtered["groups"]["a"]["traces"] == 2  # 1 problem x 2 samples


def test_train_option_runs_mrt_train_with_equal_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(regret.subprocess, "run", lambda cmd, check: commands.append(cmd))
    trained = regret.train_checkpoints(regret.Args(train_minutes=2.5, seed=7), tmp_path)
    assert [c[c.index("--algo") + 1] for c in commands] == ["grpo", "mrt"]
    assert all(c[c.index("--minutes") + 1] == "2.5" for c in commands)  # equal wall-clock
    assert all(c[c.index("--seed") + 1] == "7" for c in commands)
    assert trained == {a: str(tmp_path / "train" / a / "model") for a in ("grpo", "mrt")}
    specs = regret.policy_specs(regret.Args(), trained)
    assert specs == {"base": "tiny:base", **trained}


def test_trace_analysis_with_the_shipped_learned_prover(tmp_path: Path) -> None:
    from mrt_env.tinymath import TinyMathSource, load_tiny_lm
    from mrt_env.tinymath.evaluate import respond

    problems = [TinyMathSource(split="heldout", size=2, seed=0)[i] for i in range(2)]
    responses = respond(load_tiny_lm(), problems, temperature=0.0, max_new_tokens=96, seed=0)
    traces = tmp_path / "traces.jsonl"
    traces.write_text(
        "".join(
            json.dumps({"problem_id": p.id, "response": r}) + "\n"
            for p, r in zip(problems, responses, strict=True)
        )
    )
    analyze = load_script("analyze_traces")
    output = analyze.main(
        analyze.parse_args(
            analyze.Args,
            [
                "--traces", str(traces), "--problems", "tinymath:heldout", "--model", "tiny",
                "--prover", "learned:tiny", "--budgets", "32",
                "--run-dir", str(tmp_path / "runs"), "--name", "learned",
            ],
        )
    )  # fmt: skip
    assert output["forced_answers_answered"]["forced_answers"] == 0  # nothing sampled
    group = output["groups"]["all"]
    assert group["traces"] == 2
    assert all(0.0 < s["mean"] < 1.0 for s in group["j_by_episode"])  # the probe's J


def test_regret_script_builds_a_learned_prover_and_needs_no_prover_model() -> None:
    from mrt_env.prover.learned import LearnedMetaProver
    from mrt_env.tinymath import load_tiny_lm

    args = regret.Args(prover="learned:tiny")
    assert regret.load_prover_model(args) is None  # the folder brings its feature model
    prover = regret.build_prover(load_tiny_lm(), args)
    assert isinstance(prover, LearnedMetaProver) and prover.source == "learned"


class _SpyBar:
    """A test double of ``tqdm.tqdm`` that records what the bar is told, in order."""

    made: ClassVar[list[_SpyBar]] = []

    def __init__(self, total: int, initial: int = 0, **_: object) -> None:
        self.total = total
        self.events: list[tuple[str, object]] = [("initial", initial)]
        _SpyBar.made.append(self)

    def update(self, n: int) -> None:
        self.events.append(("update", n))

    def set_postfix_str(self, text: str) -> None:
        self.events.append(("status", text))

    def close(self) -> None:
        self.events.append(("close", None))


def _episodes_script() -> Callable[[str, int], str]:
    """A script whose first response to problem i has 3, 1 and 2 episodes (marker:1 splits at
    "Wait"), and every later one 1 episode, so J reads end in three rounds; every forced
    answer is "\\boxed{1}"."""
    seen: Counter[str] = Counter()

    def script(prompt: str, sample_index: int) -> str:
        if not prompt.endswith("<think>\n"):
            return "\\boxed{1}"
        seen[prompt] += 1
        first = {"0+1": 3, "1+2": 1, "2+3": 2}[
            next(k for k in ("0+1", "1+2", "2+3") if k in prompt)
        ]
        episodes = first if seen[prompt] == 1 else 1
        return "\n\nWait, ".join(["a=1."] * episodes) + "</think>\\boxed{1}"

    return script


def test_regret_bar_advances_once_per_problem_and_resumes_at_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", _SpyBar)
    _SpyBar.made.clear()
    loads: list[str] = []
    script = _episodes_script()

    def load_policy(spec: str, device: str, args: object) -> tuple[ScriptedLM, None]:
        loads.append(spec)
        return ScriptedLM(script, name="tiny-scripted"), None

    monkeypatch.setattr(regret, "load_policy", load_policy)
    args = regret.Args(
        policies=("s=scripted",), problems=str(_problems(tmp_path / "p.jsonl")), num_problems=3,
        samples=2, k=2, template="tiny", segmenter="marker:1", token_budget=200,
        budgets=(200,), extensions=(0,), chunk_problems=20,
    )  # fmt: skip
    problems = regret.load_problems(args)
    cache = tmp_path / "cache.jsonl"
    policies, _ = regret.evaluate_policies(args, {"s": "scripted"}, problems, cache)
    curves = [[len(s["curve"]) for s in r["samples"]] for r in policies["s"]]
    assert curves == [[4, 2], [2, 2], [3, 2]]  # episodes + 1 points: J reads end in 3 rounds
    [bar] = _SpyBar.made
    assert bar.total == 3 and bar.events[0] == ("initial", 0)
    updates = [i for i, (kind, _) in enumerate(bar.events) if kind == "update"]
    assert [bar.events[i][1] for i in updates] == [1, 1, 1]  # once per problem, not per chunk
    statuses = [str(text) for kind, text in bar.events if kind == "status"]
    assert statuses[0] == "starting"  # something shows before any model loads
    # each problem counts as soon as J has been read on all of its responses, in the chunk:
    # round 1 ends 4 replays (problem 1's both), round 2 problem 2's, round 3 problem 0's
    reading = "s: reading J (K=2) after every episode: {}/6 responses"
    assert [bar.events[i - 1] for i in updates] == [
        ("status", reading.format(n)) for n in (4, 5, 6)
    ]
    assert updates[-1] < bar.events.index(("status", "s: grading 6 responses"))
    # a rerun resumes at the cache's 3 problems and loads no model
    regret.evaluate_policies(args, {"s": "scripted"}, problems, cache)
    assert _SpyBar.made[1].events[0] == ("initial", 3)
    assert not [e for e in _SpyBar.made[1].events if e[0] == "update"] and loads == ["scripted"]
