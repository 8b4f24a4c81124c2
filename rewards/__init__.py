"""Reward layer of mrt-gym: verification of final answers and composable reward modules.

Importing this package is cheap: it imports neither torch nor math-verify (answers are graded
lazily, in worker processes).

Example:
    >>> from rewards import StepContext, WeightedSum, make_reward
    >>> reward = WeightedSum((make_reward("outcome"), make_reward("progress", alpha=0.5)))
    >>> ctx = StepContext("1+1?", "2", "", "1+1=2.", 0, 6, 6, terminal=True,
    ...                   response="</think>\\\\boxed{2}", j_before=0.5, j_after=1.0)
    >>> reward(ctx)
    RewardTerms(total=1.25, terms={'outcome': 1.0, 'progress': 0.25})
"""

from rewards.context import StepContext
from rewards.modules import (
    FormatReward,
    LengthPenalty,
    OutcomeReward,
    ProgressBonus,
    RewardModule,
    RewardTerms,
    WeightedSum,
    call_batch,
)
from rewards.registry import known_rewards, make_reward, register_reward
from rewards.verification import (
    Verification,
    Verifier,
    VerifierConfig,
    get_verifier,
    verify,
    verify_many,
)

__all__ = [
    "FormatReward",
    "LengthPenalty",
    "OutcomeReward",
    "ProgressBonus",
    "RewardModule",
    "RewardTerms",
    "StepContext",
    "Verification",
    "Verifier",
    "VerifierConfig",
    "WeightedSum",
    "call_batch",
    "get_verifier",
    "known_rewards",
    "make_reward",
    "register_reward",
    "verify",
    "verify_many",
]
