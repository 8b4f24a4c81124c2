"""UnicodeText: contains any string up to max_length; sample() stays short and seeded."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.spaces import Text

from mrt_env.spaces import UnicodeText


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", True),  # empty string: min_length defaults to 0
        ("plain text", True),  # ordinary text
        ("∫x²—中文✓ \n\t", True),  # arbitrary Unicode, whitespace
        ("x" * 10, True),  # exactly max_length
        ("x" * 11, False),  # one character too long
        (b"bytes", False),  # bytes are not text
        (3, False),  # not a string at all
        (None, False),  # missing value
    ],
)
def test_contains(value: object, expected: bool) -> None:
    assert UnicodeText(10).contains(value) is expected


def test_is_a_gymnasium_text_space() -> None:
    assert isinstance(UnicodeText(5), Text)


def test_min_length_is_enforced() -> None:
    space = UnicodeText(10, min_length=2)
    assert "a" not in space
    assert "ab" in space


def test_sample_is_short_seeded_and_contained() -> None:
    first = UnicodeText(1000, sample_max_length=8, seed=3)
    second = UnicodeText(1000, sample_max_length=8, seed=3)
    samples = [first.sample() for _ in range(20)]
    assert samples == [second.sample() for _ in range(20)]
    assert all(s in first and len(s) <= 8 for s in samples)
    assert len(set(samples)) > 1


def test_sample_with_a_length_mask() -> None:
    space = UnicodeText(100, seed=0)
    assert len(space.sample(mask=(7, None))) == 7


def test_sample_max_length_is_capped_by_max_length() -> None:
    space = UnicodeText(3, seed=0)
    assert space.sample_max_length == 3
    assert all(len(space.sample()) <= 3 for _ in range(10))


def test_sample_max_length_below_min_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="sample_max_length"):
        UnicodeText(10, min_length=5, sample_max_length=2)


def test_equality_hash_and_repr() -> None:
    assert UnicodeText(10) == UnicodeText(10, charset="ab")
    assert UnicodeText(10) != UnicodeText(11)
    assert UnicodeText(10) != Text(10)
    assert hash(UnicodeText(10)) == hash(UnicodeText(10))
    assert repr(UnicodeText(10)) == "UnicodeText(0, 10)"


def test_not_flattenable() -> None:
    assert UnicodeText(10).is_np_flattenable is False
    assert isinstance(UnicodeText(10, seed=np.random.default_rng(0)).sample(), str)
