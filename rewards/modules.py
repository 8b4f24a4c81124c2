"""Reward modules: small picklable callables over a :class:`~rewards.context.StepContext`.

A reward module has a ``name`` and ``__call__(ctx) -> float | None`` (``None`` = abstain, e.g. when
the meta-prover's estimates are unknown). ``batch(ctxs)`` is the batch form; :func:`call_batch`
uses a module's own ``batch`` when it has one, else calls it per context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rewards.context import StepContext
from rewards.extraction import answer_region, boxed_answers
from rewards.normalize import normalize_answer
from rewards.verification import Verification, VerifierConfig, get_verifier


@runtime_checkable
class RewardModule(Protocol):
    """The extension point for rewards: a named callable over one step's context."""

    @property
    def name(self) -> str:
        """Key of this module's term in ``info["reward_terms"]``."""
        ...

    def __call__(self, ctx: StepContext) -> float | None:
        """The reward for this step, or ``None`` to abstain."""
        ...


def call_batch(module: RewardModule, ctxs: Sequence[StepContext]) -> list[float | None]:
    """Evaluate ``module`` on many contexts, with its ``batch`` method when it has one.

    Example:
        >>> ctx = StepContext("p", "2", "", "e", 0, episode_tokens=10, total_tokens=10)
        >>> call_batch(LengthPenalty(per_token=0.01), [ctx, ctx])
        [-0.1, -0.1]
    """
    batch = getattr(module, "batch", None)
    if callable(batch):
        return list(batch(ctxs))
    return [module(ctx) for ctx in ctxs]


@dataclass(frozen=True)
class OutcomeReward:
    """1.0 when the final response is verified correct at a terminal step, else 0.0.

    Before the terminal step the reward is 0.0. When ``ctx.metadata["verification"]`` already holds
    a :class:`~rewards.verification.Verification` (or its status string), it is reused. A terminal
    step without a response is worth ``ctx.metadata["expected_outcome"]`` when that holds a
    probability (the env's ``truncation_outcome="expected"``: J of the final prefix), else 0.0.

    Attributes:
        verifier: Verification settings (``None``: the defaults of :func:`rewards.verify`).
        name: Key of this term in ``info["reward_terms"]``.

    Example:
        >>> ctx = StepContext("1+1?", "2", "", "1+1=2.", 0, 6, 6, terminal=True,
        ...                   response="</think>\\\\boxed{2}")
        >>> OutcomeReward()(ctx)
        1.0
    """

    verifier: VerifierConfig | None = None
    name: str = "outcome"

    def __call__(self, ctx: StepContext) -> float:
        return self.batch([ctx])[0]

    def batch(self, ctxs: Sequence[StepContext]) -> list[float]:
        """Rewards for many contexts; their responses are verified together (all workers busy)."""
        todo = [ctx for ctx in ctxs if _needs_verification(ctx)]
        pairs = [(ctx.response or "", ctx.gold) for ctx in todo]
        fresh = dict(
            zip(map(id, todo), get_verifier(self.verifier).verify_many(pairs), strict=True)
        )
        rewards = []
        for ctx in ctxs:
            if not ctx.terminal:
                rewards.append(0.0)
            elif ctx.response is None:
                rewards.append(float(ctx.metadata.get("expected_outcome") or 0.0))
            elif id(ctx) in fresh:
                rewards.append(float(fresh[id(ctx)].correct))
            else:
                rewards.append(float(_precomputed_status(ctx) == "correct"))
        return rewards


def _precomputed_status(ctx: StepContext) -> str | None:
    known = ctx.metadata.get("verification")
    if isinstance(known, Verification):
        return known.status
    return known if isinstance(known, str) else None


def _needs_verification(ctx: StepContext) -> bool:
    return ctx.terminal and ctx.response is not None and _precomputed_status(ctx) is None


@dataclass(frozen=True)
class ProgressBonus:
    """``alpha * (j_after - j_before)``: the meta-prover's progress made by this episode.

    Abstains (``None``) when either estimate is unknown.

    Attributes:
        alpha: Scale of the bonus (the paper's α).
        name: Key of this term in ``info["reward_terms"]``.

    Example:
        >>> ctx = StepContext("p", "2", "", "e", 0, 5, 5, j_before=0.25, j_after=0.75)
        >>> ProgressBonus(alpha=2.0)(ctx)
        1.0
    """

    alpha: float = 1.0
    name: str = "progress"

    def __call__(self, ctx: StepContext) -> float | None:
        progress = ctx.progress
        return None if progress is None else self.alpha * progress


