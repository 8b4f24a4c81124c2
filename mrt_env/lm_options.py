"""Backend options of a language model (``lm_options``): read from the command line, checked
against the backend a model spec builds, so an option is never silently ignored.

Example:
    >>> options = parse_lm_options(["max_concurrency=1", "stop_mode=client"])
    >>> options
    {'max_concurrency': 1, 'stop_mode': 'client'}
    >>> check_lm_options("openai:http://127.0.0.1:8000/v1", options)  # both are options
    >>> check_lm_options("openai:http://127.0.0.1:8000/v1", {"max_concurency": 1})
    Traceback (most recent call last):
    ...
    TypeError: lm_options ['max_concurency'] are not options of an OpenAI-compatible server ...
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable, Mapping
from typing import Any

_PYTHON_WORDS = {"True": True, "False": False, "None": None}


def parse_lm_options(entries: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` entries (e.g. repeated ``--lm-option`` flags) as an ``lm_options`` dict.

    ``VALUE`` is read as JSON (``1``, ``2.5``, ``true``, ``null``, ``"text"``,
    ``{"top_k": 20}``); ``True``, ``False`` and ``None`` are read as Python writes them (never
    as the truthy text ``"False"``); anything else is text (``stop_mode=client``).

    Raises:
        ValueError: An entry without ``=`` or with an empty key, or a key given twice.

    Example:
        >>> parse_lm_options(["request_timeout=2.5", "use_n=False", "tokenizer=/models/x"])
        {'request_timeout': 2.5, 'use_n': False, 'tokenizer': '/models/x'}
    """
    options: dict[str, Any] = {}
    for entry in entries:
        key, sep, text = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"lm option {entry!r} is not KEY=VALUE (e.g. max_concurrency=1)")
        if key in options:
            raise ValueError(f"lm option {key!r} is given twice")
        options[key] = _value(text.strip())
    return options


def _value(text: str) -> Any:
    if text in _PYTHON_WORDS:
        return _PYTHON_WORDS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check_lm_options(spec: str, options: Mapping[str, Any] | None) -> None:
    """Raise ``TypeError`` naming the valid options when ``options`` has one that the backend
    ``spec`` builds does not take (``openai:URL``: ``OpenAICompatibleLM``; ``vllm:PATH``:
    ``VLLMLanguageModel.from_pretrained``); loads nothing. The transformers backend (any other
    spec) is checked by its constructor when the model loads."""
    if spec.startswith("openai:"):
        openai_lm = importlib.import_module("mrt_env.lm.openai_compat").OpenAICompatibleLM
        check_options(openai_lm, options, "an OpenAI-compatible server (openai:URL)")
    elif spec.startswith("vllm:"):
        vllm_lm = importlib.import_module("mrt_env.lm.vllm_backend").VLLMLanguageModel
        check_options(vllm_lm.from_pretrained, options, "in-process vLLM (vllm:PATH)")


def check_options(target: Any, options: Mapping[str, Any] | None, backend: str) -> None:
    """Raise ``TypeError`` naming the valid ones when ``options`` has a keyword ``target``
    (a class or function) does not take: an option is never silently ignored.

    Example:
        >>> check_options(lambda *, k=1: k, {"kk": 2}, "a backend")
        Traceback (most recent call last):
        ...
        TypeError: lm_options ['kk'] are not options of a backend; valid: ['k']
    """
    parameters = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    valid = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    valid -= {"self", "base_url", "spec", "model_name_or_path", "path"}
    unknown = sorted(set(options or {}) - valid)
    if unknown:
        raise TypeError(
            f"lm_options {unknown} are not options of {backend}; valid: {sorted(valid)}"
        )
