"""TableMetaProver: the table test double."""

from __future__ import annotations

import pytest

from mrt_env.prover import MetaProver, ProverRequest, TableMetaProver


def request(problem_id: str, prefix: str) -> ProverRequest:
    return ProverRequest(problem_id, "Q", "1", prefix)


def test_mapping_lookup_and_reported_counts() -> None:
    prover = TableMetaProver({("a", ""): 0.25, ("a", "x"): 1.0}, num_samples=4)
    assert isinstance(prover, MetaProver)
    estimates = prover.estimate([request("a", ""), request("a", "x")])
    assert [(e.j, e.num_correct, e.num_samples, e.ci_low, e.ci_high) for e in estimates] == [
        (0.25, 1, 4, 0.25, 0.25),
        (1.0, 4, 4, 1.0, 1.0),
    ]
    assert prover.calls == [[request("a", ""), request("a", "x")]]


def test_callable_table() -> None:
    prover = TableMetaProver(lambda r: min(1.0, len(r.prefix) / 10))
    assert [e.j for e in prover.estimate([request("a", "abcde"), request("b", "x" * 20)])] == [
        0.5,
        1.0,
    ]


def test_missing_key_raises_unless_default() -> None:
    with pytest.raises(KeyError, match="no J for problem 'a'"):
        TableMetaProver({}).estimate([request("a", "zz")])
    assert TableMetaProver({}, default=0.5).estimate([request("a", "zz")])[0].j == 0.5


@pytest.mark.parametrize(
    ("table", "kwargs", "error"),
    [
        ({("a", ""): 1.5}, {}, ValueError),  # J above 1
        ({("a", ""): -0.1}, {}, ValueError),  # J below 0
        ({("a", ""): 0.5}, {"num_samples": 0}, ValueError),  # no samples
    ],
)
def test_bad_values_raise(table: dict, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        TableMetaProver(table, **kwargs).estimate([request("a", "")])
