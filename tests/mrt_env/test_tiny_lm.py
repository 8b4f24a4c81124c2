"""The tiny LM: tokenizer, a short training run, and the shipped weights."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
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


def test_training_can_start_from_a_saved_model(tmp_path: Path) -> None:
    import torch

    from mrt_env.tinymath.train import TrainConfig, save, train

    config = TrainConfig(preset="tiny", steps=3, batch_size=4, eval_every=3, eval_examples=64)
    first, tokenizer, _ = train(config, progress=False)
    save(first, tokenizer, tmp_path, {"note": "test"})
    frozen = TrainConfig(  # a zero learning rate: the fine-tuned model is the saved one
        preset="tiny", steps=1, batch_size=4, learning_rate=0.0, eval_examples=64, seed=5
    )
    again, _, _ = train(replace(frozen, init=str(tmp_path)), progress=False)
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    fresh, _, _ = train(frozen, progress=False)
    assert not torch.equal(next(first.parameters()), next(fresh.parameters()))
    with pytest.raises((ValueError, RuntimeError)):
        train(replace(frozen, preset="default", init=str(tmp_path)), progress=False)


def test_command_line_names_the_recipe_and_the_starting_model() -> None:
    from mrt_env.tinymath.data import DATA_RECIPES
    from mrt_env.tinymath.train import TrainResult, _record, config_from_args

    config, _ = config_from_args(["--recipe", "graded", "--init", "base", "--warmup", "20"])
    assert config.data == DATA_RECIPES["graded"] and config.data != DATA_RECIPES["classic"]
    assert config.data.forced.confidence and config.init == "base" and config.warmup_steps == 20
    record = _record(config, TrainResult(), 1)
    assert record["recipe"] == "graded"
    assert record["command"].endswith("--recipe graded --warmup 20 --init base")
    config, _ = config_from_args(["--recipe", "graded", "--forced-fraction", "1"])
    assert (
        config.data.forced_fraction == 1.0 and config.data.forced == DATA_RECIPES["graded"].forced
    )
    assert _record(config, TrainResult(), 1)["command"].endswith("graded --forced-fraction 1")
    direct, _ = config_from_args(["--recipe", "graded-direct", "--direct-fraction", "0.3"])
    assert direct.data == replace(DATA_RECIPES["graded-direct"], direct_fraction=0.3)
    record = _record(direct, TrainResult(), 1)
    assert record["recipe"] == "graded-direct"
    assert record["command"].endswith("--recipe graded-direct --direct-fraction 0.3")
    two, _ = config_from_args(["--recipe", "graded-direct", "--direct-levels", "1,2"])
    assert two.data.direct_levels == (1, 2) and two.data.forced.direct == 0.6
    record = _record(two, TrainResult(), 1)
    assert record["recipe"] == "graded-direct"
    assert record["command"].endswith("--recipe graded-direct --direct-levels 1,2")
    record = _record(config_from_args(["--recipe", "graded-direct"])[0], TrainResult(), 1)
    assert record["command"].endswith("--recipe graded-direct")  # the recipe's own share
    classic, _ = config_from_args(["--levels", "1,2"])
    assert classic.data.levels == (1, 2) and not classic.data.forced.confidence
    record = _record(classic, TrainResult(), 1)
    assert record["recipe"] == "classic" and "--recipe" not in record["command"]


def test_anchored_loss_is_cross_entropy_on_forced_rows_and_kl_on_natural_rows() -> None:
    import torch

    from mrt_env.tinymath.train import anchored_loss

    # two rows of length 3 over a vocabulary of 2; row 0 natural, row 1 forced; the logits at
    # position t predict the label at t + 1, so each row has the positions 0 and 1.
    logits = torch.tensor(
        [[[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]], [[2.0, 0.0], [0.0, 3.0], [5.0, 5.0]]]
    )
    reference = torch.tensor(
        [[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]]]
    )
    labels = torch.tensor([[-100, 0, 1], [-100, -100, 0]])
    natural = torch.tensor([True, False])

    def softmax(row: list[float]) -> np.ndarray:
        e = np.exp(np.array(row, dtype=np.float64))
        return e / e.sum()

    # row 0, position 0 (label 0 kept): KL(softmax([0, 1]) || softmax([0, 0]))
    q, p = softmax([0.0, 1.0]), softmax([0.0, 0.0])
    kl_first = float(np.sum(q * np.log(q / p)))
    # row 0, position 1 (label 1 kept): the reference predicts as the model: KL 0
    # row 1, position 1 (label 0 kept): cross-entropy of token 0 under softmax([0, 3])
    cross_entropy = -float(np.log(softmax([0.0, 3.0])[0]))
    expected = (kl_first + 0.0 + cross_entropy) / 3
    loss = anchored_loss(logits, labels, natural, reference)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # all rows forced: the usual causal-LM loss
    forced = anchored_loss(logits, labels, torch.tensor([False, False]), reference)
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 2), labels[:, 1:].reshape(-1))
    assert float(forced) == pytest.approx(float(ce), rel=1e-6)


def test_an_anchored_fine_tune_on_natural_traces_leaves_the_policy_near_where_it_was(
    tmp_path: Path,
) -> None:
    from mrt_env.tinymath.data import DataRecipe
    from mrt_env.tinymath.train import TrainConfig, save, train

    config = TrainConfig(preset="tiny", steps=3, batch_size=4, eval_every=3, eval_examples=64)
    start, tokenizer, _ = train(config, progress=False)
    save(start, tokenizer, tmp_path, {"note": "test"})
    natural_only = TrainConfig(
        preset="tiny",
        steps=6,
        batch_size=4,
        learning_rate=3e-2,
        warmup_steps=1,
        eval_examples=64,
        seed=3,
        init=str(tmp_path),
        data=DataRecipe(forced_fraction=0.0),
    )
    _, _, anchored = train(replace(natural_only, anchor=1.0), progress=False)
    _, _, plain = train(natural_only, progress=False)
    # the same held-out set: the starting model's loss, then each fine-tune's
    assert anchored.test_loss[0] == plain.test_loss[0]
    moved = abs(plain.test_loss[-1][1] - plain.test_loss[0][1])
    assert moved > 0.3, plain.test_loss  # the recipe's tokens pull the undertrained model
    held = abs(anchored.test_loss[-1][1] - anchored.test_loss[0][1])
    assert held < 0.25 * moved, anchored.test_loss
    _, _, half = train(replace(natural_only, anchor=0.5), progress=False)  # half the rows
    assert held < abs(half.test_loss[-1][1] - half.test_loss[0][1]) < moved, half.test_loss
    with pytest.raises(ValueError, match="init"):
        TrainConfig(anchor=1.0)


def test_command_line_records_the_worked_recipe_and_the_anchor() -> None:
    from mrt_env.tinymath.data import DATA_RECIPES
    from mrt_env.tinymath.train import TrainConfig, TrainResult, _record, config_from_args

    config, _ = config_from_args(["--recipe", "worked", "--init", "base", "--anchor"])
    assert config.anchor and config.data == DATA_RECIPES["worked"] and config.data.forced.worked
    record = _record(config, TrainResult(), 1)
    assert record["recipe"] == "worked"
    assert record["command"].endswith("--recipe worked --forced-fraction 0.5 --init base --anchor")
    assert config_from_args(record["command"].split()[3:])[0] == config
    half, _ = config_from_args(["--init", "base", "--anchor", "0.6"])
    assert half.anchor == 0.6 and _record(half, TrainResult(), 1)["command"].endswith(
        "--init base --anchor 0.6"
    )
    assert config_from_args(["--init", "base"])[0].anchor == 0.0
    with pytest.raises(ValueError, match="share"):
        TrainConfig(anchor=1.5, init="base")


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
    lm, template = load_tiny_lm("classic"), TEMPLATES["tiny"]
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
    lm = load_tiny_lm("classic")  # J a step: the forced answer copies the last answer written
    responses = respond(lm, problems, 0.8, 400, seed=1)
    summary = summarize_curves(j_curves(lm, problems, responses, k=8, seed=1))
    j = summary["mean_j_by_episode"]
    assert j[0] < 0.05 < j[1] < j[2], j  # the guess, then the worked attempt
    assert summary["j_final"] > j[1], summary["j_final"]


GRADED = tiny_lm_path("graded")
needs_graded = pytest.mark.skipif(
    not (GRADED / "model.safetensors").is_file() or not (GRADED / "eval.json").is_file(),
    reason="shipped graded tiny-LM weights or eval.json missing",
)


@needs_graded
def test_graded_variant_reproduces_its_card_greedy_accuracy() -> None:
    from mrt_env.tinymath.evaluate import EvalConfig, pass_at_1, respond
    from mrt_env.tinymath.problems import TinyMathSource

    card = json.loads((GRADED / "eval.json").read_text())
    assert json.loads((GRADED / "training.json").read_text())["recipe"] == "graded"
    config = EvalConfig(**{**card["config"], "levels": tuple(card["config"]["levels"])})
    problems = list(TinyMathSource("heldout", config.n, config.levels, config.seed))[:60]
    greedy = respond(load_tiny_lm("graded"), problems, 0.0, config.max_new_tokens, config.seed)
    accuracy, expected = pass_at_1(greedy, problems), card["greedy_pass_at_1"]
    tolerance = 3.5 * math.sqrt(expected * (1 - expected) / len(problems))
    assert abs(accuracy - expected) <= tolerance, (accuracy, expected, tolerance)


@needs_graded
def test_graded_variant_forced_answer_grows_surer_with_each_check() -> None:
    from mrt_env.config import build_lm
    from mrt_env.prover.base import ProverRequest
    from mrt_env.prover.sampled import SampledMetaProver
    from mrt_env.templates import TEMPLATES

    attempt = "47+38: 7+8=15, 4+3+1=8, so 85."
    redo = "\n\nBut let me double-check: 47+38: 7+8=15, 4+3+1=8, so 85 (before: 85). Same."
    slipped = "47+38: 7+8=15, 4+3=7, so 75."  # a dropped carry
    prefixes = {"attempt": attempt, "checked": attempt + redo, "slipped": slipped}

    def j(lm: object) -> dict[str, float]:
        prover = SampledMetaProver(lm, TEMPLATES["tiny"], k=64, max_answer_tokens=16)  # type: ignore[arg-type]
        prompt = TEMPLATES["tiny"].render_prompt("47+38")
        requests = [
            ProverRequest("p", prompt, "85", p, seed=i) for i, p in enumerate(prefixes.values())
        ]
        return {name: e.j for name, e in zip(prefixes, prover.estimate(requests), strict=True)}

    graded = j(build_lm("tiny:graded", None))
    assert 0.2 < graded["attempt"] < 0.8, graded  # an unchecked answer: graded, not 0 or 1
    assert graded["checked"] > graded["attempt"], graded  # a check raises J
    assert graded["slipped"] < graded["attempt"], graded
    classic = j(load_tiny_lm("classic"))
    assert classic["attempt"] > 0.9 and classic["slipped"] < 0.1, classic  # J is a step


@needs_shipped
def test_card_of_a_graded_model_shows_its_recipe_and_j_distribution(tmp_path: Path) -> None:
    from dataclasses import asdict

    from mrt_env.tinymath.data import DATA_RECIPES

    training = json.loads((SHIPPED / "training.json").read_text())
    training["config"]["data"] = asdict(DATA_RECIPES["graded"])
    training["config"]["init"] = "mrt_env/assets/tiny-lm"
    training["recipe"] = "graded"
    measured = {
        "args": {"model": "m", "out": "o", "trajectories": 60, "k": 32, "seed": 0},
        "prefixes": 190,
        "share_graded": 0.3579,
        "histogram": [70, 3, 2, 20, 10, 30, 5, 20, 10, 20],
        "mean_j_by_episode": [0.01, 0.3, 0.45],
        "share_trajectories_rising": 0.8,
        "seconds": 100.0,
        "load_average": [1.0, 2.0, 3.0],
    }
    measured["args"]["temperature"] = 0.8
    card = _graded_card(tmp_path, training, measured)
    assert (
        card.startswith("# tiny-lm-graded:") and "fine-tuned from `mrt_env/assets/tiny-lm`" in card
    )
    assert 'load_tiny_lm("graded")' in card and 'lm="tiny:graded"' in card
    assert "--out mrt_env/assets/tiny-lm-graded`" in card
    assert "with probability\n  0.5, 0.75, 0.875, 0.9375" in card
    assert "| Share with J* in (0.1, 0.9) | 35.8% |" in card
    assert "70, 3, 2, 20, 10, 30, 5, 20, 10, 20" in card and "0.010 → 0.300 → 0.450" in card


def _graded_card(tmp_path: Path, training: dict, measured: dict | None = None) -> str:
    """The card ``write_card`` renders for a ``tiny-lm-graded`` folder holding ``training``, the
    shipped model's evaluation and (when given) a ``j_distribution.json``."""
    from mrt_env.tinymath.card import write_card

    folder = tmp_path / "tiny-lm-graded"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps(training))
    (folder / "eval.json").write_text((SHIPPED / "eval.json").read_text())
    if measured is not None:
        (folder / "j_distribution.json").write_text(json.dumps(measured))
    return write_card(folder).read_text()


