"""Configs reject bad values with clear errors; the logger insists on namespaced keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.config import MRTConfig, PolicyConfig, STaRConfig, TrainConfig
from agents.logging import ScalarLogger
from agents.trainer import make_algorithm


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PolicyConfig(temperature=-1), "temperature"),  # negative temperature
        (lambda: PolicyConfig(max_episode_tokens=0), "max_episode_tokens"),  # empty episodes
        (lambda: TrainConfig(group_size=0), "group_size"),  # no trajectories
        (lambda: TrainConfig(clip_eps=1.5), "clip_eps"),  # clip outside (0, 1)
        (lambda: TrainConfig(device="tpu"), "device"),  # unsupported device
        (lambda: TrainConfig(reward="dense"), "reward"),  # unknown reward source
        (lambda: TrainConfig(minutes=0), "minutes"),  # no time at all
        (lambda: MRTConfig(credit="branched"), "credit"),  # unknown credit mode
        (lambda: STaRConfig(keep_per_problem=0), "keep_per_problem"),  # keeps nothing
    ],
)
def test_bad_values_raise(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="known: grpo, mrt, star"):
        make_algorithm("ppo")


def test_logger_rejects_bare_keys_and_records_non_finite(tmp_path: Path) -> None:
    logger = ScalarLogger(tmp_path, tensorboard=False)
    with pytest.raises(ValueError, match="namespaced"):
        logger.log({"loss": 1.0}, step=0)
    logger.log({"losses/policy": float("nan"), "losses/kl": float("inf"), "env/j": 0.5}, step=1)
    logger.close()
    line = (tmp_path / "metrics.jsonl").read_text().strip()
    # strict JSON: non-finite values are null (a strict parser reads the line)
    assert line == '{"env/j": 0.5, "losses/kl": null, "losses/policy": null, "step": 1}'
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}"))["losses/kl"] is None
