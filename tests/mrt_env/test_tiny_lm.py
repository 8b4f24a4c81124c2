"""The tiny LM: tokenizer, a short training run, and the shipped weights."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from mrt_env.tinymath import loading
from mrt_env.tinymath.loading import load_tiny_lm, tiny_lm_path

SHIPPED = tiny_lm_path("base")
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "model.safetensors").is_file() or not (SHIPPED / "eval.json").is_file(),
    reason="shipped tiny-LM weights or eval.json missing",
)


def test_tokenizer_round_trips_and_counts_characters() -> None:
    from mrt_env.tinymath.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    text = "Problem: 47+38\n<think>\n7+8=15.\n</think>\n\\boxed{85}"
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([*ids, tokenizer.eos_token_id], skip_special_tokens=True) == text


def test_short_training_run_lowers_the_test_loss() -> None:
    from mrt_env.tinymath.train import TrainConfig, train

    config = TrainConfig(
        preset="tiny",
        steps=25,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=5,
        eval_every=25,
        eval_examples=64,
        minutes=2.0,
    )
    _, _, result = train(config, progress=False)
    (_, before), (_, after) = result.test_loss[0], result.test_loss[-1]
    assert after < before - 1.0, result.test_loss


def test_training_is_reproducible_and_saves_loadable_weights(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mrt_env.tinymath.train import TrainConfig, save, train

    config = TrainConfig(preset="tiny", steps=3, batch_size=4, eval_every=3, eval_examples=64)
    first, tokenizer, _ = train(config, progress=False)
    second, _, _ = train(config, progress=False)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    save(first, tokenizer, tmp_path, {"note": "test"})
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).decode([40, 41]) == tokenizer.decode([40, 41])
    for a, b in zip(first.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".tmp-*"))


def test_missing_variant_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "ASSETS", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"mrt_env\.tinymath\.train"):
        load_tiny_lm("base")
    with pytest.raises(FileNotFoundError, match="tiny-lm-mrt"):
        load_tiny_lm("mrt")
    with pytest.raises(KeyError, match="unknown tiny-LM variant"):
        tiny_lm_path("large")


@needs_shipped
def test_shipped_weights_load_with_auto_classes() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(SHIPPED)
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED)
    assert model.config.model_type == "llama"
    assert tokenizer.eos_token_id == model.config.eos_token_id
    assert (SHIPPED / "model.safetensors").stat().st_size < 10 * 2**20


@needs_shipped
def test_shipped_model_reproduces_card_greedy_accuracy() -> None:
    from mrt_env.tinymath.evaluate import EvalConfig, pass_at_1, respond
    from mrt_env.tinymath.problems import TinyMathSource

    card = json.loads((SHIPPED / "eval.json").read_text())
    config = EvalConfig(**{**card["config"], "levels": tuple(card["config"]["levels"])})
    problems = list(TinyMathSource("heldout", config.n, config.levels, config.seed))[:60]
    greedy = respond(load_tiny_lm(), problems, 0.0, config.max_new_tokens, config.seed)
    accuracy, expected = pass_at_1(greedy, problems), card["greedy_pass_at_1"]
    # A 60-problem subset of the card's problems: binomial standard error, 3.5 sigma.
    tolerance = 3.5 * math.sqrt(expected * (1 - expected) / len(problems))
    assert abs(accuracy - expected) <= tolerance, (accuracy, expected, tolerance)


@needs_shipped
def test_generation_and_meta_prover_run_in_seconds() -> None:
    from mrt_env.lm.base import SamplingParams
    from mrt_env.prover.base import ProverRequest
    from mrt_env.prover.sampled import SampledMetaProver
    from mrt_env.segmenters import MarkerSegmenter
    from mrt_env.templates import TEMPLATES

    start = time.monotonic()
    lm, template = load_tiny_lm(), TEMPLATES["tiny"]
    prompt = template.render_prompt("47+38")
    params = SamplingParams(max_new_tokens=300, temperature=0.8, n=4)
    responses = [c.text for c in lm.generate([prompt], params, seeds=[0])[0]]
    assert all("</think>" in r and "\\boxed{" in r for r in responses)
    episodes = MarkerSegmenter(min_paragraphs=1).split(responses[0].split("</think>")[0])
    prover = SampledMetaProver(lm, template, k=8, max_answer_tokens=16)
    requests = [
        ProverRequest("p", prompt, "85", "".join(episodes[:i]), seed=i)
        for i in range(len(episodes) + 1)
    ]
    estimates = prover.estimate(requests)
    assert all(0.0 <= e.j <= 1.0 and e.num_samples == 8 for e in estimates)
    assert np.isfinite([e.answer_tokens for e in estimates]).all()
    assert time.monotonic() - start < 60


@needs_shipped
def test_card_renders_the_recorded_figures_and_reproduction(tmp_path: Path) -> None:
    from mrt_env.tinymath.card import write_card

    training = json.loads((SHIPPED / "training.json").read_text())
    figures = json.loads((SHIPPED / "eval.json").read_text())
    training["reproduction"] = {
        "command": "python -m mrt_env.tinymath.train --seed 0",
        "minutes": 7.25,
        "sha256": "ab" * 32,
        "identical": True,
    }
    (tmp_path / "training.json").write_text(json.dumps(training))
    (tmp_path / "eval.json").write_text(json.dumps(figures))
    card = write_card(tmp_path).read_text()
    assert f"{100 * figures['greedy_pass_at_1']:.1f}%" in card
    assert " → ".join(f"{v:.3f}" for v in figures["mean_j_by_episode"]) in card
    assert "took 7.2 minutes and wrote a\n  `model.safetensors` bit-identical" in card
    assert training["command"] in card


@needs_shipped
def test_shipped_model_mean_j_rises_over_the_first_episodes() -> None:
    from mrt_env.tinymath.evaluate import j_curves, respond, summarize_curves
    from mrt_env.tinymath.problems import TinyMathSource

    problems = list(TinyMathSource("heldout", 120, seed=1))  # not the card's problems
    lm = load_tiny_lm()
    responses = respond(lm, problems, 0.8, 400, seed=1)
    summary = summarize_curves(j_curves(lm, problems, responses, k=8, seed=1))
    j = summary["mean_j_by_episode"]
    assert j[0] < 0.05 < j[1] < j[2], j  # the guess, then the worked attempt
    assert summary["j_final"] > j[1], summary["j_final"]
