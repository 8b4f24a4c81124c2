"""The TRL engine reads completions' final answers as the env does (one default, every engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mrt_env.templates import TEMPLATES, chat_template
from rewards.extraction import ANSWER_IS_PATTERN
from tests.mrt_env.test_templates_chat import chatml_tokenizer

REPLY = "1 plus 1 makes 2.\n\nSo, the answer is 2."  # an instruct model's unboxed ending


def test_a_chat_model_without_thinking_tags_is_read_like_the_env() -> None:
    from agents.trl.rewards import OutcomeReward
    from agents.trl.run import answer_verifier
    from mrt_env.config import EnvConfig, build_components

    template = chat_template(chatml_tokenizer())
    config = answer_verifier(template)
    assert config is not None and config.extra_patterns == (ANSWER_IS_PATTERN,)
    assert OutcomeReward(config)([REPLY], answer=["2"]) == [1.0]
    assert OutcomeReward(None)([REPLY], answer=["2"]) == [0.0]  # boxed only: a silent zero
    assert answer_verifier(TEMPLATES["tiny"]) is None  # boxed answers only, as in the paper
    env_patterns = build_components(EnvConfig(lm=_scripted(), template=template)).answer_patterns
    assert config.extra_patterns == env_patterns


def _scripted() -> Any:
    from mrt_env.lm.scripted import ScriptedLM

    return ScriptedLM(["2}"])


def test_the_trainer_grades_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.trl.run as run
    from agents.config import MRTConfig, TrainConfig

    chosen = object()
    monkeypatch.setattr(run, "answer_verifier", lambda template: chosen)
    options = run.TRLRunOptions(out=tmp_path, model="tiny", extra=(("save_strategy", "no"),))
    config = TrainConfig(steps=1, problems_per_step=2, group_size=2, token_budget=48)
    trainer = run.build_trainer(options, config, MRTConfig(credit="progress"), tensorboard=False)
    [reward] = trainer.reward_funcs
    assert reward.verifier is chosen
