"""The README's quick-start runs as written, offline, on the embedded tiny LM."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "README has no python block under '## Quick start'"
    return match.group(1)


def test_quick_start_runs_a_full_trajectory() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _quick_start()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("J(empty thinking) = ")
    episodes = [line for line in lines if line.startswith("episode ")]
    assert episodes, out.stdout
    assert re.fullmatch(r"outcome: (0\.0|1\.0) (correct|wrong|no_answer|timeout)", lines[-1])


def test_choosing_problems_runs_as_written() -> None:
    """The 'Choosing problems' block: a filtered MATH-500 set and resets by index and id."""
    from tests.shared_data import require_shared_data

    require_shared_data()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Choosing problems", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None
    out = subprocess.run(
        [sys.executable, "-c", match.group(1)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count, same = out.stdout.splitlines()[:2]
    assert count == "17"  # the README's comment
    first, second = same.split()
    assert first == second
