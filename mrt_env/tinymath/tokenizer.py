"""The tiny LM's character-level tokenizer (built with ``tokenizers``).

Every printable ASCII character and the newline is one token; ``<pad>``, ``<bos>``, ``<eos>``
and ``<unk>`` are special tokens. Nothing is added around encoded text (no BOS), so a token
count is exactly a character count for ASCII text.

Example:
    >>> tok = build_tokenizer()
    >>> tok.decode(tok("47+38")["input_ids"])
    '47+38'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
CHARACTERS: tuple[str, ...] = ("\n", *(chr(code) for code in range(32, 127)))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh character-level tokenizer wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
