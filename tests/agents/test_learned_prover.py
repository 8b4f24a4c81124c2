"""Training sessions with a learned meta-prover (``mrt-train --prover learned:PATH``)."""

from __future__ import annotations

from pathlib import Path

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


def test_train_config_accepts_sampled_or_learned_only() -> None:
    assert TrainConfig(prover="learned:/x").prover == "learned:/x"
    with pytest.raises(ValueError, match="prover must be sampled or learned:PATH"):
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
