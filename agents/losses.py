"""Token batches, per-token log-probabilities and the policy-gradient / SFT losses.

Every loss is a *sum* over masked tokens divided by a caller-given token count, so that
micro-batches add up to the token mean over the whole batch (gradient accumulation gives the
same gradient as one big batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from agents.types import Trajectory


@dataclass
class TokenBatch:
    """Right-padded model inputs with per-token training targets.

    Attributes:
        input_ids: ``[B, L]`` prompt + response ids, right-padded.
        attention_mask: ``[B, L]`` 1 on real tokens.
        loss_mask: ``[B, L]`` 1 on response tokens that receive gradient (position ``t`` is
            the token predicted from positions ``< t``).
        advantages: ``[B, L]`` advantage of each token (0 where ``loss_mask`` is 0).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    advantages: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def slice(self, start: int, stop: int) -> TokenBatch:
        """Rows ``start:stop``, trimmed to their longest sequence."""
        width = int(self.attention_mask[start:stop].sum(dim=1).max().item())
        return TokenBatch(
            self.input_ids[start:stop, :width],
            self.attention_mask[start:stop, :width],
            self.loss_mask[start:stop, :width],
            self.advantages[start:stop, :width],
        )

    def to(self, device: torch.device | str) -> TokenBatch:
        """The batch on ``device``."""
        return TokenBatch(*(t.to(device) for t in self.__dict__.values()))


def trainable_mask(trajectory: Trajectory) -> np.ndarray:
    """1 for response tokens of trainable episodes, 0 elsewhere."""
    mask = np.zeros(len(trajectory.response_ids), dtype=np.float32)
    for episode in trajectory.episodes:
        if episode.trainable:
            mask[episode.token_start : episode.token_end] = 1.0
    return mask


