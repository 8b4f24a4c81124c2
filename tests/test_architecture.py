"""Layering rules: rewards <- mrt_env <- agents <- benchmarks, and cheap imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> top-level project packages it must never import
FORBIDDEN = {
    "rewards": {"mrt_env", "agents", "benchmarks"},
    "mrt_env": {"agents", "benchmarks"},
    "agents": {"benchmarks"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize(
    ("statement", "heavy"),
    [
        # the reward layer never needs torch
        ("import rewards", ("torch", "transformers", "math_verify")),
        # registering envs must stay cheap: torch loads only when an env is built
        ("import mrt_env", ("torch", "transformers")),
        ("import mrt_env.regret", ("torch", "transformers")),
    ],
)
def test_imports_stay_light(statement: str, heavy: tuple[str, ...]) -> None:
    code = f"{statement}; import sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_importing_configures_no_logging() -> None:
    code = "import logging, rewards, mrt_env, agents; print(len(logging.getLogger().handlers))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "0"
