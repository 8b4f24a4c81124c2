"""Test doubles shared by the environment tests (no model, no torch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import JEstimate, MetaProver, ProverRequest

PROBLEMS: list[dict[str, Any]] = [
    {"id": "add", "problem": "What is 1+1?", "answer": "2"},
    {"id": "mul", "problem": "What is 3*4?", "answer": "12"},
    {"id": "sub", "problem": "What is 9-5?", "answer": "4"},
]
"""Three tiny problems; their gold answers never appear in their statements."""


def j_from_prefix(request: ProverRequest) -> float:
    """J = 0.25 per "=" in the thinking, capped at 1 (a deterministic stand-in for μ)."""
    return min(1.0, 0.25 * request.prefix.count("="))


class SpyProver:
    """A meta-prover test double: J from a function of the request; records every call.

    Attributes:
        calls: The request batches of every ``estimate`` call, in order.
    """

    def __init__(
        self,
        j_of: Callable[[ProverRequest], float] = j_from_prefix,
        answer_tokens: float = 3.0,
        inner: MetaProver | None = None,
    ) -> None:
        self.j_of = j_of
        self.answer_tokens = answer_tokens
        self.inner = inner
        self.calls: list[list[ProverRequest]] = []

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]:
        self.calls.append(list(requests))
        if self.inner is not None:
            return self.inner.estimate(requests)
        out = []
        for request in requests:
            j = self.j_of(request)
            out.append(
                JEstimate(
                    j,
                    round(8 * j),
                    8,
                    max(0.0, j - 0.1),
                    min(1.0, j + 0.1),
                    answer_tokens=self.answer_tokens,
                )
            )
        return out


def scripted_lm(forced_answer: str = "2}") -> ScriptedLM:
    """A char-level scripted LM whose every continuation (forced answers) is ``forced_answer``."""
    return ScriptedLM([forced_answer])


def env_kwargs(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``MRTMathEnv`` over the doubles (override any field)."""
    kwargs: dict[str, Any] = {
        "problems": PROBLEMS,
        "lm": scripted_lm(),
        "prover": SpyProver(),
        "token_budget": 200,
        "max_episodes": 5,
    }
    kwargs.update(overrides)
    return kwargs
