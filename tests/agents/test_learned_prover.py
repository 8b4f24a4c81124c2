"""Training sessions with a learned meta-prover (``mrt-train --prover learned:PATH``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.config import TrainConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mrt_env.prover.learned import LearnedMetaProver, ProbeHead
    from mrt_env.tinymath import load_tiny_lm

    path = tmp_path_factory.mktemp("mu")
    prover = LearnedMetaProver(
        load_tiny_lm(), ProbeHead(96), layer=4, template=None, card={"feature_model": "tiny"}
    )
    prover.save_pretrained(path)
    return path


def _tiny_session(**config: Any) -> Any:
    """A one-step native session on the tiny LM with ``config``'s μ settings."""
    from agents.session import build_session
    from mrt_env.tinymath import TinyMathSource

    train = TrainConfig(steps=1, problems_per_step=1, group_size=2, token_budget=64, **config)
    return build_session(train, "tiny", TinyMathSource(split="train", size=4))


def test_train_config_accepts_sampled_learned_or_hybrid_only() -> None:
    assert TrainConfig(prover="learned:/x").prover == "learned:/x"
    with pytest.raises(ValueError, match="prover must be sampled, learned:PATH or hybrid:PATH"):
        TrainConfig(prover="table")


def test_session_uses_the_learned_prover_and_logs_it(folder: Path) -> None:
    session = _tiny_session(prover=f"learned:{folder}")
    prover = session.collector.components.prover
    assert prover.source == "learned"
    assert session.collector.components.lm is session.lm  # no frozen sampling copy is loaded
    from agents.config import MRTConfig
    from agents.mrt import MRT

    metrics = MRT(MRTConfig(credit="progress")).train_step(session, seed=0)
    assert metrics["prover/learned"] == 1.0
    assert 0 < metrics["env/j"] < 1  # J came from the probe (an untrained head: J near 0.5)


def test_hybrid_session_updates_the_head_and_logs_drift(folder: Path) -> None:
    import torch

    from agents.config import MRTConfig
    from agents.mrt import MRT

    session = _tiny_session(prover=f"hybrid:{folder}", prover_sample_share=1.0)
    prover = session.collector.components.prover
    head = [p.detach().clone() for p in prover.learned.head.parameters()]
    metrics = MRT(MRTConfig(credit="progress")).train_step(session, seed=0)
    assert metrics["prover/online_labels"] > 0
    assert np.isfinite(metrics["prover/drift"]) and metrics["prover/brier_online"] >= 0
    assert any(
        not torch.equal(a, b) for a, b in zip(head, prover.learned.head.parameters(), strict=True)
    )
    assert prover.sampled.lm is session.lm  # the sampled share follows the current policy


def test_train_config_checks_prover_features() -> None:
    assert TrainConfig().prover_features == "frozen"
    assert TrainConfig(prover_features="policy").prover_features == "policy"
    with pytest.raises(ValueError, match="prover_features must be frozen or policy"):
        TrainConfig(prover_features="current")  # type: ignore[arg-type]


def _estimate_around_one_optimizer_step(folder: Path, features: str) -> tuple[float, float, Any]:
    """A learned-μ session's J of one request before and after one AdamW step of the policy."""
    import torch

    from mrt_env.prover.base import ProverRequest

    session = _tiny_session(prover=f"learned:{folder}", prover_features=features, lr=0.05)
    prover = session.collector.components.prover
    request = ProverRequest("p", "Problem: 12+7\n<think>\n", "19", "12+7=19.")
    [before] = prover.estimate([request])
    model = session.learner.model
    ids = torch.tensor([session.lm.encode("Problem: 3+4\n<think>\n3+4=7.")])
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    session.learner.optimizer.step()
    [after] = prover.estimate([request])
    return before.j, after.j, session


def test_policy_features_follow_an_optimizer_step_and_frozen_ones_do_not(folder: Path) -> None:
    before, after, session = _estimate_around_one_optimizer_step(folder, "policy")
    assert session.collector.components.prover.extractor.lm is session.lm  # shares its weights
    assert abs(after - before) > 1e-4  # the features (and J) moved with the weights
    assert session.lm.model.training  # feature extraction put the policy back in train mode
    before, after, session = _estimate_around_one_optimizer_step(folder, "frozen")
    assert session.collector.components.prover.extractor.lm is not session.lm
    assert after == before  # a frozen feature model ignores the policy's step


def test_mrt_train_passes_prover_features_to_the_config(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agents.cli import app

    args = ["--algo", "mrt", "--prover", "learned:tiny", "--prover-features", "weights"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "prover_features must be frozen or policy, got 'weights'" in message


@pytest.mark.parametrize("features", ["policy", "frozen"])
def test_trl_learned_prover_reads_the_trained_model_only_with_policy_features(
    tmp_path: Path, features: str
) -> None:
    pytest.importorskip("trl")
    from agents.config import MRTConfig
    from agents.trl.run import TRLRunOptions, build_trainer
    from mrt_env.tinymath import TinyMathSource

    options = TRLRunOptions(out=tmp_path, model="tiny", problems=TinyMathSource(size=8))
    train = TrainConfig(
        prover="learned:tiny",
        prover_features=features,  # type: ignore[arg-type]
        steps=1,
        problems_per_step=1,
        group_size=2,
        token_budget=48,
    )
    trainer = build_trainer(options, train, MRTConfig(credit="progress"), tensorboard=False)
    follows = trainer.mu.extractor.lm.model is trainer.model
    assert follows == (features == "policy")
