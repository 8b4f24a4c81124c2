"""Labels for a learned μ: binomial observations of the sampled μ on a policy's own prefixes.

Every sampled J estimate is ``num_correct`` of ``num_samples`` forced answers verified
correct for one (problem, prompt, prefix). :func:`collect_labels` samples responses of a
policy, cuts each at every episode boundary (the empty thinking, each episode, and the natural
end of a response that ended thinking) and asks a :class:`~mrt_env.prover.sampled.SampledMetaProver`
for J there, appending one JSON line per prefix to ``labels.jsonl`` (policy id and seeds
included). Work is done a chunk of problems at a time and each chunk's rows are flushed
together, so an interrupted run resumes where it stopped. :func:`read_labels` validates a file
and names the file and line of a bad row.

Example:
    >>> row = LabelRow("p", "P\\n", "2", "", 3, 8)
    >>> row.j
    0.375
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LABELS_FILE = "labels.jsonl"


@dataclass(frozen=True)
class LabelRow:
    """One binomial observation of J (a row of ``labels.jsonl``)."""

    problem_id: str
    prompt: str
    gold: str
    prefix: str
    num_correct: int
    num_samples: int
    answer_tokens: float = 0.0
    episode_index: int = 0
    response_index: int = 0
    policy: str = ""
    seed: int = 0

    @property
    def j(self) -> float:
        """The sampled estimate ``num_correct / num_samples``."""
        return self.num_correct / self.num_samples


class LabelError(ValueError):
    """A labels file with a bad row (the message names the file and line)."""


_REQUIRED = ("problem_id", "prompt", "gold", "prefix", "num_correct", "num_samples")


def parse_row(text: str, where: str) -> LabelRow:
    """One validated row; ``where`` (``file:line``) goes into every error message."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise LabelError(f"{where}: not a JSON object ({error.msg})") from error
    if not isinstance(record, dict):
        raise LabelError(f"{where}: not a JSON object")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise LabelError(f"{where}: missing {', '.join(missing)}")
    k, correct = record["num_samples"], record["num_correct"]
    for name, value in (("num_samples", k), ("num_correct", correct)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise LabelError(f"{where}: {name} must be an integer, got {value!r}")
    if k < 1:
        raise LabelError(f"{where}: num_samples (K) must be >= 1, got {k}")
    if not 0 <= correct <= k:
        raise LabelError(f"{where}: num_correct must be in [0, num_samples={k}], got {correct}")
    for name in ("problem_id", "prompt", "gold", "prefix"):
        if not isinstance(record[name], str):
            raise LabelError(f"{where}: {name} must be a string, got {record[name]!r}")
    known = {key: record[key] for key in LabelRow.__dataclass_fields__ if key in record}
    try:
        return LabelRow(**known)
    except TypeError as error:
        raise LabelError(f"{where}: {error}") from error


def iter_label_files(path: str | Path) -> list[Path]:
    """``path`` itself if a file, else the ``*.jsonl`` files of the folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no labels at {path} (a .jsonl file or a folder of them)")
    return files


def read_labels(path: str | Path) -> list[LabelRow]:
    """Every row of a labels file or folder, validated (blank lines are skipped).

    Raises:
        LabelError: For a malformed row, ``num_samples < 1`` or ``num_correct`` outside
            ``[0, num_samples]``, naming the file and line.
    """
    rows = []
    for file in iter_label_files(path):
        with file.open() as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    rows.append(parse_row(line, f"{file}:{number}"))
    if not rows:
        raise LabelError(f"{path}: no label rows")
    return rows


def labels_hash(rows: Sequence[LabelRow]) -> str:
    """SHA-256 of the rows' content (order-independent), for the learned μ's card."""
    digest = hashlib.sha256()
    for line in sorted(json.dumps(asdict(r), sort_keys=True) for r in rows):
        digest.update(line.encode())
    return digest.hexdigest()


def response_prefixes(response: str, template: Any, segmenter: Any) -> list[str]:
    """Prefixes at every episode boundary: ``""``, each episode, then the natural end.

    The natural end (the whole response; μ reads it up to ``end_think``) is included only
    when the response ended thinking.
    """
    from mrt_env.segmenters import thinking_part

    thinking, rest = thinking_part(response, template.end_think)
    ended = bool(rest)
    prefixes, prefix = [""], ""
    for episode in segmenter.split(thinking):
        prefix += episode
        prefixes.append(prefix)
    if ended:
        prefixes.append(response)
    return prefixes


def _done_problems(path: Path, policy: str, k: int) -> set[str]:
    """Problem ids already in ``path``; drops a torn last line; refuses other settings."""
    if not path.is_file():
        return set()
    text = path.read_text()
    if text and not text.endswith("\n"):  # a crash mid-write: drop the torn line
        text = text[: text.rfind("\n") + 1]
        path.write_text(text)
    done = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_row(line, f"{path}:{number}")
        if row.policy != policy or row.num_samples != k:
            raise LabelError(
                f"{path}:{number}: rows of policy {row.policy!r} with K={row.num_samples}; this "
                f"run collects policy {policy!r} with K={k} (use another --out)"
            )
        done.add(row.problem_id)
    return done


def collect_labels(
    policy_lm: Any,
    problems: Sequence[Any],
    out: str | Path,
    *,
    policy_id: str,
    k: int = 8,
    responses_per_problem: int = 2,
    max_tokens: int = 256,
    temperature: float = 1.0,
    seed: int = 0,
    chunk_size: int = 16,
    template: Any = None,
    progress: bool = True,
) -> Path:
    """Sample responses of ``policy_lm`` and label every prefix with K forced answers.

    Appends to ``out/labels.jsonl``; problems already there are skipped (resume). The policy
    is also μ's model (the paper's μ). Seeds: response ``r`` of problem ``i`` uses
    ``seed * 1_000_003 + 2 * (i * responses_per_problem + r)``, the K forced answers at its
    episode boundary ``e`` use that plus ``1 + 4_000_037 * e`` (modulo 2^31 - 1), so two runs
    with one seed agree.
    """
    from tqdm.auto import tqdm

    from mrt_env.config import default_segmenter
    from mrt_env.lm.base import SamplingParams
    from mrt_env.prover.base import ProverRequest
    from mrt_env.prover.sampled import SampledMetaProver
    from mrt_env.templates import resolve_template

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LABELS_FILE
    done = _done_problems(path, policy_id, k)
    template = resolve_template(template, policy_lm)
    segmenter = default_segmenter(template, policy_lm)  # fallback episodes for chat models
    prover = SampledMetaProver(policy_lm, template, k=k, cache_size=0)
    params = SamplingParams(max_new_tokens=max_tokens, temperature=temperature)
    todo = [(i, p) for i, p in enumerate(problems) if p.id not in done]
    bar = tqdm(
        total=len(problems),
        initial=len(problems) - len(todo),
        disable=not progress,
        desc="labels",
        unit="problem",
    )
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        rows = _label_chunk(
            policy_lm,
            prover,
            template,
            segmenter,
            chunk,
            params,
            responses_per_problem,
            seed,
            policy_id,
            ProverRequest,
        )
        with path.open("a") as handle:
            handle.writelines(json.dumps(asdict(row)) + "\n" for row in rows)
            handle.flush()
            os.fsync(handle.fileno())
        bar.update(len(chunk))
    bar.close()
    return path


def _label_chunk(
    lm: Any,
    prover: Any,
    template: Any,
    segmenter: Any,
    chunk: list[tuple[int, Any]],
    params: Any,
    n: int,
    seed: int,
    policy_id: str,
    request_type: Any,
) -> list[LabelRow]:
    prompts, seeds, owners = [], [], []
    for index, problem in chunk:
        for r in range(n):
            prompts.append(template.render_prompt(problem.problem))
            seeds.append(seed * 1_000_003 + 2 * (index * n + r))
            owners.append((problem, r))
    outputs = lm.generate(prompts, params, seeds=seeds)
    requests, meta = [], []
    for prompt, base_seed, (problem, r), group in zip(prompts, seeds, owners, outputs, strict=True):
        for e, prefix in enumerate(response_prefixes(group[0].text, template, segmenter)):
            request_seed = (base_seed + 1 + 4_000_037 * e) % (2**31 - 1)
            requests.append(request_type(problem.id, prompt, problem.answer, prefix, request_seed))
            meta.append((e, r, request_seed))
    estimates = prover.estimate(requests)
    return [
        LabelRow(
            q.problem_id,
            q.prompt,
            q.gold,
            q.prefix,
            est.num_correct,
            est.num_samples,
            est.answer_tokens,
            e,
            r,
            policy_id,
            s,
        )
        for q, est, (e, r, s) in zip(requests, estimates, meta, strict=True)
    ]


def by_problem(rows: Sequence[LabelRow]) -> Iterator[tuple[str, list[LabelRow]]]:
    """Rows grouped by problem id, in first-seen order."""
    groups: dict[str, list[LabelRow]] = {}
    for row in rows:
        groups.setdefault(row.problem_id, []).append(row)
    yield from groups.items()
