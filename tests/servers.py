"""Real OpenAI-compatible servers for tests: ``transformers serve`` on loopback.

:func:`serve_model` starts ``transformers serve`` on ``127.0.0.1`` with a free port on any local
model folder, waits (bounded) until ``GET /v1/models`` answers and stops the server afterwards.
:func:`serve_ready_copy` writes a copy of a model folder whose ``generation_config.json`` makes the
server sample as the protocol asks: ``transformers serve`` sets ``do_sample=False`` only for
``temperature=0`` and otherwise keeps the folder's ``do_sample`` (transformers' default:
``False``, i.e. greedy at every temperature) and ``top_k`` (default 50).

Example (in a conftest)::

    @pytest.fixture(scope="session")
    def my_server(tmp_path_factory):
        folder = serve_ready_copy(MODEL_DIR, tmp_path_factory.mktemp("served"))
        with serve_model(folder) as server:
            yield server
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVING_MODULES = ("fastapi", "uvicorn", "openai")
"""Modules of ``transformers[serving]`` (and the ``server`` extra) the server tests need."""


@dataclass(frozen=True)
class Server:
    """A running server: its API root, the model it serves and its log file."""

    base_url: str
    model: str
    log: Path
    startup_seconds: float


def missing_serving_modules() -> list[str]:
    """The serving modules that are not installed."""
    return [m for m in SERVING_MODULES if importlib.util.find_spec(m) is None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_ready_copy(folder: Path, destination: Path) -> Path:
    """A copy of ``folder`` (weights linked) whose generation config samples without top-k."""
    destination.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        target = destination / item.name
        if item.suffix in (".safetensors", ".bin", ".gguf"):
            target.symlink_to(item.resolve())
        elif item.is_file() and item.name != "generation_config.json":
            shutil.copy(item, target)
    config_path = folder / "generation_config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    config.update(do_sample=True, top_k=0)
    (destination / "generation_config.json").write_text(json.dumps(config, indent=2))
    return destination


@contextmanager
def serve_model(folder: Path, *, startup_timeout: float = 180.0) -> Iterator[Server]:
    """Run ``transformers serve FOLDER`` on loopback for the duration of the block.

    Skips the calling test (with the reason) when the serving extra is missing; fails with the
    server's log when it exits or does not answer within ``startup_timeout`` seconds.
    """
    missing = missing_serving_modules()
    if missing:
        pytest.skip(
            f"transformers[serving] is not installed (missing {missing}): pip install -e '.[dev]'"
        )
    executable = Path(sys.executable).parent / "transformers"
    if not executable.exists():
        pytest.skip(f"the transformers CLI is not installed next to {sys.executable}")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="mrt-serve-")) / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    command = [str(executable), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
    start = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(process, f"{base_url}/models", log, startup_timeout, "transformers serve")
        yield Server(base_url, str(folder), log, time.monotonic() - start)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, log: Path, timeout: float, name: str
) -> None:
    """Poll ``url`` until it answers 200 (bounded by ``timeout``); fail with the log's tail
    when the server ``name`` exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"{name} did not answer within {timeout:g} s:\n{log.read_text()[-3000:]}")
