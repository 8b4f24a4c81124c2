"""Model presets for the tiny LM: small Llama-architecture causal LMs.

Example:
    >>> config = model_config("tiny", vocab_size=103)
    >>> config.num_hidden_layers
    2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import LlamaConfig


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a tiny Llama model.

    Attributes:
        hidden_size: Width of the residual stream.
        num_hidden_layers: Transformer blocks.
        num_attention_heads: Attention heads per block.
        intermediate_size: Width of the gated MLP.
        max_position_embeddings: Longest sequence (prompt + response) in tokens.
    """

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 640


MODEL_PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(32, 2, 2, 64),
    "default": ModelPreset(96, 4, 4, 192),
    "quality": ModelPreset(192, 6, 6, 384),
}
"""``tiny``: for tests (≈24k parameters); ``default``: the shipped model (≈0.38M);
``quality``: ≈2.2M, for longer runs."""


def model_config(
    preset: str,
    vocab_size: int,
    pad_token_id: int = 0,
    eos_token_id: int = 2,
    bos_token_id: int = 1,
) -> LlamaConfig:
    """A ``LlamaConfig`` for ``preset``.

    Raises:
        KeyError: For an unknown preset.
    """
    from transformers import LlamaConfig

    if preset not in MODEL_PRESETS:
        known = ", ".join(MODEL_PRESETS)
        raise KeyError(f"unknown model preset {preset!r}; known: {known}")
    shape = MODEL_PRESETS[preset]
    return LlamaConfig(
        vocab_size=vocab_size,
        **asdict(shape),
        num_key_value_heads=shape.num_attention_heads,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        attention_dropout=0.0,
    )
