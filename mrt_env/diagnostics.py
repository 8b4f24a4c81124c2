"""Signs that a run measures nothing: one definition for every tool that reports a run.

A run is *degenerate* when its figures cannot show what MRT is about, whatever the method:

* ``pass@1 = 0``: no response was correct (the problems are out of the model's reach);
* ``J ≡ 0``: μ never answered correctly after any episode, so progress is 0 everywhere;
* most responses are **one episode**: the segmenter found no boundary, so there is no
  prefix to credit: *progress credit is empty and MRT reduces to outcome RL*;
* most forced answers are **unreadable**: the answer cap cut them before their answer, so J
  reads near 0 for that reason alone.

``benchmarks/regret.py``, ``benchmarks/analyze_traces.py``, ``python -m agents.evaluate`` and
the trainer's metrics report :func:`episode_summary` and :func:`degenerate_reasons`.

Example:
    >>> episode_summary([1, 1, 3, 1])
    {'responses': 4, 'mean_episodes': 1.5, 'single_episode_share': 0.75}
    >>> [r.split(":")[0] for r in degenerate_reasons(pass_at_1=0.0, episode_counts=[1, 1, 2])]
    ['pass@1 = 0', '67% of responses are one episode']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SINGLE_EPISODE_WARN = 0.5
"""Warn when more than this share of responses is a single episode."""

EMPTY_CREDIT = "progress credit is empty: MRT reduces to outcome RL"


def episode_summary(counts: Sequence[int]) -> dict[str, float | int | None]:
    """Episodes per response: how many responses, the mean, and the share of one-episode
    responses (``None`` without responses)."""
    if not counts:
        return {"responses": 0, "mean_episodes": None, "single_episode_share": None}
    return {
        "responses": len(counts),
        "mean_episodes": sum(counts) / len(counts),
        "single_episode_share": sum(1 for c in counts if c <= 1) / len(counts),
    }


def single_episode_reason(
    share: float | None, threshold: float = SINGLE_EPISODE_WARN
) -> str | None:
    """The one-episode warning when more than ``threshold`` of responses is one episode."""
    if share is None or share <= threshold:
        return None
    return (
        f"{share:.0%} of responses are one episode: {EMPTY_CREDIT} (no episode boundary was "
        "found; try --segmenter paragraph or a model that writes 'Wait,'-style episodes)"
    )


def degenerate_reasons(
    *,
    pass_at_1: float | None = None,
    j_values: Iterable[float] | None = None,
    episode_counts: Sequence[int] | None = None,
    forced_answered: float | None = None,
    answered_threshold: float = 0.5,
) -> list[str]:
    """Why a run looks degenerate (empty list: it does not); each reason names the fix.

    Args:
        pass_at_1: Share of correct responses.
        j_values: Every J read by μ (the empty-thinking J included).
        episode_counts: Episodes of each response.
        forced_answered: Share of μ's forced answers with a readable final answer.
        answered_threshold: Below this share, forced answers count as unreadable.
    """
    reasons = []
    if pass_at_1 is not None and pass_at_1 == 0.0:
        reasons.append(
            "pass@1 = 0: no response was correct; the problems may be out of the model's "
            "reach (choose easier ones, e.g. --problems 'math500.jsonl?level=1,2')"
        )
    values = None if j_values is None else list(j_values)
    if values and all(v == 0.0 for v in values):
        reasons.append(
            "J = 0 after every episode: μ never answered correctly, so progress and regret "
            "carry no signal"
        )
    if episode_counts:
        reason = single_episode_reason(episode_summary(episode_counts)["single_episode_share"])
        if reason is not None:
            reasons.append(reason)
    if forced_answered is not None and forced_answered < answered_threshold:
        reasons.append(
            f"only {forced_answered:.0%} of forced answers are readable: J reads near 0 for "
            "that reason alone (raise --max-answer-tokens / --forced-answer-tokens)"
        )
    return reasons


def degenerate_markdown(reasons_by_name: dict[str, list[str]]) -> list[str]:
    """A ``results.md`` section flagging degenerate policies/groups (no lines when none)."""
    flagged = {name: reasons for name, reasons in reasons_by_name.items() if reasons}
    if not flagged:
        return []
    lines = ["**Degenerate run: these figures cannot show what MRT buys.**", ""]
    for name, reasons in flagged.items():
        lines += [f"- {name}: {reason}" for reason in reasons]
    return [*lines, ""]
