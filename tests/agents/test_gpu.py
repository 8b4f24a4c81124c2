"""The same trainer on CUDA (bf16 autocast); skipped, saying why, without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli import app


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ["grpo", "mrt"])
def test_a_few_training_steps_on_cuda(tmp_path: Path, algo: str) -> None:
    import torch

    result = CliRunner().invoke(
        app,
        [
            "--algo",
            algo,
            "--model",
            "random-tiny",
            "--device",
            "cuda",
            "--steps",
            "2",
            "--problems-per-step",
            "2",
            "--group-size",
            "4",
            "--token-budget",
            "32",
            "--prover-samples",
            "2",
            "--train-size",
            "20",
            "--reward",
            "return",
            "--env-rewards",
            "outcome,length",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = [json.loads(line) for line in (tmp_path / "tb" / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["losses/policy"] == m["losses/policy"] for m in metrics)  # finite, not NaN
    assert torch.cuda.is_available()
    assert (tmp_path / "model" / "model.safetensors").exists()
