"""TinyMath: procedurally generated arithmetic problems and a tiny reasoning LM.

Importing this package does not import torch or transformers; they load when a model is
built, trained or loaded.

Example:
    >>> from mrt_env.tinymath import TinyMathSource
    >>> problem = TinyMathSource(split="heldout", size=1, levels=(1,), seed=0)[0]
    >>> problem.id.startswith("tinymath-L1-")
    True
"""

from mrt_env.tinymath.forced import (
    forced_cut,
)
from mrt_env.tinymath.loading import VARIANTS, load_tiny_lm, tiny_lm_path, tiny_variant
from mrt_env.tinymath.problems import (
    DEFAULT_LEVELS,
    LEVELS,
    Expression,
    TinyMathSource,
    sample_expression,
    sample_problem,
    split_of,
)
from mrt_env.tinymath.traces import (
    Trace,
    TraceRecipe,
    natural_response,
    sample_trace,
)

__all__ = [
    "DEFAULT_LEVELS",
    "LEVELS",
    "VARIANTS",
    "Expression",
    "TinyMathSource",
    "Trace",
    "TraceRecipe",
    "forced_cut",
    "load_tiny_lm",
    "natural_response",
    "sample_expression",
    "sample_problem",
    "sample_trace",
    "split_of",
    "tiny_lm_path",
    "tiny_variant",
]
