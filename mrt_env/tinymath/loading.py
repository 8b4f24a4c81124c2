"""Where the shipped tiny LMs live and how to load them.

Example:
    >>> tiny_lm_path("base").name
    'tiny-lm'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mrt_env.lm.hf import HFLanguageModel

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The package's asset folder."""

_SHIPPED_TRAINING = (
    "--model tiny --minutes 7 --steps 100000 --seed 3 --problems-per-step 4 --group-size 4 "
    "--lr 3e-05 --token-budget 384 --prover-samples 4 --eval-interval 40 --eval-problems 32"
)
"""The ``mrt-train`` settings of the shipped GRPO and MRT checkpoints: seed 3 of the 5-seed
study ``benchmarks/reproduce.py`` (the seed closest to each method's mean; see their cards)."""

VARIANTS: dict[str, tuple[str, str]] = {
    "base": (
        "tiny-lm",
        "python -m mrt_env.tinymath.train --preset default --seed 0 --out mrt_env/assets/tiny-lm",
    ),
    "graded": (
        "tiny-lm-graded",
        (
            "python -m mrt_env.tinymath.train --preset default --seed 0 --recipe graded "
            "--out mrt_env/assets/tiny-lm-graded"
        ),
    ),
    "explain": (
        "tiny-lm-explain",
        (
            "python -m mrt_env.tinymath.train --seed 0 --steps 1000 --lr 0.001 --warmup 20 "
            "--recipe explain --init mrt_env/assets/tiny-lm --anchor "
            "--out mrt_env/assets/tiny-lm-explain"
        ),
    ),
    "grpo": (
        "tiny-lm-grpo",
        (
            "mrt-train --algo grpo "
            f"{_SHIPPED_TRAINING} "
            "--out runs/ship-grpo, then copy runs/ship-grpo/model to mrt_env/assets/tiny-lm-grpo"
        ),
    ),
    "mrt": (
        "tiny-lm-mrt",
        (
            "mrt-train --algo mrt --credit progress --alpha 1.0 "
            f"{_SHIPPED_TRAINING} "
            "--out runs/ship-mrt, then copy runs/ship-mrt/model to mrt_env/assets/tiny-lm-mrt"
        ),
    ),
}
"""``variant -> (folder name under assets/, command that creates it)``."""


def tiny_lm_path(variant: str = "base") -> Path:
    """The folder of a tiny-LM variant (``"base"``, ``"graded"``, ``"grpo"`` or ``"mrt"``).

    Raises:
        KeyError: For an unknown variant.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown tiny-LM variant {variant!r}; known: {', '.join(VARIANTS)}")
    return ASSETS / VARIANTS[variant][0]


def load_tiny_lm(variant: str = "base", device: str = "cpu", **kwargs: object) -> HFLanguageModel:
    """Load a shipped tiny LM as an :class:`~mrt_env.lm.hf.HFLanguageModel`.

    Args:
        variant: ``"base"`` (trained on TinyMath traces), ``"graded"`` (the same traces, forced
            answers that follow the belief a prefix earns, so J is graded; ``lm="tiny:graded"``
            in the env), ``"grpo"`` or ``"mrt"`` (fine-tuned from ``"base"``).
        device: Torch device.
        **kwargs: Passed to :meth:`HFLanguageModel.from_pretrained`.

    Raises:
        FileNotFoundError: If the variant's weights are missing (names the command that
            creates them).

    Example:
        >>> lm = load_tiny_lm()
        >>> lm.count_tokens("47+38")
        5
    """
    from mrt_env.lm.hf import HFLanguageModel

    path = tiny_lm_path(variant)
    if not (path / "model.safetensors").is_file():
        command = VARIANTS[variant][1]
        raise FileNotFoundError(
            f"tiny-LM variant {variant!r} not found at {path}; create it with: {command}"
        )
    return HFLanguageModel.from_pretrained(str(path), device=device, **kwargs)  # type: ignore[arg-type]
