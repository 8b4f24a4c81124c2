"""Helpers shared by the benchmark scripts (never imported by the library).

* :func:`parse_args`: a dataclass of arguments (a docstring under each field) → argparse CLI.
* :func:`bootstrap_ci`, :func:`probability_of_improvement`: 95% bootstrap statistics.
* :func:`run_environment`: package versions and platform, recorded with every result.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import itertools
import json
import platform
import sys
import types
import typing
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

PACKAGES = ("mrt-gym", "torch", "transformers", "gymnasium", "stable-baselines3", "numpy", "scipy")


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (CleanRL style)."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        is_doc = isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and is_doc:
            docs[node.target.id] = str(nxt.value.value).strip()  # type: ignore[attr-defined]
    return docs


def _converter(annotation: Any) -> tuple[Any, str | None]:
    """argparse ``type`` and ``nargs`` for a field annotation."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _converter(args[0])
    if origin in (tuple, list):
        return _converter(args[0])[0], "*"
    if origin is typing.Literal:
        return type(args[0]), None
    return annotation, None


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _default(cls: type, f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{cls.__name__}.{f.name} needs a default to become a CLI flag")


def parse_args(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """Build ``cls`` (a dataclass with defaults) from command-line flags ``--field-name``."""
    docs = _field_docs(cls)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=(cls.__doc__ or "").strip().splitlines()[0])
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind, nargs = _converter(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = _default(cls, f)
        if kind is bool:
            kind = _parse_bool
        choices = None
        if typing.get_origin(hints[f.name]) is typing.Literal:
            choices = list(typing.get_args(hints[f.name]))
        parser.add_argument(
            flag,
            type=kind,
            nargs=nargs if nargs else ("?" if kind is _parse_bool else None),
            const=True if kind is _parse_bool else None,
            default=default,
            choices=choices,
            help=f"{docs.get(f.name, '')} (default: {default})",
        )
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if isinstance(f.default, tuple) or typing.get_origin(hints[f.name]) is tuple:
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def settings_hash(settings: dict[str, Any], length: int = 10) -> str:
    """A short stable hash of JSON-serialisable settings (names a resumable run)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def run_environment() -> dict[str, Any]:
    """Python, platform and package versions."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), **versions}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, seed: int = 0, resamples: int = 2000
) -> dict[str, float]:
    """Mean and 95% percentile-bootstrap CI (``scipy.stats.bootstrap``) of ``values``.

    With fewer than two distinct values the interval collapses to the mean.
    """
    from scipy import stats

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
    mean = float(data.mean())
    if data.size < 2 or np.ptp(data) == 0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "n": int(data.size)}
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=0.95,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "n": int(data.size)}


def probability_of_improvement(
    lower_is_better_a: Sequence[float] | np.ndarray,
    lower_is_better_b: Sequence[float] | np.ndarray,
    seed: int = 0,
    resamples: int = 2000,
) -> dict[str, float]:
    """P(a < b) with a bootstrap CI, for paired per-problem values (lower is better).

    The point estimate is rliable's probability of improvement on paired scores:
    the mean over problems of ``1[a < b] + 0.5 * 1[a == b]``; the CI resamples problems.
    """
    a = np.asarray(lower_is_better_a, dtype=np.float64)
    b = np.asarray(lower_is_better_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    wins = (a < b).astype(np.float64) + 0.5 * (a == b)
    return bootstrap_ci(wins, seed=seed, resamples=resamples)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (write then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def fmt_ci(stat: dict[str, float], digits: int = 3) -> str:
    """``mean [low, high]`` for a markdown table."""
    return f"{stat['mean']:.{digits}f} [{stat['ci_low']:.{digits}f}, {stat['ci_high']:.{digits}f}]"
