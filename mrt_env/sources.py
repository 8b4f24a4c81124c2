"""Problem sources: JSONL files, in-memory lists, Hugging Face datasets and TinyMath.

Every loader validates eagerly, so a malformed source fails when the environment is built,
with an error naming the file and line (or the list index / dataset row).

Example:
    >>> source = from_list([{"problem": "1+1?", "answer": "2"}])
    >>> len(source), source[0].id, source[0].answer
    (1, '0', '2')
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrt_env.gold_size import gold_size_error
from mrt_env.problem_filter import split_spec
from mrt_env.problems import Problem, ProblemSource
from rewards.normalize import normalize_answer
from rewards.verification import VerifierConfig

#: Integer literals longer than this cannot be read as JSON numbers (Python's int-str limit);
#: write such answers as JSON strings.
MAX_INTEGER_DIGITS = 4000
_NOT_A_NUMBER = re.compile(r"[+-]?nan", re.IGNORECASE)
_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates (not encodable)


class ProblemSourceError(ValueError):
    """A problem source is malformed (bad JSON, a missing field, no problems at all)."""


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ProblemSourceError(
            f"an integer literal with {len(literal.lstrip('-'))} digits (more than "
            f"{MAX_INTEGER_DIGITS}); write it as a JSON string"
        )
    return int(literal)


def _reject_constant(name: str) -> float:
    raise ProblemSourceError(f"{name} is not valid JSON (write numbers finite, or as text)")


def gold_answer_error(answer: str | float) -> str | None:
    """Why ``answer`` cannot be a gold answer, or ``None`` when it can.

    Rejected: non-finite numbers and ``nan`` text, empty text, unbalanced braces, NUL and
    lone-surrogate characters, text that normalises to nothing, text longer than
    ``VerifierConfig.max_gold_chars``, and text that writes a number too large to grade
    (``10^{10^{10}}``, ``100000!``: see :func:`mrt_env.gold_size.gold_size_error`). (Whether
    math-verify can parse it is decided when grading.)

    Example:
        >>> gold_answer_error(float("nan")), gold_answer_error("\\frac{1}{2")
        ('is not a finite number', 'has unbalanced braces')
        >>> gold_answer_error("\\frac{1}{2}") is None
        True
    """
    if isinstance(answer, float) and not math.isfinite(answer):
        return "is not a finite number"
    text = str(answer)
    if not text.strip():
        return "is empty"
    if len(text) > VerifierConfig.max_gold_chars:
        return f"is longer than {VerifierConfig.max_gold_chars} characters"
    if _NOT_A_NUMBER.fullmatch(text.strip()):
        return "is not a number"
    if _has_bad_characters(text):
        return "holds a NUL or lone-surrogate character"
    if not _braces_balance(text):
        return "has unbalanced braces"
    if not normalize_answer(text):
        return "has no answer left after normalisation"
    return gold_size_error(text)


def _has_bad_characters(text: str) -> bool:
    """Whether ``text`` holds NUL or a lone surrogate (JSON ``"\\ud800"``; not encodable)."""
    return _BAD_CHARACTERS.search(text) is not None


def _braces_balance(text: str) -> bool:
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


@dataclass(frozen=True)
class FieldNames:
    """Which record fields hold the problem, the answer and the id.

    Attributes:
        problem_key: Field with the problem statement.
        answer_key: Field with the gold answer (numbers are converted with ``str``).
        id_key: Field with a stable id; when a record lacks it, the row index is the id.
    """

    problem_key: str = "problem"
    answer_key: str = "answer"
    id_key: str = "id"


@dataclass(frozen=True)
class ListSource:
    """An in-memory :class:`~mrt_env.problems.ProblemSource`.

    Attributes:
        problems: The problems, in order.
        name: Where they came from (a path, ``"list"``, ``"hf:name:split"``).
    """

    problems: tuple[Problem, ...]
    name: str = "list"
    _index: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.problems:
            raise ProblemSourceError(f"{self.name}: the problem source is empty")
        object.__setattr__(self, "_index", {p.id: i for i, p in enumerate(self.problems)})

    def __len__(self) -> int:
        return len(self.problems)

    def __getitem__(self, index: int) -> Problem:
        return self.problems[index]

    def index_of(self, problem_id: str) -> int:
        """The position of the problem with id ``problem_id`` (``KeyError`` if absent)."""
        try:
            return self._index[problem_id]
        except KeyError:
            raise KeyError(f"{self.name}: no problem with id {problem_id!r}") from None


def problem_from_record(
    record: Any, where: str, default_id: str, fields: FieldNames = FieldNames()
) -> Problem:
    """Build a :class:`Problem` from a mapping, or raise :class:`ProblemSourceError`.

    Args:
        record: A mapping with (at least) the problem and answer fields, or a ``Problem``.
        where: Location used in error messages (``"data.jsonl:3"``, ``"list[2]"``).
        default_id: Id used when the record has no id field.
        fields: Field names to read.

    Returns:
        The problem; fields other than problem/answer/id go to ``metadata``.
    """
    if isinstance(record, Problem):
        return record
    if not isinstance(record, Mapping):
        raise ProblemSourceError(f"{where}: expected an object, got {type(record).__name__}")
    for key in (fields.problem_key, fields.answer_key):
        if key not in record:
            raise ProblemSourceError(f"{where}: missing field {key!r} (has {sorted(record)})")
    problem, answer = record[fields.problem_key], record[fields.answer_key]
    if not isinstance(problem, str) or not problem.strip():
        raise ProblemSourceError(f"{where}: field {fields.problem_key!r} must be non-empty text")
    if _has_bad_characters(problem):
        raise ProblemSourceError(
            f"{where}: field {fields.problem_key!r} holds a NUL or lone-surrogate character"
        )
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise ProblemSourceError(
            f"{where}: field {fields.answer_key!r} must be text or a number, "
            f"got {type(answer).__name__}"
        )
    reason = gold_answer_error(answer)
    if reason is not None:
        raise ProblemSourceError(f"{where}: field {fields.answer_key!r} {reason}: {answer!r:.80}")
    taken = {fields.problem_key, fields.answer_key, fields.id_key}
    metadata = {k: v for k, v in record.items() if k not in taken}
    return Problem(
        id=str(record.get(fields.id_key, default_id)),
        problem=problem,
        answer=str(answer),
        metadata=metadata,
    )


def _check_unique_ids(problems: Sequence[Problem], name: str) -> None:
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise ProblemSourceError(f"{name}: duplicate problem id {problem.id!r}")
        seen.add(problem.id)


def load_jsonl(path: str | Path, fields: FieldNames = FieldNames()) -> ListSource:
    """Load problems from a JSON-lines file (one object per line; blank lines skipped).

    Args:
        path: The file, e.g. ``math500.jsonl`` with ``problem``/``answer``/``id`` fields.
        fields: Field names to read (e.g. ``FieldNames(problem_key="question")``).

    Returns:
        The problems, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        ProblemSourceError: A line is not UTF-8, not a JSON object with the fields (``NaN`` and
            integer literals over :data:`MAX_INTEGER_DIGITS` digits included), holds a gold
            answer that :func:`gold_answer_error` rejects, or there is no problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"problem file not found: {path}")
    problems = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            record = _parse_line(raw, where)
            if record is not _BLANK:
                problems.append(problem_from_record(record, where, f"{path.stem}-{number}", fields))
    _check_unique_ids(problems, str(path))
    return ListSource(tuple(problems), name=str(path))


