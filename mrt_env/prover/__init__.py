"""Meta-provers: estimate J(prefix), the chance that a forced answer from a prefix is correct."""

from __future__ import annotations

from mrt_env.prover.base import JEstimate, MetaProver, ProverRequest
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


_LAZY = {"LearnedMetaProver", "ProbeHead", "ProverFolderError"}


def __getattr__(name: str) -> object:
    """The learned meta-prover's names, imported on first use (they need torch)."""
    if name in _LAZY:
        from mrt_env.prover import learned

        return getattr(learned, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
