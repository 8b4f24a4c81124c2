"""Poisoned problem files fail when the source is built, with an error naming the file and line;
valid but extreme files (huge integer answers written as text) load and grade."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mrt_env.sources import ProblemSourceError, load_jsonl, resolve_source
from rewards import Verifier, VerifierConfig

GOOD = json.dumps({"problem": "1+1?", "answer": "2"}).encode()

# (name, the bytes of line 2, a fragment of the expected message)
POISONED_LINES = [
    ("NaN answer", b'{"problem": "p", "answer": NaN}', "NaN is not valid JSON"),
    ("Infinity answer", b'{"problem": "p", "answer": Infinity}', "Infinity is not valid JSON"),
    ("-Infinity in metadata", b'{"problem": "p", "answer": "1", "w": -Infinity}', "-Infinity"),
    ("nan as text", b'{"problem": "p", "answer": "nan"}', "is not a number"),
    ("unbalanced braces", b'{"problem": "p", "answer": "\\\\frac{1}{2"}', "unbalanced braces"),
    ("stray closing brace", b'{"problem": "p", "answer": "1}{"}', "unbalanced braces"),
    ("NUL in the answer", b'{"problem": "p", "answer": "5\\u0000"}', "NUL or lone-surrogate"),
    ("lone surrogate answer", b'{"problem": "p", "answer": "\\ud800"}', "lone-surrogate"),
    ("lone surrogate problem", b'{"problem": "\\udfff?", "answer": "1"}', "lone-surrogate"),
    ("answer only wrappers", b'{"problem": "p", "answer": "$$"}', "no answer left"),
    ("Latin-1 byte", b'{"problem": "caf\xe9?", "answer": "1"}', "not UTF-8 (byte 0xe9"),
    ("huge integer literal", b'{"problem": "p", "answer": ' + b"7" * 5000 + b"}", "5000 digits"),
    (
        "huge integer in metadata",
        b'{"problem": "p", "answer": "1", "n": ' + b"1" * 4500 + b"}",
        "4500",
    ),
    (
        "deeply nested JSON",
        b'{"problem": "p", "answer": "1", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "invalid JSON",
    ),
    ("answer is a list", b'{"problem": "p", "answer": [1, 2]}', "must be text or a number"),
    ("answer is true", b'{"problem": "p", "answer": true}', "must be text or a number"),
    ("answer is null", b'{"problem": "p", "answer": null}', "must be text or a number"),
    (
        "two objects on a line",
        b'{"problem": "p", "answer": "1"} {"problem": "q", "answer": "2"}',
        "invalid JSON",
    ),
    ("truncated line", b'{"problem": "p", "answer": "1', "invalid JSON"),
    ("over-long gold", b'{"problem": "p", "answer": "' + b"1+" * 60_000 + b'1"}', "longer than"),
    # Short text for numbers of billions of digits: every verification against them timed out
    # (J = 0 at about 5 s per forced answer); refused when the file is read.
    ("power tower 10^10^10", b'{"problem": "p", "answer": "10^{10^{10}}"}', "1e+10 digits"),
    ("power tower 9^9^9^9", b'{"problem": "p", "answer": "9^{9^{9^{9}}}"}', "1e300 digits"),
    ("tower in a fraction", b'{"problem": "p", "answer": "\\\\frac{1}{2^{2^{40}}}"}', "digits"),
    ("ungrouped tower", b'{"problem": "p", "answer": "10^{10}^{10}"}', "1e+10 digits"),
    ("tower with \\cdot", b'{"problem": "p", "answer": "3 \\\\cdot 7^{10^{9}}"}', "digits"),
    ("100000!", b'{"problem": "p", "answer": "100000!"}', "5e+05 digits"),
    ("(10!)!", b'{"problem": "p", "answer": "(10!)!"}', "grading it would time out"),
]


@pytest.mark.parametrize(
    ("line", "message"),
    [(line, message) for _, line, message in POISONED_LINES],
    ids=[name for name, _, _ in POISONED_LINES],
)
def test_poisoned_line_names_file_and_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(GOOD + b"\n" + line + b"\n" + GOOD.replace(b"1+1", b"2+2") + b"\n")
    start = time.perf_counter()
    with pytest.raises(ProblemSourceError) as error:
        load_jsonl(path)
    assert time.perf_counter() - start < 2.0
    assert "poisoned.jsonl:2: " in str(error.value)
    assert message in str(error.value)


def test_poisoned_file_fails_when_the_env_is_built(tmp_path: Path) -> None:
    import gymnasium as gym

    import mrt_env  # noqa: F401  (registers the envs)

    path = tmp_path / "nan.jsonl"
    path.write_bytes(GOOD + b"\n" + b'{"problem": "p", "answer": NaN}\n')
    with pytest.raises(ProblemSourceError, match=r"nan\.jsonl:2: NaN"):
        gym.make("MRTMath-v0", problems=str(path))


def test_poisoned_records_in_a_list_name_the_index() -> None:
    with pytest.raises(ProblemSourceError, match=r"list\[1\]: field 'answer' is not a finite"):
        resolve_source([{"problem": "a", "answer": 1}, {"problem": "b", "answer": float("nan")}])


def test_a_power_tower_gold_in_reset_options_is_refused_at_once() -> None:
    import gymnasium as gym

    import mrt_env  # noqa: F401  (registers the envs)
    from tests.mrt_env.env_doubles import env_kwargs

    env = gym.make("MRTMath-v0", **env_kwargs())
    start = time.perf_counter()
    with pytest.raises(ProblemSourceError, match=r"options\['problem'\]: field 'answer' writes"):
        env.reset(options={"problem": {"problem": "p", "answer": "10^{10^{10}}"}})
    assert time.perf_counter() - start < 2.0
    env.reset(options={"problem": {"problem": "p", "answer": "10^{100}"}})  # still usable


@pytest.mark.parametrize(
    ("gold", "digits"),
    [
        ("10^{100}", 101),
        ("2^{10}", 4),
        ("2^{2^{2^{2^{2}}}}", 19_729),  # 2^65536: 19,729 digits, graded in well under a second
        ("3 \\cdot 10^{5}", 6),
        ("\\frac{1}{2^{10}}", 4),
        ("20!", 19),
        ("x^{10^{10}}", 0),  # a power of a symbol is never expanded
        ("1^{10^{100}}", 1),
        ("\\sqrt{2}^{100}", 31),  # an upper bound: 2^100 has 31 digits
    ],
)
def test_large_but_gradable_golds_load(gold: str, digits: int) -> None:
    from mrt_env.gold_size import MAX_GOLD_DIGITS, gold_digits

    assert gold_digits(gold) == digits  # decimal digits counted by hand
    assert digits <= MAX_GOLD_DIGITS
    [problem] = resolve_source([{"problem": "p", "answer": gold}]).problems  # type: ignore[attr-defined]
    assert problem.answer == gold


def test_a_5000_digit_answer_as_text_loads_and_grades(tmp_path: Path) -> None:
    digits = "12345" * 1000
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"problem": "Compute it.", "answer": digits}) + "\n", "utf-8")
    [problem] = load_jsonl(path).problems
    assert problem.answer == digits
    verifier = Verifier(VerifierConfig(workers=1, max_answer_chars=10_000))
    try:
        assert verifier.verify(f"</think>\\boxed{{{digits}}}", problem.answer).status == "correct"
        assert verifier.verify("</think>\\boxed{12345}", problem.answer).status == "wrong"
        assert verifier._pool is None  # integers of any length are compared without workers
    finally:
        verifier.close()
