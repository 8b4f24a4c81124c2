"""Test doubles that need transformers: a tiny randomly initialised Llama with a char tokenizer.

Nothing here downloads anything. The model is deterministic given its seed, so tests can
compare exact token sequences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrt_env.lm.hf import HFLanguageModel

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
"""Special tokens of :func:`char_tokenizer`, ids 0-3 in this order."""

CHARACTERS: str = "".join(chr(c) for c in range(32, 127)) + "\n"
"""The characters of :func:`char_tokenizer`'s vocabulary: printable ASCII and newline."""


def char_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` with one token per character (no downloads).

    The vocabulary holds :data:`SPECIAL_TOKENS` (ids 0-3) followed by :data:`CHARACTERS`;
    any other character maps to ``<unk>``. Decoding concatenates the characters, so
    ``decode(encode(text)) == text`` for text drawn from :data:`CHARACTERS`.

    Example:
        >>> tok = char_tokenizer()
        >>> ids = tok.encode("1+1", add_special_tokens=False)
        >>> len(ids), tok.decode(ids)
        (3, '1+1')
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + tuple(CHARACTERS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def tiny_random_model(seed: int = 0, vocab_size: int | None = None) -> Any:
    """A randomly initialised 2-layer Llama (hidden size 32) for :func:`char_tokenizer`.

    Weights are drawn from a ``torch.Generator`` seeded with ``seed`` (the global RNG is
    neither seeded nor advanced), so the model is reproducible.

    Args:
        seed: Seed of the weight initialisation.
        vocab_size: Vocabulary size (defaults to that of :func:`char_tokenizer`).

    Returns:
        A ``LlamaForCausalLM`` in eval mode on CPU (float32, SDPA attention).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    size = vocab_size or len(SPECIAL_TOKENS) + len(CHARACTERS)
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        model = LlamaForCausalLM(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.5, generator=generator)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    return model.eval()


def tiny_random_lm(seed: int = 0, **kwargs: Any) -> HFLanguageModel:
    """A named test double: :class:`~mrt_env.lm.hf.HFLanguageModel` over a tiny random Llama.

    The model is :func:`tiny_random_model` and the tokenizer :func:`char_tokenizer` (one
    token per character), on CPU in float32. Its text is gibberish but deterministic; use it
    to exercise the real transformers code path in tests without downloads.

    Args:
        seed: Seed of the weight initialisation.
        **kwargs: Passed to :class:`~mrt_env.lm.hf.HFLanguageModel` (e.g. ``prefix_cache_size``).

    Example:
        >>> from mrt_env.lm.base import SamplingParams
        >>> lm = tiny_random_lm(seed=0)
        >>> [out] = lm.generate(["2+2="], SamplingParams(max_new_tokens=5), seeds=[1])
        >>> len(out[0].token_ids) <= 5
        True
    """
    from mrt_env.lm.hf import HFLanguageModel

    kwargs.setdefault("name", f"tiny-random-llama-{seed}")
    return HFLanguageModel(tiny_random_model(seed), char_tokenizer(), **kwargs)