@dataclass(frozen=True)
class FormatReward:
    """``reward`` at a terminal step whose response ends thinking and has exactly one distinct
    boxed answer; 0.0 otherwise (and before the terminal step, and when the answer region is
    longer than the verifier's default ``max_response_chars``).

    Attributes:
        reward: Value of a well-formed final answer.
        name: Key of this term in ``info["reward_terms"]``.

    Example:
        >>> ctx = StepContext("p", "2", "", "e", 0, 5, 5, terminal=True,
        ...                   response="</think>\\\\boxed{2}")
        >>> FormatReward()(ctx)
        1.0
    """

    reward: float = 1.0
    name: str = "format"

    def __call__(self, ctx: StepContext) -> float:
        if not ctx.terminal or ctx.response is None:
            return 0.0
        region = answer_region(ctx.response)
        if region is None or "</think>" not in ctx.response:
            return 0.0
        if len(region) > VerifierConfig.max_response_chars:
            return 0.0
        distinct: set[str] = set()
        for answer in dict.fromkeys(boxed_answers(region)):
            distinct.add(normalize_answer(answer))
            if len(distinct) > 1:
                return 0.0
        return self.reward if distinct else 0.0


@dataclass(frozen=True)
class LengthPenalty:
    """``-per_token * episode_tokens``: a cost for every token the policy spends.

    Attributes:
        per_token: Penalty per token of this episode (model tokenizer).
        name: Key of this term in ``info["reward_terms"]``.

    Example:
        >>> LengthPenalty(per_token=0.001)(StepContext("p", "2", "", "e", 0, 500, 500))
        -0.5
    """

    per_token: float = 0.001
    name: str = "length"

    def __call__(self, ctx: StepContext) -> float:
        return -self.per_token * ctx.episode_tokens


@dataclass(frozen=True)
class RewardTerms:
    """The result of a :class:`WeightedSum`: the total and each term's (unweighted) value.

    Attributes:
        total: Sum of ``weight * value`` over the terms that did not abstain.
        terms: Each module's value by name; ``None`` where the module abstained.
    """

    total: float
    terms: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightedSum:
    """A weighted sum of reward modules; abstaining terms contribute 0 and are reported as ``None``.

    Attributes:
        modules: The terms (their names must be distinct).
        weights: One weight per module (``None``: all 1.0).

    Example:
        >>> ctx = StepContext("p", "2", "", "e", 0, 100, 100, j_before=0.2, j_after=0.5)
        >>> result = WeightedSum((ProgressBonus(), LengthPenalty(0.001)), (1.0, 2.0))(ctx)
        >>> round(result.total, 6), result.terms
        (0.1, {'progress': 0.3, 'length': -0.1})
    """

    modules: tuple[RewardModule, ...]
    weights: tuple[float, ...] | None = None
    name: str = "weighted_sum"

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules", tuple(self.modules))
        weights = tuple(self.weights) if self.weights is not None else (1.0,) * len(self.modules)
        object.__setattr__(self, "weights", weights)
        if len(weights) != len(self.modules):
            raise ValueError(f"{len(self.modules)} modules but {len(weights)} weights")
        names = [module.name for module in self.modules]
        if len(set(names)) != len(names):
            raise ValueError(f"reward module names must be distinct, got {names}")

    def __call__(self, ctx: StepContext) -> RewardTerms:
        return self.batch([ctx])[0]

    def batch(self, ctxs: Sequence[StepContext]) -> list[RewardTerms]:
        """Evaluate every term on all contexts (each term in its batch form)."""
        columns = [call_batch(module, ctxs) for module in self.modules]
        results = []
        rows = zip(*columns, strict=True) if columns else [()] * len(ctxs)
        for row in rows:
            terms = {module.name: value for module, value in zip(self.modules, row, strict=True)}
            weighted = zip(self.weights or (), row, strict=True)
            total = sum(weight * value for weight, value in weighted if value is not None)
            results.append(RewardTerms(total=float(total), terms=terms))
        return results
