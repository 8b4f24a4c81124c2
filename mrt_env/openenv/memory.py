"""What the server holds in memory, and the bounds on what its sessions share.

A session's own state (its trajectory) is freed when the session closes; what sessions share
is capped (see :class:`~mrt_env.openenv.settings.ServeSettings`): μ's J cache per step core
(:func:`bound_j_cache`), the number of step cores, the local model's prefix cache
(:func:`lm_options`) and the verifier's result cache. :func:`memory_stats` reports them all
(``GET /mrt/memory``), so a load test can check that memory is flat once the clients left.

Example:
    >>> from mrt_env.openenv.settings import ServeSettings
    >>> lm_options(ServeSettings(prefix_cache_mb=64))
    {'prefix_cache_max_bytes': 67108864}
    >>> lm_options(ServeSettings(lm="openai:http://127.0.0.1:8001/v1", prefix_cache_mb=64))
    {}
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Sequence, Sized
from typing import Any

from mrt_env.core import StepCore
from mrt_env.openenv.settings import ServeSettings
from mrt_env.prover.sampled import SampledMetaProver

__all__ = [
    "bound_j_cache",
    "child_processes",
    "lm_options",
    "memory_stats",
    "release_free_memory",
    "rss_bytes",
]

_REMOTE_BACKENDS = ("openai:", "vllm:")
"""``lm`` specs whose model (and its prefix cache) lives outside this process's allocator."""


def lm_options(settings: ServeSettings) -> dict[str, Any]:
    """The model's ``lm_options``: the operator's, plus the prefix-cache cap for a local model.

    An explicit ``prefix_cache_max_bytes`` in ``defaults["lm_options"]`` wins.
    """
    options = dict(settings.defaults.get("lm_options") or {})
    local = not settings.lm.startswith(_REMOTE_BACKENDS)
    if local and settings.prefix_cache_mb is not None:
        options.setdefault("prefix_cache_max_bytes", int(settings.prefix_cache_mb * 2**20))
    return options


def bound_j_cache(core: StepCore, size: int) -> None:
    """Keep at most ``size`` J estimates in the step core's μ cache (a sampled μ's LRU).

    A μ without a cache (a learned or custom one) is left as it is.
    Call it on a newly built core (its cache is empty; the bound holds from the next
    estimate on).
    """
    prover = core.components.prover
    if isinstance(prover, SampledMetaProver):
        prover.cache_size = size


def memory_stats(cores: Sequence[StepCore], lm: Any, sessions: Sized) -> dict[str, Any]:
    """Resident memory, live session objects and the size of every shared cache.

    A full garbage collection runs first, so ``session_objects`` counts only what is still
    referenced (a closed session's object must be gone).

    Args:
        cores: The step cores kept built.
        lm: The loaded model (``None`` before the first session).
        sessions: A weak set of the session objects.
    """
    from rewards.verification import get_verifier

    gc.collect()
    provers = [core.components.prover for core in cores]
    prefix = getattr(lm, "prefix_cache", None)
    return {
        "rss_bytes": rss_bytes(),
        "session_objects": len(sessions),
        "cores": len(cores),
        "j_cache_entries": sum(
            p.cache_entries for p in provers if isinstance(p, SampledMetaProver)
        ),
        "prefix_cache_entries": len(prefix) if prefix is not None else None,
        "prefix_cache_bytes": prefix.bytes if prefix is not None else None,
        "verifier_cache_entries": get_verifier().cache_entries,
    }


def release_free_memory() -> bool:
    """Hand the allocator's free heap memory back to the system (glibc ``malloc_trim``).

    Freed tensors and strings of closed sessions stay in malloc's free lists otherwise, so
    RSS would not show that they were freed. Returns whether the call was available.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim(0)
    return True


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def child_processes() -> int:
    """Live child processes of this process (grading workers); -1 where unknown."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return -1
    found: set[str] = set()
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                found.update(children.read().split())
        except OSError:
            continue
    return len(found)
