"""Text spaces for language environments: any Unicode string up to a maximum length.

:class:`UnicodeText` also works in Gymnasium's shared memory (``AsyncVectorEnv``'s default):
a string is stored as its length and its code points.
"""

from __future__ import annotations

import multiprocessing as mp
import string
from collections.abc import Iterator, Sequence
from copy import deepcopy
from typing import Any, overload

import numpy as np
from gymnasium.spaces import Text, Tuple
from gymnasium.vector.utils import (
    batch_space,
    create_shared_memory,
    iterate,
    read_from_shared_memory,
    write_to_shared_memory,
)

SAMPLE_CHARSET: str = string.ascii_letters + string.digits + " .,;:+-=()\n" + "αβγπ√∑≤≥é中"
"""Characters :meth:`UnicodeText.sample` draws from (ASCII, some math and non-Latin symbols)."""


class UnicodeText(Text):
    """A :class:`gymnasium.spaces.Text` that contains *any* string up to ``max_length`` chars.

    Gymnasium's ``Text`` only contains strings made of its ``charset``. Language environments
    observe and act with arbitrary Unicode text, so :meth:`contains` here checks only the type
    and the length. The ``charset`` is kept for :meth:`sample`, which draws strings of at most
    ``sample_max_length`` characters (short random actions, so that ``check_env`` and smoke
    tests stay within a token budget).

    Args:
        max_length: Maximum length in characters (inclusive).
        min_length: Minimum length in characters (inclusive, default 0: the empty string is
            a valid element).
        charset: Characters used by :meth:`sample`.
        sample_max_length: Longest string :meth:`sample` returns (capped at ``max_length``).
        seed: Seed of the space's own sampling RNG.

    Example:
        >>> space = UnicodeText(100, seed=0)
        >>> "∫ x dx = x²/2 ✓" in space, "x" * 101 in space, 3 in space
        (True, False, False)
        >>> sample = space.sample()
        >>> isinstance(sample, str) and len(sample) <= 64
        True
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        charset: str | frozenset[str] = SAMPLE_CHARSET,
        sample_max_length: int = 64,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)
        if sample_max_length < self.min_length:
            raise ValueError(
                f"sample_max_length ({sample_max_length}) must be >= min_length ({self.min_length})"
            )
        self.sample_max_length: int = min(int(sample_max_length), self.max_length)

    def sample(
        self,
        mask: Any = None,
        probability: Any = None,
    ) -> str:
        """A random string of ``min_length..sample_max_length`` characters from ``charset``.

        ``mask`` and ``probability`` behave as in :meth:`gymnasium.spaces.Text.sample`; when
        they give no length, the length is drawn up to ``sample_max_length``.
        """
        if mask is None and probability is None:
            length = int(self.np_random.integers(self.min_length, self.sample_max_length + 1))
            return super().sample(mask=(length, None))
        return super().sample(mask=mask, probability=probability)

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a ``str`` of ``min_length..max_length`` characters (any Unicode)."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    @property
    def is_np_flattenable(self) -> bool:
        """``False``: arbitrary Unicode cannot be flattened into charset indices."""
        return False

    def __repr__(self) -> str:
        """A short representation (the sampling charset is an implementation detail)."""
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: object, /) -> bool:
        """Equal when both are ``UnicodeText`` with the same length bounds."""
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        """Hash of the length bounds (consistent with :meth:`__eq__`)."""
        return hash((type(self).__name__, self.min_length, self.max_length))


class FinalEpisode(str):
    r"""An action that is the last episode of a finished response (the model's output ended).

    Pass it to ``env.step`` when the model stopped (end of sequence) without writing the
    template's end-of-thinking marker: the trajectory then terminates and the response is
    graded as it stands (a response without think tags is graded on its last ``\boxed{}``),
    instead of waiting for episodes that will never come. It is a ``str``, so it is a valid
    element of every :class:`UnicodeText` action space.

    Example:
        >>> action = FinalEpisode("So the answer is \\boxed{4}.")
        >>> isinstance(action, str), action.endswith("}.")
        (True, True)
    """

    __slots__ = ()


def check_action(action: Any, where: str = "action") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``action`` is text an env can take as an episode.

    Refused: anything but a ``str``, and text with a lone surrogate (not valid Unicode;
    tokenizers cannot encode it). Text longer than the space is not refused here: the env cuts
    it at the budget.

    Example:
        >>> check_action("x = 2.")
        >>> check_action(3, "actions[1]")
        Traceback (most recent call last):
        ...
        TypeError: actions[1] must be a str, got int (the episode text)
    """
    if not isinstance(action, str):
        raise TypeError(f"{where} must be a str, got {type(action).__name__} (the episode text)")
    try:
        action.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{where} is not valid Unicode text: a lone surrogate {action[error.start]!r} at "
            f"character {error.start} (decode bytes with errors='replace' first)"
        ) from None


