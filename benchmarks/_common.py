"""Helpers shared by the benchmark scripts (never imported by the library).

* :func:`parse_args`: a dataclass of arguments (a docstring under each field) → argparse CLI.
* :func:`bootstrap_ci`, :func:`probability_of_improvement`: re-exported from
  :mod:`mrt_env.stats` (the project's one bootstrap helper).
* :func:`run_environment`: package versions and platform, recorded with every result.
* :func:`build_segmenter`, :func:`replay_env`, :func:`policy_fingerprint`: segmenters, the
  MRTMath-v0 env that replays responses, and checkpoint fingerprints.
* :func:`read_cache`, :func:`append_cache`: finished results of a resumable run (JSONL).
* :func:`write_traces`, :func:`read_traces`: sampled responses (input of analyze_traces.py).
* :func:`curves`, :func:`regret_per_problem`, :func:`maj_curve`, :func:`mean_j_on_grid`,
  :func:`common_problems`, :func:`summarize_records`, :func:`compare_records`,
  :func:`regret_markdown`: figures over the per-problem records of ``regret.py``
  (:func:`build_records` makes them).
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

from mrt_env.stats import bootstrap_ci, probability_of_improvement

T = TypeVar("T")

__all__ = ["bootstrap_ci", "probability_of_improvement"]  # re-exported for the scripts

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


# ---------------------------------------------------------------- segmenters and checkpoints
def build_segmenter(spec: str) -> Any:
    """A segmenter from ``marker[:MIN_PARAGRAPHS]``, ``preset:NAME`` or ``paragraph``."""
    from mrt_env import segmenters

    kind, _, value = spec.partition(":")
    if kind == "marker":
        return segmenters.MarkerSegmenter(min_paragraphs=int(value or 3))
    if kind == "preset":
        return segmenters.MarkerSegmenter.preset(value)
    if kind == "paragraph":
        return segmenters.ParagraphSegmenter()
    if kind == "tokens":
        raise ValueError("tokens:N needs the policy's tokenizer; use marker or paragraph here")
    raise ValueError(f"unknown segmenter {spec!r}; use marker[:MIN], preset:NAME or paragraph")


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
    folder = Path(spec)
    if spec.startswith("tiny"):
        from mrt_env.tinymath import tiny_lm_path

        folder = tiny_lm_path(spec.partition(":")[2] or "base")
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
        handle.write("".join(json.dumps(r) + "\n" for r in records))
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
                    handle.write(json.dumps({**line, "response": sample["response"]}) + "\n")


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
# A record is one (policy, problem) of regret.py: {"problem_id", "samples": [{"curve":
# [[tokens, J], ...], "answer", "correct", "tokens", "forced": {"w": {"curve", ...}}}]}.
def curves(records: list[dict[str, Any]], w: int = 0) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per problem, per sample ``(tokens, J)`` arrays (``w`` > 0: forced traces only)."""
    out = []
    for record in records:
        traces = []
        for sample in record["samples"]:
            curve = sample["curve"] if w == 0 else sample["forced"].get(str(w), {}).get("curve")
            if curve:
                points = np.asarray(curve, dtype=float).reshape(-1, 2)
                traces.append((points[:, 0], points[:, 1]))
        if traces:
            out.append(traces)
    return out


def regret_per_problem(records: list[dict[str, Any]], budget: float, w: int = 0) -> np.ndarray:
    """Normalized regret of each problem (1 − mean area of its traces) at ``budget``."""
    from mrt_env.regret import normalized_area_per_problem

    return 1.0 - normalized_area_per_problem(curves(records, w), budget)


