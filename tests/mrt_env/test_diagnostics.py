"""Degenerate-run diagnostics: episodes per response and the reasons a run measures nothing."""

from __future__ import annotations

import pytest

from mrt_env.diagnostics import degenerate_markdown, degenerate_reasons, episode_summary


def test_episode_summary_hand_computed() -> None:
    assert episode_summary([1, 2, 3, 1, 1]) == {
        "responses": 5,
        "mean_episodes": pytest.approx(8 / 5),
        "single_episode_share": pytest.approx(3 / 5),
    }
    assert episode_summary([]) == {
        "responses": 0,
        "mean_episodes": None,
        "single_episode_share": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"pass_at_1": 0.25, "j_values": [0.0, 0.5], "episode_counts": [1, 2]}, []),
        ({"pass_at_1": 0.0}, ["pass@1 = 0"]),
        ({"j_values": [0.0, 0.0, 0.0]}, ["J = 0 after every episode"]),
        ({"j_values": []}, []),  # no J read at all (no meta-prover): nothing to say
        ({"episode_counts": [1, 1, 2]}, ["67% of responses are one episode"]),
        ({"episode_counts": [1, 2]}, []),  # exactly half: not most
        ({"forced_answered": 0.4}, ["only 40% of forced answers are readable"]),
    ],
)
def test_degenerate_reasons(kwargs: dict, expected: list[str]) -> None:
    reasons = degenerate_reasons(**kwargs)
    assert [r.split(":")[0] for r in reasons] == expected


def test_one_episode_reason_says_mrt_reduces_to_outcome_rl() -> None:
    [reason] = degenerate_reasons(episode_counts=[1, 1, 1])
    assert "progress credit is empty: MRT reduces to outcome RL" in reason


def test_markdown_lists_only_flagged_names() -> None:
    assert degenerate_markdown({"a": []}) == []
    lines = degenerate_markdown({"a": [], "b": ["pass@1 = 0: x"]})
    assert lines[0].startswith("**Degenerate run") and "- b: pass@1 = 0: x" in lines
    assert not any(line.startswith("- a") for line in lines)
