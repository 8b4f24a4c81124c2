"""The real-model tier: SmolLM2-135M-Instruct (Llama architecture, BPE, ChatML) on CPU.

Every test module here sets ``pytestmark = pytest.mark.realmodel`` (deselected by default;
``make test-real`` runs them).
``smollm2_path`` is the converted model folder (see ``tests/realmodel/smollm2.py``);
``lm_spec`` is how tests name the model to ``gym.make(lm=...)`` and the command lines, and
``real_lm`` the loaded model, one per spec and session. Add a backend by adding a parameter
to ``lm_spec`` (e.g. an ``"openai:http://..."`` spec of a server serving ``smollm2_path``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realmodel.smollm2 import FETCH_COMMAND, smollm2_folder
from tests.shared_data import DATA_DIR, require_shared_data

MATH500 = DATA_DIR / "math500.jsonl"
"""MATH-500 as JSONL (``../shared/data/math500.jsonl`` from the repository root)."""


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct folder (converted from the GGUF file once, then cached)."""
    folder = smollm2_folder()
    if folder is None:
        pytest.skip(f"SmolLM2 GGUF file not found: run `make test-real` or {FETCH_COMMAND}")
    return folder


@pytest.fixture(scope="session")
def math500() -> Path:
    """The MATH-500 JSONL file (missing: skip, or fail under ``CI=true``)."""
    return require_shared_data(MATH500)


@pytest.fixture(scope="session")
def short_math500(math500: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 4 shortest MATH-500 problems (training on CPU spends its time on prompt tokens)."""
    import json

    records = [json.loads(line) for line in math500.read_text().splitlines() if line.strip()]
    shortest = sorted(records, key=lambda r: (len(r["problem"]), r["id"]))[:4]
    path = tmp_path_factory.mktemp("math500") / "short.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in shortest))
    return path


@pytest.fixture(scope="session", params=["in-process"])
def lm_spec(request: pytest.FixtureRequest, smollm2_path: Path) -> str:
    """The real model as an ``lm`` spec string (the in-process transformers backend)."""
    return str(smollm2_path)


_LOADED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def real_lm(lm_spec: str) -> Iterator[Any]:
    """The real model built from ``lm_spec`` (loaded once per spec and session)."""
    from mrt_env.config import build_lm

    if lm_spec not in _LOADED:
        _LOADED[lm_spec] = build_lm(lm_spec, "cpu")
    lm = _LOADED[lm_spec]
    yield lm
    clear = getattr(lm, "clear_prefix_cache", None)
    if clear is not None:
        clear()


@pytest.fixture(scope="session")
def smollm2_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``transformers serve`` on loopback serving SmolLM2 (session-wide; see ``tests.servers``)."""
    from tests.servers import serve_model, serve_ready_copy

    folder = serve_ready_copy(smollm2_path, tmp_path_factory.mktemp("served") / "smollm2")
    with serve_model(folder) as server:
        yield server


@pytest.fixture(scope="session", params=["in-process", "server"])
def engine_spec(request: pytest.FixtureRequest, smollm2_path: Path) -> str:
    """SmolLM2 as an ``lm`` spec through each engine: the in-process transformers backend and
    an OpenAI-compatible completions server (``openai:URL``, a real ``transformers serve``)."""
    if request.param == "server":
        return f"openai:{request.getfixturevalue('smollm2_server').base_url}"
    return str(smollm2_path)
