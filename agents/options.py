"""Command-line options shared by ``mrt-train`` and ``python -m agents.evaluate``.

One definition per option keeps their names, defaults and help identical in both CLIs.

Example:
    >>> backend_options(prefix_cache_size=None, max_decode_rows=16)
    {'max_decode_rows': 16}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

import typer

Template = Annotated[
    str | None,
    typer.Option(
        help="tiny | tiny-explain | r1-distill | plain | chat (default: the one the model "
        "declares, else tiny for a tiny LM and chat for others)"
    ),
]
Segmenter = Annotated[
    str | None,
    typer.Option(help="marker[:MIN] | preset:NAME | paragraph (default: template's)"),
]
AnswerPattern = Annotated[
    list[str] | None,
    typer.Option(
        help="regex (first group = answer) reading a reply without \\boxed{}; repeatable; "
        "'none': boxed only (default: template's: 'the answer is X' for chat models without "
        "thinking tags)"
    ),
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


def clean_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Report bad settings (exit 2) and refused runs (exit 1) as one message, no traceback."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        from safetensors import SafetensorError

        from agents.checkpoint import CheckpointError
        from agents.run_folder import RunFolderError
        from agents.trainer import NonFiniteError

        try:
            command(*args, **kwargs)
        except (ValueError, KeyError, FileNotFoundError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            typer.echo(f"Error: {message}", err=True)
            raise typer.Exit(2) from None
        except (CheckpointError, RunFolderError, NonFiniteError) as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(1) from None
        except (OSError, SafetensorError) as error:  # a full or read-only disk, a lost mount
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(1) from None

    return wrapped


def check_k(k: int) -> None:
    """``--k`` (K, forced answers per J) must be >= 1; the error names the flag."""
    if k < 1:
        raise typer.BadParameter(f"--k must be >= 1 (forced answers per J), got {k}")


def answer_patterns(values: list[str] | None) -> tuple[str, ...] | None:
    """``--answer-pattern`` values as ``EnvConfig.answer_patterns``: ``None`` (the template's
    default) when absent, ``()`` for ``none``, else the regexes."""
    if not values:
        return None
    if values == ["none"]:
        return ()
    from mrt_env.answer_patterns import check_answer_patterns

    try:
        return check_answer_patterns(values)
    except ValueError as error:
        raise typer.BadParameter(f"--answer-pattern: {error}") from error
