"""The graded world's targets: the pass@1 band and the J* checks, against hand computations."""

from __future__ import annotations

import math

import pytest

from mrt_env.tinymath.targets import GRADED_SHARE, j_checks, pass_band, pass_checks


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out from its formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(227, 500), (140, 500), (3, 60), (0, 40), (500, 500)])
def test_pass_band_is_the_wilson_interval(k: int, n: int) -> None:
    low, high = pass_band(k / n, n)
    expected = _wilson(k, n)
    assert low == pytest.approx(expected[0], abs=1e-9) and high == pytest.approx(
        expected[1], abs=1e-9
    )


def test_pass_band_of_the_base_is_about_its_binomial_half_width() -> None:
    low, high = pass_band(0.454, 500)
    normal = 1.96 * math.sqrt(0.454 * 0.546 / 500)  # 0.0436
    assert (high - low) / 2 == pytest.approx(normal, abs=0.002)


def test_pass_band_rejects_a_share_that_no_count_of_problems_gives() -> None:
    with pytest.raises(ValueError, match="not a share"):
        pass_band(0.4541, 500)
    with pytest.raises(ValueError, match="not a share"):
        pass_band(0.5, 0)


def test_pass_checks_pass_inside_the_band_and_fail_outside() -> None:
    base = {"greedy": 0.454, "sampled": 0.28}
    low, high = _wilson(227, 500)
    inside = {"greedy": math.ceil(low * 500) / 500, "sampled": 0.3}
    outside = {"greedy": math.floor(low * 500) / 500, "sampled": 0.394}
    assert [c.passed for c in pass_checks(inside, base, 500)] == [True, True]
    assert [c.passed for c in pass_checks(outside, base, 500)] == [False, False]
    line = pass_checks({"greedy": 0.68}, base, 500)[0].line()
    assert (
        line.startswith("FAIL  greedy pass@1 in the base's band: 0.680") and f"{high:.3f}" in line
    )
    ends = pass_band(0.454, 500)
    assert all(pass_checks({"greedy": end}, base, 500)[0].passed for end in ends)  # inclusive


@pytest.mark.parametrize(
    ("share", "curve", "expected"),
    [
        (0.271, [0.006, 0.184, 0.280, 0.295, 0.294], (True, True)),  # -0.001: not a fall
        (GRADED_SHARE, [0.0, 0.2], (True, True)),  # exactly the target share
        (0.249, [0.0, 0.2], (False, True)),
        (0.3, [0.2, 0.2, 0.3], (True, False)),  # flat first step
        (0.3, [0.0, 0.5, 0.45, 0.5], (True, False)),  # a fall of 0.05
        (0.3, [0.1, 0.3, 0.29, 0.281], (True, True)),  # falls of 0.01 and 0.009
        (0.3, [0.0], (True, False)),  # no episode: nothing rises
    ],
)
def test_j_checks(share: float, curve: list[float], expected: tuple[bool, bool]) -> None:
    assert tuple(c.passed for c in j_checks(share, curve)) == expected
