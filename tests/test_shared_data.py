"""Tests that need ../shared/data skip without it, except in CI, where they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import require_shared_data


def test_missing_shared_data_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.jsonl"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared_data(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not found"):
        require_shared_data(missing)
    assert require_shared_data(tmp_path) == tmp_path


def test_every_test_reaches_the_shared_data_through_require_shared_data() -> None:
    """No test builds its own path to ``../shared/data`` (and skips on it under CI=true)."""
    tests = Path(__file__).resolve().parent
    own_paths = [
        str(path.relative_to(tests))
        for path in tests.rglob("*.py")
        if path.name not in ("shared_data.py", "test_shared_data.py")
        and any(
            marker in path.read_text(encoding="utf-8")
            for marker in ('"shared" / "data"', "'shared' / 'data'", '"../shared/data')
        )
    ]
    assert own_paths == [], "use tests.shared_data.DATA_DIR and require_shared_data"
