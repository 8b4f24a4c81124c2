"""Language-model backends: the protocol, a transformers backend and a scripted test double.

``HFLanguageModel`` (and ``GenerationStats``) are exported lazily so that importing this
package never imports torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mrt_env.lm.base import Completion, LanguageModel, SamplingParams, find_stop
from mrt_env.lm.scripted import ScriptedLM

if TYPE_CHECKING:
    from mrt_env.lm.hf import GenerationStats, HFLanguageModel

__all__ = [
    "Completion",
    "GenerationStats",
    "HFLanguageModel",
    "LanguageModel",
    "SamplingParams",
    "ScriptedLM",
    "find_stop",
]

_LAZY = {"HFLanguageModel": "mrt_env.lm.hf", "GenerationStats": "mrt_env.lm.hf"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrt_env.lm' has no attribute {name!r}")
