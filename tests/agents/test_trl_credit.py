"""TRL engine: the per-token advantages handed to TRL's loss equal ``agents.mrt``'s.

A real ``MRTGRPOTrainer`` on the tiny random test double runs its own
``_generate_and_score_completions`` on completions fixed by a TRL ``rollout_func`` (a public
TRL hook), with J values from a ``TableMetaProver`` double; the advantages it returns are
compared with :class:`agents.mrt.MRT` on trajectories holding the same episodes and J values.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("trl")

from agents.config import MRTConfig
from agents.mrt import MRT
from agents.types import EpisodeRecord, Trajectory
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.table import TableMetaProver
from tests.agents.trl_doubles import tiny_trl_trainer


def _batch(trainer: Any) -> list[dict[str, Any]]:
    """One generation batch as TRL's sampler yields it (each prompt ``num_generations`` times)."""
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    return batch


def _reference(trainer: Any, credit: str) -> list[np.ndarray]:
    """``agents.mrt.MRT`` on trajectories with the trainer's episodes and J values."""
    record = trainer.last_credit
    trajectories = []
    for row, (split, pairs) in enumerate(zip(record.episodes, record.j_pairs, strict=True)):
        t = Trajectory("p", row // trainer.num_generations, "", [], [0] * split.spans[-1][1])
        t.episodes = [
            EpisodeRecord(start, end, "", 0.0, before, after, end - start)
            for (start, end), (before, after) in zip(split.spans, pairs, strict=True)
        ]
        trajectories.append(t)
    return MRT(MRTConfig(credit=credit, alpha=1.0)).advantages(  # type: ignore[arg-type]
        trajectories, list(record.rewards)
    )


def _handed_to_loss(trainer: Any, batch: list[dict[str, Any]]) -> list[np.ndarray]:
    output = trainer._generate_and_score_completions(batch)
    lengths = output["completion_mask"].sum(dim=1).tolist()
    return [output["advantages"][row, :n].numpy() for row, n in enumerate(lengths)]


def test_hand_built_progress_credit_matches_agents_and_hand_values(tmp_path: Path) -> None:
    right = "1+1=2.\n\nWait, yes.</think>\\boxed{2}"  # 2 episodes, correct
    wrong = "1+1=3.\n\nWait, no.\n\nWait, 3.</think>\\boxed{3}"  # 3 episodes, wrong
    table = {
        ("p0", ""): 0.5,
        ("p0", "1+1=2."): 0.75,
        ("p0", "1+1=3."): 0.25,
        ("p0", "1+1=3.\n\nWait, no."): 0.0,
    }
    prover = TableMetaProver(table)
    trainer = tiny_trl_trainer(
        tmp_path, lambda: [right, wrong], prover, "progress", 1, 2, "outcome"
    )
    handed = _handed_to_loss(trainer, _batch(trainer))
    # final_j="outcome": J after a finished completion is its verified outcome.
    # R = (1, 0): mean 0.5, std 0.5 (the scale of both terms). Progress per episode:
    # right: +0.25, +0.25 (J 0.5 -> 0.75 -> 1 = its outcome) -> (0.5 + 0.25) / 0.5 = 1.5
    # wrong: -0.25, -0.25, 0 (J 0.5 -> 0.25 -> 0 -> 0) -> -1.5, -1.5, (-0.5 + 0) / 0.5 = -1
    scale, first_two = 0.5 + 1e-6, "1+1=3.\n\nWait, no."
    expected = [
        np.full(len(right), 0.75 / scale),
        np.array([-0.75 / scale] * len(first_two) + [-0.5 / scale] * (len(wrong) - len(first_two))),
    ]
    assert [len(h) for h in handed] == [len(right), len(wrong)]  # one token per character
    for got, want, ref in zip(handed, expected, _reference(trainer, "progress"), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5)
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def _j_of(request: ProverRequest) -> float:
    """A fixed, arbitrary J per (problem, prefix): the randomised case's μ."""
    return (zlib.crc32(f"{request.problem_id}|{request.prefix}".encode()) % 9) / 8


@pytest.mark.parametrize("credit", ["progress", "progress_to_go"])
def test_randomised_credit_matches_agents(tmp_path: Path, credit: str) -> None:
    rng = np.random.default_rng(7)
    pieces = ["x=1.", "Wait, y.", "Wait, 2+2=4.", "z", "Wait, no."]

    def completions() -> list[str]:
        texts = []
        for _ in range(8):
            episodes = [str(rng.choice(pieces)) for _ in range(int(rng.integers(1, 5)))]
            answer = "" if rng.random() < 0.25 else f"</think>\\boxed{{{rng.integers(2, 4)}}}"
            texts.append("\n\n".join(episodes) + answer)
        return texts

    trainer = tiny_trl_trainer(tmp_path, completions, TableMetaProver(_j_of), credit, 2, 4)
    for _ in range(2):
        handed = _handed_to_loss(trainer, _batch(trainer))
        reference = _reference(trainer, credit)
        assert len(handed) == len(reference) == 8
        for got, ref in zip(handed, reference, strict=True):
            np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
        assert any(len(np.unique(h)) > 1 for h in handed)  # credit varies within responses


def test_released_recipe_continues_one_cut_prefix_per_group(tmp_path: Path) -> None:
    from agents.mrt import released_credit

    prover = TableMetaProver(_j_of)
    trainer = tiny_trl_trainer(tmp_path, list, prover, "released", 2, 3)
    output = trainer._generate_and_score_completions(_batch(trainer))
    rows = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(output["completion_ids"], output["completion_mask"], strict=True)
    ]
    prefix_tokens = [n for n, _ in trainer._released_rows]
    prefix_j = [j for _, j in trainer._released_rows]
    for group in range(2):
        members = range(3 * group, 3 * group + 3)
        assert len({prefix_tokens[m] for m in members}) == 1  # one cut per group
        assert len({prefix_j[m] for m in members}) == 1
        cut = prefix_tokens[3 * group]
        assert all(rows[m][:cut] == rows[3 * group][:cut] for m in members)  # the same prefix
        for m in members:  # the prefix is out of the loss, the continuation in it
            loss_mask = output["tool_mask"][m][: len(rows[m])].tolist()
            assert loss_mask == [0] * cut + [1] * (len(rows[m]) - cut)
    expected = released_credit(
        trainer.last_credit.rewards, prefix_j, prefix_tokens, [len(r) for r in rows]
    )
    for row, want in enumerate(expected):
        np.testing.assert_allclose(output["advantages"][row, : len(want)].numpy(), want)
    assert [len(call) for call in prover.calls] == [2]  # one batched J(prefix) per group
