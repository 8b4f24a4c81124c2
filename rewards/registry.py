"""Build reward modules by name: built-in short names, ``"package.module:Class"`` strings, and
third-party modules advertised in the ``mrt_gym.rewards`` entry-point group.

A third-party package registers a module in its ``pyproject.toml``::

    [project.entry-points."mrt_gym.rewards"]
    brevity = "my_pkg.rewards:BrevityReward"
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any

from rewards.modules import FormatReward, LengthPenalty, OutcomeReward, ProgressBonus, RewardModule

ENTRY_POINT_GROUP = "mrt_gym.rewards"

_registry: dict[str, Callable[..., RewardModule]] = {
    "outcome": OutcomeReward,
    "progress": ProgressBonus,
    "format": FormatReward,
    "length": LengthPenalty,
}
_lock = threading.Lock()


def register_reward(name: str, factory: Callable[..., RewardModule]) -> None:
    """Make ``make_reward(name, **kwargs)`` call ``factory(**kwargs)``.

    Example:
        >>> register_reward("free_length", LengthPenalty)
        >>> make_reward("free_length", per_token=0.0).per_token
        0.0
    """
    if ":" in name:
        raise ValueError(f"reward names cannot contain ':' (reserved for 'module:Class'): {name!r}")
    with _lock:
        if name in _registry and _registry[name] is not factory:
            raise ValueError(f"a reward named {name!r} is already registered")
        _registry[name] = factory


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_rewards() -> list[str]:
    """Every name ``make_reward`` accepts (besides ``"module:Class"`` strings), sorted."""
    with _lock:
        names = set(_registry)
    return sorted(names | set(_entry_points()))


def _import_path(path: str) -> Callable[..., RewardModule]:
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load reward {path!r}: {error}") from error
    return target  # type: ignore[no-any-return]


def make_reward(name: str, **kwargs: Any) -> RewardModule:
    """Build a reward module from a short name, an entry point or a ``"module:Class"`` string.

    Args:
        name: ``"outcome"``, ``"progress"``, ``"format"``, ``"length"``, a name registered with
            :func:`register_reward` or in the ``mrt_gym.rewards`` entry-point group, or
            ``"package.module:ClassName"``.
        **kwargs: Passed to the module's constructor.

    Example:
        >>> make_reward("progress", alpha=0.5)
        ProgressBonus(alpha=0.5, name='progress')
        >>> make_reward("rewards.modules:LengthPenalty", per_token=0.01).per_token
        0.01
    """
    if ":" in name:
        factory = _import_path(name)
    else:
        with _lock:
            factory_or_none = _registry.get(name)
        if factory_or_none is None:
            entry_point = _entry_points().get(name)
            if entry_point is None:
                raise ValueError(f"unknown reward {name!r}; known rewards: {known_rewards()} "
                                 "(or pass 'package.module:ClassName')")  # fmt: skip
            factory_or_none = entry_point.load()
        factory = factory_or_none
    module = factory(**kwargs)
    if not isinstance(module, RewardModule):
        raise TypeError(f"{name!r} built {module!r}, which has no 'name' or is not callable")
    return module
