"""Scripted TinyMath episodes: values computed by hand, nothing but arithmetic evaluated."""

from __future__ import annotations

import pytest

from mrt_env.tinymath.scripted import expression_value, scripted_episodes


def test_expression_values_follow_tinymath_arithmetic() -> None:
    assert expression_value("47+38") == 85
    assert expression_value("(12+34)-50") == -4
    assert expression_value("23*7") == 161


@pytest.mark.parametrize("text", ["__import__('os')", "2**8", "7/2", "x+1", "1.5+1", "12+"])
def test_anything_but_integer_plus_minus_times_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a TinyMath expression"):
        expression_value(text)


def test_a_scripted_trajectory_is_wrong_then_right_then_answers() -> None:
    prompt = "Problem: (47+38)-5\n<think>\n"
    assert scripted_episodes(prompt) == [
        "(47+38)-5 = 81\n\n",
        "Wait, (47+38)-5 = 80\n\n",
        "</think> \\boxed{80}",
    ]
    assert scripted_episodes(prompt, restate=True)[2] == "So 80.\n\n"
    with pytest.raises(ValueError, match="Problem: "):
        scripted_episodes("What is 2+2?")
