"""The real ``MRTMath-v0`` OpenEnv server for tests: ``mrt-gym serve`` under uvicorn on loopback.

:func:`serve_env` starts the server in a subprocess on ``127.0.0.1`` and a free port, waits
(bounded) until ``GET /health`` answers, and stops it afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
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
from typing import Any

import pytest

from tests.servers import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class EnvServer:
    """A running server: its URL, token, log file and process."""

    base_url: str
    token: str | None
    log: Path
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, Any]:
        """The server's ``/mrt/stats`` (sessions, worker rounds, threads, RSS)."""
        request = urllib.request.Request(f"{self.base_url}/mrt/stats")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return dict(json.loads(answer.read()))

    def wait_for(self, key: str, value: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Poll ``/mrt/stats`` until ``stats[key] == value`` (bounded); the last stats."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while stats[key] != value and time.monotonic() < deadline:
            time.sleep(0.2)
            stats = self.stats()
        return stats


def skip_without_openenv() -> None:
    """Skip the calling test when the ``openenv`` extra is missing."""
    for module in ("openenv", "websockets", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the openenv extra is not installed ({module}): pip install -e '.[dev]'")


@contextmanager
def serve_env(
    *args: str, token: str | None = None, startup_timeout: float = 180.0
) -> Iterator[EnvServer]:
    """Run ``python -m mrt_env.openenv.cli serve ARGS`` on loopback for the block."""
    skip_without_openenv()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="mrt-env-serve-")) / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "mrt_env.openenv.cli", "serve", "--port", str(port), *args]
    if token is not None:
        command += ["--token", token]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = EnvServer(f"http://127.0.0.1:{port}", token, log, process)
    try:
        wait_until_ready(
            server.process,
            f"{server.base_url}/health",
            server.log,
            startup_timeout,
            "mrt-gym serve",
        )
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
