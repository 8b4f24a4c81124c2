"""How the end of a trajectory is graded: one definition for the env and every trainer.

Two settings decide it, with the same names and defaults in ``EnvConfig``, the native trainer
and the TRL engine (``mrt-train --final-j ... --truncation ...``):

- ``final_j``: J after the last episode of a trajectory that *finished* (ended thinking, or
  the model's output ended): ``"prover"`` (default, PAPER.md) is μ's K-sample estimate from the
  natural end of thinking (the prefix up to ``end_think``, no termination suffix; a response
  that never wrote ``end_think`` gets the termination suffix, as there is no natural end);
  ``"outcome"`` is the verified 0/1 outcome of the policy's own answer.
- ``truncation``: the outcome of a *truncated* trajectory (the token budget ran out):
  ``"forced_answer"`` (default) grades one answer forced from the policy after the termination
  suffix (:func:`forced_response`); ``"expected"`` uses μ's J of the final prefix.

A truncated trajectory's J after its last episode is always μ's forced estimate of its whole
thinking. Trainers report which source each final J came from (``"prover"`` / ``"outcome"``,
:func:`end_j`), as the env does in ``info["j_source"]``.

Example:
    >>> needs_final_estimate(terminated=True, final_j="outcome")
    False
    >>> end_outcome(verified=None, truncated=True, estimate=0.25)  # truncation="expected"
    0.25
    >>> end_j(terminated=True, outcome=1.0, estimate=0.5, final_j="prover")
    (0.5, 'prover')
    >>> end_j(terminated=True, outcome=1.0, estimate=None, final_j="outcome")
    (1.0, 'outcome')
"""

from __future__ import annotations

from typing import Literal

from mrt_env.templates import ChatTemplate

FinalJ = Literal["prover", "outcome"]
FINAL_J: tuple[str, ...] = ("prover", "outcome")
Truncation = Literal["forced_answer", "expected"]
TRUNCATIONS: tuple[str, ...] = ("forced_answer", "expected")
JSource = Literal["prover", "outcome"]


def check_settings(final_j: str, truncation: str) -> None:
    """Raise ``ValueError`` naming the valid values of a bad ``final_j`` or ``truncation``.

    Example:
        >>> check_settings("prover", "last_text")
        Traceback (most recent call last):
        ...
        ValueError: truncation must be one of ('forced_answer', 'expected'), got 'last_text'
    """
    if final_j not in FINAL_J:
        raise ValueError(f"final_j must be one of {FINAL_J}, got {final_j!r}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")


def needs_final_estimate(terminated: bool, final_j: str) -> bool:
    """Whether μ estimates J after the last episode (always, unless it is the outcome).

    Example:
        >>> needs_final_estimate(False, "outcome"), needs_final_estimate(True, "prover")
        (True, True)
    """
    return not terminated or final_j == "prover"


def needs_forced_answer(truncated: bool, truncation: str) -> bool:
    """Whether a truncated trajectory is graded on one forced answer of the policy.

    Example:
        >>> needs_forced_answer(True, "forced_answer"), needs_forced_answer(True, "expected")
        (True, False)
    """
    return truncated and truncation == "forced_answer"


def forced_prompt(template: ChatTemplate, prompt: str, thinking: str) -> str:
    """What the policy answers after when its trajectory is truncated (termination suffix)."""
    return template.render_forced(prompt, thinking)


def forced_response(template: ChatTemplate, prompt: str, thinking: str, answer: str) -> str:
    """The response graded for a truncated trajectory: its thinking, the termination suffix
    and the policy's forced ``answer`` (what the reward modules and the verifier see).

    Example:
        >>> from mrt_env.templates import get_template
        >>> forced_response(get_template("tiny"), "Q\\n<think>\\n", "x=2.", "2}").endswith(
        ...     "</think>\\n\\\\boxed{2}")
        True
    """
    return forced_prompt(template, prompt, thinking)[len(prompt) :] + answer


def end_outcome(verified: float | None, truncated: bool, estimate: float | None) -> float | None:
    """The outcome of a step: the verified 0/1 answer when one was graded, else (a truncated
    trajectory under ``truncation="expected"``) μ's J of the final prefix, else ``None``."""
    if verified is not None:
        return float(verified)
    if truncated and estimate is not None:
        return float(estimate)
    return None


def end_j(
    terminated: bool, outcome: float | None, estimate: float | None, final_j: str
) -> tuple[float | None, JSource | None]:
    """J after a step and where it came from (``"prover"``, ``"outcome"`` or ``None``).

    A finished trajectory uses the outcome under ``final_j="outcome"`` or when μ gave no
    estimate (no meta-prover); every other step uses μ's estimate.
    """
    from_outcome = terminated and (final_j == "outcome" or estimate is None)
    if from_outcome:
        return outcome, ("outcome" if outcome is not None else None)
    if estimate is None:
        return None, None
    return float(estimate), "prover"
