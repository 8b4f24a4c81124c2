"""Train a learned μ from a labels file: features once, every candidate probe, keep the best.

Rows with the same (problem, prompt, prefix) are merged (their forced answers pooled, which is
exact for binomial observations). Features of every layer come from one forward pass per
batch; :func:`~mrt_env.prover.fit.select_probe` fits a logistic and an MLP probe per layer and
keeps the lowest validation loss. The folder's card records the choice and every candidate's
losses, the labels' K, count and SHA-256, and the policies that produced them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrt_env.prover.base import ProverRequest
from mrt_env.prover.features import FeatureExtractor
from mrt_env.prover.fit import FitConfig, select_probe
from mrt_env.prover.labels import LabelRow, labels_hash, read_labels
from mrt_env.prover.learned import LearnedMetaProver


def merge_rows(rows: Sequence[LabelRow]) -> list[LabelRow]:
    """One row per (problem, prompt, prefix) with the forced answers of its duplicates pooled.

    Example:
        >>> a = LabelRow("p", "P", "2", "", 1, 4)
        >>> [(r.num_correct, r.num_samples) for r in merge_rows([a, a])]
        [(2, 8)]
    """
    merged: dict[tuple[str, str, str], LabelRow] = {}
    for row in rows:
        key = (row.problem_id, row.prompt, row.prefix)
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
            continue
        total = seen.num_samples + row.num_samples
        tokens = seen.answer_tokens * seen.num_samples + row.answer_tokens * row.num_samples
        merged[key] = LabelRow(
            **{
                **asdict(seen),
                "num_correct": seen.num_correct + row.num_correct,
                "num_samples": total,
                "answer_tokens": tokens / total,
            }
        )
    return list(merged.values())


def train_from_labels(
    labels: str | Path,
    out: str | Path,
    *,
    feature_model: str = "tiny",
    feature_lm: Any = None,
    template: Any = None,
    kinds: Sequence[str] = ("logistic", "mlp"),
    layers: Sequence[int] | None = None,
    config: FitConfig | None = None,
    device: str | None = None,
    features: str = "hidden",
) -> LearnedMetaProver:
    """Fit a learned μ on the rows of ``labels`` and save it to ``out``.

    Args:
        labels: A labels file or folder (``mrt-prover collect``).
        out: Output folder (``head.safetensors`` + ``card.json``).
        feature_model: Spec of the feature model, recorded in the card and loaded when
            ``feature_lm`` is ``None`` (``"tiny"``, ``"tiny:VARIANT"``, a path or hub id).
        feature_lm: An already loaded feature model (its spec is still ``feature_model``).
        template: The template the labels were collected with (``None``: the one the feature
            model declares, as ``mrt-prover collect`` used).
        kinds: Head kinds to try (``"logistic"``, ``"mlp"``).
        layers: Layers to try (``None``: every block's output, 1 to ``num_layers``; layer 0,
            the embedding of the input's last token, is the same for every input that ends
            with the termination suffix, so it carries no information about the prefix).
        config: Fit settings.
        device: Device of a feature model loaded from ``feature_model``.
        features: Feature set: ``"hidden"`` (the hidden state where the forced answer starts)
            or ``"hidden+gold"`` (plus the reference answer's log-likelihood; see
            :mod:`mrt_env.prover.features`).
    """
    config = config or FitConfig()
    raw = read_labels(labels)
    rows = merge_rows(raw)
    if feature_lm is None:
        from mrt_env.config import build_lm

        feature_lm = build_lm(feature_model, device)
    extractor = FeatureExtractor(feature_lm, template, batch_size=64, features=features)
    chosen_layers = tuple(range(1, extractor.num_layers + 1)) if layers is None else tuple(layers)
    requests = [ProverRequest(r.problem_id, r.prompt, r.gold, r.prefix) for r in rows]
    start = time.perf_counter()
    values = extractor.features(requests, chosen_layers)
    feature_seconds = time.perf_counter() - start
    correct = torch.tensor([r.num_correct for r in rows], dtype=torch.float32)
    samples = torch.tensor([r.num_samples for r in rows], dtype=torch.float32)
    head, layer, reports = select_probe(
        values,
        chosen_layers,
        correct,
        samples,
        [r.problem_id for r in rows],
        kinds=kinds,
        config=config,
    )
    best = next(r for r in reports if r["layer"] == layer and r["kind"] == head.kind)
    j = np.array([r.j for r in rows])
    card = {
        "feature_model": feature_model,
        "labels": {
            "rows": len(raw),
            "prefixes": len(rows),
            "problems": len({r.problem_id for r in rows}),
            "k": sorted({r.num_samples for r in raw}),
            "sha256": labels_hash(raw),
            "policies": sorted({r.policy for r in raw}),
            "share_graded": float(np.mean((j > 0.1) & (j < 0.9))),
        },
        "training": {
            "fit": asdict(config),
            "chosen": best,
            "candidates": reports,
            "feature_seconds": feature_seconds,
            "choice": "lowest validation binomial loss over layers x head kinds",
        },
    }
    tokens = sum(r.answer_tokens * r.num_samples for r in rows) / float(samples.sum())
    prover = LearnedMetaProver(
        feature_lm,
        head,
        layer=layer,
        template=template,
        answer_tokens=tokens,
        card=card,
        features=features,
    )
    prover.save_pretrained(out)
    return prover
