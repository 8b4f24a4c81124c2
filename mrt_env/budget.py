"""Token counting of a growing response, and cutting an episode at the token budget.

Both run in time near-linear in the text they add, however long the response already is and
however long the episode is:

- :func:`count_appended` counts ``thinking + episode`` from the known count of ``thinking``
  by re-tokenizing only a window at its end (tokenizers merge across a few characters at
  most, so the window's start cancels out): a trajectory no longer re-tokenizes its whole
  thinking at every step. Short texts are counted in full, exactly as before.
- :func:`fit_episode` finds the longest start of an episode that fits the token budget by an
  exponential search over character offsets, so only about as many characters as the budget
  can hold are ever tokenized, not the whole (possibly megabyte-long) episode.

Example:
    >>> from mrt_env.lm.scripted import ScriptedLM
    >>> lm = ScriptedLM(["x"])  # one token per character
    >>> fit_episode(lm, "abc", 3, "x" * 1_000_000, budget=10)
    ('xxxxxxx', 10, True)
"""

from __future__ import annotations

from mrt_env.lm.base import LanguageModel

WINDOW_CHARS = 2048
"""Characters at the end of the thinking that are re-tokenized with an appended episode."""


def count_appended(lm: LanguageModel, thinking: str, thinking_tokens: int, episode: str) -> int:
    """Tokens of ``thinking + episode`` given that ``thinking`` has ``thinking_tokens``.

    Thinking longer than ``2 * WINDOW_CHARS`` is not re-tokenized: only its last
    ``WINDOW_CHARS`` characters are, with and without ``episode``, and the difference is added.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> count_appended(ScriptedLM(["x"]), "a" * 10_000, 10_000, "bc")
        10002
    """
    if len(thinking) <= 2 * WINDOW_CHARS:
        return lm.count_tokens(thinking + episode)
    tail = thinking[-WINDOW_CHARS:]
    return thinking_tokens + lm.count_tokens(tail + episode) - lm.count_tokens(tail)


def fit_episode(
    lm: LanguageModel, thinking: str, thinking_tokens: int, episode: str, budget: int
) -> tuple[str, int, bool]:
    """The longest start of ``episode`` whose response stays within ``budget`` tokens.

    Returns:
        ``(kept episode, tokens of thinking + kept episode, whether it was cut)``. The kept
        text is exactly what was written (a character prefix, never a decoded round trip).
    """

    def total(cut: int) -> int:
        return count_appended(lm, thinking, thinking_tokens, episode[:cut])

    room = max(budget - thinking_tokens, 0)
    probe = 4 * room + 64  # characters enough for `room` tokens of typical text
    low = 0  # invariant: total(low) <= budget (the empty episode adds nothing)
    while True:
        probe = min(probe, len(episode))
        tokens = total(probe)
        if tokens <= budget:
            if probe == len(episode):
                return episode, tokens, False
            low, probe = probe, 4 * probe
            continue
        high = probe  # total(high) > budget
        break
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if total(middle) <= budget else (low, middle)
    return episode[:low], total(low), True
