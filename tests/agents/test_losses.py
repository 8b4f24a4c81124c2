"""Losses against hand-computed values; token batches mask what must not be trained."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.losses import build_token_batch, clipped_policy_loss, kl_penalty, sft_loss
from agents.types import EpisodeRecord, Trajectory


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected", "clipped"),
    [
        (1.0, 1.0, -1.0, 0),  # on-policy: plain policy gradient
        (1.5, 1.0, -1.2, 1),  # ratio above 1 + eps with A > 0: clipped to 1.2
        (1.5, -1.0, 1.5, 1),  # A < 0: the unclipped (worse) term is kept
        (0.5, -1.0, 0.8, 1),  # ratio below 1 - eps with A < 0: clipped to 0.8
    ],
)
def test_clipped_policy_loss(ratio: float, advantage: float, expected: float, clipped: int) -> None:
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(ratio))
    loss, count = clipped_policy_loss(
        new, old, torch.tensor([[advantage]]), torch.ones(1, 1), clip_eps=0.2, num_tokens=1.0
    )
    assert loss.item() == pytest.approx(expected)
    assert count.item() == clipped


def test_kl_and_sft_hand_computed() -> None:
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]])
    reference = torch.tensor([[math.log(0.25), math.log(0.25)]])
    mask = torch.tensor([[1.0, 1.0]])
    # k3 = exp(r - p) - (r - p) - 1: token 0: 0.5 + ln 2 - 1; token 1: 0
    assert kl_penalty(logprobs, reference, mask, 2.0).item() == pytest.approx(
        (0.5 + math.log(2) - 1) / 2
    )
    assert sft_loss(logprobs, mask, 2.0).item() == pytest.approx(
        -(math.log(0.5) + math.log(0.25)) / 2
    )


def test_token_batch_masks_prompt_padding_and_frozen_episodes() -> None:
    frozen = Trajectory("p", 0, "q", [9], [1, 2, 3])
    frozen.episodes = [
        EpisodeRecord(0, 1, "a", 0.0, None, None, 1, trainable=False),
        EpisodeRecord(1, 3, "bc", 0.0, None, None, 2),
    ]
    short = Trajectory("p", 0, "q", [9, 9], [4])
    short.episodes = [EpisodeRecord(0, 1, "d", 0.0, None, None, 1)]
    batch = build_token_batch([frozen, short], [np.array([5.0, 6.0, 7.0]), np.array([8.0])])
    assert batch.input_ids.tolist() == [[9, 1, 2, 3], [9, 9, 4, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch.loss_mask.tolist() == [[0, 0, 1, 1], [0, 0, 1, 0]]
    assert batch.advantages.tolist() == [[0, 0, 6, 7], [0, 0, 8, 0]]
    with pytest.raises(ValueError, match="advantages for"):
        build_token_batch([short], [np.array([1.0, 2.0])])
