"""ScriptedLM: the scripted test double honours the sampling contract."""

from __future__ import annotations

import sys

import pytest

from mrt_env.lm.base import LanguageModel, SamplingParams, find_stop
from mrt_env.lm.scripted import ScriptedLM


def test_is_a_language_model_and_imports_no_torch() -> None:
    assert isinstance(ScriptedLM(["x"]), LanguageModel)
    if "torch" not in sys.modules:  # only meaningful when nothing else imported torch first
        import mrt_env.lm  # noqa: F401

        assert "torch" not in sys.modules


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        # no stop string, fits the cap: the script ended, as if with EOS
        ("abc", SamplingParams(10), ("abc", "eos", None)),
        # cut after max_new_tokens characters
        ("abcdef", SamplingParams(4), ("abcd", "length", None)),
        # stop string at offset >= 1: excluded from the text
        ("x\n\nWait y", SamplingParams(50, stop=("\n\nWait",)), ("x", "stop", "\n\nWait")),
        # stop string at offset 0 is ignored; the next occurrence stops
        (
            "\n\nWait a\n\nWait b",
            SamplingParams(50, stop=("\n\nWait",)),
            ("\n\nWait a", "stop", "\n\nWait"),
        ),
        # earliest of several stop strings wins
        ("a. But b. So c", SamplingParams(50, stop=("So", "But")), ("a. ", "stop", "But")),
        # a stop string beyond the token cap does not count
        ("abcdefWait", SamplingParams(6, stop=("Wait",)), ("abcdef", "length", None)),
    ],
)
def test_cuts_like_a_model(text: str, params: SamplingParams, expected: tuple) -> None:
    [[completion]] = ScriptedLM([text]).generate(["prompt"], params)
    assert (completion.text, completion.finish_reason, completion.stop_string) == expected
    assert len(completion.token_ids) == len(completion.logprobs) == len(completion.text)


def test_word_tokens_are_lossless() -> None:
    lm = ScriptedLM(["one two  three\n"], tokenization="word")
    text = "Wait,  so 3 + 4\n\n= 7 "
    assert lm.decode(lm.encode(text)) == text
    assert lm.count_tokens(text) == 8  # "Wait," " so" " 3" " +" " 4" "\n\n=" " 7" " "
    [[c]] = lm.generate(["p"], SamplingParams(max_new_tokens=2))
    assert (c.text, c.finish_reason, len(c.token_ids)) == ("one two", "length", 2)


def test_mapping_uses_longest_matching_suffix_and_default() -> None:
    lm = ScriptedLM({"?": "generic", "1+1?": "2"}, default="none")
    out = lm.generate(["What is 1+1?", "Why?", "Hello"], SamplingParams(10))
    assert [group[0].text for group in out] == ["2", "generic", "none"]
    with pytest.raises(KeyError, match="no scripted continuation"):
        ScriptedLM({"?": "x"}).generate(["Hello"], SamplingParams(10))


def test_sequence_cycles_over_samples_and_calls() -> None:
    lm = ScriptedLM(["a", "b", "c"])
    out = lm.generate(["p", "q"], SamplingParams(5, n=2))
    assert [[c.text for c in group] for group in out] == [["a", "b"], ["c", "a"]]
    assert len(lm.calls) == 1 and lm.calls[0][0] == ("p", "q")


def test_callable_sees_prompt_and_sample_index() -> None:
    lm = ScriptedLM(lambda prompt, j: f"{prompt}-{j}")
    out = lm.generate(["p"], SamplingParams(10, n=3), seeds=[0])
    assert [c.text for c in out[0]] == ["p-0", "p-1", "p-2"]


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: ScriptedLM("text"), TypeError),  # a bare string is not a script
        (lambda: ScriptedLM([]), ValueError),  # nothing to say
        (lambda: ScriptedLM(["x"], tokenization="bpe"), ValueError),  # type: ignore[arg-type]
        (lambda: ScriptedLM(["x"]).generate(["a"], SamplingParams(1), seeds=[1, 2]), ValueError),
    ],
)
def test_bad_arguments_raise(make, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        make()


def test_find_stop_prefers_earliest_then_longest() -> None:
    assert find_stop("Wait", ["Wait"]) is None  # offset 0 only
    assert find_stop("a\n\nWait", ["\n\n", "\n\nWait"]) == (1, "\n\nWait")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_new_tokens": -1}, ValueError),  # negative cap
        ({"max_new_tokens": 1, "temperature": -0.5}, ValueError),  # negative temperature
        ({"max_new_tokens": 1, "top_p": 0.0}, ValueError),  # empty nucleus
        ({"max_new_tokens": 1, "n": 0}, ValueError),  # no samples
        ({"max_new_tokens": 1, "stop": "\n\n"}, TypeError),  # a bare str would stop at each char
        ({"max_new_tokens": 1, "stop": ("",)}, ValueError),  # an empty stop string
    ],
)
def test_sampling_params_reject_bad_values(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        SamplingParams(**kwargs)
