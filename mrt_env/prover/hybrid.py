"""The hybrid meta-prover: a learned μ answers every request, a sampled μ checks a share.

The paper's μ is the policy being trained; a probe fitted to the starting model drifts as the
policy learns. :class:`HybridMetaProver` answers every request with the learned μ and, for a
random share ρ of the distinct requests of each call, also asks a sampled μ (on the policy's
current weights when the trainer passes the policy). Those fresh binomial labels are kept (with
the learned features they were asked for) and :meth:`update` — called by the trainer between
optimizer steps — takes a few gradient steps of the binomial loss on them and reports how far
the learned estimates were from the fresh labels: ``prover/brier_online`` (mean squared
difference) and ``prover/drift`` (mean signed difference, learned − sampled).

Example:
    >>> from mrt_env.lm.scripted import ScriptedLM
    >>> from mrt_env.prover.sampled import SampledMetaProver
    >>> from mrt_env.tinymath import load_tiny_lm
    >>> from mrt_env.prover.learned import LearnedMetaProver, ProbeHead
    >>> learned = LearnedMetaProver(load_tiny_lm(), ProbeHead(96), layer=4)
    >>> sampled = SampledMetaProver(ScriptedLM(["2}"]), "tiny", k=4)
    >>> hybrid = HybridMetaProver(learned, sampled, share=1.0, seed=0)
    >>> [est] = hybrid.estimate([ProverRequest("p", "Problem: 1+1\\n<think>\\n", "2", "")])
    >>> est.source, sorted(hybrid.update())
    ('learned', ['prover/brier_online', 'prover/drift', 'prover/online_labels'])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mrt_env.prover.base import JEstimate, ProverRequest, check_requests
from mrt_env.prover.fit import binomial_nll
from mrt_env.prover.learned import LearnedMetaProver


class HybridMetaProver:
    """Learned μ for every request; a sampled μ on a random share ρ updates it online.

    Args:
        learned: The learned μ (its head is updated in place by :meth:`update`).
        sampled: The sampled μ that labels the share ρ (e.g. on the current policy).
        share: ρ, the probability that a distinct request of a call is also sampled.
        seed: Seed of the choice of sampled requests.
        buffer_size: Most recent fresh labels kept for the online updates.
        update_steps: Gradient steps per :meth:`update`.
        lr: AdamW learning rate of the online updates.
    """

    source = "learned"
    """What its estimates' ``JEstimate.source`` says (every answer is the learned μ's)."""

    def __init__(
        self,
        learned: LearnedMetaProver,
        sampled: Any,
        *,
        share: float = 0.1,
        seed: int = 0,
        buffer_size: int = 1024,
        update_steps: int = 10,
        lr: float = 1e-3,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError(f"share must be in [0, 1], got {share}")
        if buffer_size < 1 or update_steps < 0:
            raise ValueError("buffer_size must be >= 1 and update_steps >= 0")
        self.learned = learned
        self.sampled = sampled
        self.share = share
        self.update_steps = update_steps
        self._rng = np.random.default_rng(seed)
        self._buffer: deque[tuple[torch.Tensor, int, int]] = deque(maxlen=buffer_size)
        self._pending: list[tuple[float, float]] = []  # (learned J, sampled J) since update
        self._optimizer = torch.optim.AdamW(learned.head.parameters(), lr=lr)

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]:
        """The learned μ's J for every request; a random share is also sampled (kept)."""
        check_requests(requests)
        if not requests:
            return []
        learned = self.learned
        features = learned.extractor.features(requests, layers=(learned.layer,))[:, 0]
        probabilities = learned.head.probability(features).double().tolist()
        chosen = [i for i in range(len(requests)) if self._rng.random() < self.share]
        if chosen:
            fresh = self.sampled.estimate([requests[i] for i in chosen])
            for i, estimate in zip(chosen, fresh, strict=True):
                self._buffer.append((features[i], estimate.num_correct, estimate.num_samples))
                self._pending.append((probabilities[i], estimate.j))
        return [
            JEstimate(j, 0, 0, j, j, answer_tokens=learned.answer_tokens, source="learned")
            for j in probabilities
        ]

    def update(self) -> dict[str, float]:
        """Online head update on the fresh labels; the disagreement since the last update."""
        pending, self._pending = self._pending, []
        if pending:
            learned_j, sampled_j = (np.array(v) for v in zip(*pending, strict=True))
            metrics = {
                "prover/brier_online": float(np.mean((learned_j - sampled_j) ** 2)),
                "prover/drift": float(np.mean(learned_j - sampled_j)),
            }
        else:
            metrics = {"prover/brier_online": float("nan"), "prover/drift": float("nan")}
        metrics["prover/online_labels"] = float(len(pending))
        if self._buffer and self.update_steps:
            head = self.learned.head.train()
            features = torch.stack([f for f, _, _ in self._buffer])
            correct = torch.tensor([c for _, c, _ in self._buffer], dtype=torch.float32)
            samples = torch.tensor([n for _, _, n in self._buffer], dtype=torch.float32)
            for _ in range(self.update_steps):
                self._optimizer.zero_grad()
                binomial_nll(head(features), correct, samples).backward()
                self._optimizer.step()
            head.eval()
        return metrics

    def clear_cache(self) -> None:
        """Forget the sampled μ's cached estimates (the trainer calls it after an update)."""
        clear = getattr(self.sampled, "clear_cache", None)
        if clear is not None:
            clear()
