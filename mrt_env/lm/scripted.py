"""A deterministic scripted language model: a named test double (no torch)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

from mrt_env.lm.base import Completion, FinishReason, SamplingParams, find_stop

Script = Callable[[str, int], str] | Mapping[str, str] | Sequence[str]
"""What a :class:`ScriptedLM` says: see its docs."""

_WORD = re.compile(r"\s*\S+|\s+")


class ScriptedLM:
    """A test double that "generates" scripted text, honouring the sampling contract.

    Tokens are characters (``tokenization="char"``, token id = code point) or words
    (``tokenization="word"``: each token is a run of whitespace followed by a run of
    non-whitespace, or trailing whitespace, so tokens concatenate back to the text; ids are
    assigned on first sight). The script says what the model would write after a prompt:

    - a callable ``script(prompt, sample_index) -> str``;
    - a mapping from prompt suffix to text: the longest key the prompt ends with wins
      (``default`` is used when none matches; without it a ``KeyError`` is raised);
    - a sequence of texts, handed out in turn (cycled) to every sample of every call.

    The scripted text is then cut like a real model's output: at the first stop string that
    starts at character offset >= 1 (``finish_reason="stop"``), else after
    ``max_new_tokens`` tokens (``"length"``), else it ends with EOS (``"eos"``). Seeds and
    temperature are ignored; every log-probability is 0.0. Every call is recorded in
    :attr:`calls`.

    Example:
        >>> lm = ScriptedLM(["I think.\\n\\nWait, no."])
        >>> [[c]] = lm.generate(["Q"], SamplingParams(max_new_tokens=50, stop=("\\n\\nWait",)))
        >>> c.text, c.finish_reason
        ('I think.', 'stop')
    """

    def __init__(
        self,
        script: Script,
        *,
        tokenization: Literal["char", "word"] = "char",
        default: str | None = None,
        name: str = "scripted",
    ) -> None:
        if tokenization not in ("char", "word"):
            raise ValueError(f"tokenization must be 'char' or 'word', got {tokenization!r}")
        if isinstance(script, str):
            raise TypeError("script must be a callable, a mapping or a sequence of str, not a str")
        self.name = name
        self.tokenization = tokenization
        self.default = default
        self.calls: list[tuple[tuple[str, ...], SamplingParams]] = []
        self._script = script
        self._cycle: Iterator[str] | None = None
        if not callable(script) and not isinstance(script, Mapping):
            if not script:
                raise ValueError("a sequence script needs at least one text")
            self._cycle = itertools.cycle(list(script))
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []

    def _split(self, text: str) -> list[str]:
        return list(text) if self.tokenization == "char" else _WORD.findall(text)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (code points, or word ids assigned on first sight)."""
        if self.tokenization == "char":
            return [ord(c) for c in text]
        ids = []
        for word in self._split(text):
            if word not in self._vocab:
                self._vocab[word] = len(self._words)
                self._words.append(word)
            ids.append(self._vocab[word])
        return ids

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids``."""
        if self.tokenization == "char":
            return "".join(chr(i) for i in token_ids)
        return "".join(self._words[i] for i in token_ids)

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text``."""
        return len(self._split(text))

    def _scripted_text(self, prompt: str, sample_index: int) -> str:
        if self._cycle is not None:
            return next(self._cycle)
        if callable(self._script):
            return str(self._script(prompt, sample_index))
        assert isinstance(self._script, Mapping)
        matches = [key for key in self._script if prompt.endswith(key)]
        if matches:
            return self._script[max(matches, key=len)]
        if self.default is not None:
            return self.default
        raise KeyError(f"no scripted continuation for a prompt ending in {prompt[-40:]!r}")

    def _complete(self, text: str, params: SamplingParams) -> Completion:
        tokens = self._split(text)
        capped = "".join(tokens[: params.max_new_tokens])
        found = find_stop(capped, params.stop)
        finish: FinishReason
        stop_string = None
        if found is not None:
            capped, stop_string, finish = capped[: found[0]], found[1], "stop"
        elif len(tokens) > params.max_new_tokens:
            finish = "length"
        else:
            finish = "eos"
        ids = self.encode(capped)
        return Completion(capped, tuple(ids), (0.0,) * len(ids), finish, stop_string)

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """``params.n`` scripted completions per prompt (seeds are checked, then ignored)."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of str, not a single str")
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        self.calls.append((tuple(prompts), params))
        return [
            [self._complete(self._scripted_text(p, j), params) for j in range(params.n)]
            for p in prompts
        ]
