"""Meta-provers: estimate J(prefix), the chance that a forced answer from a prefix is correct."""

from __future__ import annotations

from mrt_env.prover.base import JEstimate, MetaProver, ProverRequest
from mrt_env.prover.sampled import ProverStats, SampledMetaProver, wilson_interval
from mrt_env.prover.table import TableMetaProver

__all__ = [
    "JEstimate",
    "MetaProver",
    "ProverRequest",
    "ProverStats",
    "SampledMetaProver",
    "TableMetaProver",
    "wilson_interval",
]
