"""The shipped GRPO and MRT tiny-LM checkpoints load like the base model and carry a card."""

from __future__ import annotations

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.tinymath import load_tiny_lm, tiny_lm_path


@pytest.mark.parametrize("variant", ["grpo", "mrt"])
def test_shipped_checkpoint_loads_generates_and_has_a_card(variant: str) -> None:
    folder = tiny_lm_path(variant)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 10 * 2**20
    card = (folder / "README.md").read_text(encoding="utf-8")
    for needed in ("mrt-train", f"--algo {variant}", "pass@1", "seed", "normalized regret"):
        assert needed in card, needed
    lm = load_tiny_lm(variant)
    [[completion]] = lm.generate(["Problem: 12+34\n<think>\n"], SamplingParams(8, 0.0), [0])
    assert completion.token_ids
