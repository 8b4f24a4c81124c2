"""The MetaProver contract, checked for every meta-prover the project ships.

Each μ answers a batch in order, one estimate per request, J in [0, 1] with ``ci_low <= J <=
ci_high``, says its ``source``, answers an empty batch with an empty list, repeats itself on a
repeated request, and does not depend on the other requests of the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import JEstimate, MetaProver, ProverRequest
from mrt_env.prover.sampled import SampledMetaProver
from mrt_env.prover.table import TableMetaProver

PROMPT = "Problem: 12+7\n<think>\n"
REQUESTS = [
    ProverRequest("a", PROMPT, "19", ""),
    ProverRequest("a", PROMPT, "19", "12+7=19."),
    ProverRequest("b", "Problem: 3*4\n<think>\n", "12", "3*4=11."),
]


def _table() -> Any:
    return TableMetaProver(lambda r: 0.25 if r.prefix else 0.5)


def _sampled() -> Any:
    return SampledMetaProver(ScriptedLM({"{": "19}", "": "12}"}, default="12}"), "tiny", k=4)


def _learned() -> Any:
    from mrt_env.prover.learned import LearnedMetaProver, ProbeHead
    from mrt_env.tinymath import load_tiny_lm

    return LearnedMetaProver(load_tiny_lm(), ProbeHead(96), layer=4, template="tiny")


PROVERS: dict[str, tuple[Callable[[], Any], str]] = {
    "table": (_table, "table"),
    "sampled": (_sampled, "sampled"),
    "learned": (_learned, "learned"),
}


@pytest.fixture(params=sorted(PROVERS), scope="module")
def prover(request: pytest.FixtureRequest) -> tuple[Any, str]:
    build, source = PROVERS[request.param]
    return build(), source


def test_batch_in_order_with_valid_estimates(prover: tuple[Any, str]) -> None:
    mu, source = prover
    assert isinstance(mu, MetaProver)
    estimates = mu.estimate(REQUESTS)
    assert len(estimates) == len(REQUESTS)
    for estimate in estimates:
        assert isinstance(estimate, JEstimate) and estimate.source == source
        assert 0.0 <= estimate.ci_low <= estimate.j <= estimate.ci_high <= 1.0
        assert estimate.num_samples >= 0 and 0 <= estimate.num_correct <= max(
            estimate.num_samples, 0
        )
    assert mu.estimate([]) == []


def test_each_estimate_is_independent_of_the_rest_of_the_batch(prover: tuple[Any, str]) -> None:
    mu, _ = prover
    together = [e.j for e in mu.estimate(REQUESTS)]
    alone = [mu.estimate([r])[0].j for r in reversed(REQUESTS)][::-1]
    assert alone == pytest.approx(together, abs=1e-6)
    twice = mu.estimate([REQUESTS[1], REQUESTS[1]])
    assert twice[0].j == pytest.approx(twice[1].j, abs=1e-6)
