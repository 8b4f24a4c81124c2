"""Command-line options shared by ``mrt-train`` and ``python -m agents.evaluate``.

One definition per option keeps their names, defaults and help identical in both CLIs.

Example:
    >>> backend_options(prefix_cache_size=None, max_decode_rows=16)
    {'max_decode_rows': 16}
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

Template = Annotated[
    str | None,
    typer.Option(help="tiny | r1-distill | plain | chat (default: tiny LM: tiny, else chat)"),
]
Segmenter = Annotated[
    str | None,
    typer.Option(help="marker[:MIN] | preset:NAME | paragraph (default: template's)"),
]
MaxAnswerTokens = Annotated[
    int | None, typer.Option(help="final-answer cap after </think> (default: template's)")
]
ForcedAnswerTokens = Annotated[
    int | None, typer.Option(help="forced-answer cap of μ (default: template's)")
]
MaxEpisodeTokens = Annotated[
    int | None, typer.Option(help="per-episode safety cap (default: none; reported)")
]
FinalJ = Annotated[
    str,
    typer.Option(
        "--final-j",
        help="J after a finished trajectory: prover (μ at the natural end) | outcome (0/1)",
    ),
]
Truncation = Annotated[
    str,
    typer.Option(
        help="grading of a truncated trajectory: forced_answer (policy's) | expected (μ's J)"
    ),
]
PrefixCacheSize = Annotated[int | None, typer.Option(help="HF prefix-cache entries")]
MaxDecodeRows = Annotated[int | None, typer.Option(help="HF rows per decode call")]


def backend_options(prefix_cache_size: int | None, max_decode_rows: int | None) -> dict[str, Any]:
    """The HF backend options that were set (``load_language_model``'s ``**options``)."""
    given = {"prefix_cache_size": prefix_cache_size, "max_decode_rows": max_decode_rows}
    return {name: value for name, value in given.items() if value is not None}
