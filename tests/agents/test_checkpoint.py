"""Checkpoints: exact round trip of weights, optimizer, RNG states; atomic pointer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


class _Tokenizer:
    """Stands in for a tokenizer: writes one JSON file."""

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / "tokenizer.json").write_text("{}", encoding="utf-8")


def _model_and_optimizer(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from mrt_env.lm.testing import tiny_random_model

    model = tiny_random_model(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    return model, optimizer


def _train_once(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    ids = torch.tensor([[5, 6, 7, 8]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer(0)
    _train_once(model, optimizer)
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)
    rng = np.random.default_rng(11)
    rng.integers(100, size=5)
    folder = save_checkpoint(
        tmp_path,
        model=model,
        tokenizer=_Tokenizer(),
        optimizer=optimizer,
        generators={"g": generator},
        numpy_rng=rng,
        trainer_state={"step": 3, "elapsed_s": 1.5},
    )
    assert latest_checkpoint(tmp_path) == folder
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.bin"))  # no pickle

    restored, restored_optimizer = _model_and_optimizer(1)  # different weights before loading
    restored_generator, restored_rng = torch.Generator(), np.random.default_rng(0)
    loaded = load_checkpoint(
        folder,
        model=restored,
        optimizer=restored_optimizer,
        generators={"g": restored_generator},
        numpy_rng=restored_rng,
    )
    assert loaded.trainer_state == {"step": 3, "elapsed_s": 1.5}
    for (name, a), (_, b) in zip(
        model.state_dict().items(), restored.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    # the next draws and the next optimizer step are identical
    assert torch.equal(
        torch.rand(4, generator=generator), torch.rand(4, generator=restored_generator)
    )
    assert rng.integers(10**9) == restored_rng.integers(10**9)
    _train_once(model, optimizer)
    _train_once(restored, restored_optimizer)
    for a, b in zip(model.parameters(), restored.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_pointer_moves_atomically_and_old_checkpoints_are_pruned(tmp_path: Path) -> None:
    model, optimizer = _model_and_optimizer(0)
    common = dict(
        model=model,
        tokenizer=_Tokenizer(),
        optimizer=optimizer,
        generators={},
        numpy_rng=np.random.default_rng(0),
    )
    save_checkpoint(tmp_path, trainer_state={"step": 1, "elapsed_s": 0.0}, **common)
    # a torn write (killed mid-way) leaves a temporary folder that is ignored and cleaned up
    (tmp_path / "checkpoints" / ".tmp-step-00000002-999").mkdir()
    second = save_checkpoint(tmp_path, trainer_state={"step": 2, "elapsed_s": 0.0}, **common)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest.json", "step-00000002"]
    pointer = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert pointer == {"step": 2, "path": second.name}


def test_no_checkpoint_and_broken_pointer(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.json").write_text('{"step": 1, "path": "step-1"}')
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        latest_checkpoint(tmp_path)
