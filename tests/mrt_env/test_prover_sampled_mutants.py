"""The sampled meta-prover's J and its cache against hand-counted values, written to kill mutants.

J(prefix) is the fraction of K forced answers verified correct (PAPER.md). The language model is
a :class:`ScriptedLM` test double and the verifier a table double (``_EndsWithGold``) so that the
counts are known by construction and no worker process starts; one test uses the real default
verifier on integer answers (graded in-process).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pytest

from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import JEstimate, ProverRequest
from mrt_env.prover.sampled import ProverStats, SampledMetaProver, wilson_interval
from mrt_env.templates import resolve_template

PROMPT = "Problem: 2+2?\n<think>\n"


@dataclass(frozen=True)
class _Verdict:
    correct: bool
    status: str


class _EndsWithGold:
    """Table verifier double: correct when the response ends with ``gold + "}"``; an answer
    ending in ``?`` has no answer. Records every pair it is asked about."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def verify_many(self, pairs: list[tuple[str, str]]) -> list[_Verdict]:
        self.pairs.extend(pairs)
        verdicts = []
        for response, gold in pairs:
            if response.endswith("?"):
                verdicts.append(_Verdict(False, "no_answer"))
            else:
                ok = response.endswith(gold + "}")
                verdicts.append(_Verdict(ok, "correct" if ok else "wrong"))
        return verdicts


def _prover(answers: list[str], **kwargs: object) -> tuple[SampledMetaProver, ScriptedLM]:
    lm = ScriptedLM(answers)
    kwargs.setdefault("verifier", _EndsWithGold())
    return SampledMetaProver(lm, template="tiny", **kwargs), lm  # type: ignore[arg-type]


def _request(problem: str = "p1", prefix: str = "", gold: str = "4") -> ProverRequest:
    return ProverRequest(problem, PROMPT, gold, prefix)


# --- the Wilson interval --------------------------------------------------------------------


