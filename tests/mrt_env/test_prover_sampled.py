"""SampledMetaProver: J from verified forced answers, dedup, caching, statistics, determinism."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from mrt_env.lm.base import SamplingParams
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover import MetaProver, ProverRequest, SampledMetaProver, wilson_interval
from mrt_env.templates import TEMPLATES

PROMPT = TEMPLATES["tiny"].render_prompt("2+2?")


def request(prefix: str = "", problem_id: str = "p1", seed: int = 0) -> ProverRequest:
    return ProverRequest(problem_id, PROMPT, "4", prefix, seed)


@dataclass
class Verdict:
    correct: bool


class CountingVerifier:
    """Test double: a forced answer is "correct" when it holds an even number of 'C'."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        self.pairs.extend(pairs)
        return [Verdict(response.count("C") % 2 == 0) for response, _ in pairs]


def test_fraction_correct_with_the_real_verifier_and_forced_response() -> None:
    lm = ScriptedLM(["4}", "5}", "4} done", "no answer"])
    prover = SampledMetaProver(lm, "tiny", k=4, max_answer_tokens=16)
    [estimate] = prover.estimate([request("I add 2 and 2.")])
    assert (estimate.j, estimate.num_correct, estimate.num_samples) == (0.5, 2, 4)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx(wilson_interval(2, 4))
    assert estimate.answer_tokens == pytest.approx((2 + 2 + 7 + 9) / 4)
    rendered = TEMPLATES["tiny"].render_forced(PROMPT, "I add 2 and 2.")
    assert lm.calls[0][0] == (rendered,)
    assert lm.calls[0][1] == SamplingParams(max_new_tokens=16, n=4)


def test_forced_response_passed_to_verifier_is_suffix_plus_answer() -> None:
    verifier = CountingVerifier()
    prover = SampledMetaProver(ScriptedLM(["7}"]), "tiny", k=2, verifier=verifier)
    prover.estimate([request("x")])
    expected = TEMPLATES["tiny"].render_forced(PROMPT, "x")[len(PROMPT) :] + "7}"
    assert verifier.pairs == [(expected, "4"), (expected, "4")]


@pytest.mark.parametrize(
    ("answers", "share"),
    [
        (["7}"], 1.0),  # a wrong answer is still a readable one
        (["4}", "and so"], 0.5),  # half the forced answers never close the box
    ],
)
def test_stats_count_forced_answers_with_a_readable_answer(
    answers: list[str], share: float
) -> None:
    prover = SampledMetaProver(ScriptedLM(answers), "tiny", k=4)
    prover.estimate([request("x")])
    assert prover.stats.answered_share == share


def test_the_default_answer_cap_is_the_templates() -> None:
    prover = SampledMetaProver(ScriptedLM(["4}"]), "r1-distill", k=2)
    assert prover.params.max_new_tokens == TEMPLATES["r1-distill"].answer_caps().forced == 512


def test_duplicates_and_cache_share_one_model_call() -> None:
    lm = ScriptedLM(["4}"])
    prover = SampledMetaProver(lm, "tiny", k=3)
    # a group of four trajectories at the empty prefix, plus one longer prefix
    batch = [request(seed=s) for s in range(4)] + [request("step one")]
    first = prover.estimate(batch)
    assert len(lm.calls) == 1 and len(lm.calls[0][0]) == 2  # two distinct inputs
    assert [e.cached for e in first] == [False] * 5
    second = prover.estimate(batch)
    assert len(lm.calls) == 1  # all from the cache
    assert [e.cached for e in second] == [True] * 5
    assert [e.j for e in second] == [e.j for e in first]
    counts = {k: v for k, v in prover.stats.as_dict().items() if not k.endswith("_seconds")}
    assert counts == {
        "requests": 10,
        "cache_hits": 5,
        "duplicates": 3,
        "unique_prefixes": 2,
        "generated_answers": 6,
        "answered": 6,  # "4}" after "\\boxed{" is a readable answer
        "model_calls": 1,
    }
    assert prover.stats.generate_seconds > 0 and prover.stats.verify_seconds > 0


def test_cache_key_includes_problem_and_lru_evicts() -> None:
    lm = ScriptedLM(["4}"])
    prover = SampledMetaProver(lm, "tiny", k=1, cache_size=1)
    prover.estimate([request(problem_id="a")])
    prover.estimate([request(problem_id="b")])  # same prefix, other problem: not a hit
    prover.estimate([request(problem_id="a")])  # evicted by "b"
    assert len(lm.calls) == 3 and prover.stats.cache_hits == 0


def test_empty_request_list_makes_no_model_call() -> None:
    lm = ScriptedLM(["4}"])
    assert SampledMetaProver(lm).estimate([]) == []
    assert lm.calls == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"k": 0}, ValueError),  # K must be positive
        ({"max_answer_tokens": 0}, ValueError),  # answers need at least one token
        ({"cache_size": -1}, ValueError),  # negative cache
        ({"template": "nope"}, KeyError),  # unknown template preset
    ],
)
def test_bad_arguments_raise(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        SampledMetaProver(ScriptedLM(["x"]), **kwargs)


def test_non_request_raises_type_error() -> None:
    with pytest.raises(TypeError, match="ProverRequest"):
        SampledMetaProver(ScriptedLM(["x"])).estimate(["prefix"])  # type: ignore[list-item]


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 8)[0] == 0.0 and wilson_interval(8, 8)[1] == 1.0
    assert wilson_interval(4, 8) == pytest.approx((0.2152, 0.7848), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


class TestWithTinyRandomModel:
    """The real transformers path: one generate call, shared prefill, deterministic J."""

    torch = pytest.importorskip("torch")

    @staticmethod
    def make(cache_size: int = 4096, lm_seed: int = 0) -> SampledMetaProver:
        from mrt_env.lm.testing import tiny_random_lm

        lm = tiny_random_lm(seed=lm_seed, prefix_cache_size=0)
        return SampledMetaProver(
            lm, "tiny", k=8, max_answer_tokens=6, cache_size=cache_size, verifier=CountingVerifier()
        )

    def test_is_a_meta_prover_with_one_prefill_per_distinct_prefix(self) -> None:
        prover = self.make()
        assert isinstance(prover, MetaProver)
        prefixes = ["", "", "Let x = 2.", "Let x = 2. Then 4."]
        prover.estimate([request(p, seed=i) for i, p in enumerate(prefixes)])
        template, lm = TEMPLATES["tiny"], prover.lm
        distinct = {template.render_forced(PROMPT, p) for p in prefixes}
        assert lm.stats.prefill_tokens == sum(len(text) for text in distinct)  # type: ignore[attr-defined]
        assert lm.stats.decode_steps <= 5  # type: ignore[attr-defined]
        assert prover.stats.generated_answers == 3 * 8

    def test_same_seeds_same_j_and_other_seeds_change_it(self) -> None:
        prefixes = ["", "a", "ab", "abc", "abcd", "abcde"]

        def run(seed: int) -> list[float]:
            estimates = self.make().estimate([request(p, seed=seed) for p in prefixes])
            return [e.j for e in estimates]

        first = run(1)
        assert run(1) == first
        assert run(2) != first
        assert len(set(first)) > 1  # the verifier double really depends on the samples
