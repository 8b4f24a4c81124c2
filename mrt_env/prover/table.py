"""A table-driven meta-prover: a named test double that needs no model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mrt_env.prover.base import JEstimate, ProverRequest

JTable = Mapping[tuple[str, str], float] | Callable[[ProverRequest], float]
"""``{(problem_id, prefix): J}`` or a function of the request returning J."""


class TableMetaProver:
    """A test double returning J from a table (or a function) instead of sampling a model.

    Each estimate reports ``num_samples`` samples with ``num_correct = round(j * num_samples)``
    and a degenerate interval ``[j, j]`` (J is known exactly). Every ``estimate`` call is
    recorded in :attr:`calls`, so tests can check how requests were batched.

    Args:
        table: ``{(problem_id, prefix): J}`` or ``f(request) -> J``; J must lie in [0, 1].
        num_samples: Sample count reported with each estimate.
        default: J of a ``(problem_id, prefix)`` missing from a mapping table (``None``: raise
            ``KeyError``).

    Example:
        >>> prover = TableMetaProver({("p1", ""): 0.25, ("p1", "Let x = 2."): 0.75})
        >>> [e.j for e in prover.estimate([ProverRequest("p1", "Q", "2", "Let x = 2.")])]
        [0.75]
    """

    source = "table"
    """What its estimates' ``JEstimate.source`` says."""

    def __init__(
        self, table: JTable, *, num_samples: int = 8, default: float | None = None
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.table = table
        self.num_samples = num_samples
        self.default = default
        self.calls: list[list[ProverRequest]] = []

    def _lookup(self, request: ProverRequest) -> float:
        if callable(self.table):
            j = self.table(request)
        elif (request.problem_id, request.prefix) in self.table:
            j = self.table[(request.problem_id, request.prefix)]
        elif self.default is not None:
            j = self.default
        else:
            raise KeyError(
                f"no J for problem {request.problem_id!r} and prefix {request.prefix[-40:]!r}"
            )
        j = float(j)
        if not 0.0 <= j <= 1.0:
            raise ValueError(f"J must lie in [0, 1], got {j} for problem {request.problem_id!r}")
        return j

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]:
        """Look up J for every request."""
        self.calls.append(list(requests))
        estimates = []
        for request in requests:
            j = self._lookup(request)
            correct = round(j * self.num_samples)
            estimates.append(JEstimate(j, correct, self.num_samples, j, j, source="table"))
        return estimates
