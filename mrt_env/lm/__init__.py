"""Language-model backends: the protocol, transformers, completions servers, vLLM, a test double.

``HFLanguageModel`` (and ``GenerationStats``), ``OpenAICompatibleLM`` and ``VLLMLanguageModel``
are exported lazily so that importing this package never imports torch, transformers, openai or
vllm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mrt_env.lm.base import Completion, LanguageModel, SamplingParams, find_stop
from mrt_env.lm.scripted import ScriptedLM

if TYPE_CHECKING:
    from mrt_env.lm.hf import GenerationStats, HFLanguageModel
    from mrt_env.lm.openai_compat import OpenAICompatibleLM
    from mrt_env.lm.vllm_backend import VLLMLanguageModel

__all__ = [
    "Completion",
    "GenerationStats",
    "HFLanguageModel",
    "LanguageModel",
    "OpenAICompatibleLM",
    "SamplingParams",
    "ScriptedLM",
    "VLLMLanguageModel",
    "find_stop",
]

_LAZY = {
    "HFLanguageModel": "mrt_env.lm.hf",
    "GenerationStats": "mrt_env.lm.hf",
    "OpenAICompatibleLM": "mrt_env.lm.openai_compat",
    "VLLMLanguageModel": "mrt_env.lm.vllm_backend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrt_env.lm' has no attribute {name!r}")
