"""Attacks on μ's J cache, the vector env's error handling and concurrent use of one env.

Each attack reproduces a wrong number or a wedged env seen on the earlier code and asserts
the fixed behaviour: a J keyed on everything that determines it, a clear error, and an env
that keeps working after the error.
"""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym

import mrt_env  # noqa: F401  (registers the ids)
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.sampled import SampledMetaProver

PROMPT = "Problem: 2+2?\n<think>\n"


def test_same_problem_text_with_another_gold_is_not_served_the_old_j() -> None:
    """Two custom problems share the id ``custom``; J must follow the gold, not the text."""
    prover = SampledMetaProver(ScriptedLM(["4}", "5}"]), template="tiny", k=4)
    env = gym.make(
        "MRTMath-v0", lm=ScriptedLM(["x = 4. ", "\\boxed{4}"]), prover=prover, template="tiny"
    )
    _, info = env.reset(seed=0, options={"problem": {"problem": "What is 2+2?", "answer": "4"}})
    assert info["j"] == 0.5  # two of the four forced answers ("4}") are right
    _, info = env.reset(seed=0, options={"problem": {"problem": "What is 2+2?", "answer": "7"}})
    assert info["j"] == 0.0  # no forced answer is 7 (the old cache answered 0.5)
    assert prover.stats.cache_hits == 0


def test_j_cache_is_keyed_on_the_settings_that_determine_j() -> None:
    """Changing K, temperature, the answer cap, stop strings or the template re-estimates J."""
    prover = SampledMetaProver(ScriptedLM(["4}", "5}", "4}"]), template="tiny", k=2)
    request = ProverRequest("p", PROMPT, "4", "")
    first = prover.estimate([request])[0]
    assert prover.estimate([request])[0].cached  # same everything: a cache hit
    assert prover.estimate([replace(request, seed=7)])[0].cached  # the seed only picks noise
    assert not prover.estimate([replace(request, gold="5")])[0].cached
    assert not prover.estimate([replace(request, prompt=PROMPT + " ")])[0].cached
    changes = [
        lambda p: (setattr(p, "k", 3), setattr(p, "params", replace(p.params, n=3))),
        lambda p: setattr(p, "params", replace(p.params, temperature=0.5)),
        lambda p: setattr(p, "params", replace(p.params, max_new_tokens=7)),
        lambda p: setattr(p, "params", replace(p.params, top_p=0.9)),
        lambda p: setattr(p, "params", replace(p.params, stop=("\n",))),
        lambda p: setattr(p, "template", replace(p.template, termination="\nANSWER: ")),
    ]
    for change in changes:
        before = prover.stats.unique_prefixes
        change(prover)
        assert not prover.estimate([request])[0].cached, change
        assert prover.stats.unique_prefixes == before + 1
    assert first.num_samples == 2
