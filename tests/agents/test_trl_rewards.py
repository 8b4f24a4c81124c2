"""TRL reward functions and datasets: inside a real ``trl.GRPOTrainer``, from TRL's threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from agents.trl.data import problems_dataset
from agents.trl.rewards import FormatReward, OutcomeReward
from rewards.verification import VerifierConfig

TIMEOUT_S = 1.0
COMPLETIONS = [
    "2+3=5.</think>\\boxed{5}",  # correct
    "2+3=6.</think>\\boxed{6}",  # wrong
    "a tower.</think>\\boxed{9^{9^{9^9}}}",  # math-verify never returns: the time bound fires
    "still thinking",  # no answer
]


def test_trl_loads_only_when_its_trainer_is_used() -> None:
    code = (
        "import sys, agents, agents.cli, agents.mrt, agents.trl, agents.trl.rewards, "
        "agents.trl.data, agents.trl.prover; print('trl' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_outcome_and_format_rewards_follow_trls_signature() -> None:
    outcome = OutcomeReward()
    completions = ["x</think>\\boxed{\\frac{1}{2}}", "x</think>\\boxed{3} or \\boxed{4}", "x"]
    assert outcome(prompts=["p"] * 3, completions=completions, answer=["0.5", "3", "1"]) == [
        1.0,
        0.0,  # hedged
        0.0,  # no answer
    ]
    assert outcome(completions=completions[:1], answer=[""]) == [None]  # unparsable gold
    assert FormatReward()(completions=completions) == [1.0, 0.0, 0.0]
    messages = [[{"role": "assistant", "content": completions[0]}]]
    assert outcome(completions=messages, answer=["1/2"]) == [1.0]
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        outcome(completions=completions[:2], answer=["1"])


def test_problems_dataset_from_a_jsonl_source(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text('{"id": "a", "problem": "1+1?", "answer": "2"}\n', encoding="utf-8")
    dataset = problems_dataset(path, template="plain")
    assert dataset[0]["problem_id"] == "a" and dataset[0]["answer"] == "2"
    assert dataset[0]["prompt"].startswith("Problem: 1+1?") and "<think>" in dataset[0]["prompt"]


def test_rewards_inside_a_real_grpo_step_with_a_timeout(tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from agents.session import load_language_model

    lm = load_language_model("random-tiny", "cpu", 0)
    outcome = OutcomeReward(VerifierConfig(timeout_s=TIMEOUT_S, workers=1))
    threads: list[str] = []
    scores: list[list[float | None]] = []

    async def outcome_async(**kwargs: Any) -> list[float | None]:  # TRL runs it in its loop thread
        threads.append(threading.current_thread().name)
        result = outcome(**kwargs)
        scores.append(result)
        return result

    outcome_async.__name__ = "outcome_async"

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        return {
            "prompt_ids": [lm.encode(p) for p in prompts],
            "completion_ids": [lm.encode(c) for c in COMPLETIONS],
            "logprobs": None,
        }

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=64,
        max_steps=1,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
    )
    dataset = Dataset.from_dict({"prompt": ["Problem: 2+3?\n<think>\n"], "answer": ["5"]})
    trainer = GRPOTrainer(
        lm.model,
        reward_funcs=[outcome, outcome_async, FormatReward()],
        args=args,
        train_dataset=dataset,
        processing_class=lm.tokenizer,
        rollout_func=rollout,
    )
    start = time.monotonic()
    trainer.train()
    assert time.monotonic() - start < 60  # no hang
    assert trainer.state.global_step == 1
    assert scores == [[1.0, 0.0, 0.0, 0.0]]
    assert outcome.last_statuses == ["correct", "wrong", "timeout", "no_answer"]
    assert threads and threads[0] != threading.main_thread().name
    [logged] = [h for h in trainer.state.log_history if "rewards/outcome/mean" in h]
    assert logged["rewards/outcome/mean"] == pytest.approx(0.25)


def test_docstring_examples_run() -> None:
    import doctest

    import agents.mrt
    import agents.trl
    import agents.trl.data
    import agents.trl.episodes
    import agents.trl.prover
    import agents.trl.rewards

    for module in (
        agents.mrt,
        agents.trl,
        agents.trl.data,
        agents.trl.episodes,
        agents.trl.prover,
        agents.trl.rewards,
    ):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
