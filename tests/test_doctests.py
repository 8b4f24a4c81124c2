"""The default run executes the docstring examples of every library package."""

from __future__ import annotations

import pytest


def test_default_run_collects_the_library_doctests(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getoption("doctestmodules")  # --doctest-modules in addopts
    assert {"rewards", "mrt_env", "agents"} <= set(pytestconfig.getini("testpaths"))
