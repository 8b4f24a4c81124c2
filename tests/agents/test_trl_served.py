"""TRL's GRPOTrainer with the served MRTMath-v0 as its reward (agents.trl.served), on CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("trl")
pytest.importorskip("openenv")


def test_served_env_reward_is_the_env_return(mrt_env_server: Any) -> None:
    """The reward equals an in-process env's summed rewards over the same episodes."""
    from agents.trl.served import ServedEnvReward
    from mrt_env.env import MRTMathEnv
    from mrt_env.spaces import FinalEpisode

    completion = "12+30 = 43\n\nWait, 12+30 = 42\n\nSo 42.\n\n</think> \\boxed{42}"
    settings = {"k": 4, "token_budget": 64}
    reward = ServedEnvReward(mrt_env_server.base_url, options={**settings, "seed": 5})
    [served] = reward([completion], problem=["12+30"], answer=["42"], problem_id=["p"])
    record = {"id": "p", "problem": "12+30", "answer": "42"}
    env = MRTMathEnv(**settings)
    env.reset(seed=5, options={"problem": record})
    episodes = reward.segmenter.split(completion)
    assert len(episodes) == len(reward.last_infos[0]) >= 2  # split at "Wait,"
    total, infos = 0.0, []
    for i, episode in enumerate(episodes):
        action = FinalEpisode(episode) if i == len(episodes) - 1 else episode
        _, step_reward, *_, info = env.step(action)
        total += step_reward
        infos.append(json.loads(json.dumps(info)))
    assert served == total
    assert reward.last_infos[0] == infos
    assert infos[-1]["outcome"] == 1.0 and served != 0


def test_two_grpo_steps_with_the_served_env_reward(tmp_path: Path, mrt_env_server: Any) -> None:
    from agents.config import TrainConfig
    from agents.trl.run import TRLRunOptions
    from agents.trl.served import build_served_trainer
    from mrt_env.tinymath.problems import TinyMathSource

    options = TRLRunOptions(
        out=tmp_path, model="tiny", problems=TinyMathSource(split="train", size=8, seed=0)
    )
    train = TrainConfig(
        steps=2, problems_per_step=2, group_size=2, token_budget=48, prover_samples=1
    )
    before = mrt_env_server.stats()
    trainer = build_served_trainer(options, train, mrt_env_server.base_url)
    trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in history] == [1, 2]
    for h in history:
        assert np.isfinite(h["loss"]) and np.isfinite(h["rewards/served_env/mean"])
    after = mrt_env_server.stats()
    assert after["worker_jobs"] - before["worker_jobs"] >= 2 * 4 * 2  # 4 completions per step
