"""mrt_env.regret_tables: its examples run (behaviour is tested through benchmarks/_common)."""

from __future__ import annotations

import doctest

from mrt_env import regret_tables


def test_docstring_examples_run() -> None:
    result = doctest.testmod(regret_tables)
    assert result.attempted > 0 and result.failed == 0
