"""μ tracks the policy: J is re-estimated exactly when the weights change (both engines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from agents.config import TrainConfig
from agents.session import build_session, load_language_model
from agents.trl.prover import PolicyProver
from mrt_env.lm.hf import HFLanguageModel
from mrt_env.prover.base import ProverRequest
from mrt_env.sources import from_list

PROMPT = "Problem: 23+45\n<think>\n"
REQUEST = ProverRequest("p", PROMPT, "68", "23+45: 3+5=8, 2+4=6, so 68.", seed=11)


def _break(model: torch.nn.Module) -> None:
    """A weight update that destroys the answer: uniform next-token logits."""
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()


def test_policy_prover_reestimates_only_when_the_version_changes() -> None:
    lm = load_language_model("tiny", "cpu")
    prover = PolicyProver(HFLanguageModel(lm.model, lm.tokenizer), "tiny", k=8)
    [before] = prover.estimate([REQUEST], version=0)
    assert before.j > 0.5  # the shipped tiny LM answers 68 after working it out
    [again] = prover.estimate([REQUEST], version=1)  # a new version, unchanged weights
    assert (again.j, again.cached) == (before.j, False)  # same seed, same weights: same J
    _break(lm.model)
    assert prover.estimate([REQUEST], version=1)[0].j == before.j  # cached within a version
    [after] = prover.estimate([REQUEST], version=2)
    assert after.j < before.j and not after.cached
    assert prover.invalidations == 2


@pytest.mark.parametrize(("policy", "changes"), [("current", True), ("frozen", False)])
def test_native_prover_policy(policy: str, changes: bool) -> None:
    config = TrainConfig(prover_samples=8, prover_policy=policy)  # type: ignore[arg-type]
    source = from_list([{"id": "p", "problem": "23+45", "answer": "68"}])
    session = build_session(config, "tiny", source, template="tiny")
    prover = session.collector.components.prover
    assert (session.collector.components.lm is session.lm) is (policy == "current")
    [before] = prover.estimate([REQUEST])
    session.reset_caches()  # what the training loop does before every step
    assert prover.estimate([REQUEST])[0].j == before.j  # weights unchanged: same J
    _break(session.lm.model)  # the policy's update
    session.reset_caches()
    [after] = prover.estimate([REQUEST])
    assert (after.j != before.j) is changes


def test_trl_trainer_asks_mu_again_after_an_optimizer_step_only(tmp_path: Path) -> None:
    """Through ``MRTGRPOTrainer``'s own wiring: a J estimated before is re-estimated after the
    optimizer step (new weights), and reused after a gradient-accumulation substep (none)."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig

    from agents.trl.rewards import OutcomeReward
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    lm = load_language_model("random-tiny", "cpu", 0)
    prompts = ["Problem: 1+1?\n<think>\n", "Problem: 2+1?\n<think>\n"]
    dataset = Dataset.from_dict({"prompt": prompts, "answer": ["2", "3"], "problem_id": ["a", "b"]})
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,  # two substeps, one optimizer step
        num_generations=2,
        max_completion_length=8,
        max_steps=1,
        learning_rate=0.1,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    trainer = MRTGRPOTrainer(
        lm.model,
        reward_funcs=[OutcomeReward()],
        args=args,
        train_dataset=dataset,
        processing_class=lm.tokenizer,
        mrt=MRTSettings(prover_samples=2),  # μ: the policy being trained (PolicyProver)
    )
    assert isinstance(trainer.mu, PolicyProver)
    request = ProverRequest("a", prompts[0], "2", "1+1 is", seed=5)

    def asks() -> int:
        """How many model calls μ makes to answer ``request`` now (0: cached)."""
        before = trainer.mu.prover.stats.model_calls
        trainer.estimate_j([request])
        return int(trainer.mu.prover.stats.model_calls - before)

    events: list[tuple[str, int, int]] = []

    class Probe(TrainerCallback):  # type: ignore[misc]
        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            events.append(("substep", state.global_step, asks()))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            events.append(("step", state.global_step, asks()))

    assert (asks(), asks()) == (1, 0)  # estimated once, then reused with the same weights
    trainer.add_callback(Probe())
    trainer.train()
    assert events == [("substep", 0, 0), ("step", 1, 1)]
    assert asks() == 0


@pytest.mark.parametrize(("model", "cap"), [("tiny:classic", 16), ("tiny", 128)])
def test_both_engines_cap_forced_answers_where_the_template_does(
    model: str, cap: int, tmp_path: Path
) -> None:
    """One definition for every engine: μ's forced answers (and a truncated completion's) get
    the template's cap on both trainers unless ``--forced-answer-tokens`` sets another. The
    explain model's answers write a line of work: the former fixed cap of 32 on TRL cut them."""
    from dataclasses import replace

    from agents.config import MRTConfig
    from agents.trl.run import TRLRunOptions, build_trainer

    config = TrainConfig(steps=1, problems_per_step=1, group_size=2, token_budget=48)
    source = from_list([{"id": "p", "problem": "23+45", "answer": "68"}])
    for forced, expected in [(None, cap), (8, 8)]:
        settings = replace(config, forced_answer_tokens=forced)
        options = TRLRunOptions(out=tmp_path, model=model, extra=(("save_strategy", "no"),))
        trainer = build_trainer(options, settings, MRTConfig(credit="progress"), tensorboard=False)
        assert trainer.mu.prover.params.max_new_tokens == expected
        session = build_session(settings, model, source)
        assert session.collector.components.prover.params.max_new_tokens == expected
