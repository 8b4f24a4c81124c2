"""``regret.py --answer-pattern``: which patterns grade the natural responses' final answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrt_env.templates import TEMPLATES, chat_template
from rewards.extraction import ANSWER_IS_PATTERN
from tests.benchmarks.scripts import load_script
from tests.mrt_env.test_templates_chat import chatml_tokenizer

regret = load_script("regret")
REPLY = "1 plus 1 makes 2.\n\nSo, the answer is 2."  # SmolLM2-style: no box


@pytest.mark.parametrize(
    ("option", "template", "patterns", "status"),
    [
        ((), "chat", (ANSWER_IS_PATTERN,), "correct"),  # default of a chat model without tags
        ((), "tiny", (), "no_answer"),  # default elsewhere: boxed only
        (("none",), "chat", (), "no_answer"),  # the paper's rule, asked for
        ((r"makes (\d+)",), "tiny", (r"makes (\d+)",), "correct"),
    ],
)
def test_answer_pattern_option_reaches_the_verifier(
    option: tuple[str, ...], template: str, patterns: tuple[str, ...], status: str
) -> None:
    resolved = chat_template(chatml_tokenizer()) if template == "chat" else TEMPLATES[template]
    verifier = regret.answer_verifier(resolved, regret.Args(answer_pattern=option))
    assert verifier.config.extra_patterns == patterns
    assert verifier.verify(REPLY, "2").status == status


def test_a_bad_answer_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        regret.answer_verifier(TEMPLATES["tiny"], regret.Args(answer_pattern=("(",)))


def test_cached_records_graded_another_way_are_not_reused(tmp_path: Path) -> None:
    """A cache written with boxed-only grading (or before the tag existed) is redone when the
    responses are now read with other patterns, and reused when the grading is the same."""
    import json

    cache = tmp_path / "cache.jsonl"
    specs = {"p": "org/hub-model"}  # a hub id: its fingerprint is the spec itself
    args = regret.Args(answer_pattern=("none",))
    fingerprints, _ = regret.cached_records(args, specs, cache)
    rows = [
        {"policy": "p", "problem_id": "a", "fingerprint": fingerprints["p"]},
        {"policy": "p", "problem_id": "b", "fingerprint": "org/hub-model"},  # before the tag
    ]
    cache.write_text("".join(json.dumps(row) + "\n" for row in rows))
    _, same = regret.cached_records(args, specs, cache)
    assert set(same) == {("p", "a")}
    for other in ((), (r"makes (\d+)",)):
        _, done = regret.cached_records(regret.Args(answer_pattern=other), specs, cache)
        assert done == {}
