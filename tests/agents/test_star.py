"""MRT-STaR keeps, per problem, the correct traces that make the most progress."""

from __future__ import annotations

from agents.star import progress_score, select_traces
from agents.types import EpisodeRecord, Trajectory


def _trace(
    name: str,
    group: int,
    outcome: float,
    j_after: list[float],
    tokens: int,
    terminated: bool = True,
) -> Trajectory:
    trajectory = Trajectory(
        name, group, "q", [], outcome=outcome, terminated=terminated, total_tokens=tokens
    )
    before = 0.0
    for j in j_after:
        trajectory.episodes.append(EpisodeRecord(0, 0, "", 0.0, before, j, 1))
        before = j
    return trajectory


def test_selection_by_correctness_then_progress_then_tokens() -> None:
    traces = [
        _trace("fast", 0, 1.0, [1.0, 1.0], 50),  # J jumps to 1 at once: score 1.0
        _trace("slow", 0, 1.0, [0.0, 1.0], 40),  # J rises late: score 0.5
        _trace("wrong", 0, 0.0, [1.0, 1.0], 10),  # high J but wrong: never kept
        _trace("cut", 0, 1.0, [1.0, 1.0], 5, terminated=False),  # truncated: not a full trace
        _trace("tie-long", 1, 1.0, [0.5, 1.0], 90),  # same score as below, more tokens
        _trace("tie-short", 1, 1.0, [0.5, 1.0], 30),
        _trace("none", 2, 0.0, [0.0], 10),  # a problem without a correct trace keeps nothing
    ]
    assert progress_score(traces[0]) == 1.0 and progress_score(traces[1]) == 0.5
    assert [t.problem_id for t in select_traces(traces, keep_per_problem=1)] == [
        "fast",
        "tie-short",
    ]
    assert [t.problem_id for t in select_traces(traces, keep_per_problem=2)] == [
        "fast",
        "slow",
        "tie-short",
        "tie-long",
    ]