def build_token_batch(
    trajectories: Sequence[Trajectory],
    token_advantages: Sequence[np.ndarray],
    pad_id: int = 0,
) -> TokenBatch:
    """Pack trajectories and their per-response-token advantages into a :class:`TokenBatch`.

    Args:
        trajectories: Collected trajectories (prompt ids + response ids).
        token_advantages: One array per trajectory, ``len(response_ids)`` long.
        pad_id: Padding token id.

    Example:
        >>> t = Trajectory("p", 0, "q", [5, 6], [7, 8])
        >>> from agents.types import EpisodeRecord
        >>> t.episodes.append(EpisodeRecord(0, 2, "ab", 0.0, None, None, 2))
        >>> b = build_token_batch([t], [np.array([1.0, 1.0])])
        >>> b.loss_mask.tolist(), b.advantages.tolist()
        ([[0.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 1.0]])
    """
    if len(trajectories) != len(token_advantages):
        raise ValueError("need one advantage array per trajectory")
    width = max(len(t.prompt_ids) + len(t.response_ids) for t in trajectories)
    shape = (len(trajectories), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    loss_mask = torch.zeros(shape, dtype=torch.float32)
    advantages = torch.zeros(shape, dtype=torch.float32)
    for row, (trajectory, advantage) in enumerate(zip(trajectories, token_advantages, strict=True)):
        if len(advantage) != len(trajectory.response_ids):
            raise ValueError(
                f"trajectory {row}: {len(advantage)} advantages for "
                f"{len(trajectory.response_ids)} response tokens"
            )
        prompt, response = len(trajectory.prompt_ids), len(trajectory.response_ids)
        ids = list(trajectory.prompt_ids) + list(trajectory.response_ids)
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[row, : len(ids)] = 1
        mask = torch.from_numpy(trainable_mask(trajectory))
        loss_mask[row, prompt : prompt + response] = mask
        advantages[row, prompt : prompt + response] = (
            torch.from_numpy(np.asarray(advantage, dtype=np.float32)) * mask
        )
    return TokenBatch(input_ids, attention, loss_mask, advantages)


def token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk_tokens: int | None = None,
) -> torch.Tensor:
    """``[B, L]`` log-probability of each token given the ones before it (0 at position 0).

    Logits are divided by ``temperature`` (the sampling distribution) when it is positive.

    With ``chunk_tokens``, full-vocabulary logits are never materialised for the whole
    sequence: the decoder's hidden states go through the output layer ``chunk_tokens``
    positions at a time, and each chunk's logits are recomputed in the backward pass instead of
    being kept (activation checkpointing of the output layer), so the logits held at once are
    ``B x chunk_tokens x vocab``. The result and its gradients equal the unchunked ones to float
    tolerance. Models whose output layer is not a plain projection of the decoder's last hidden
    state (logit soft-capping or scaling) use the unchunked path.

    Example:
        >>> from mrt_env.lm.testing import tiny_random_model
        >>> model = tiny_random_model(seed=0)
        >>> ids = torch.tensor([[5, 6, 7, 8, 9]])
        >>> full = token_logprobs(model, ids, torch.ones_like(ids))
        >>> chunked = token_logprobs(model, ids, torch.ones_like(ids), chunk_tokens=2)
        >>> bool(torch.allclose(full, chunked, atol=1e-5))
        True
    """
    if chunk_tokens is not None and chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1 or None, got {chunk_tokens}")
    head = _plain_output_layer(model)
    if chunk_tokens is None or head is None:
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits = out.logits[:, :-1]
        return torch.nn.functional.pad(
            _picked_logprobs(logits, input_ids[:, 1:], temperature), (1, 0)
        )
    decoder = model.get_decoder()  # type: ignore[operator]
    hidden = decoder(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state
    hidden, targets = hidden[:, :-1], input_ids[:, 1:]
    pieces = []
    for start in range(0, hidden.shape[1], chunk_tokens):
        stop = start + chunk_tokens
        pieces.append(
            checkpoint(
                _head_logprobs,
                head,
                hidden[:, start:stop],
                targets[:, start:stop],
                temperature,
                use_reentrant=False,
            )
        )
    logprobs = torch.cat(pieces, dim=1) if pieces else hidden.new_zeros(hidden.shape[:2])
    return torch.nn.functional.pad(logprobs, (1, 0))


def _plain_output_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    """The output projection when logits are exactly ``head(decoder(...).last_hidden_state)``."""
    config = getattr(model, "config", None)
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    get_decoder = getattr(model, "get_decoder", None)
    get_head = getattr(model, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    head = get_head()
    return head if isinstance(head, torch.nn.Linear) else None


def _head_logprobs(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    return _picked_logprobs(head(hidden), targets, temperature)


def _picked_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    logits = logits.float()
    if temperature > 0:
        logits = logits / temperature
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    num_tokens: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO/GRPO clipped surrogate, summed over masked tokens and divided by ``num_tokens``.

    Returns:
        ``(loss, clipped_tokens)``: the loss and how many masked tokens had a clipped ratio.

    Example:
        >>> lp = torch.zeros(1, 2); adv = torch.tensor([[1.0, -1.0]]); m = torch.ones(1, 2)
        >>> clipped_policy_loss(lp, lp, adv, m, 0.2, 2.0)[0].item()
        0.0
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    per_token = -torch.minimum(unclipped, clipped)
    was_clipped = ((ratio - 1).abs() > clip_eps).float() * mask
    return (per_token * mask).sum() / num_tokens, was_clipped.sum()


def kl_penalty(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, num_tokens: float
) -> torch.Tensor:
    """The k3 estimator of KL(policy || reference), token-summed / ``num_tokens``.

    ``exp(r - p) - (r - p) - 1`` with ``p``, ``r`` the policy and reference log-probs; it is
    non-negative and unbiased for samples drawn from the policy.

    Example:
        >>> lp = torch.zeros(1, 3)
        >>> kl_penalty(lp, lp, torch.ones(1, 3), 3.0).item()
        0.0
    """
    delta = ref_logprobs - logprobs
    return ((torch.exp(delta) - delta - 1) * mask).sum() / num_tokens


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_tokens: float) -> torch.Tensor:
    """Negative log-likelihood of the masked tokens, summed / ``num_tokens``."""
    return -(logprobs * mask).sum() / num_tokens
