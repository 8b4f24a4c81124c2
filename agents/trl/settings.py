"""What ``MRTGRPOTrainer`` adds to a GRPO recipe (:class:`MRTSettings`) and what its last
step's credit was built from (:class:`CreditRecord`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.config import MRTConfig
from agents.trl.episodes import CompletionEpisodes
from mrt_env.grading import FinalJ, Truncation, check_settings
from mrt_env.templates import ChatTemplate


@dataclass(frozen=True)
class MRTSettings:
    """What MRT adds to a GRPO recipe on TRL.

    Attributes:
        credit: The credit mode, alpha and std normalisation (:class:`agents.config.MRTConfig`);
            ``None``: outcome-only GRPO (TRL's advantages), with the env's grading of
            truncated completions (``mrt-train --engine trl --algo grpo``).
        template: The env's chat template (termination suffix, end-of-thinking marker).
        segmenter: Splits thinking into episodes (the template's default when ``None``).
        prover_samples: K, forced answers per J estimate.
        max_answer_tokens: Token cap of one forced answer (``None``: the template's, the env's
            default; ``mrt-train --forced-answer-tokens`` sets it for both engines).
        prover: μ: by default a :class:`~agents.trl.prover.PolicyProver` over the current
            weights; any ``mrt_env.prover.MetaProver`` (e.g. the ``TableMetaProver`` test
            double, or one over a frozen model) is used as a fixed μ.
        prover_sample_share: ρ > 0 with a learned ``prover`` makes μ the hybrid
            (:class:`~agents.trl.prover.HybridPolicyProver`, ``--prover hybrid:PATH``): the
            policy being trained also answers a share ρ of the requests, and those labels
            update the learned head once per optimizer step (``prover/brier_online``,
            ``prover/drift``, ``prover/online_labels``). One process only.
        final_j: J after a finished completion: ``"prover"`` (μ's estimate from the natural
            end of thinking) or ``"outcome"`` (the verified 0/1 answer); see
            :mod:`mrt_env.grading`.
        truncation: How a truncated completion is graded: ``"forced_answer"`` (one answer
            forced from the policy) or ``"expected"`` (μ's J of its thinking).
        truncation_lm: The model whose forced answer grades a truncated completion (``None``:
            the policy being trained, through μ's model when μ is the default one).
    """

    credit: MRTConfig | None = field(default_factory=MRTConfig)
    template: str | ChatTemplate = "tiny"
    segmenter: Any = None
    prover_samples: int = 4
    max_answer_tokens: int | None = None
    prover: Any = None
    prover_sample_share: float = 0.0
    final_j: FinalJ = "prover"
    truncation: Truncation = "forced_answer"
    truncation_lm: Any = None

    def __post_init__(self) -> None:
        check_settings(self.final_j, self.truncation)
        share = self.prover_sample_share
        if not 0 <= share <= 1 or (share > 0 and not hasattr(self.prover, "head")):
            raise ValueError(
                f"prover_sample_share must be in [0, 1] (got {share}); above 0 it needs a "
                "LearnedMetaProver as prover (the hybrid μ, --prover hybrid:PATH)"
            )
        if self.credit is None and self.truncation == "expected":
            raise ValueError(
                "truncation='expected' needs a meta-prover: outcome-only GRPO has none "
                "(use truncation='forced_answer')"
            )


@dataclass
class CreditRecord:
    """What the last step's credit was built from (this process's rows), for inspection.

    Attributes:
        episodes: Each completion's episodes.
        j_pairs: ``(J before, J after)`` of each episode (per-episode credit modes).
        rewards: ``R`` of each row.
        prefix_j: ``J(prefix)`` of each row (released recipe).
        advantages: Per-token advantages handed to TRL's loss (``[B, T]``).
        j_sources: Where J after each row's last episode came from (``"prover"`` /
            ``"outcome"``, as the env's ``info["j_source"]``; per-episode credit modes).
        truncation: Per row, ``None`` (finished) or the grading of a truncated completion
            (``"forced_answer"`` / ``"expected"``).
        graded: Per row, the text the reward functions graded.
    """

    episodes: list[CompletionEpisodes]
    j_pairs: list[list[tuple[float | None, float | None]]]
    rewards: np.ndarray
    prefix_j: list[float]
    advantages: torch.Tensor
    j_sources: list[str | None] = field(default_factory=list)
    truncation: list[str | None] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
