"""The explain recipe: forced answers that write a short solution before ``\\boxed{}``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mrt_env.templates import DECLARED_TEMPLATE, TEMPLATES, resolve_template
from mrt_env.tinymath.data import DATA_RECIPES, forced_example, training_example
from mrt_env.tinymath.forced import (
    EXPLAIN_FORCED,
    ForcedRecipe,
    explained_answer,
)
from mrt_env.tinymath.problems import Expression
from mrt_env.tinymath.traces import (
    Trace,
    explanation,
)

SUM = Expression((86, 67), ("+",))


def test_an_explanation_is_one_attempt_written_in_a_line() -> None:
    rng = np.random.default_rng(0)
    assert explanation(SUM, rng, 0.0) == ("86+67: 6+7=13, 8+6+1=15, so 153", 153)
    two_ops = Expression((55, 39, 69), ("+", "-"))
    assert explanation(two_ops, rng, 0.0) == (
        "55+39: 5+9=14, 5+3+1=9, so 94. 94-69: 14-9=5, 9-6-1=2, so 25",
        25,
    )


def test_explanations_slip_at_their_rate_and_a_slip_changes_the_result() -> None:
    rng, n = np.random.default_rng(1), 4000
    for slip in (0.0, 0.4, 1.0):
        wrong = np.mean([explanation(SUM, rng, slip)[1] != 153 for _ in range(n)])
        assert abs(wrong - slip) <= 4 * np.sqrt(slip * (1 - slip) / n) + 1e-12, (slip, wrong)


def test_a_stated_answer_is_boxed_at_once_with_its_belief_else_explained() -> None:
    """(stated, confirmations, belief): a guess, worked answers with 0, 1, 5 checks."""
    recipe = ForcedRecipe(
        confidence=(0.5, 0.7, 0.8), guess_confidence=0.25, explain=True, explain_slip=0.0
    )
    rng, n = np.random.default_rng(2), 4000
    for stated, confirmations, belief in [
        (150, -1, 0.25),
        (150, 0, 0.5),
        (153, 1, 0.7),
        (150, 5, 0.8),
    ]:
        answers = [explained_answer(stated, confirmations, SUM, rng, recipe) for _ in range(n)]
        boxed = np.mean([a == f"\\boxed{{{stated}}}" for a in answers])
        assert abs(boxed - belief) < 4 * np.sqrt(belief * (1 - belief) / n), (stated, boxed)
        explained = {a for a in answers if a != f"\\boxed{{{stated}}}"}
        assert explained == {"86+67: 6+7=13, 8+6+1=15, so 153.\n\\boxed{153}"}


def test_nothing_stated_is_always_explained_and_slips_at_the_recipe_rate() -> None:
    rng, n = np.random.default_rng(3), 2000
    answers = [explained_answer(None, 0, SUM, rng, EXPLAIN_FORCED) for _ in range(n)]
    assert all(a.startswith("86+67: ") and "\n\\boxed{" in a for a in answers)
    wrong = np.mean([not a.endswith("\\boxed{153}") for a in answers])
    assert abs(wrong - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n), wrong
    exact = ForcedRecipe(confidence=(0.5,), explain=True, explain_slip=0.0)
    assert {explained_answer(None, 0, SUM, rng, exact)[-11:] for _ in range(50)} == {"\\boxed{153}"}
    assert EXPLAIN_FORCED.explain_slip == 0.95 and EXPLAIN_FORCED.confidence == (
        0.5,
        0.7,
        0.8,
        0.85,
    )


def test_explain_recipe_needs_beliefs_and_a_slip_probability() -> None:
    with pytest.raises(ValueError, match="beliefs"):
        ForcedRecipe(explain=True)
    with pytest.raises(ValueError, match="explain_slip"):
        ForcedRecipe(confidence=(0.5,), explain=True, explain_slip=1.5)


def test_a_forced_example_uses_the_explain_suffix_and_trains_only_the_answer() -> None:
    trace = Trace(("86+67: 6+7=13, 8+6+1=15, so 153.",), ("attempt",), ((32, 153),), 153)
    empty_cut = ForcedRecipe(confidence=(1.0,), explain=True, empty=1.0, boundary=0.0)
    text, start, natural = forced_example(SUM, trace, np.random.default_rng(4), empty_cut)
    suffix = "Time is up. I should stop thinking and answer.\n</think>\n"
    assert not natural
    assert text[:start] == f"Problem: 86+67\n<think>\n{suffix}"
    assert text[start:].startswith("86+67: ") and text[start:].endswith("}")
    boundary_cut = ForcedRecipe(confidence=(1.0,), explain=True, empty=0.0, boundary=1.0)
    text, start, _ = forced_example(SUM, trace, np.random.default_rng(4), boundary_cut)
    assert text[start:] == "\\boxed{153}"  # trusted at belief 1: boxed at once
    assert text[:start].endswith(f"so 153.\n\n{suffix}")


def test_explain_recipe_mixes_natural_traces_and_explained_forced_answers() -> None:
    rng, n = np.random.default_rng(5), 2000
    examples = [training_example(rng, DATA_RECIPES["explain"]) for _ in range(n)]
    forced = [(text, start) for text, start, natural in examples if not natural]
    share = len(forced) / n
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    suffix = TEMPLATES["tiny-explain"].termination
    assert all(text[:start].endswith(suffix) for text, start in forced)
    written = np.mean([not text[start:].startswith("\\boxed{") for text, start in forced])
    assert 0.3 < written < 0.8  # some answers are boxed at once, others explained


def test_a_declared_template_wins_unless_one_is_given() -> None:
    declaring = SimpleNamespace(
        name="tiny:explain",
        tokenizer=SimpleNamespace(init_kwargs={DECLARED_TEMPLATE: "tiny-explain"}),
    )
    assert resolve_template(None, declaring).name == "tiny-explain"
    assert resolve_template("tiny", declaring).name == "tiny"
    plain = SimpleNamespace(name="tiny", tokenizer=SimpleNamespace(init_kwargs={}))
    assert resolve_template(None, plain).name == "tiny"
    assert TEMPLATES["tiny-explain"].answer_caps().forced == 128


def test_training_the_explain_recipe_declares_its_template(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.tinymath.train import TrainConfig, save, train

    data = DATA_RECIPES["explain"]
    config = TrainConfig(data=data, preset="tiny", steps=1, batch_size=2, eval_examples=4)
    model, tokenizer, _ = train(config, progress=False)
    save(model, tokenizer, tmp_path, {"command": "test"})
    declared = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert declared[DECLARED_TEMPLATE] == "tiny-explain"
    from mrt_env.lm.hf import HFLanguageModel

    assert (
        resolve_template(None, HFLanguageModel.from_pretrained(str(tmp_path))).name
        == "tiny-explain"
    )


def test_explain_slip_and_beliefs_round_trip_through_the_recorded_command() -> None:
    from mrt_env.tinymath.train import TrainResult, _record, config_from_args

    flags = ["--recipe", "explain", "--explain-slip", "0.7", "--beliefs", "0.3,0.5"]
    config, _ = config_from_args(flags)
    assert config.data.forced.explain_slip == 0.7 and config.data.forced.confidence == (0.3, 0.5)
    assert config.data.forced.explain and config.data.forced_fraction == 0.25
    record = _record(config, TrainResult(), 1)
    assert record["recipe"] == "explain"
    assert record["command"].endswith("--recipe explain --beliefs 0.3,0.5 --explain-slip 0.7")
    assert config_from_args(record["command"].split()[3:])[0] == config
    plain = _record(config_from_args(["--recipe", "explain"])[0], TrainResult(), 1)
    assert plain["command"].endswith("--recipe explain")  # the recipe's own slip and beliefs
    graded, _ = config_from_args(["--recipe", "graded", "--beliefs", "0.5,0.6"])
    record = _record(graded, TrainResult(), 1)
    assert record["recipe"] == "graded" and record["command"].endswith("--beliefs 0.5,0.6")
    assert graded.data.forced.confidence == (0.5, 0.6) and not graded.data.forced.explain


def test_the_explain_template_splits_episodes_like_the_tiny_one() -> None:
    """One episode per marker paragraph, as for ``tiny``: with the R1 default (three paragraphs
    per episode) a tiny LM's response would be one episode and progress credit empty."""
    from mrt_env.config import default_segmenter
    from mrt_env.segmenter_spec import segmenter_from_spec

    assert default_segmenter(TEMPLATES["tiny-explain"]).min_paragraphs == 1
    assert segmenter_from_spec(None, "tiny-explain").min_paragraphs == 1
    assert segmenter_from_spec(None, "plain").min_paragraphs == 3


def test_the_card_shows_the_forced_answer_length_when_it_was_measured() -> None:
    from mrt_env.tinymath.card import _answer_row

    tokens = {"mean": 32.14, "max_prefix_mean": 80.87, "cap": 128}
    assert _answer_row({"forced_answer_tokens": tokens}) == (
        "\n| Forced-answer tokens (μ's cost per sample): mean, largest prefix mean, cap "
        "| 32.1, 80.9, 128 |"
    )
    assert _answer_row({"prefixes": 3}) == ""  # measured before the length was printed
