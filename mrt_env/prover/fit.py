"""Fitting a learned μ's probe: binomial cross-entropy, split by problem, early stopping.

The loss of a row with ``c`` of ``n`` forced answers correct is the binomial negative
log-likelihood ``-(c log J + (n - c) log(1 - J))`` (a proper scoring rule: its expectation is
minimised by the true J whatever K, so small-K labels are unbiased targets), averaged over
samples. Rows are split into train and validation **by problem** (no problem is in both), and
training stops when the validation loss has not improved for ``patience`` epochs; the head of
the best validation epoch is kept. :func:`select_probe` fits every (layer, head kind) candidate
and keeps the one with the lowest validation loss, reporting all of them.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> x = torch.randn(400, 3)
    >>> j = torch.sigmoid(2 * x[:, 0])
    >>> n = torch.full((400,), 8.0)
    >>> c = torch.binomial(n, j)
    >>> train, val = split_by_problem([str(i % 40) for i in range(400)], 0.25, seed=0)
    >>> head, report = fit_probe(x, c, n, train, val, hidden=0)
    >>> report["val_loss"] < 0.6
    True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mrt_env.prover.learned import ProbeHead


@dataclass(frozen=True)
class FitConfig:
    """Settings of the probe fit (full-batch AdamW)."""

    val_fraction: float = 0.2
    """Share of problems held out for validation (early stopping and head selection)."""
    max_epochs: int = 2000
    """Most full-batch steps."""
    patience: int = 100
    """Steps without a better validation loss before stopping."""
    lr: float = 0.01
    """AdamW learning rate."""
    weight_decay: float = 1e-3
    """AdamW weight decay."""
    hidden: int = 32
    """Hidden units of the MLP candidate."""
    seed: int = 0
    """Seed of the split and of the heads' initialisation."""

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_epochs < 1 or self.patience < 1 or self.hidden < 1:
            raise ValueError("max_epochs, patience and hidden must be >= 1")


def binomial_nll(
    logits: torch.Tensor, correct: torch.Tensor, samples: torch.Tensor
) -> torch.Tensor:
    """Mean binomial negative log-likelihood per forced answer (logits of J).

    Example:
        >>> import torch
        >>> loss = binomial_nll(torch.zeros(1), torch.tensor([2.0]), torch.tensor([4.0]))
        >>> round(float(loss), 4)  # log 2: J = 0.5 for every answer
        0.6931
    """
    log_j = torch.nn.functional.logsigmoid(logits)
    log_not_j = torch.nn.functional.logsigmoid(-logits)
    total = -(correct * log_j + (samples - correct) * log_not_j).sum()
    return total / samples.sum()


def split_by_problem(
    problem_ids: Sequence[str], val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks (train, validation) that never put one problem on both sides."""
    unique = sorted(set(problem_ids))
    if len(unique) < 2:
        raise ValueError(f"need rows from at least 2 problems to split by problem, got {unique}")
    order = np.random.default_rng(seed).permutation(len(unique))
    count = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    held = {unique[i] for i in order[:count]}
    val = torch.tensor([p in held for p in problem_ids])
    return ~val, val


def fit_probe(
    features: torch.Tensor,
    correct: torch.Tensor,
    samples: torch.Tensor,
    train: torch.Tensor,
    val: torch.Tensor,
    *,
    hidden: int = 0,
    config: FitConfig | None = None,
) -> tuple[ProbeHead, dict[str, Any]]:
    """Fit one probe on ``[n, d]`` features; returns the best-validation head and a report."""
    config = config or FitConfig()
    torch.manual_seed(config.seed)
    head = ProbeHead(features.shape[1], hidden)
    head.set_standardisation(features[train])
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, best_epoch, epoch = float("inf"), copy.deepcopy(head.state_dict()), 0, 0
    for epoch in range(1, config.max_epochs + 1):
        optimizer.zero_grad()
        loss = binomial_nll(head(features[train]), correct[train], samples[train])
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            val_loss = float(binomial_nll(head(features[val]), correct[val], samples[val]))
        if val_loss < best - 1e-7:
            best, best_state, best_epoch = val_loss, copy.deepcopy(head.state_dict()), epoch
        elif epoch - best_epoch >= config.patience:
            break
    head.load_state_dict(best_state)
    with torch.no_grad():
        train_loss = float(binomial_nll(head(features[train]), correct[train], samples[train]))
    report = {
        "kind": head.kind,
        "hidden": hidden,
        "val_loss": best,
        "train_loss": train_loss,
        "best_epoch": best_epoch,
        "epochs": epoch,
    }
    return head.eval(), report


def select_probe(
    features: torch.Tensor,
    layers: Sequence[int],
    correct: torch.Tensor,
    samples: torch.Tensor,
    problem_ids: Sequence[str],
    *,
    kinds: Sequence[str] = ("logistic", "mlp"),
    config: FitConfig | None = None,
) -> tuple[ProbeHead, int, list[dict[str, Any]]]:
    """Fit every (layer, kind) on ``[n, len(layers), d]`` features; keep the best validation.

    Returns the chosen head, its layer and one report per candidate (with its layer); the
    validation losses are those of the same problem split, so they compare like with like.
    """
    config = config or FitConfig()
    unknown = set(kinds) - {"logistic", "mlp"}
    if unknown:
        raise ValueError(f"unknown head kinds {sorted(unknown)}; use logistic and/or mlp")
    train, val = split_by_problem(problem_ids, config.val_fraction, config.seed)
    candidates = []
    for position, layer in enumerate(layers):
        for kind in kinds:
            hidden = config.hidden if kind == "mlp" else 0
            head, report = fit_probe(
                features[:, position], correct, samples, train, val, hidden=hidden, config=config
            )
            candidates.append((report["val_loss"], head, layer, {**report, "layer": layer}))
    best = min(candidates, key=lambda c: c[0])
    reports = [c[3] for c in candidates]
    base = _constant_loss(correct, samples, train, val)
    for report in reports:
        report["val_loss_constant"] = base
    return best[1], best[2], reports


def _constant_loss(
    correct: torch.Tensor, samples: torch.Tensor, train: torch.Tensor, val: torch.Tensor
) -> float:
    """Validation loss of the best constant J (the training rows' pooled rate)."""
    rate = float(correct[train].sum() / samples[train].sum())
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    logit = torch.full((int(val.sum()),), float(np.log(rate / (1 - rate))))
    return float(binomial_nll(logit, correct[val], samples[val]))