class UnicodeTexts(Tuple):
    """The batched space of ``n`` :class:`UnicodeText` (``batch_space(UnicodeText(m), n)``).

    Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` split a batch of actions with
    ``iterate(action_space, actions)`` before any sub-environment steps. For this space that
    split checks *every* action first (:func:`check_action`), so one refused action raises
    before any sub-environment has stepped: the refused vector step changes nothing, and an
    ``AsyncVectorEnv`` keeps all its workers (a worker that raises is shut down for good).
    """


@batch_space.register(UnicodeText)
def _batch_unicode_text(space: UnicodeText, n: int = 1) -> UnicodeTexts:
    return UnicodeTexts(tuple(deepcopy(space) for _ in range(n)), seed=deepcopy(space.np_random))


@iterate.register(UnicodeTexts)
def _iterate_unicode_texts(space: UnicodeTexts, items: Any) -> Iterator[Any]:  # type: ignore[misc]
    if isinstance(items, str) or not isinstance(items, Sequence | np.ndarray):
        raise TypeError(
            f"actions must be a sequence of {len(space)} str, got {type(items).__name__}"
        )
    items = list(items)
    if len(items) != len(space):
        raise ValueError(f"expected {len(space)} actions, got {len(items)}")
    for index, item in enumerate(items):
        check_action(item, f"actions[{index}]")
    return iter(items)


# ---------------------------------------------------------------- shared memory
# Gymnasium's AsyncVectorEnv(shared_memory=True) stores Text observations as charset indices,
# which fails for characters outside the charset (any Unicode here). A UnicodeText
# observation is stored instead as its length followed by its code points (int32), so any
# string of up to ``max_length`` characters round-trips exactly.


@create_shared_memory.register(UnicodeText)
def _create_unicode_shared_memory(space: UnicodeText, n: int = 1, ctx: Any = mp) -> Any:
    return ctx.Array(np.dtype(np.int32).char, n * (space.max_length + 1))


def _rows(space: UnicodeText, shared_memory: Any, n: int) -> np.ndarray:
    data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    return data[: n * (space.max_length + 1)].reshape(n, space.max_length + 1)


class SharedTexts(Sequence[str]):
    """A live view of ``n`` strings in shared memory (what ``AsyncVectorEnv`` keeps as its
    observations); ``copy.deepcopy`` (the vector env's default ``copy=True``) returns a
    tuple of the current strings."""

    def __init__(self, space: UnicodeText, shared_memory: Any, n: int) -> None:
        self._space, self._memory, self._n = space, shared_memory, n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        row = _rows(self._space, self._memory, self._n)[index]
        return row[1 : 1 + int(row[0])].tobytes().decode("utf-32-le", "surrogatepass")

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@read_from_shared_memory.register(UnicodeText)
def _read_unicode_from_shared_memory(
    space: UnicodeText, shared_memory: Any, n: int = 1
) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)


@write_to_shared_memory.register(UnicodeText)
def _write_unicode_to_shared_memory(
    space: UnicodeText, index: int, value: str, shared_memory: Any
) -> None:
    if not space.contains(value):
        raise ValueError(f"observation of {len(value)} characters is not in {space}")
    row = _rows(space, shared_memory, index + 1)[index]
    codes = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype=np.int32)
    row[0] = len(codes)
    row[1 : 1 + len(codes)] = codes
