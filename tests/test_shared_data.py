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
