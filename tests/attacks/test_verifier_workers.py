"""Grading workers under attack: they die with a killed parent, never import code from the
working directory, survive the thread that started them, and leave no orphans or zombies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rewards import Verifier, VerifierConfig
from rewards.pool import worker_sys_path

#: How long a worker may outlive its killed parent.
ORPHAN_BOUND_S = 5.0
REPO_ROOT = Path(__file__).resolve().parents[2]

PARENT_SCRIPT = textwrap.dedent(
    """
    import rewards
    verifier = rewards.Verifier(rewards.VerifierConfig(workers=1, timeout_s=600))
    verifier.verify("</think>\\\\boxed{\\\\frac{4}{2}}", "2")
    print(*[worker.process.pid for worker in verifier._pool._live], flush=True)
    verifier.verify("</think>\\\\boxed{9^{9^{9^{9}}}}", "2")
    """
)

HOSTILE_MODULE = textwrap.dedent(
    """
    import os
    marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"marker-{os.getpid()}")
    open(marker, "w").close()
    raise ImportError("hostile module imported")
    """
)


def _state(pid: int) -> str | None:
    """The process state letter (``R``, ``S``, ``Z``, ...), or ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _running(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def _children(pid: int) -> list[tuple[int, str]]:
    """``(pid, state)`` of every child process of ``pid``."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                children.append((int(entry), fields[0]))
    return children


def _start_parent(cwd: Path | None = None) -> tuple[subprocess.Popen[str], list[int]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT], stdout=subprocess.PIPE, text=True, cwd=cwd
    )
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 1, "the parent did not report its worker"
    return parent, pids


def orphans_after_killing_parent(sig: signal.Signals) -> tuple[int, float]:
    """Kill a parent mid-grade; return how many workers still run after the bound, and when the
    last one went."""
    parent, pids = _start_parent()
    time.sleep(1.0)  # the worker is now deep in a power tower
    assert all(_running(pid) for pid in pids)
    parent.send_signal(sig)
    parent.wait(timeout=30)
    start = time.monotonic()
    while any(_running(pid) for pid in pids) and time.monotonic() - start < ORPHAN_BOUND_S:
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    survivors = [pid for pid in pids if _running(pid)]
    for pid in survivors:  # never leave a spinning orphan behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    return len(survivors), elapsed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_die_with_a_killed_parent(sig: signal.Signals) -> None:
    survivors, elapsed = orphans_after_killing_parent(sig)
    assert survivors == 0, f"{survivors} workers outlived the parent by {ORPHAN_BOUND_S} s"
    assert elapsed < ORPHAN_BOUND_S


def test_hostile_modules_in_the_working_directory_are_not_imported(tmp_path: Path) -> None:
    for name in ("sympy", "math_verify", "latex2sympy2_extended", "rewards"):
        (tmp_path / f"{name}.py").write_text(HOSTILE_MODULE, encoding="utf-8")
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, {root!r})  # how the caller finds mrt-gym; the cwd is sys.path[0] too
        import rewards
        verifier = rewards.Verifier(rewards.VerifierConfig(workers=1, timeout_s=30))
        print(verifier.verify("</think>\\\\boxed{{\\\\frac{{4}}{{2}}}}", "2").status)
        verifier.close()
        """
    ).format(root=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "correct", result.stderr[-2000:]
    assert not list(tmp_path.glob("marker-*")), "a worker imported a module from the cwd"


def test_worker_path_excludes_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), ".", *sys.path])
    entries = worker_sys_path()
    assert str(tmp_path) not in entries and "" not in entries and "." not in entries
    assert all(os.path.isabs(entry) for entry in entries)


def test_workers_outlive_the_thread_that_started_them() -> None:
    verifier = Verifier(VerifierConfig(workers=1, timeout_s=30))
    try:
        thread = threading.Thread(
            target=verifier.verify, args=("</think>\\boxed{\\frac{4}{2}}", "2")
        )
        thread.start()
        thread.join()  # the starting thread is gone: a parent-death signal bound to it would fire
        time.sleep(0.5)
        assert verifier._pool is not None
        [worker] = verifier._pool._live
        assert worker.process.poll() is None
        assert verifier.verify("</think>\\boxed{\\frac{6}{2}}", "3").status == "correct"
        assert verifier._pool._live == {worker}  # the same worker answered
    finally:
        verifier.close()


def zombies_and_orphans_after_timeouts(count: int) -> tuple[int, int, int, int]:
    """Time out ``count`` tasks; return (live new children, zombie children, graded afterwards,
    new children left after ``close``)."""
    before = {pid for pid, _ in _children(os.getpid())}
    verifier = Verifier(VerifierConfig(workers=2, timeout_s=0.3))
    try:
        for i in range(count):
            tower = f"{i + 2}^{{{i + 2}^{{{i + 2}^{{{i + 2}}}}}}}"
            result = verifier.verify(f"</think>\\boxed{{{tower}}}", "2")
            assert result.status in ("timeout", "wrong"), result
        graded = verifier.verify("</think>\\boxed{\\frac{4}{2}}", "2").status == "correct"
        children = [(pid, state) for pid, state in _children(os.getpid()) if pid not in before]
        live = sum(state != "Z" for _, state in children)
        zombies = sum(state == "Z" for _, state in children)
    finally:
        verifier.close()
    left = [pid for pid, _ in _children(os.getpid()) if pid not in before]
    return live, zombies, int(graded), len(left)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_zombies_or_extra_workers_after_timeouts() -> None:
    assert zombies_and_orphans_after_timeouts(3) == (2, 0, 1, 0)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_lifecycle_summary() -> None:
    """Many timeouts, then repeated parent kills, with the counts printed for the record."""
    live, zombies, graded, left = zombies_and_orphans_after_timeouts(40)
    kills = [orphans_after_killing_parent(sig) for sig in (signal.SIGKILL, signal.SIGTERM) * 3]
    print(
        f"\nafter 40 timeouts: {live} live workers, {zombies} zombies, grading works: {graded}, "
        f"{left} processes left after close"
        f"\n{len(kills)} parent kills (SIGKILL/SIGTERM mid-grade): "
        f"{sum(n for n, _ in kills)} workers outlived the parent by {ORPHAN_BOUND_S:.0f} s; "
        f"slowest exit {max(t for _, t in kills):.2f} s"
    )
    assert (live, zombies, graded, left) == (2, 0, 1, 0)
    assert sum(n for n, _ in kills) == 0
