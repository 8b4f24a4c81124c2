"""TinyMath problems, column arithmetic, traces and training examples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mrt_env.problems import ProblemSource
from mrt_env.segmenters import MarkerSegmenter
from mrt_env.templates import TEMPLATES
from mrt_env.tinymath import LEVELS, Expression, TinyMathSource, sample_expression, split_of
from mrt_env.tinymath.arithmetic import Slip, add_columns, compute, mul_columns, sub_columns
from mrt_env.tinymath.data import DATA_RECIPES, DataRecipe, encode_example, training_text
from mrt_env.tinymath.forced import (
    ForcedRecipe,
    forced_answer,
    forced_cut,
    near_miss,
)
from mrt_env.tinymath.traces import (
    Trace,
    TraceRecipe,
    natural_response,
    sample_trace,
)


@pytest.mark.parametrize(
    ("op", "a", "b", "expected_text"),
    [
        ("+", 47, 38, "47+38: 7+8=15, 4+3+1=8, so 85"),  # carry into the tens
        ("+", 85, 47, "85+47: 5+7=12, 8+4+1=13, so 132"),  # carry out of the top column
        ("+", 53, 124, "53+124: 3+4=7, 5+2=7, 0+1=1, so 177"),  # operands of different widths
        ("-", 632, 285, "632-285: 12-5=7, 13-8-1=4, 6-2-1=3, so 347"),  # two borrows
        ("-", 632, 625, "632-625: 12-5=7, 3-2-1=0, 6-6=0, so 7"),  # leading zeros dropped
        ("*", 47, 6, "47*6: 7*6=42, 4*6+4=28, so 282"),  # one-digit factor with carry
    ],
)
def test_column_arithmetic_is_exact(op: str, a: int, b: int, expected_text: str) -> None:
    text, result = compute(op, a, b)
    assert text == expected_text
    assert result == {"+": a + b, "-": a - b, "*": a * b}[op]


@pytest.mark.parametrize(
    ("slip", "expected"),
    [
        (Slip(column=1, kind="carry"), 75),  # the carry into the tens is dropped
        (Slip(column=0, kind="digit_up"), 86),  # 7+8 written as 16, carry follows
        (Slip(column=1, kind="digit_down"), 75),  # tens column one too low
    ],
)
def test_slips_change_the_result_consistently(slip: Slip, expected: int) -> None:
    assert add_columns(47, 38, slip)[1] == expected


def test_random_column_arithmetic_matches_python() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, b = (int(x) for x in rng.integers(0, 1000, size=2))
        assert add_columns(a, b)[1] == a + b
        assert sub_columns(max(a, b), min(a, b))[1] == abs(a - b)
        assert mul_columns(a, b % 10)[1] == a * (b % 10)


def test_sub_columns_rejects_negative_results() -> None:
    with pytest.raises(ValueError, match="b <= a"):
        sub_columns(3, 5)


def test_generator_is_deterministic_per_seed() -> None:
    first = TinyMathSource(split="train", size=50, levels=LEVELS, seed=3)
    again = TinyMathSource(split="train", size=50, levels=LEVELS, seed=3)
    other = TinyMathSource(split="train", size=50, levels=LEVELS, seed=4)
    assert [p.id for p in first] == [p.id for p in again]
    assert [p.id for p in first] != [p.id for p in other]


def test_splits_are_disjoint_and_answers_exact() -> None:
    train = TinyMathSource(split="train", size=2000, levels=(1,), seed=0)
    heldout = TinyMathSource(split="heldout", size=300, levels=(1,), seed=0)
    assert not {p.problem for p in train} & {p.problem for p in heldout}
    for source, split in ((train, "train"), (heldout, "heldout")):
        assert all(split_of(e) == split for e in source.expressions)
        assert all(
            p.answer == str(e.value) for p, e in zip(source, source.expressions, strict=True)
        )
    assert len({p.id for p in train}) == len(train)


def test_source_implements_problem_source() -> None:
    source = TinyMathSource(size=4)
    assert isinstance(source, ProblemSource)
    assert source[0].metadata["split"] == "heldout"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),  # empty source
        ({"levels": (9,)}, "unknown TinyMath levels"),  # no such level
    ],
)
def test_source_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TinyMathSource(**kwargs)


def test_levels_produce_expected_shapes() -> None:
    rng = np.random.default_rng(0)
    for level in LEVELS:
        for _ in range(50):
            expression = sample_expression(level, rng)
            assert expression.value >= 0
            assert eval(expression.text) == expression.value


def test_traces_split_into_episodes_with_marker_segmenter() -> None:
    rng, segmenter = np.random.default_rng(0), MarkerSegmenter(min_paragraphs=1)
    counts = []
    for _ in range(200):
        trace = sample_trace(sample_expression(int(rng.integers(1, 6)), rng), rng)
        assert segmenter.split(trace.thinking) == list(trace.episodes)
        counts.append(len(trace.episodes))
    assert np.mean(counts) >= 2.0
    assert max(counts) >= 3


def test_checks_catch_slips_and_final_answers_are_mostly_right() -> None:
    rng = np.random.default_rng(1)
    corrected, right = 0, 0
    for _ in range(400):
        expression = sample_expression(2, rng)
        trace = sample_trace(expression, rng)
        first = trace.answers[0][1]
        corrected += first != expression.value and trace.final_answer == expression.value
        right += trace.final_answer == expression.value
    assert corrected > 40  # re-checks fix many slipped first attempts
    assert 0.85 < right / 400 < 1.0  # but not all: some slips go unchecked


def test_forced_cut_answers_with_the_last_stated_answer() -> None:
    expression = Expression((47, 38), ("+",))
    rng = np.random.default_rng(0)
    for _ in range(100):
        trace = sample_trace(expression, rng)
        prefix, answer = forced_cut(trace, expression.value, rng)
        assert trace.thinking.startswith(prefix)
        stated = trace.answer_at(len(prefix))
        assert answer == (expression.value if stated is None else stated)


def test_training_text_layouts() -> None:
    rng, template = np.random.default_rng(0), TEMPLATES["tiny"]
    natural = training_text(rng, DataRecipe(forced_fraction=0.0))
    forced = training_text(rng, DataRecipe(forced_fraction=1.0))
    assert natural[0][natural[1] :].endswith("}") and "</think>\n\\boxed{" in natural[0]
    assert forced[0][: forced[1]].endswith(template.termination)
    assert forced[0][forced[1] :].endswith("}")


def test_encode_example_masks_the_prompt() -> None:
    from mrt_env.tinymath.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    ids, labels = encode_example("Problem: 1+1\n<think>\nso 2.", 21, tokenizer)
    assert len(ids) == len(labels) == len("Problem: 1+1\n<think>\nso 2.") + 1
    assert labels[:21] == [-100] * 21 and labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[:-1]) == "Problem: 1+1\n<think>\nso 2."


def test_natural_response_ends_with_boxed_answer() -> None:
    from rewards import verify

    expression = Expression((47, 38), ("+",))
    trace = sample_trace(expression, np.random.default_rng(0))
    assert verify(natural_response(trace), str(trace.final_answer)).correct


def test_a_recomputation_never_overrides_an_answer_by_itself() -> None:
    rng, tiebreaks = np.random.default_rng(2), 0
    for _ in range(400):
        trace = sample_trace(sample_expression(int(rng.integers(1, 6)), rng), rng)
        ends = np.cumsum([len(episode) for episode in trace.episodes])
        for i, kind in enumerate(trace.kinds):
            if kind != "redo":
                continue
            before, after = trace.answer_at(int(ends[i - 1])), trace.answer_at(int(ends[i]))
            assert before == after is not None
            verdicts = (f"(before: {before}). Same.", f"(before: {before}). Different.")
            assert trace.episodes[i].endswith(verdicts)
            if trace.episodes[i].endswith("Different.") and i + 1 < len(trace.kinds):
                assert trace.kinds[i + 1] == "tiebreak"  # only a tie-break settles it
                tiebreaks += 1
    assert tiebreaks > 5


def test_some_traces_open_with_a_quick_guess_then_work_it_out() -> None:
    rng, guesses, right = np.random.default_rng(4), 0, 0
    for _ in range(300):
        expression = sample_expression(int(rng.integers(1, 6)), rng)
        trace = sample_trace(expression, rng)
        if trace.kinds[0] != "guess":
            assert trace.kinds[0] == "attempt"
            continue
        guesses += 1
        right += trace.answers[0][1] == expression.value
        assert trace.episodes[0].startswith(f"{expression.text} is about ")
        assert trace.kinds[1] == "attempt"
        assert trace.episodes[1].startswith("\n\nWait, let me work it out: ")
    assert 0.25 < guesses / 300 < 0.55 and right < guesses / 2


# ---------------------------------------------------------------- the graded forced answers
GRADED = ForcedRecipe(confidence=(0.5, 0.75, 0.875, 0.9375), guess_confidence=0.25)


def _hand_trace() -> Trace:
    """A quick guess, a slipped attempt, a failed check, a new attempt, two passed checks."""
    episodes = (
        "47+38 is about 80.",
        "\n\nWait, let me work it out: 47+38: 7+8=15, 4+3=7, so 75.",
        "\n\nBut let me double-check: 47+38: 7+8=15, 4+3+1=8, so 85 (before: 75). Different.",
        "\n\nWait, once more: 47+38: 7+8=15, 4+3+1=8, so 85.",
        "\n\nBut let me double-check: 47+38: 7+8=15, 4+3+1=8, so 85 (before: 85). Same.",
        "\n\nBut wait, check: 85-38: 15-8=7, 8-3-1=4, so 47. Yes.",
    )
    ends = np.cumsum([len(e) for e in episodes]).tolist()
    kinds = ("guess", "attempt", "redo", "tiebreak", "redo", "check")
    answers = ((ends[0], 80), (ends[1], 75), (ends[3], 85))
    return Trace(episodes, kinds, answers, 85)


def test_support_counts_the_checks_that_confirm_the_last_answer() -> None:
    trace = _hand_trace()
    ends = np.cumsum([len(e) for e in trace.episodes]).tolist()
    assert trace.support_at(0) == (None, 0)
    assert trace.support_at(ends[0] - 1) == (None, 0)  # the guess is not finished yet
    assert trace.support_at(ends[0]) == (80, -1)  # a quick guess
    assert trace.support_at(ends[1]) == (75, 0)  # a worked answer, unchecked
    assert trace.support_at(ends[2]) == (75, 0)  # a failed check confirms nothing
    assert trace.support_at(ends[3]) == (85, 0)  # the tie-break states a new answer
    assert trace.support_at(ends[4]) == (85, 1)
    assert trace.support_at(ends[5] - 1) == (85, 1)  # a check counts once it is whole
    assert trace.support_at(ends[5]) == (85, 2)


def test_graded_forced_answers_follow_the_belief_of_the_evidence() -> None:
    rng, n, gold = np.random.default_rng(0), 4000, 85
    # (stated, confirmations, belief): a guess, then worked answers with 0..4 checks.
    for stated, confirmations, belief in [
        (85, -1, 0.25),
        (85, 0, 0.5),
        (85, 1, 0.75),
        (85, 2, 0.875),
        (85, 3, 0.9375),
        (85, 7, 0.9375),  # more checks keep the last belief
        (75, 0, 0.5),
        (75, 2, 0.875),
    ]:
        answers = [forced_answer(stated, confirmations, gold, rng, GRADED) for _ in range(n)]
        share = np.mean([a == stated for a in answers])
        assert abs(share - belief) < 4 * np.sqrt(belief * (1 - belief) / n), (stated, share)
        others = {a for a in answers if a != stated}
        if stated != gold:
            assert others == {gold}  # doubting a wrong answer recovers the right one
        else:
            assert others <= {75, 95, 84, 86}  # doubting a right one: a near miss


def test_classic_and_no_answer_forced_targets() -> None:
    rng = np.random.default_rng(1)
    assert {forced_answer(75, 0, 85, rng) for _ in range(50)} == {75}  # classic: copy
    assert {forced_answer(None, 0, 85, rng, GRADED) for _ in range(50)} == {85}  # direct guess


def test_near_misses_are_one_digit_off_and_never_negative() -> None:
    rng = np.random.default_rng(2)
    seen = {near_miss(5, rng) for _ in range(200)}
    assert seen == {4, 6}
    seen = {near_miss(100, rng) for _ in range(400)}
    assert seen == {99, 101, 90, 110, 0, 200}
    assert {near_miss(0, rng) for _ in range(20)} == {1}


def test_graded_recipe_cuts_are_seeded_and_graded_after_an_unchecked_attempt() -> None:
    def targets(seed: int) -> list[tuple[str, int, int | None, int, int]]:
        rng, out = np.random.default_rng(seed), []
        for _ in range(3000):
            expression = sample_expression(int(rng.integers(1, 6)), rng)
            trace = sample_trace(expression, rng)
            prefix, answer = forced_cut(trace, expression.value, rng, DATA_RECIPES["graded"].forced)
            stated, confirmations = trace.support_at(len(prefix))
            out.append((prefix, answer, stated, confirmations, expression.value))
        return out

    first = targets(3)
    assert first == targets(3)
    unchecked = [(a, s) for _, a, s, c, g in first if c == 0 and s == g]
    checked = [(a, s) for _, a, s, c, g in first if c == 1 and s == g]
    assert len(unchecked) > 300 and len(checked) > 200
    assert 0.4 < np.mean([a == s for a, s in unchecked]) < 0.6
    assert 0.65 < np.mean([a == s for a, s in checked]) < 0.85


# ---------------------------------------------------------------- the worked forced answers
def test_worked_forced_answers_are_the_gold_answer_after_every_prefix() -> None:
    worked = ForcedRecipe(worked=True, confidence=(0.5,))  # confidence is unused when worked
    rng, trace = np.random.default_rng(4), _hand_trace()
    # the hand trace's answers: a guess of 80, a slipped 75, then 85 (gold) twice confirmed
    for stated, confirmations in [(None, 0), (80, -1), (75, 0), (85, 0), (85, 2)]:
        assert {forced_answer(stated, confirmations, 85, rng, worked) for _ in range(50)} == {85}
    cuts = [forced_cut(trace, 85, rng, worked) for _ in range(300)]
    assert {answer for _, answer in cuts} == {85}
    assert len({prefix for prefix, _ in cuts}) > 20  # cut at many places, yet always 85


def test_worked_recipe_cuts_forced_examples_from_traces_that_slip_more() -> None:
    import re

    from mrt_env.tinymath.data import training_example

    def shares(recipe: DataRecipe) -> tuple[float, float]:
        """(share of whole first attempts that are wrong, share of natural examples)."""
        rng, wrong, attempts, natural = np.random.default_rng(5), 0, 0, 0
        for _ in range(2000):
            text, start, is_natural = training_example(rng, recipe)
            natural += is_natural
            if is_natural:
                continue
            problem = text.split("Problem: ", 1)[1].split("\n", 1)[0]
            gold = int(eval(problem))  # level 1: "47+38"
            assert int(text[start:-1]) == gold or not recipe.forced.worked
            stated = re.search(r", so (\d+)\.", text)  # the first worked attempt, if cut whole
            if stated:
                attempts += 1
                wrong += int(stated.group(1)) != gold
        return wrong / attempts, natural / 2000

    worked, natural_share = shares(replace(DATA_RECIPES["worked"], levels=(1,)))
    classic, _ = shares(DataRecipe(levels=(1,), forced_fraction=0.5))
    assert abs(natural_share - 0.5) < 0.05  # half the examples are natural traces
    # first_slip 0.5 for the traces the forced examples cut, against the natural traces' 0.2
    assert 0.4 < worked < 0.6 and 0.12 < classic < 0.28, (worked, classic)


def test_graded_checks_recipe_caps_the_belief_and_checks_right_answers_more() -> None:
    recipe = DATA_RECIPES["graded-checks"]
    rng, n = np.random.default_rng(6), 4000
    trace = _hand_trace()  # 85 (gold) stated by the tie-break, then two checks that pass
    ends = np.cumsum([len(e) for e in trace.episodes]).tolist()
    # beliefs after 0 and 2 checks (0.5, 0.75), and 0.8 for 3 or more: never 0.9 or above
    for cut, belief in [(ends[3], 0.5), (ends[5], 0.75)]:
        stated, confirmations = trace.support_at(cut)
        answers = [forced_answer(stated, confirmations, 85, rng, recipe.forced) for _ in range(n)]
        share = np.mean([a == 85 for a in answers])
        assert abs(share - belief) < 4 * np.sqrt(belief * (1 - belief) / n), (cut, share)
    answers = [forced_answer(85, 7, 85, rng, recipe.forced) for _ in range(n)]
    assert abs(np.mean([a == 85 for a in answers]) - 0.8) < 4 * np.sqrt(0.16 / n)

    def checks_of_right_traces(trace_recipe: TraceRecipe) -> tuple[float, float]:
        """(share of right first attempts checked at least once, mean checks of those)."""
        rng, checked, total, count = np.random.default_rng(7), 0, 0, 0
        while count < 1500:
            expression = Expression(
                (int(rng.integers(10, 100)), int(rng.integers(10, 100))), ("+",)
            )
            trace = sample_trace(expression, rng, trace_recipe)
            kinds = [k for k in trace.kinds if k != "guess"]
            if trace.answers[-1][1] != expression.value or len(trace.answers) != 1 + (
                trace.kinds[0] == "guess"
            ):
                continue  # only traces whose first worked attempt is right and kept
            count += 1
            checks = sum(k in ("check", "redo") for k in kinds)
            checked += checks > 0
            total += checks
        return checked / count, total / count

    natural = checks_of_right_traces(recipe.trace)
    classic = checks_of_right_traces(TraceRecipe())
    assert abs(natural[0] - 0.95) < 0.03 and abs(classic[0] - 0.8) < 0.04, (natural, classic)
    assert natural[1] > classic[1] + 0.3


# ---------------------------------------------------------------- direct answers (graded-direct)
def test_direct_answers_follow_their_belief_and_miss_by_one_digit() -> None:
    recipe = DATA_RECIPES["graded-direct"].forced
    rng, n, gold = np.random.default_rng(8), 4000, 85
    answers = [forced_answer(None, 0, gold, rng, recipe) for _ in range(n)]
    share = np.mean([a == gold for a in answers])
    assert abs(share - 0.6) < 4 * np.sqrt(0.6 * 0.4 / n), share  # the direct belief
    assert {a for a in answers if a != gold} == {75, 95, 84, 86}  # else a near miss
    # a worked answer keeps the capped graded beliefs: 0.5 unchecked, 0.85 after 3+ checks
    for confirmations, belief in [(0, 0.5), (1, 0.7), (5, 0.85)]:
        answers = [forced_answer(gold, confirmations, gold, rng, recipe) for _ in range(n)]
        share = np.mean([a == gold for a in answers])
        assert abs(share - belief) < 4 * np.sqrt(belief * (1 - belief) / n), (confirmations, share)
    with pytest.raises(ValueError, match="direct is a belief"):
        ForcedRecipe(direct=0.0)


def _problem_of(text: str) -> str:
    return text.split("Problem: ", 1)[1].split("\n", 1)[0]


def test_graded_direct_recipe_adds_level_one_direct_answers_at_their_rate() -> None:
    from mrt_env.tinymath.data import training_example

    recipe = DATA_RECIPES["graded-direct"]
    rng, n = np.random.default_rng(9), 6000
    empty, empty_level_one, right = 0, 0, 0
    for _ in range(n):
        text, start, natural = training_example(rng, recipe)
        if natural or "<think>\nTime is up." not in text:
            continue  # natural traces and forced cuts after some thinking
        empty += 1
        problem = _problem_of(text)
        if len(problem) == 5 and problem[2] == "+":  # level 1: "47+38"
            empty_level_one += 1
            right += int(text[start:-1]) == eval(problem)
    # direct answers (0.4) plus the forced cuts at nothing: 0.6 * 0.25 * 0.15, a fifth at level 1
    cut_at_nothing = 0.6 * 0.25 * 0.15
    expected = {"empty": 0.4 + cut_at_nothing, "level one": 0.4 + cut_at_nothing / 5}
    for name, count in [("empty", empty), ("level one", empty_level_one)]:
        p = expected[name]
        assert abs(count / n - p) < 4 * np.sqrt(p * (1 - p) / n), (name, count / n)
    assert abs(right / empty_level_one - 0.6) < 4 * np.sqrt(0.24 / empty_level_one)
    with pytest.raises(ValueError, match="direct_fraction"):
        DataRecipe(direct_fraction=1.0)


def test_recipes_without_direct_answers_keep_their_data_streams() -> None:
    """The shipped models' commands must still reproduce them: a recipe without direct
    answers draws exactly the examples it drew before direct answers existed (digests of the
    first 300 examples at seed 11, taken before the change)."""
    import hashlib

    expected = {
        "classic": "c9d4840efa5f4637",
        "graded": "92814d2763409530",
        "graded-checks": "8c5af0d5f83d7807",
        "worked": "09e8b70147998818",
    }
    for name, digest in expected.items():
        rng, h = np.random.default_rng(11), hashlib.sha256()
        for _ in range(300):
            text, start = training_text(rng, DATA_RECIPES[name])
            h.update(f"{start}:{text}".encode())
        assert h.hexdigest()[:16] == digest, name