def maj_curve(records: list[dict[str, Any]], samples: int) -> dict[str, list[float]]:
    """maj@k for k = 1..S (per-problem means) against the mean total tokens of k responses."""
    from mrt_env.regret import maj_at_k

    accuracy, tokens = [], []
    for k in range(1, samples + 1):
        per_problem = [
            maj_at_k([s["answer"] for s in r["samples"]], [s["correct"] for s in r["samples"]], k)
            for r in records
        ]
        accuracy.append(float(np.mean(per_problem)))
        tokens.append(float(k * np.mean([s["tokens"] for r in records for s in r["samples"]])))
    return {"k": list(range(1, samples + 1)), "tokens": tokens, "accuracy": accuracy}


def mean_j_on_grid(records: list[dict[str, Any]], grid: np.ndarray, w: int = 0) -> np.ndarray:
    """Mean over traces of J at each grid token count (0 before the first read, flat after);
    ``w`` > 0: the traces forced to think ``w`` more times."""
    values = []
    for problem in curves(records, w):
        for tokens, j in problem:
            x, y = np.concatenate([[0.0], tokens]), np.concatenate([[0.0], j])
            values.append(np.interp(grid, x, y, right=y[-1]))
    return np.mean(values, axis=0) if values else np.zeros_like(grid)


