"""Shared test configuration: offline, few threads, GPU tests skipped honestly."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny test models run far faster single-threaded on a shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests, saying why, when CUDA is absent."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_lm_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``transformers serve`` on loopback serving the shipped tiny LM (session-wide).

    Serves a copy of ``mrt_env/assets/tiny-lm`` whose generation config samples (see
    ``tests.servers.serve_ready_copy``); skipped when the serving extra is missing.
    """
    from mrt_env.tinymath.loading import tiny_lm_path
    from tests.servers import serve_model, serve_ready_copy

    folder = serve_ready_copy(tiny_lm_path(), tmp_path_factory.mktemp("served") / "tiny-lm")
    with serve_model(folder) as server:
        yield server


@pytest.fixture(scope="session")
def mrt_env_server():  # type: ignore[no-untyped-def]
    """The real ``mrt-gym serve`` (tiny LM as μ, K=2, budget 64) on loopback, session-wide.

    Tests that compare against an in-process env pass reset settings (``k``, ...) no other
    test uses, so μ's J cache of their step core starts empty, as the in-process env's does.
    """
    from tests.openenv_servers import serve_env

    with serve_env("--k", "2", "--token-budget", "64", "--max-sessions", "24") as server:
        yield server
