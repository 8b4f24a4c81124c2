"""The hybrid meta-prover: learned answers, a sampled share, online head updates and drift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.hybrid import HybridMetaProver
from mrt_env.prover.learned import LearnedMetaProver, ProbeHead
from mrt_env.prover.sampled import SampledMetaProver

REQUESTS = [ProverRequest(f"p{i}", f"Problem: {i}+1\n<think>\n", "7", f"{i}+1=") for i in range(8)]


@pytest.fixture(scope="module")
def tiny_lm():  # type: ignore[no-untyped-def]
    from mrt_env.tinymath import load_tiny_lm

    return load_tiny_lm()


def _hybrid(tiny_lm, share: float) -> HybridMetaProver:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    learned = LearnedMetaProver(tiny_lm, ProbeHead(96), layer=4)
    # every forced answer says 7, the gold answer: the sampled μ's J is 1 everywhere
    sampled = SampledMetaProver(ScriptedLM(["7}"]), "tiny", k=4, cache_size=0)
    return HybridMetaProver(learned, sampled, share=share, seed=0, update_steps=20, lr=0.05)


def test_answers_are_learned_and_updates_move_the_head_toward_fresh_labels(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    hybrid = _hybrid(tiny_lm, share=1.0)
    before = [e.j for e in hybrid.estimate(REQUESTS)]
    assert all(e.source == "learned" for e in hybrid.estimate(REQUESTS[:1]))
    weights = [p.detach().clone() for p in hybrid.learned.head.parameters()]
    metrics = hybrid.update()
    # drift = mean(learned J - sampled J) over the 9 labelled requests; sampled J = 1
    expected = np.mean([*before, before[0]]) - 1.0
    assert metrics["prover/drift"] == pytest.approx(expected, abs=1e-9)
    assert metrics["prover/brier_online"] == pytest.approx(
        np.mean((np.array([*before, before[0]]) - 1.0) ** 2), abs=1e-9
    )
    assert metrics["prover/online_labels"] == 9
    changed = [
        not torch.equal(a, b)
        for a, b in zip(weights, hybrid.learned.head.parameters(), strict=True)
    ]
    assert any(changed)
    after = [e.j for e in hybrid.estimate(REQUESTS)]
    assert np.mean(after) > np.mean(before)  # toward the fresh labels' J = 1


def test_share_zero_samples_nothing_and_reports_nan(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    hybrid = _hybrid(tiny_lm, share=0.0)
    hybrid.estimate(REQUESTS)
    metrics = hybrid.update()
    assert np.isnan(metrics["prover/drift"]) and metrics["prover/online_labels"] == 0
    assert hybrid.sampled.stats.requests == 0
    with pytest.raises(ValueError, match="share must be in"):
        HybridMetaProver(hybrid.learned, hybrid.sampled, share=1.5)


def test_share_is_the_expected_fraction_of_requests(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    hybrid = _hybrid(tiny_lm, share=0.25)
    for _ in range(10):
        hybrid.estimate(REQUESTS)
    sampled = hybrid.sampled.stats.requests
    assert 8 <= sampled <= 32, sampled  # 80 requests at ρ = 0.25: 20 expected
