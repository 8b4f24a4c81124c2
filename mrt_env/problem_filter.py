"""Problem filters: choose problems of a set by metadata, id and a seeded sample.

Every ``problems`` setting that is a string accepts a query after ``?`` (the environment's
``problems``, and ``--problems`` of ``benchmarks/regret.py``, ``benchmarks/analyze_traces.py``,
``python -m agents.evaluate`` and ``mrt-train``), parsed here and nowhere else::

    ../shared/data/math500.jsonl?level=1,2&subject=Algebra,Prealgebra&sample=20&seed=0

Keys (joined with ``&``; values comma-separated, percent-encoded where they hold ``&``, ``,``
or ``%``, e.g. ``subject=Counting%20%26%20Probability``):

* any metadata field of the set, e.g. ``level`` and ``subject`` of MATH-500: keep problems
  whose field equals one of the values (case-insensitive); integer fields also take ranges
  (``level=1-3``);
* ``ids``: keep these problem ids;
* ``shuffle``: permute the kept problems (``shuffle`` or ``shuffle=true``), seeded by ``seed``;
* ``sample=N``: keep N problems drawn without replacement, seeded by ``seed``;
* ``seed``: seed of ``shuffle`` and ``sample`` (default 0).

Filters apply first, then the shuffle, then the sample. A filter that matches nothing, an id
that is not in the set, a field no problem has and a sample larger than what matched are
errors that say what the set holds.

Example:
    >>> from mrt_env.sources import from_list
    >>> source = from_list([{"problem": f"{i}+1?", "answer": i + 1, "level": i % 3}
    ...                     for i in range(6)])
    >>> [p.id for p in parse_filter("level=0,2").apply(source)]
    ['0', '2', '3', '5']
    >>> [p.id for p in parse_filter("level=1-2&sample=2&seed=0").apply(source)]
    ['4', '5']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import numpy as np

from mrt_env.problems import Problem, ProblemSource

_RANGE = re.compile(r"(-?\d+)-(-?\d+)")
_RESERVED = ("ids", "sample", "shuffle", "seed")
_TRUE, _FALSE = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")


class ProblemFilterError(ValueError):
    """A problem filter is malformed or selects nothing."""


@dataclass(frozen=True)
class ProblemFilter:
    """Which problems of a set to keep, and in which order.

    Attributes:
        fields: Metadata field -> accepted values (compared case-insensitively as text;
            ``"1-3"`` is a range for integer fields).
        ids: Problem ids to keep (empty: all).
        shuffle: Permute the kept problems (seeded).
        sample: Keep this many problems drawn without replacement (``None``: all).
        seed: Seed of ``shuffle`` and ``sample``.
    """

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    shuffle: bool = False
    sample: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample is not None and self.sample < 1:
            raise ProblemFilterError(f"sample must be a positive int, got {self.sample}")
        for name, values in self.fields.items():
            if not values:
                raise ProblemFilterError(f"filter {name!r} has no value")

    def query(self) -> str:
        """The filter as query text (``level=1,2&sample=20&seed=0``); parses back equal."""
        parts = [f"{n}={','.join(quote(v, safe='') for v in vs)}" for n, vs in self.fields.items()]
        if self.ids:
            parts.append("ids=" + ",".join(quote(i, safe="/") for i in self.ids))
        if self.shuffle:
            parts.append("shuffle=true")
        if self.sample is not None:
            parts.append(f"sample={self.sample}")
        if self.shuffle or self.sample is not None:
            parts.append(f"seed={self.seed}")
        return "&".join(parts)

    def apply(self, source: ProblemSource, name: str = "problems") -> ProblemSource:
        """The kept problems of ``source`` as a ``ListSource`` named ``name?query``.

        Raises:
            ProblemFilterError: nothing matches, an id or field is unknown, or the sample is
                larger than what matched.
        """
        from mrt_env.sources import ListSource

        problems = [source[i] for i in range(len(source))]
        kept = self._matching(problems, name)
        rng = np.random.default_rng(self.seed)
        if self.shuffle:
            kept = [kept[int(i)] for i in rng.permutation(len(kept))]
        if self.sample is not None:
            if self.sample > len(kept):
                raise ProblemFilterError(
                    f"{name}: sample={self.sample} but only {len(kept)} problems match "
                    f"{self.query()!r}"
                )
            kept = [kept[int(i)] for i in rng.choice(len(kept), self.sample, replace=False)]
        return ListSource(tuple(kept), name=f"{name}?{self.query()}")

    def _matching(self, problems: list[Problem], name: str) -> list[Problem]:
        kept = problems
        if self.ids:
            present = {p.id for p in problems}
            missing = [i for i in self.ids if i not in present]
            if missing:
                raise ProblemFilterError(
                    f"{name}: no problem with id {missing[0]!r} ({len(missing)} ids missing; "
                    f"ids look like {problems[0].id!r})"
                )
            wanted = set(self.ids)
            kept = [p for p in kept if p.id in wanted]
        for key, values in self.fields.items():
            if not any(key in p.metadata for p in problems):
                known = sorted({k for p in problems for k in p.metadata})
                raise ProblemFilterError(
                    f"{name}: no problem has a field {key!r}; fields: {', '.join(known) or 'none'}"
                )
            kept = [p for p in kept if _matches(p.metadata.get(key), values)]
            if not kept:
                raise ProblemFilterError(
                    f"{name}: no problem matches {self.query()!r} ({key} present: "
                    f"{_present(problems, key)})"
                )
        return kept


def _matches(value: object, accepted: Sequence[str]) -> bool:
    if value is None:
        return False
    text = str(value).casefold()
    for option in accepted:
        span = _RANGE.fullmatch(option.strip())
        if span and isinstance(value, int) and not isinstance(value, bool):
            if int(span.group(1)) <= value <= int(span.group(2)):
                return True
        elif text == option.strip().casefold():
            return True
    return False


def _present(problems: Sequence[Problem], key: str, limit: int = 12) -> str:
    values = sorted({str(p.metadata[key]) for p in problems if key in p.metadata})
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def parse_filter(query: str) -> ProblemFilter:
    """A :class:`ProblemFilter` from query text (the part of a spec after ``?``).

    Example:
        >>> parse_filter("subject=Counting%20%26%20Probability&level=1-2").fields
        {'subject': ('Counting & Probability',), 'level': ('1-2',)}
    """
    fields: dict[str, tuple[str, ...]] = {}
    ids: tuple[str, ...] = ()
    shuffle, sample, seed = False, None, 0
    for part in filter(None, query.split("&")):
        key, _, raw = part.partition("=")
        key = unquote(key).strip()
        values = tuple(unquote(v) for v in raw.split(",") if v.strip())
        if key == "ids":
            ids = values
        elif key == "shuffle":
            shuffle = _parse_bool(raw.strip().lower())
        elif key in ("sample", "seed"):
            number = _parse_int(key, raw)
            sample, seed = (number, seed) if key == "sample" else (sample, number)
        elif not key or key in fields:
            raise ProblemFilterError(f"bad or repeated filter key {key!r} in {query!r}")
        else:
            fields[key] = values
        if key != "shuffle" and not values:
            raise ProblemFilterError(f"filter {key!r} has no value in {query!r}")
    return ProblemFilter(fields, ids, shuffle, sample, seed)


def _parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ProblemFilterError(f"shuffle takes true or false, got {text!r}")


def _parse_int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProblemFilterError(f"{key} must be an int, got {text!r}") from None


def split_spec(spec: str) -> tuple[str, ProblemFilter | None]:
    """``"SET?QUERY"`` -> ``("SET", filter)``; a spec without ``?`` has no filter.

    Example:
        >>> split_spec("math500.jsonl?level=1")[1].fields
        {'level': ('1',)}
        >>> split_spec("tinymath:heldout")
        ('tinymath:heldout', None)
    """
    base, mark, query = spec.partition("?")
    if not mark:
        return spec, None
    if not query.strip():
        raise ProblemFilterError(f"{spec!r}: nothing after '?' (e.g. '?level=1,2')")
    return base, parse_filter(query)
