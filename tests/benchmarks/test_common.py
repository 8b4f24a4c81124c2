"""The shared helpers of the benchmark scripts: CLI from a dataclass, bootstrap statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.benchmarks.scripts import load_script

common = load_script("_common")


@dataclass
class _Args:
    """Test arguments."""

    count: int = 3
    """how many"""
    names: tuple[str, ...] = ("a", "b")
    """some names"""
    flag: bool = False
    """a switch"""
    ratio: float = 0.5
    """a number"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], _Args()),  # defaults
        (["--count", "7"], _Args(count=7)),  # int conversion
        (["--names", "x", "y", "z"], _Args(names=("x", "y", "z"))),  # tuple of strings
        (["--flag"], _Args(flag=True)),  # bare boolean flag
        (["--flag", "false", "--ratio", "2"], _Args(ratio=2.0)),  # explicit boolean, float
    ],
)
def test_parse_args_builds_the_dataclass(argv: list[str], expected: _Args) -> None:
    assert common.parse_args(_Args, argv) == expected


def test_parse_args_help_shows_field_docs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        common.parse_args(_Args, ["--help"])
    assert "how many" in capsys.readouterr().out


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = np.random.default_rng(0).normal(0.3, 0.1, size=200)
    stat = common.bootstrap_ci(values)
    assert stat["ci_low"] < stat["mean"] < stat["ci_high"]
    assert stat["mean"] == pytest.approx(values.mean())
    assert stat["ci_high"] - stat["ci_low"] < 0.05  # ≈ 4 standard errors of 0.007
    assert common.bootstrap_ci([0.5, 0.5])["ci_low"] == 0.5  # constant data: no spread


def test_probability_of_improvement_counts_paired_wins_and_ties() -> None:
    a, b = [0.1, 0.2, 0.5, 0.9], [0.3, 0.2, 0.4, 1.0]
    # wins at 0, 3; tie at 1 (counts 1/2); loss at 2 -> (1 + 0.5 + 0 + 1) / 4
    assert common.probability_of_improvement(a, b)["mean"] == pytest.approx(0.625)
    with pytest.raises(ValueError, match="paired"):
        common.probability_of_improvement([0.1], [0.1, 0.2])


def test_settings_hash_is_stable_and_sensitive() -> None:
    assert common.settings_hash({"a": 1, "b": 2}) == common.settings_hash({"b": 2, "a": 1})
    assert common.settings_hash({"a": 1}) != common.settings_hash({"a": 2})