def common_problems(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records of ``a`` and of ``b`` whose problems both have (paired comparisons)."""
    ids = {r["problem_id"] for r in a} & {r["problem_id"] for r in b}
    return [r for r in a if r["problem_id"] in ids], [r for r in b if r["problem_id"] in ids]


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
) -> str:
    """results.md of regret.py: one row per policy, pairwise comparisons at every budget
    (P(lower regret), token efficiency of the mean J curves), maj@k efficiency, notes."""
    extra = extrapolated
    head = ["policy", "pass@1", "tokens"]
    head += [f"regret@{b}" for b in budgets] + [f"regret@{b} (w={w})" for w, b in extra.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        cells = [name, fmt_ci(s["pass@1"]), f"{s['mean_tokens']['mean']:.1f}"]
        cells += [fmt_ci(s["normalized_regret"][str(b)]) for b in budgets]
        cells += [fmt_ci(s["normalized_regret_extrapolated"][str(b)]) for b in extra.values()]
        lines.append("| " + " | ".join(cells) + " |")
    keys = [*budgets, *extra.values()]
    labels = [budget_label(b, extra) for b in keys]
    for title, table, fmt in (
        ("P(lower regret) at budget", "probability_lower_regret", lambda v: fmt_ci(v, 2)),
        ("token efficiency of the mean J curve at budget", "token_efficiency_j", _fmt_ratio),
    ):
        lines += ["", f"| {title} | " + " | ".join(labels) + " |", "|---" * (len(keys) + 1) + "|"]
        for pair, by_budget in comparisons[table].items():
            a, b = pair.split("<") if "<" in pair else pair.split("_vs_")
            cells = [fmt(by_budget[str(k)]) for k in keys]
            lines.append(f"| {a} vs {b} | " + " | ".join(cells) + " |")
    lines += ["", "| comparison | token efficiency (maj@k, k = 1..S) |", "|---|---|"]
    for pair, eff in comparisons["token_efficiency"].items():
        a, b = pair.split("_vs_")
        lines.append(f"| {a} vs {b} | {_fmt_ratio(eff)} |")
    lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def j_token_efficiency(
    a: list[dict[str, Any]], b: list[dict[str, Any]], budget: float, w: int = 0, points: int = 257
) -> float | None:
    """How many times fewer tokens ``a``'s mean J curve needs to reach the mean J that ``b``'s
    reaches by ``budget`` (``mrt_env.regret.token_efficiency`` on the curves up to the budget;
    ``w`` > 0: the traces forced ``w`` more times). ``None`` when undefined (``a`` never gets
    there within the budget, or ``b``'s J stays 0)."""
    from mrt_env.regret import token_efficiency

    grid = np.linspace(0.0, float(budget), points)
    j_a, j_b = mean_j_on_grid(a, grid, w), mean_j_on_grid(b, grid, w)
    if j_b[-1] <= 0:
        return None
    value = token_efficiency((grid, j_a), (grid, j_b))
    return None if np.isnan(value) else float(value)


def summarize_records(
    records: list[dict[str, Any]],
    budgets: Sequence[int],
    extrapolated: dict[int, int],
    samples: int,
    episode_budget: int,
) -> dict[str, Any]:
    """Every figure of one policy (CIs over problems): pass@1, mean tokens and episodes,
    normalized regret at ``budgets`` and at the ``extrapolated`` budgets (``w -> budget``,
    from traces forced ``w`` more times), maj@k for k = 1..``samples``, and cumulative
    regret over ``episode_budget`` episodes."""
    from mrt_env.regret import pass_at_k, regret_over_episode_budget

    correct = [[s["correct"] for s in r["samples"]] for r in records]
    pass1 = [pass_at_k(len(c), sum(c), 1) for c in correct]
    regret = {str(b): bootstrap_ci(regret_per_problem(records, b)) for b in budgets}
    forced = {
        str(b): bootstrap_ci(regret_per_problem(records, b, w)) for w, b in extrapolated.items()
    }
    j_curves = [[s["j"] for s in r["samples"] if s["j"]] for r in records]
    episode_regret = regret_over_episode_budget([c for c in j_curves if c], episode_budget)
    return {
        "pass@1": bootstrap_ci(pass1),
        "mean_tokens": bootstrap_ci(
            [np.mean([s["tokens"] for s in r["samples"]]) for r in records]
        ),
        "mean_episodes": float(np.mean([s["episodes"] for r in records for s in r["samples"]])),
        "normalized_regret": regret,
        "normalized_regret_extrapolated": forced,
        "maj@k": maj_curve(records, samples),
        "regret_over_episodes": episode_regret.tolist(),
    }


def compare_records(
    policies: dict[str, list[dict[str, Any]]],
    summary: dict[str, dict[str, Any]],
    budgets: Sequence[int],
    extrapolated: dict[int, int],
) -> dict[str, Any]:
    """Pairwise, over the problems both policies have, at every budget (the extrapolated ones
    included, keyed by the budget): the probability of lower regret (``"a<b"``) and the token
    efficiency of the mean J curves (``"a_vs_b"``, :func:`j_token_efficiency`); and the token
    efficiency of the maj@k curves of ``summary`` (``"token_efficiency"``)."""
    from mrt_env.regret import token_efficiency

    keyed = [(str(b), b, 0) for b in budgets] + [(str(b), b, w) for w, b in extrapolated.items()]
    out: dict[str, Any] = {
        "probability_lower_regret": {},
        "token_efficiency_j": {},
        "token_efficiency": {},
    }
    for a, b in itertools.permutations(policies, 2):
        common = common_problems(policies[a], policies[b])
        out["probability_lower_regret"][f"{a}<{b}"] = {
            key: probability_of_improvement(
                regret_per_problem(common[0], budget, w), regret_per_problem(common[1], budget, w)
            )
            for key, budget, w in keyed
        }
        out["token_efficiency_j"][f"{a}_vs_{b}"] = {
            key: j_token_efficiency(common[0], common[1], budget, w) for key, budget, w in keyed
        }
        maj_a, maj_b = summary[a]["maj@k"], summary[b]["maj@k"]
        value = token_efficiency(
            (maj_a["tokens"], maj_a["accuracy"]), (maj_b["tokens"], maj_b["accuracy"])
        )
        out["token_efficiency"][f"{a}_vs_{b}"] = None if np.isnan(value) else value
    return out


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


def save_line_plot(path: Path, lines: Sequence[Line], xlabel: str, ylabel: str) -> None:
    """A 6x4 PNG of ``lines`` with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for line in lines:
        ax.plot(line.x, line.y, line.style, color=line.color, label=line.label)
        if line.band is not None:
            ax.fill_between(line.x, *line.band, color=line.color, alpha=line.alpha)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
