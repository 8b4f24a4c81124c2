"""Helpers shared by the benchmark scripts (never imported by the library).

* :func:`parse_args`: a dataclass of arguments (a docstring under each field) → argparse CLI.
* :func:`bootstrap_ci`, :func:`probability_of_improvement`: re-exported from
  :mod:`mrt_env.stats` (the project's one bootstrap helper).
* :func:`run_environment`: package versions and platform, recorded with every result.
* :func:`build_segmenter`, :func:`replay_env`, :func:`policy_fingerprint`: segmenters, the
  MRTMath-v0 env that replays responses, and checkpoint fingerprints.
* :func:`read_cache`, :func:`append_cache`: finished results of a resumable run (JSONL).
* :func:`write_traces`, :func:`read_traces`: sampled responses (input of analyze_traces.py).
* :func:`build_records`, :func:`regret_markdown`: the per-problem records of ``regret.py`` and
  its results.md; the figures over them (:func:`summarize_records`, :func:`compare_records`,
  ...) are re-exported from :mod:`mrt_env.regret_tables`.
* :class:`Line`, :func:`save_line_plot`: a PNG of lines with optional CI bands.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import itertools
import json
import os
import platform
import sys
import types
import typing
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mrt_env.regret_tables import (
    common_problems,
    compare_records,
    curves,
    j_token_efficiency,
    maj_curve,
    mean_j_on_grid,
    regret_per_problem,
    summarize_records,
)
from mrt_env.stats import bootstrap_ci, probability_of_improvement, strict_json

T = TypeVar("T")

__all__ = [  # re-exported for the scripts from the library
    "bootstrap_ci",
    "common_problems",
    "compare_records",
    "curves",
    "j_token_efficiency",
    "maj_curve",
    "mean_j_on_grid",
    "probability_of_improvement",
    "regret_per_problem",
    "summarize_records",
]

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
    """Build ``cls`` (a dataclass with defaults) from command-line flags ``--field-name``.

    A tuple field takes several values after its flag; one whose default is empty may also be
    repeated, each flag adding its values (``--lm-option a=1 --lm-option b=2``)."""
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
        repeated = nargs is not None and default == ()
        parser.add_argument(
            flag,
            type=kind,
            nargs=nargs if nargs else ("?" if kind is _parse_bool else None),
            const=True if kind is _parse_bool else None,
            default=[] if repeated else default,
            choices=choices,
            action="extend" if repeated else None,
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
    """Python, platform, package versions and the machine's load when the run started."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": machine_load(),
        **versions,
    }


def machine_load() -> dict[str, float]:
    """Load averages over 1, 5 and 15 minutes and the CPU count, to print beside a timing.

    A timing taken at a load well above the CPU count measures the machine's contention as
    much as the code; every performance script prints this before and after measuring.
    """
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen, "cpus": float(os.cpu_count() or 1)}


def fmt_load(load: dict[str, float] | None = None) -> str:
    """``load 3.52 / 2 cores (5-min 3.10)``: the machine's load in one phrase."""
    load = load or machine_load()
    return f"load {load['1min']:.2f} / {load['cpus']:.0f} cores (5-min {load['5min']:.2f})"


def fmt_spread(values: Sequence[float], digits: int = 2, scale: float = 1.0) -> str:
    """``median [min, max] (n = N)`` of repeated measurements.

    Example:
        >>> fmt_spread([1.2, 1.4, 1.3])
        '1.30 [1.20, 1.40] (n = 3)'
    """
    array = np.asarray(values, dtype=np.float64) * scale
    if array.size == 0:
        return "n/a (no repeats)"
    median, low, high = np.median(array), array.min(), array.max()
    return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}] (n = {array.size})"


