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


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
    return ids, mask


@pytest.mark.parametrize("chunk_tokens", [1, 2, 4, 100])
def test_chunked_loss_and_gradients_equal_the_full_loss(chunk_tokens: int) -> None:
    from agents.losses import token_logprobs
    from mrt_env.lm.testing import tiny_random_model

    ids, mask = _padded_batch()
    weights = torch.tensor([[0, 1.0, -2.0, 0.5, 1.0, 3.0, -1.0], [0, 2.0, 1.0, -1.0, 0, 0, 0]])
    results = []
    for chunk in (None, chunk_tokens):
        model = tiny_random_model(seed=3)
        logprobs = token_logprobs(model, ids, mask, temperature=0.7, chunk_tokens=chunk)
        (logprobs * weights).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((logprobs.detach(), grads))
    (full, full_grads), (chunked, chunked_grads) = results
    assert full.shape == chunked.shape == ids.shape
    assert torch.allclose(full, chunked, atol=1e-5)
    assert full_grads.keys() == chunked_grads.keys() and len(full_grads) > 0
    for name, grad in full_grads.items():
        assert torch.allclose(grad, chunked_grads[name], atol=1e-5), name


def test_chunked_loss_rejects_a_bad_chunk() -> None:
    from agents.losses import token_logprobs
    from mrt_env.lm.testing import tiny_random_model

    ids, mask = _padded_batch()
    with pytest.raises(ValueError, match="chunk_tokens"):
        token_logprobs(tiny_random_model(seed=0), ids, mask, chunk_tokens=0)


def _saved_bytes(model: torch.nn.Module) -> int:
    """Bytes autograd keeps for the backward pass of one training-mode forward."""
    from agents.losses import token_logprobs

    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    ids = torch.arange(3, 60).unsqueeze(0)
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        token_logprobs(model, ids, torch.ones_like(ids))
    model.eval()
    return sum(saved)


def test_gradient_checkpointing_and_loss_chunks_give_the_same_update() -> None:
    from agents.config import TrainConfig
    from agents.update import Learner
    from mrt_env.lm.testing import tiny_random_model

    trajectory = Trajectory("p", 0, "q", [5, 6, 7], [8, 9, 10, 11])
    trajectory.episodes = [EpisodeRecord(0, 4, "abcd", 0.0, None, None, 4)]
    updated = []
    for checkpointing, chunk in ((False, None), (True, 2)):
        model = tiny_random_model(seed=1)
        config = TrainConfig(
            gradient_checkpointing=checkpointing, loss_chunk_tokens=chunk, max_grad_norm=1e9
        )
        learner = Learner(model, torch.optim.SGD(model.parameters(), lr=1.0), None, config)
        assert _saved_bytes(model) < _saved_bytes(tiny_random_model(seed=1)) or not checkpointing
        learner.policy_gradient([trajectory], [np.array([1.0, -1.0, 2.0, 0.5])])
        updated.append(dict(model.named_parameters()))
    for name, value in updated[0].items():
        assert torch.allclose(value, updated[1][name], atol=1e-5), name
    assert not torch.equal(updated[0]["lm_head.weight"], tiny_random_model(seed=1).lm_head.weight)


def test_gradient_checkpointing_defaults_to_the_device() -> None:
    from agents.config import TrainConfig

    assert TrainConfig(device="cuda").use_gradient_checkpointing
    assert not TrainConfig().use_gradient_checkpointing
    assert not TrainConfig(device="cuda", gradient_checkpointing=False).use_gradient_checkpointing