_BLANK = object()


def _parse_line(raw: bytes, where: str) -> Any:
    """One JSONL line as a JSON value (:data:`_BLANK` for a blank line), or a located error."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProblemSourceError(
            f"{where}: not UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})"
        ) from None
    if not line.strip():
        return _BLANK
    try:
        return json.loads(line, parse_int=_parse_int, parse_constant=_reject_constant)
    except ProblemSourceError as error:
        raise ProblemSourceError(f"{where}: {error}") from None
    except json.JSONDecodeError as error:
        raise ProblemSourceError(f"{where}: invalid JSON ({error.msg})") from None
    except (ValueError, RecursionError) as error:
        raise ProblemSourceError(f"{where}: invalid JSON ({error})") from None


def from_list(
    items: Iterable[Problem | Mapping[str, Any]], fields: FieldNames = FieldNames()
) -> ListSource:
    """Build a source from ``Problem`` objects and/or mappings (ids default to positions).

    Example:
        >>> from_list([Problem("a", "2+2?", "4")])[0].problem
        '2+2?'
    """
    problems = [
        problem_from_record(item, f"list[{i}]", str(i), fields) for i, item in enumerate(items)
    ]
    _check_unique_ids(problems, "list")
    return ListSource(tuple(problems), name="list")


def from_hf(name: str, split: str, fields: FieldNames = FieldNames()) -> ListSource:
    """Load a Hugging Face dataset split (needs the optional ``datasets`` package).

    Nothing is downloaded unless the datasets library is allowed to (set ``HF_DATASETS_OFFLINE``
    to use only the local cache).

    Args:
        name: Dataset name, e.g. ``"HuggingFaceH4/MATH-500"``.
        split: Split name, e.g. ``"test"``.
        fields: Field names to read.

    Raises:
        ImportError: ``datasets`` is not installed (with the install command).
    """
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as error:
        raise ImportError(
            "loading 'hf:...' problem sources needs the datasets package: "
            "pip install 'mrt-gym[datasets]' (or pip install datasets)"
        ) from error
    rows = datasets.load_dataset(name, split=split)
    label = f"hf:{name}:{split}"
    problems = [
        problem_from_record(row, f"{label}[{i}]", str(i), fields) for i, row in enumerate(rows)
    ]
    _check_unique_ids(problems, label)
    return ListSource(tuple(problems), name=label)


def _tinymath_source(spec: str) -> ProblemSource:
    """``"tinymath"`` (training split) or ``"tinymath:SPLIT"``, imported lazily."""
    _, _, split = spec.partition(":")
    split = split or "train"
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown TinyMath split {split!r}; use 'tinymath:train' or ':heldout'")
    tinymath = importlib.import_module("mrt_env.tinymath")
    source: ProblemSource = tinymath.TinyMathSource(split=split)
    return source


def resolve_source(
    spec: ProblemSource | Sequence[Problem | Mapping[str, Any]] | str | Path,
    fields: FieldNames = FieldNames(),
) -> ProblemSource:
    """Turn any accepted ``problems`` setting into a validated :class:`ProblemSource`.

    Args:
        spec: One of: a ``ProblemSource``; a list of ``Problem``/mappings; a path to a
            ``.jsonl`` file; ``"hf:NAME:SPLIT"``; ``"tinymath"`` or ``"tinymath:SPLIT"``. A
            string may end in a filter query, ``"math500.jsonl?level=1,2&sample=20"``
            (:mod:`mrt_env.problem_filter`).
        fields: Field names for JSONL files, lists and datasets.

    Returns:
        A non-empty source.

    Example:
        >>> len(resolve_source([{"problem": "1+1?", "answer": 2}]))
        1
    """
    if isinstance(spec, str) and "?" in spec:
        base, problem_filter = split_spec(spec)
        if problem_filter is not None:
            return problem_filter.apply(resolve_source(base, fields), base)
    if isinstance(spec, str) and spec.startswith("hf:"):
        parts = spec.split(":")
        if len(parts) != 3 or not all(parts[1:]):
            raise ValueError(f"expected 'hf:NAME:SPLIT', got {spec!r}")
        return from_hf(parts[1], parts[2], fields)
    if isinstance(spec, str) and (spec == "tinymath" or spec.startswith("tinymath:")):
        return _tinymath_source(spec)
    if isinstance(spec, str | Path):
        return load_jsonl(spec, fields)
    if isinstance(spec, list | tuple):
        return from_list(spec, fields)
    if isinstance(spec, ProblemSource):
        if len(spec) == 0:
            raise ProblemSourceError(f"{spec!r}: the problem source is empty")
        return spec
    raise TypeError(
        "problems must be a ProblemSource, a list of problems, a JSONL path, 'hf:NAME:SPLIT' "
        f"or 'tinymath[:SPLIT]', got {type(spec).__name__}"
    )
