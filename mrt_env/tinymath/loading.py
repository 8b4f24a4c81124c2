"""Where the shipped tiny LMs live and how to load them.

Example:
    >>> tiny_lm_path().name, tiny_lm_path("classic").name
    ('tiny-lm-explain', 'tiny-lm')
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mrt_env.lm.hf import HFLanguageModel

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The package's asset folder."""

_SHIPPED_TRAINING = (
    "--model tiny --minutes 7 --steps 100000 --problems-per-step 4 --group-size 4 "
    "--lr 3e-05 --token-budget 384 --prover-samples 4 --eval-interval 40 --eval-problems 32"
)
"""The ``mrt-train`` settings of the shipped GRPO and MRT checkpoints: the 5-seed study
``benchmarks/reproduce.py`` on the default world (each the seed closest to its method's mean;
see their cards)."""

_EXPLAIN = (
    "tiny-lm-explain",
    (
        "python -m mrt_env.tinymath.train --seed 0 --steps 1000 --lr 0.001 --warmup 20 "
        "--recipe explain --explain-slip 0.95 --init mrt_env/assets/tiny-lm --anchor "
        "--out mrt_env/assets/tiny-lm-explain"
    ),
)

DEFAULT_VARIANT = "base"
"""The variant ``"tiny"`` loads: ``"base"``, the graded tiny world (``tiny-lm-explain``)."""

VARIANTS: dict[str, tuple[str, str]] = {
    "base": _EXPLAIN,
    "explain": _EXPLAIN,
    "classic": (
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
    "grpo": (
        "tiny-lm-grpo",
        (
            f"mrt-train --algo grpo {_SHIPPED_TRAINING} --seed 3 --out runs/ship-grpo, "
            "then copy runs/ship-grpo/model to mrt_env/assets/tiny-lm-grpo"
        ),
    ),
    "mrt": (
        "tiny-lm-mrt",
        (
            f"mrt-train --algo mrt --credit progress {_SHIPPED_TRAINING} --seed 4 "
            "--out runs/ship-mrt, then copy runs/ship-mrt/model to mrt_env/assets/tiny-lm-mrt"
        ),
    ),
}
"""``variant -> (folder name under assets/, command that creates it)``.

``"base"`` (= ``"explain"``) is the default tiny LM, whose forced answers write a line of work
before ``\\boxed{}`` so that J is graded; ``"classic"`` is the model it was fine-tuned from,
whose forced answers copy the thinking's last answer (J is a step); ``"graded"`` forces a bare
number with the belief a prefix earns; ``"grpo"`` and ``"mrt"`` are fine-tuned from ``"base"``.
"""


def tiny_variant(spec: str) -> str | None:
    """The variant a model spec names: ``"tiny"`` -> :data:`DEFAULT_VARIANT`, ``"tiny:X"`` ->
    ``"X"``, anything else (a path, a hub id) -> ``None``.

    Example:
        >>> tiny_variant("tiny"), tiny_variant("tiny:classic"), tiny_variant("runs/x/model")
        ('base', 'classic', None)
    """
    if spec == "tiny":
        return DEFAULT_VARIANT
    return spec.removeprefix("tiny:") if spec.startswith("tiny:") else None


def tiny_lm_path(variant: str = DEFAULT_VARIANT) -> Path:
    """The folder of a tiny-LM variant (a key of :data:`VARIANTS`).

    Raises:
        KeyError: For an unknown variant.
    """
    if variant not in VARIANTS:
        raise KeyError(f"unknown tiny-LM variant {variant!r}; known: {', '.join(VARIANTS)}")
    return ASSETS / VARIANTS[variant][0]


def load_tiny_lm(
    variant: str = DEFAULT_VARIANT, device: str = "cpu", **kwargs: object
) -> HFLanguageModel:
    """Load a shipped tiny LM as an :class:`~mrt_env.lm.hf.HFLanguageModel`.

    Args:
        variant: A key of :data:`VARIANTS`: ``"base"`` (the default, ``lm="tiny"``: forced
            answers that write a line of work, so J is graded), ``"classic"`` (the model it
            was fine-tuned from; J is a step), ``"graded"``, ``"grpo"`` or ``"mrt"``.
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
