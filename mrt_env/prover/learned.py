"""The learned meta-prover: J from one forward pass of a feature model and a small probe.

:class:`LearnedMetaProver` reads the feature model's hidden state at the position where the
forced answer would start (the last token of ``template.render_meta(prompt, prefix)``) and maps
it to J ∈ (0, 1) with a :class:`ProbeHead` (logistic, or a one-hidden-layer MLP) trained on
binomial labels of the sampled μ (``mrt-prover train``). Nothing is sampled or verified at
estimate time; each estimate says ``source="learned"`` and ``num_samples=0``.

A trained μ is a folder: ``head.safetensors`` (the probe, with its feature standardisation)
and ``card.json`` (feature model and layer, head kind, label K, label count and data hash,
training and calibration figures, and the head file's SHA-256).

Example:
    >>> import torch
    >>> from mrt_env.lm.testing import tiny_random_lm
    >>> from mrt_env.prover.base import ProverRequest
    >>> lm = tiny_random_lm(seed=0)
    >>> head = ProbeHead(input_dim=32, hidden=0)
    >>> prover = LearnedMetaProver(lm, head, layer=2, template="tiny")
    >>> [est] = prover.estimate([ProverRequest("p", "Problem: 1+1?\\n<think>\\n", "2", "")])
    >>> 0 < est.j < 1, est.num_samples, est.source
    (True, 0, 'learned')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrt_env.prover.base import JEstimate, ProverRequest, check_requests
from mrt_env.prover.features import FeatureExtractor, model_fingerprint, tokenizer_fingerprint
from mrt_env.templates import ChatTemplate

HEAD_FILE = "head.safetensors"
CARD_FILE = "card.json"
CARD_FORMAT = 1
_ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED = {
    "tiny-lm-explain": _ASSETS / "prover-tiny-explain",
    "tiny-lm": _ASSETS / "prover-tiny",
    "tiny-lm-graded": _ASSETS / "prover-tiny-graded",
}
"""Learned μ folders shipped with the package, by the folder of the tiny LM they read."""


def shipped_prover(name: str) -> Path | None:
    """The shipped learned μ of a tiny-LM spec (``"tiny"``, ``"tiny:VARIANT"``), else ``None``.

    Example:
        >>> shipped_prover("tiny").name, shipped_prover("tiny:classic").name
        ('prover-tiny-explain', 'prover-tiny')
        >>> shipped_prover("tiny:grpo") is None, shipped_prover("runs/mu") is None
        (True, True)
    """
    from mrt_env.tinymath.loading import VARIANTS, tiny_variant

    variant = tiny_variant(name)
    if variant is None or variant not in VARIANTS:
        return None
    return SHIPPED.get(VARIANTS[variant][0])


class ProbeHead(nn.Module):
    """Standardise the feature, then a logistic (``hidden=0``) or one-hidden-layer MLP probe.

    ``forward`` returns the logit of J; :meth:`probability` returns J.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, input_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if input_dim < 1 or hidden < 0:
            raise ValueError(f"need input_dim >= 1 and hidden >= 0, got {input_dim}, {hidden}")
        self.input_dim = input_dim
        self.hidden = hidden
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(input_dim))
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.GELU(), nn.Linear(hidden, 1)
            )
        else:
            self.net = nn.Linear(input_dim, 1)

    @property
    def kind(self) -> str:
        """``"logistic"`` or ``"mlp"``."""
        return "mlp" if self.hidden else "logistic"

    def set_standardisation(self, features: torch.Tensor) -> None:
        """Centre and scale inputs by the mean and standard deviation of ``features``."""
        self.mean.copy_(features.mean(0))
        self.scale.copy_(features.std(0).clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of J for ``[n, input_dim]`` features."""
        x = (features - self.mean) / self.scale
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def probability(self, features: torch.Tensor) -> torch.Tensor:
        """J for ``[n, input_dim]`` features."""
        return torch.sigmoid(self.forward(features.to(self.mean.dtype)))


class ProverFolderError(ValueError):
    """A learned-μ folder that cannot be used (missing, corrupt or for another model)."""


class LearnedMetaProver:
    """μ as a probe on the hidden state where the forced answer would start.

    Args:
        feature_lm: The feature model (an ``HFLanguageModel``); frozen (only read).
        head: The trained probe (its ``input_dim`` is the feature set's size: the feature
            model's hidden size, plus 2 with ``"hidden+gold"``).
        layer: Hidden-state layer the probe reads (0 = embeddings).
        template: Template whose ``render_meta`` builds the input (the one labels used).
        answer_tokens: Mean forced-answer tokens reported with every estimate (the labels'
            mean), so J-vs-tokens curves keep the sampled μ's x positions.
        card: The folder's card (kept for :meth:`save_pretrained` and reports).
        policy_lm: When given, its tokenizer must equal the feature model's.
        batch_size: Requests per forward pass (``None``: all requests of a call in one pass;
            see :class:`~mrt_env.prover.features.FeatureExtractor`).
        features: Feature set, ``"hidden"`` or ``"hidden+gold"`` (the card's ``features``).
    """

    source = "learned"
    """What its estimates' ``JEstimate.source`` says (trainers log it)."""

    def __init__(
        self,
        feature_lm: Any,
        head: ProbeHead,
        *,
        layer: int,
        template: str | ChatTemplate | None = "tiny",
        answer_tokens: float = 0.0,
        card: Mapping[str, Any] | None = None,
        policy_lm: Any = None,
        batch_size: int | None = None,
        features: str = "hidden",
    ) -> None:
        self.extractor = FeatureExtractor(
            feature_lm, template, batch_size=batch_size, features=features
        )
        if head.input_dim != self.extractor.feature_size:
            raise ValueError(
                f"the head reads {head.input_dim} features but the feature model "
                f"{_name(feature_lm)} gives {self.extractor.feature_size} ({features!r}: hidden "
                f"size {self.extractor.hidden_size})"
            )
        if policy_lm is not None:
            check_same_tokenizer(feature_lm, policy_lm)
        self.head = head.eval()
        self.layer = layer
        self.answer_tokens = float(answer_tokens)
        self.card: dict[str, Any] = dict(card or {})
        self.forward_passes = 0

    @property
    def template(self) -> ChatTemplate:
        """The template whose ``render_meta`` builds the feature model's input."""
        return self.extractor.template

    def estimate(self, requests: Sequence[ProverRequest]) -> list[JEstimate]:
        """J for every request (one batched forward pass; nothing sampled or verified)."""
        check_requests(requests)
        if not requests:
            return []
        features = self.extractor.features(requests, layers=(self.layer,))[:, 0]
        self.forward_passes += 1
        probabilities = self.head.probability(features).double().tolist()
        return [
            JEstimate(j, 0, 0, j, j, answer_tokens=self.answer_tokens, source="learned")
            for j in probabilities
        ]

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path: str | Path, **card_updates: Any) -> Path:
        """Write ``head.safetensors`` and ``card.json`` (with the head's SHA-256) to ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_file(tensors, str(folder / HEAD_FILE))
        lm = self.extractor.lm
        card = {
            **self.card,
            "format": CARD_FORMAT,
            "feature_model": self.card.get("feature_model", _name(lm)),
            "feature_model_fingerprint": model_fingerprint(lm.model),
            "tokenizer_fingerprint": tokenizer_fingerprint(lm.tokenizer),
            "layer": self.layer,
            "head": {
                "kind": self.head.kind,
                "hidden": self.head.hidden,
                "input_dim": self.head.input_dim,
            },
            "template": self.template.name,
            "features": self.extractor.feature_set,
            "answer_tokens": self.answer_tokens,
            **card_updates,
            "head_sha256": _sha256(folder / HEAD_FILE),
        }
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        self.card = card
        return folder

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        feature_lm: Any = None,
        policy_lm: Any = None,
        device: str | None = None,
        template: str | ChatTemplate | None = None,
        follow_policy: bool = False,
    ) -> LearnedMetaProver:
        """Load a learned μ folder.

        Args:
            path: The folder written by :meth:`save_pretrained` (or ``mrt-prover train``), or
                the name of a shipped one (:func:`shipped_prover`: ``"tiny"`` for the
                default tiny LM, ``"tiny:classic"``, ``"tiny:graded"`` for those variants).
            feature_lm: The feature model (``None``: load the card's ``feature_model`` spec,
                e.g. ``"tiny"``). Its weights must be those the head was trained on.
            policy_lm: The policy's model; its tokenizer must equal the feature model's.
            device: Device of a feature model loaded from the card.
            template: The environment's template; its name must be the card's.
            follow_policy: Read the features from ``policy_lm`` itself (its current weights,
                shared, so the features follow the policy as it is trained) instead of a
                frozen feature model. At load time its weights must still be the card's.

        Raises:
            ProverFolderError: A missing folder or file, a head that is truncated or fails its
                checksum, a card naming another feature model or template (the message names
                the file).
        """
        folder = shipped_prover(str(path)) or Path(path)
        card = read_card(folder)
        head = _load_head(folder / HEAD_FILE, card)
        if follow_policy:
            if policy_lm is None or feature_lm is not None:
                raise ValueError("follow_policy=True reads features from policy_lm: pass only it")
            feature_lm = policy_lm
        if feature_lm is None:
            from mrt_env.config import build_lm

            feature_lm = build_lm(str(card["feature_model"]), device)
        found = model_fingerprint(feature_lm.model)
        if found != card.get("feature_model_fingerprint"):
            raise ProverFolderError(
                f"{folder / CARD_FILE} names feature model {card['feature_model']!r} "
                f"(fingerprint {card.get('feature_model_fingerprint')}), but the feature model "
                f"given is {_name(feature_lm)!r} (fingerprint {found}): the head reads that "
                f"model's hidden states only"
            )
        name = template.name if isinstance(template, ChatTemplate) else template
        if name is not None and name != card.get("template"):
            raise ProverFolderError(
                f"{folder / CARD_FILE} was trained with template {card.get('template')!r}, "
                f"but the environment uses {name!r}"
            )
        return cls(
            feature_lm,
            head,
            layer=int(card["layer"]),
            template=str(card["template"]),
            answer_tokens=float(card.get("answer_tokens", 0.0)),
            card=card,
            policy_lm=policy_lm,
            features=str(card.get("features", "hidden")),
        )


def check_same_tokenizer(feature_lm: Any, policy_lm: Any) -> None:
    """Raise ``ValueError`` naming both models unless their tokenizers' vocabularies agree."""
    policy_tokenizer = getattr(policy_lm, "tokenizer", None)
    if policy_tokenizer is None or not hasattr(policy_tokenizer, "get_vocab"):
        return  # a model without a readable tokenizer (a server) cannot be checked here
    ours, theirs = (tokenizer_fingerprint(m.tokenizer) for m in (feature_lm, policy_lm))
    if ours != theirs:
        raise ValueError(
            f"the feature model {_name(feature_lm)!r} and the policy {_name(policy_lm)!r} have "
            f"different tokenizers ({ours} vs {theirs}); a learned meta-prover needs a feature "
            f"model with the policy's tokenizer"
        )


def read_card(folder: Path) -> dict[str, Any]:
    """The card of a learned-μ folder, checked for the fields a load needs."""
    path = folder / CARD_FILE
    if not folder.is_dir():
        raise ProverFolderError(f"learned meta-prover folder {folder} does not exist")
    if not path.is_file():
        raise ProverFolderError(f"{path} is missing (not a learned meta-prover folder)")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ProverFolderError(f"{path} is not valid JSON: {error}") from error
    missing = [
        key
        for key in (
            "feature_model",
            "feature_model_fingerprint",
            "layer",
            "head",
            "template",
            "head_sha256",
        )
        if key not in card
    ]
    if missing:
        raise ProverFolderError(f"{path} lacks {', '.join(missing)}")
    return dict(card)


def _load_head(path: Path, card: Mapping[str, Any]) -> ProbeHead:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ProverFolderError(f"{path} is missing")
    digest = _sha256(path)
    if digest != card["head_sha256"]:
        raise ProverFolderError(
            f"{path} fails its checksum (SHA-256 {digest[:12]}..., the card says "
            f"{str(card['head_sha256'])[:12]}...): the file is truncated or was changed"
        )
    spec = card["head"]
    head = ProbeHead(int(spec["input_dim"]), int(spec.get("hidden", 0)))
    try:
        head.load_state_dict(load_file(str(path)))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ProverFolderError(f"{path} cannot be read as the card's head: {error}") from error
    return head.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _name(lm: Any) -> str:
    return str(getattr(lm, "name", None) or type(lm).__name__)
