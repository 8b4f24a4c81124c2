"""The tokenizer side of :class:`~mrt_env.lm.openai_compat.OpenAICompatibleLM`.

:class:`ServerTokenizer` encodes, decodes and counts tokens of a served model with
``tokenizer`` (a local path or a tokenizer object) when given, else with the server's
``/tokenize`` and ``/detokenize`` endpoints (vLLM), probed once; a server without them
(``transformers serve``) falls back to the tokenizer of the served model's name when that is a
local folder or a cached hub id. No tokenizer is ever downloaded.

Example:
    >>> from mrt_env.lm.openai_server import CharTokenizer
    >>> from mrt_env.lm.openai_transport import ServerTransport
    >>> server = ServerTransport("http://127.0.0.1:1/v1")  # no request is made
    >>> tokens = ServerTokenizer(server, "m", CharTokenizer())
    >>> tokens.encode("ab"), tokens.decode([97, 98]), tokens.count_tokens("abc")
    ([97, 98], 'ab', 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from mrt_env.lm.openai_server import load_tokenizer
from mrt_env.lm.openai_transport import ServerTransport


class ServerTokenizer:
    """``encode``/``decode``/``count_tokens`` of the model a server serves (see the module docs).

    Args:
        transport: The server's transport (for ``/tokenize`` and ``/detokenize``).
        model: The served model's name (sent with each request; its local tokenizer is the
            fallback of a server without ``/tokenize``).
        tokenizer: Local tokenizer path / hub id (loaded with ``AutoTokenizer``, no downloads)
            or an object with ``encode``/``decode``; ``None`` uses the server's ``/tokenize``.

    Attributes:
        tokenizer: The local tokenizer, or ``None`` while the server's ``/tokenize`` is used.
    """

    def __init__(self, transport: ServerTransport, model: str, tokenizer: Any = None) -> None:
        self.transport = transport
        self.model = model
        self.tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self._server_tokenizes = False
        self._count = lru_cache(maxsize=65_536)(self._count_uncached)

    def chat_tokenizer(self) -> Any | None:
        """A local Hugging Face tokenizer to render the model's chat template with
        (``tokenizer=``, else the served model's name when it is a local folder or a cached hub
        id), or ``None`` when there is none (``template="chat"`` then needs ``tokenizer=``)."""
        if self.tokenizer is not None:
            return self.tokenizer
        try:
            return load_tokenizer(self.model)
        except (OSError, ValueError):
            return None

    def local(self) -> Any | None:
        """The local tokenizer, or ``None`` when the server's ``/tokenize`` is used.

        Without ``tokenizer=``, the server's ``/tokenize`` is probed once; a server without
        one (``transformers serve``) falls back to the tokenizer of the served model's name
        when that is a local folder or a cached hub id.
        """
        if self.tokenizer is not None or self._server_tokenizes:
            return self.tokenizer
        try:
            self.server_tokens("1")
            self._server_tokenizes = True
            return None
        except ValueError as error:
            try:
                self.tokenizer = load_tokenizer(self.model)
            except (OSError, ValueError) as load_error:
                raise ValueError(
                    f"{error}; and the served model {self.model!r} is no local tokenizer: "
                    "pass tokenizer=PATH_OR_ID"
                ) from load_error
        return self.tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        tokenizer = self.local()
        if tokenizer is not None:
            return list(tokenizer.encode(text, add_special_tokens=False))
        return list(self.server_tokens(text))

    def server_tokens(self, text: str) -> tuple[int, ...]:
        """The server's ``/tokenize`` of ``text``, checked: a list of ints, non-empty for a
        non-empty text (no tokens would turn every token budget off)."""
        base_url = self.transport.base_url
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        tokens = self.transport.root_post("/tokenize", body, len(text)).get("tokens")
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise ValueError(f"server at {base_url} answered /tokenize without token ids")
        if text and not tokens:
            raise ValueError(
                f"server at {base_url} answered /tokenize with no tokens for a non-empty "
                "text (token budgets would be off): pass tokenizer=PATH"
            )
        return tuple(tokens)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids`` (special tokens skipped)."""
        tokenizer = self.local()
        if tokenizer is not None:
            return str(tokenizer.decode(list(token_ids), skip_special_tokens=True))
        body = {"model": self.model, "tokens": list(token_ids)}
        text = self.transport.root_post("/detokenize", body, len(token_ids)).get("prompt")
        if not isinstance(text, str):
            raise ValueError(
                f"server at {self.transport.base_url} answered /detokenize without a text"
            )
        return text

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under :meth:`encode` (cached)."""
        return int(self._count(text))

    def _count_uncached(self, text: str) -> int:
        return len(self.encode(text))