def _anchored_training(recipe: str) -> dict:
    """The shipped model's training record, as if fine-tuned from it with ``recipe``."""
    from dataclasses import asdict

    from mrt_env.tinymath.data import DATA_RECIPES

    training = json.loads((SHIPPED / "training.json").read_text())
    training["config"]["data"] = asdict(DATA_RECIPES[recipe])
    training["config"].update(init="mrt_env/assets/tiny-lm", anchor=0.8)
    training["recipe"] = recipe
    return dict(training)


@needs_shipped
def test_card_shows_the_band_checks_and_an_anchored_recipe(tmp_path: Path) -> None:

    training = _anchored_training("graded-checks")
    measured = {
        "args": {"model": "m", "out": "o", "trajectories": 60, "k": 32, "seed": 0},
        "prefixes": 196,
        "share_graded": 0.194,
        "histogram": [153, 2, 2, 1, 3, 4, 6, 10, 10, 5],
        "mean_j_by_episode": [0.004, 0.143],
        "share_trajectories_rising": 0.55,
        "seconds": 44.0,
        "load_average": [2.0, 3.0, 4.0],
        "base": {"model": "mrt_env/assets/tiny-lm", "pass_at_1": {"greedy": 0.454}},
        "checks": [
            {"name": "share graded", "value": "0.194", "target": ">= 0.25", "passed": False},
            {"name": "greedy band", "value": "0.488", "target": "[0.411, 0.498]", "passed": True},
        ],
    }
    measured["args"].update(temperature=0.8, pass_problems=500)
    card = _graded_card(tmp_path, training, measured)
    assert "| share graded | 0.194 | >= 0.25 | FAIL |" in card
    assert "| greedy band | 0.488 | [0.411, 0.498] | PASS |" in card
    assert "95% Wilson interval of `mrt_env/assets/tiny-lm`'s pass@1 on the same 500" in card
    assert "(`--recipe graded-checks`, below)" in card and "`--anchor`" in card
    assert "0.5, 0.65, 0.75, 0.8 (each check raises it, capped below 0.9" in card
    assert "checked with probability 0.95, again with 0.5" in card


CARD_TEXTS = {
    "graded-direct": (
        "Each example is a direct answer (probability 0.40, below), else a natural",
        "a direct\n  answer: the gold answer with probability 0.6, else a near miss",
        "- Direct answer: a problem of level 1 forced to answer from the empty thinking",
        "with probability\n  0.5, 0.7, 0.8, 0.85 (each check raises it",
        "μ adds small numbers in its head",
        "`--recipe graded-direct`",
    ),
    "explain": (
        "forced to stop with the `tiny-explain` template's termination suffix",
        "(the *explain* recipe, `--recipe explain`)",
        "0.5, 0.7, 0.8, 0.85",
        "slips with probability\n  0.95, more often than a written first attempt",
        "key\n  `mrt_template`",
        "μ is slower at equal K",
    ),
}
"""Sentences the card of each recipe must hold (its answers, beliefs and template)."""


@needs_shipped
@pytest.mark.parametrize("recipe", sorted(CARD_TEXTS))
def test_card_of_a_graded_recipe_describes_its_forced_answers(recipe: str, tmp_path: Path) -> None:
    card = _graded_card(tmp_path, _anchored_training(recipe))
    missing = [text for text in CARD_TEXTS[recipe] if text not in card]
    assert missing == [] and "{forced" not in card