def _wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Textbook Wilson score interval, unclamped."""
    p = successes / trials
    centre = p + z**2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2))
    denominator = 1 + z**2 / trials
    return (centre - spread) / denominator, (centre + spread) / denominator


@pytest.mark.parametrize(("successes", "trials"), [(4, 8), (1, 8), (3, 4), (7, 10), (1, 1)])
def test_wilson_interval_matches_the_formula(successes: int, trials: int) -> None:
    low, high = _wilson(successes, trials)
    assert wilson_interval(successes, trials) == pytest.approx(
        (max(low, 0.0), min(high, 1.0)), rel=1e-12
    )


def test_wilson_interval_reference_values() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    assert wilson_interval(4, 8, z=0.0) == (0.5, 0.5)
    assert wilson_interval(2, 8, z=1.0) == pytest.approx(_wilson(2, 8, 1.0), rel=1e-12)


@pytest.mark.parametrize(
    ("successes", "trials", "message"),
    [
        (0, 0, r"trials must be positive, got 0"),
        (0, -2, r"trials must be positive, got -2"),
        (9, 8, r"successes must be in \[0, 8\], got 9"),
        (-1, 8, r"successes must be in \[0, 8\], got -1"),
    ],
)
def test_wilson_interval_rejects_bad_counts(successes: int, trials: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, trials)


# --- stats ------------------------------------------------------------------------------------


def test_prover_stats_reset_and_share() -> None:
    stats = ProverStats(requests=3, cache_hits=1, generated_answers=8, answered=6)
    stats.generate_seconds = 1.5
    assert stats.answered_share == 0.75
    assert stats.as_dict()["requests"] == 3 and stats.as_dict()["generate_seconds"] == 1.5
    stats.reset()
    assert stats.as_dict() == {name: 0 for name in stats.as_dict()}
    assert isinstance(stats.requests, int) and isinstance(stats.generate_seconds, float)
    assert math.isnan(stats.answered_share)


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, r"k must be >= 1, got 0"),
        ({"max_answer_tokens": 0}, r"max_answer_tokens must be >= 1, got 0"),
        ({"cache_size": -1}, r"cache_size must be >= 0, got -1"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _prover(["4}"], **kwargs)


def test_sampling_parameters_of_the_forced_answers() -> None:
    prover, _ = _prover(
        ["4}"], k=3, max_answer_tokens=1, temperature=0.5, top_p=0.9, stop=("\n",), cache_size=0
    )
    params = prover.params
    assert (params.n, params.max_new_tokens, params.temperature, params.top_p, params.stop) == (
        3,
        1,
        0.5,
        0.9,
        ("\n",),
    )
    assert prover.k == 3 and prover.cache_size == 0
    default, _ = _prover(["4}"])
    assert default.k == 8 and default.params.n == 8
    assert default.params.temperature == 1.0 and default.params.top_p == 1.0
    assert default.params.stop == () and default.cache_size == 4096
    assert default.params.max_new_tokens == resolve_template("tiny", None).answer_caps().forced


# --- J ----------------------------------------------------------------------------------------


def test_j_is_the_share_of_verified_forced_answers() -> None:
    verifier = _EndsWithGold()
    prover, lm = _prover(["4}", "5}", "4}", "?"], k=4, verifier=verifier)
    [estimate] = prover.estimate([_request(prefix="two and two")])
    low, high = _wilson(2, 4)
    assert estimate == JEstimate(
        0.5, 2, 4, pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12), 7 / 4, False
    )
    # each forced answer is verified as the forced suffix plus the answer, against the gold
    rendered = resolve_template("tiny", None).render_meta(PROMPT, "two and two")
    assert verifier.pairs == [(rendered[len(PROMPT) :] + a, "4") for a in ["4}", "5}", "4}", "?"]]
    assert lm.calls[0][0] == (rendered,)
    stats = prover.stats
    assert (stats.requests, stats.unique_prefixes, stats.generated_answers) == (1, 1, 4)
    assert (stats.answered, stats.model_calls, stats.cache_hits, stats.duplicates) == (3, 1, 0, 0)
    assert 0.0 <= stats.generate_seconds < 60 and 0.0 <= stats.verify_seconds < 60


def test_each_request_gets_its_own_k_answers_in_order() -> None:
    # answers cycle over the 2 x 3 samples: p1 gets 4}, 4}, 5}; p2 gets 6}, 4}, 4}
    prover, lm = _prover(["4}", "4}", "5}", "6}", "4}", "4}"], k=3)
    first, second = prover.estimate([_request("p1"), _request("p2", gold="6")])
    assert (first.num_correct, first.j) == (2, pytest.approx(2 / 3))
    assert (second.num_correct, second.j) == (1, pytest.approx(1 / 3))
    assert len(lm.calls) == 1
    assert prover.stats.generated_answers == 6 and prover.stats.unique_prefixes == 2


def test_the_default_verifier_grades_the_forced_answers() -> None:
    prover, _ = _prover(["4}", "5}"], k=4, verifier=None)
    [estimate] = prover.estimate([_request()])
    assert (estimate.j, estimate.num_correct, estimate.num_samples) == (0.5, 2, 4)


def test_a_non_request_is_rejected() -> None:
    prover, _ = _prover(["4}"])
    with pytest.raises(TypeError, match=r"expected ProverRequest, got str"):
        prover.estimate(["p1"])  # type: ignore[list-item]


# --- the J cache ------------------------------------------------------------------------------


def test_a_repeated_request_is_answered_from_the_cache() -> None:
    prover, lm = _prover(["4}", "5}"], k=2)
    [first] = prover.estimate([_request()])
    [again] = prover.estimate([_request()])
    assert first.cached is False and again.cached is True
    assert (again.j, again.num_correct, again.num_samples) == (first.j, 1, 2)
    assert len(lm.calls) == 1
    stats = prover.stats
    assert (stats.requests, stats.cache_hits, stats.unique_prefixes, stats.model_calls) == (
        2,
        1,
        1,
        1,
    )


def test_another_prefix_problem_or_prompt_is_estimated_anew() -> None:
    prover, lm = _prover(["4}"], k=1)
    prover.estimate([_request()])
    prover.estimate([_request(prefix="more")])
    prover.estimate([_request(problem="p2")])
    prover.estimate([ProverRequest("p1", "Problem: 3+1?\n<think>\n", "4", "")])
    assert len(lm.calls) == 4 and prover.stats.cache_hits == 0


def test_duplicates_within_a_call_are_estimated_once() -> None:
    prover, lm = _prover(["4}", "5}", "5}", "5}"], k=2)
    a, b, c = prover.estimate([_request(), _request(prefix="x"), _request()])
    assert a == c and a.cached is False and a.num_correct == 1
    assert b.num_correct == 0
    assert len(lm.calls) == 1 and len(lm.calls[0][0]) == 2
    assert prover.stats.duplicates == 1 and prover.stats.cache_hits == 0
    assert prover.stats.requests == 3 and prover.stats.unique_prefixes == 2


def test_the_cache_evicts_the_least_recently_used_estimate() -> None:
    prover, lm = _prover(["4}"], k=1, cache_size=2)
    a, b, c = _request("a"), _request("b"), _request("c")
    prover.estimate([a])
    prover.estimate([b])
    assert prover.estimate([a])[0].cached  # a is now the most recent
    prover.estimate([c])  # evicts b
    assert len(lm.calls) == 3
    assert prover.estimate([a])[0].cached
    assert prover.estimate([c])[0].cached
    assert not prover.estimate([b])[0].cached
    assert len(lm.calls) == 4


def test_a_zero_cache_and_a_cleared_cache_reestimate() -> None:
    prover, lm = _prover(["4}"], k=1, cache_size=0)
    prover.estimate([_request()])
    assert not prover.estimate([_request()])[0].cached
    assert len(lm.calls) == 2
    cached, lm = _prover(["4}"], k=1)
    cached.estimate([_request()])
    cached.clear_cache()
    assert not cached.estimate([_request()])[0].cached
    assert len(lm.calls) == 2


def test_a_cache_of_one_keeps_the_newest() -> None:
    prover, lm = _prover(["4}"], k=1, cache_size=1)
    prover.estimate([_request("a"), _request("b")])
    assert prover.estimate([_request("b")])[0].cached
    assert not prover.estimate([_request("a")])[0].cached
    assert len(lm.calls) == 2


# --- what reaches the model and the verifier --------------------------------------------------


class _RecordingLM(ScriptedLM):
    """ScriptedLM that records the seeds of each call, sleeps ``delay`` seconds per call and
    can drop the last output group (a broken backend)."""

    def __init__(self, answers: list[str], delay: float = 0.0, drop_last: bool = False) -> None:
        super().__init__(answers)
        self.seeds: list[object] = []
        self.delay = delay
        self.drop_last = drop_last

    def generate(self, prompts, params, seeds=None):  # type: ignore[no-untyped-def]
        self.seeds.append(seeds)
        time.sleep(self.delay)
        outputs = super().generate(prompts, params, seeds=seeds)
        return outputs[:-1] if self.drop_last else outputs


class _SlowVerifier(_EndsWithGold):
    """Table verifier double that sleeps ``delays[i]`` seconds on its i-th call."""

    def __init__(self, delays: list[float]) -> None:
        super().__init__()
        self.delays = delays

    def verify_many(self, pairs: list[tuple[str, str]]) -> list[_Verdict]:
        time.sleep(self.delays.pop(0))
        return super().verify_many(pairs)


def test_each_distinct_request_samples_with_its_own_seed() -> None:
    lm = _RecordingLM(["4}"])
    prover = SampledMetaProver(lm, template="tiny", k=2, verifier=_EndsWithGold())
    prover.estimate(
        [
            ProverRequest("a", PROMPT, "4", "", seed=11),
            ProverRequest("b", PROMPT, "4", "", seed=22),
            ProverRequest("a", PROMPT, "4", "", seed=33),  # a duplicate of the first
        ]
    )
    assert lm.seeds == [[11, 22]]


def test_counters_accumulate_over_calls() -> None:
    lm = _RecordingLM(["4}", "?"], delay=0.05)
    verifier = _SlowVerifier([0.05, 0.0])
    prover = SampledMetaProver(lm, template="tiny", k=2, verifier=verifier)
    prover.estimate([_request("a"), _request("b")])
    prover.estimate([_request("c")])
    stats = prover.stats
    assert (stats.requests, stats.model_calls, stats.unique_prefixes) == (3, 2, 3)
    assert (stats.generated_answers, stats.answered) == (6, 3)
    assert stats.generate_seconds >= 0.1  # two calls of at least 50 ms each
    assert stats.verify_seconds >= 0.05  # the first call's 50 ms is kept
    assert stats.answered_share == 0.5


def test_a_backend_that_drops_an_output_group_is_an_error() -> None:
    lm = _RecordingLM(["4}"], drop_last=True)
    prover = SampledMetaProver(lm, template="tiny", k=2, verifier=_EndsWithGold())
    with pytest.raises(ValueError):
        prover.estimate([_request("a"), _request("b")])


def test_the_template_is_resolved_for_the_given_model() -> None:
    class _ServedWithoutTokenizer(ScriptedLM):
        def chat_tokenizer(self) -> None:
            return None

    with pytest.raises(ValueError, match=r"served model 'served-model' has no local tokenizer"):
        SampledMetaProver(_ServedWithoutTokenizer(["4}"], name="served-model"), template=None)


def test_wilson_interval_is_clamped_to_the_unit_interval() -> None:
    # unclamped, the textbook formula leaves [0, 1] by rounding for 0/5 and 5/5 at z = 1.96
    assert _wilson(0, 5)[0] < 0.0 and _wilson(5, 5)[1] > 1.0
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0


def test_cache_hits_accumulate_over_calls() -> None:
    prover, lm = _prover(["4}"], k=1)
    for _ in range(3):
        prover.estimate([_request(), _request("b")])
    assert prover.stats.cache_hits == 4 and prover.stats.requests == 6
    assert len(lm.calls) == 1


class _AlwaysWrong:
    """Verifier double: every answer is wrong."""

    def verify_many(self, pairs: list[tuple[str, str]]) -> list[object]:
        return [type("V", (), {"correct": False, "status": "wrong"})() for _ in pairs]


def test_a_change_of_mu_settings_or_verifier_re_estimates_instead_of_reusing_j() -> None:
    from dataclasses import replace

    prover = SampledMetaProver(ScriptedLM(["4}"]), template="tiny", k=2)
    request = ProverRequest("p1", "Problem: 2+2?\n<think>\n", "4", "")
    assert prover.estimate([request])[0].j == 1.0
    prover.params = replace(prover.params, temperature=0.5)  # a setting that changes J
    assert prover.estimate([request])[0].cached is False
    prover.verifier = _AlwaysWrong()  # another verifier: another J for the same text
    [again] = prover.estimate([request])
    assert again.j == 0.0 and again.cached is False
    assert prover.stats.cache_hits == 0 and prover.stats.unique_prefixes == 3
