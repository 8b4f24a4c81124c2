"""Meta-provers: estimate J(prefix), the chance that a forced answer from a prefix is correct."""

from __future__ import annotations

from mrt_env.prover.base import JEstimate, MetaProver, ProverRequest
from mrt_env.prover.learned import LearnedMetaProver, ProbeHead, ProverFolderError
from mrt_env.prover.sampled import ProverStats, SampledMetaProver, wilson_interval
from mrt_env.prover.table import TableMetaProver

__all__ = [
    "JEstimate",
    "LearnedMetaProver",
    "MetaProver",
    "ProbeHead",
    "ProverFolderError",
    "ProverRequest",
    "ProverStats",
    "SampledMetaProver",
    "TableMetaProver",
    "wilson_interval",
]
