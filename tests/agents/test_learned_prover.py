"""Training sessions with a learned meta-prover (``mrt-train --prover learned:PATH``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.config import TrainConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mrt_env.prover.learned import LearnedMetaProver, ProbeHead
    from mrt_env.tinymath import load_tiny_lm

    path = tmp_path_factory.mktemp("mu")
    prover = LearnedMetaProver(
        load_tiny_lm(), ProbeHead(96), layer=4, template="tiny", card={"feature_model": "tiny"}
    )
    prover.save_pretrained(path)
    return path


def test_train_config_accepts_sampled_learned_or_hybrid_only() -> None:
    assert TrainConfig(prover="learned:/x").prover == "learned:/x"
    with pytest.raises(ValueError, match="prover must be sampled, learned:PATH or hybrid:PATH"):
        TrainConfig(prover="table")


def test_session_uses_the_learned_prover_and_logs_it(folder: Path) -> None:
    from agents.session import build_session
    from mrt_env.tinymath import TinyMathSource

    config = TrainConfig(
        prover=f"learned:{folder}", steps=1, problems_per_step=1, group_size=2, token_budget=64
    )
    session = build_session(config, "tiny", TinyMathSource(split="train", size=4))
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
    from agents.session import build_session
    from mrt_env.tinymath import TinyMathSource

    config = TrainConfig(
        prover=f"hybrid:{folder}",
        prover_sample_share=1.0,
        steps=1,
        problems_per_step=1,
        group_size=2,
        token_budget=64,
    )
    session = build_session(config, "tiny", TinyMathSource(split="train", size=4))
    prover = session.collector.components.prover
    head = [p.detach().clone() for p in prover.learned.head.parameters()]
    metrics = MRT(MRTConfig(credit="progress")).train_step(session, seed=0)
    assert metrics["prover/online_labels"] > 0
    assert np.isfinite(metrics["prover/drift"]) and metrics["prover/brier_online"] >= 0
    assert any(
        not torch.equal(a, b) for a, b in zip(head, prover.learned.head.parameters(), strict=True)
    )
    assert prover.sampled.lm is session.lm  # the sampled share follows the current policy
