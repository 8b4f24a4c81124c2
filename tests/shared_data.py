"""The shared benchmark data (``../shared/data`` next to the repository), for tests that need it.

Outside CI a missing file skips the test (saying where it looked); in CI (``CI=true``) it
fails, so a test that needs the data can never pass silently without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
"""Where the shared JSONL files live."""


def require_shared_data(path: Path = DATA_DIR) -> Path:
    """``path`` when it exists; otherwise skip the test, or fail it when ``CI=true``."""
    if path.exists():
        return path
    message = f"shared benchmark data not found at {path}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: tests that need it must not be skipped)")
    pytest.skip(message)