def model_options(args: Any, specs: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(transformers backend options, --lm-option options)`` of the models a script loads:
    ``args.prefix_cache_size`` / ``args.max_decode_rows`` when set, and ``args.lm_option``'s
    ``KEY=VALUE`` entries (``mrt_env.lm_options.parse_lm_options``). Stops (``SystemExit``)
    when an entry is malformed or names an option that the server or vLLM backend of one of
    ``specs`` does not take (the transformers backend checks its own when the model loads)."""
    from mrt_env.lm_options import check_lm_options, parse_lm_options

    backend = {
        name: getattr(args, name)
        for name in ("prefix_cache_size", "max_decode_rows")
        if getattr(args, name) is not None
    }
    try:
        given = parse_lm_options(args.lm_option)
        for spec in specs:
            check_lm_options(spec, given)
    except (ValueError, TypeError) as error:
        raise SystemExit(f"--lm-option: {error}") from None
    return backend, given


def load_model(spec: str, device: str, args: Any) -> Any:
    """``agents.session.load_language_model`` with :func:`model_options`; an option the
    backend does not take stops the script, naming it."""
    from agents.session import load_language_model

    backend, given = model_options(args, [spec])
    try:
        return load_language_model(spec, device, **backend, **given)
    except TypeError as error:  # an --lm-option the transformers backend does not take
        if not given:
            raise
        raise SystemExit(f"--lm-option: {error}") from None


def check_budgets(lm: Any, problems: Sequence[Any], args: Any) -> None:
    """Stop before any sampling or replay when a regret budget C0 (``args.budgets``) is not
    above a prompt: C0 counts the prompt (rendered with ``args.template``), while the env's
    ``--token-budget`` counts response tokens only."""
    from mrt_env.regret import check_budgets_above_prompts
    from mrt_env.templates import resolve_template

    template = resolve_template(args.template, lm)
    prompts = {p.id: lm.count_tokens(template.render_prompt(p.problem)) for p in problems}
    try:
        check_budgets_above_prompts(args.budgets, prompts)
    except ValueError as error:
        raise SystemExit(f"--budgets: {error}") from None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, strict JSON atomically (write then rename): NaN and
    infinities become ``null`` (:func:`mrt_env.stats.strict_json`)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(strict_json(data, _json_default), indent=2, allow_nan=False)
    tmp.write_text(text + "\n")
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


# ---------------------------------------------------------------- segmenters and checkpoints
def build_segmenter(spec: str) -> Any:
    """A segmenter from ``marker[:MIN_PARAGRAPHS]``, ``preset:NAME``, ``paragraph`` or
    ``fallback[:MIN_TOKENS]``; ``""`` is ``None``: the env's default for the template."""
    from mrt_env.segmenters import segmenter_from_spec

    return segmenter_from_spec(spec) if spec else None


def replay_env(
    args: Any,
    lm: Any,
    problems: list[Any],
    token_budget: int,
    max_episodes: int,
    prover: Any = None,
) -> Any:
    """An MRTMath-v0 env whose replays read J after every episode; its meta-prover is
    ``prover``, or (``None``) a sampled one on ``lm``. ``args`` has ``template``, ``k``,
    ``max_answer_tokens``, ``prover_temperature`` and ``segmenter`` (a spec)."""
    from mrt_env.env import MRTMathEnv

    return MRTMathEnv(
        problems=problems,
        lm=lm,
        prover=prover,
        template=args.template,
        k=args.k,
        max_answer_tokens=args.max_answer_tokens,
        prover_temperature=args.prover_temperature,
        token_budget=token_budget,
        max_episodes=max_episodes,
        segmenter=build_segmenter(args.segmenter),
    )


def policy_fingerprint(spec: str) -> str:
    """Identifies a checkpoint's weights, so cached results of other weights are not reused:
    sha256 of small weight files, size and mtime of large ones, the spec for hub ids."""
    from mrt_env.tinymath import tiny_lm_path, tiny_variant

    variant = tiny_variant(spec)
    folder = Path(spec) if variant is None else tiny_lm_path(variant)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return spec
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        if stat.st_size <= 64 * 2**20:
            digest.update(file.read_bytes())
        else:
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- resumable results
def read_cache(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished ``(policy, problem id) -> record``; a torn last line is ignored."""
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[(record["policy"], record["problem_id"])] = record
    return done


def append_cache(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records as JSON lines in one write, then flush to disk."""
    with path.open("a") as handle:
        handle.write("".join(json.dumps(strict_json(r), allow_nan=False) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------- trace files
def write_traces(policies: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The sampled responses of ``regret.py`` records as JSONL (policy, problem_id, sample,
    response), the input of :func:`read_traces`."""
    with path.open("w") as handle:
        for name, records in policies.items():
            for record in records:
                for i, sample in enumerate(record["samples"]):
                    line = {"policy": name, "problem_id": record["problem_id"], "sample": i}
                    record = {**line, "response": sample["response"]}
                    handle.write(json.dumps(record, allow_nan=False) + "\n")


def read_traces(path: Path, limit: int = 0) -> list[dict[str, Any]]:
    """Records with ``problem_id`` and ``response`` (at most ``limit``, 0: all); errors name
    the line."""
    if not path.is_file():
        raise SystemExit(f"no traces file at {path}")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path}:{number}: not JSON ({error})") from None
        if not isinstance(record.get("response"), str) or "problem_id" not in record:
            raise SystemExit(f"{path}:{number}: needs 'problem_id' and a string 'response'")
        records.append(record)
        if limit and len(records) >= limit:
            break
    if not records:
        raise SystemExit(f"{path}: no traces")
    return records


# ---------------------------------------------------------------- figures over regret records
def build_records(
    lm: Any,
    problems: list[Any],
    indices: list[int],
    jobs: list[tuple[int, int]],
    texts: list[list[str]],
    replays: list[tuple[int, int]],
    trajectories: list[Any],
    verifications: list[Any],
) -> list[dict[str, Any]]:
    """One record per problem of a chunk: its samples (``jobs[j] = (problem, sample)``), each
    with the natural response's J curve, grade and tokens and, under ``forced``, the curves of
    its budget-forced versions. ``texts[j][w]`` is job ``j``'s response after ``w``
    extensions, ``replays[t] = (j, w)`` the response ``trajectories[t]`` replayed and
    ``verifications[j]`` the grade of job ``j``'s natural response."""
    records = [
        {"problem_id": p.id, "problem_index": i, "samples": []}
        for p, i in zip(problems, indices, strict=True)
    ]
    by_job: dict[int, dict[str, Any]] = {}
    for (j, w), trajectory in zip(replays, trajectories, strict=True):
        sample = by_job.setdefault(j, {"forced": {}})
        entry = {
            "curve": [list(point) for point in trajectory.curve],
            "episodes": len(trajectory.episodes),
        }
        if w == 0:
            verification = verifications[j]
            sample.update(
                response=texts[j][0],
                tokens=lm.count_tokens(texts[j][0]),
                correct=bool(verification.correct),
                answer=_answer_key(verification),
                j=[v for v in trajectory.j if v is not None],
                **entry,
            )
        else:
            sample["forced"][str(w)] = {"tokens": lm.count_tokens(texts[j][w]), **entry}
    for j, (p, _) in enumerate(jobs):
        records[p]["samples"].append(by_job[j])
    return records


def _answer_key(verification: Any) -> str | None:
    """The vote key of an answer for maj@k (normalized answer and its correctness)."""
    from rewards.normalize import normalize_answer

    if verification.answer is None:
        return None
    return f"{normalize_answer(verification.answer)}|{int(verification.correct)}"


def budget_label(budget: int, extrapolated: dict[int, int]) -> str:
    """``"256"``, or ``"768 (w=8)"`` for an extrapolated budget."""
    forced = {b: w for w, b in extrapolated.items()}
    return f"{budget} (w={forced[budget]})" if budget in forced else str(budget)


def regret_markdown(
    summary: dict[str, Any],
    comparisons: dict[str, Any],
    budgets: Sequence[int],
    extrapolated: dict[int, int],
    notes: list[str],
    degenerate: dict[str, list[str]] | None = None,
) -> str:
    """results.md of regret.py: the degenerate-run flags (if any), one row per policy,
    pairwise comparisons at every budget (P(lower regret), token efficiency of the mean J
    curves), maj@k efficiency, notes. A table without rows (one policy: no pairs) is left
    out."""
    from mrt_env.diagnostics import degenerate_markdown

    extra = extrapolated
    head = ["policy", "pass@1", "tokens", "episodes/response", "one-episode share"]
    head += [f"regret@{b}" for b in budgets] + [f"regret@{b} (w={w})" for w, b in extra.items()]
    lines = degenerate_markdown(degenerate or {})
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        cells = [name, fmt_ci(s["pass@1"]), f"{s['mean_tokens']['mean']:.1f}"]
        cells += [
            _fmt_share(s.get("mean_episodes"), ".2f"),
            _fmt_share(s.get("single_episode_share")),
        ]
        cells += [fmt_ci(s["normalized_regret"][str(b)]) for b in budgets]
        cells += [fmt_ci(s["normalized_regret_extrapolated"][str(b)]) for b in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    keys = [*budgets, *extra.values()]
    labels = [budget_label(b, extra) for b in keys]
    for title, table, fmt in (
        ("P(lower regret) at budget", "probability_lower_regret", lambda v: fmt_ci(v, 2)),
        ("token efficiency of the mean J curve at budget", "token_efficiency_j", _fmt_ratio),
    ):
        if not comparisons[table]:
            continue
        lines += ["", f"| {title} | " + " | ".join(labels) + " |", "|---" * (len(keys) + 1) + "|"]
        for pair, by_budget in comparisons[table].items():
            a, b = pair.split("<") if "<" in pair else pair.split("_vs_")
            cells = [fmt(by_budget[str(k)]) for k in keys]
            lines.append(f"| {a} vs {b} | " + " | ".join(cells) + " |")
    if comparisons["token_efficiency"]:
        lines += ["", "| comparison | token efficiency (maj@k, k = 1..S) |", "|---|---|"]
    for pair, eff in comparisons["token_efficiency"].items():
        a, b = pair.split("_vs_")
        lines.append(f"| {a} vs {b} | {_fmt_ratio(eff)} |")
    lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _fmt_share(value: float | None, spec: str = ".0%") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


# ---------------------------------------------------------------- plots
@dataclasses.dataclass(frozen=True)
class Line:
    """One line of :func:`save_line_plot`."""

    x: Sequence[float] | np.ndarray
    """x values"""
    y: Sequence[float] | np.ndarray
    """y values"""
    label: str | None = None
    """legend entry (None: none)"""
    style: str = "-"
    """matplotlib format string"""
    color: str | None = None
    """matplotlib color (None: the next of the cycle)"""
    band: tuple[Sequence[float], Sequence[float]] | None = None
    """``(low, high)`` filled around the line (a CI)"""
    alpha: float = 0.12
    """opacity of the band"""


def has_data(lines: Sequence[Line]) -> bool:
    """Whether any line has a finite point."""
    return any(np.isfinite(np.asarray(line.y, dtype=float)).any() for line in lines if len(line.y))


def plot_title(run: str, problems: str, count: int, names: Sequence[str]) -> str:
    """``run · problems (N problems)`` over ``policies: a, b``, for a plot title."""
    return f"{run} · {problems} ({count} problems)\npolicies: {', '.join(names)}"


def save_line_plot(
    path: Path,
    lines: Sequence[Line],
    xlabel: str,
    ylabel: str,
    title: str = "",
    ylim: tuple[float, float] | None = (0.0, 1.0),
) -> None:
    """A 6x4 PNG of ``lines`` with a legend and ``title``, on fixed y limits ``ylim`` (J,
    accuracy and regret live in [0, 1]; a flat line at 0 is not auto-scaled into noise).
    Without a finite point the panel says "no data" instead of staying empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for line in lines:
        ax.plot(line.x, line.y, line.style, color=line.color, label=line.label)
        if line.band is not None:
            ax.fill_between(line.x, *line.band, color=line.color, alpha=line.alpha)
    if not has_data(lines):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    elif any(line.label for line in lines):
        ax.legend(fontsize=8)
    if ylim is not None:
        margin = 0.02 * (ylim[1] - ylim[0])
        ax.set_ylim(ylim[0] - margin, ylim[1] + margin)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
