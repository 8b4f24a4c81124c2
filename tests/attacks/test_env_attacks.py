"""Attacks on μ's J cache, the vector env's error handling and concurrent use of one env.

Each attack reproduces a wrong number or a wedged env seen on the earlier code and asserts
the fixed behaviour: a J keyed on everything that determines it, a clear error, and an env
that keeps working after the error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import gymnasium as gym
import pytest

import mrt_env  # noqa: F401  (registers the ids)
from mrt_env.exclusive import ConcurrentUseError
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.sampled import SampledMetaProver
from tests.mrt_env.env_doubles import SpyProver, env_kwargs

SECONDS = 5.0
"""Time bound of a refused step (input validation; async workers answer over pipes)."""

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


REFUSED_ACTIONS = [
    pytest.param(3, TypeError, "must be a str", id="not a str"),
    pytest.param("x\ud800y", ValueError, "lone surrogate", id="lone surrogate"),
]


def _step_trace(envs: Any, steps: list[list[str]]) -> list[Any]:
    trace: list[Any] = []
    for actions in steps:
        observations, rewards, terminated, _, _ = envs.step(actions)
        trace.append((tuple(observations), rewards.tolist(), terminated.tolist()))
    return trace


STEPS = [["a=1.\n\n", "b=\n\n"], ["\\boxed{12}</think>", "c\n\n"], ["d=\n\n", "e\n\n"]]


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
@pytest.mark.parametrize(("bad", "error", "message"), REFUSED_ACTIONS)
def test_a_refused_vector_step_changes_nothing_and_the_env_keeps_working(
    mode: str, bad: Any, error: type[Exception], message: str
) -> None:
    """The refused step leaves every sub-env (trajectory and random state) as it was."""
    reference = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode=mode, **env_kwargs())
    envs = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode=mode, **env_kwargs())
    try:
        expected = [reference.reset(seed=3)[0], *_step_trace(reference, STEPS)]
        observations, _ = envs.reset(seed=3)
        start = time.perf_counter()
        with pytest.raises(error, match=message):
            envs.step(["a=1.\n\n", bad])  # sub-env 0's action is fine; sub-env 1's is refused
        assert time.perf_counter() - start < SECONDS
        assert [observations, *_step_trace(envs, STEPS)] == expected
    finally:
        reference.close()
        envs.close()


class _BlockingJ:
    """J = 0.5; the first request with a non-empty prefix waits until released (a slow μ)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, request: ProverRequest) -> float:
        if request.prefix and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10.0)
        return 0.5


@pytest.mark.parametrize("vector", [False, True], ids=["env", "vector env"])
def test_a_reset_racing_a_step_from_another_thread_raises(vector: bool) -> None:
    """Before: the reset went through and the step then wrote the old episode into the new
    trajectory. Now the second caller gets a clear error and the step finishes untouched."""
    blocking = _BlockingJ()
    kwargs = env_kwargs(prover=SpyProver(blocking))
    env: Any = (
        gym.make_vec("MRTMath-v0", num_envs=1, vectorization_mode="vector_entry_point", **kwargs)
        if vector
        else gym.make("MRTMath-v0", **kwargs).unwrapped
    )
    prompt = env.reset(seed=0)[0]
    action = "x = 1.\n\n"
    results: list[Any] = []
    stepper = threading.Thread(
        target=lambda: results.append(env.step([action] if vector else action))
    )
    stepper.start()
    assert blocking.entered.wait(10.0)
    with pytest.raises(ConcurrentUseError, match=r"reset\(\) was called while .*step\(\) is still"):
        env.reset(seed=1)
    with pytest.raises(ConcurrentUseError, match=r"step\(\) was called while"):
        env.step([action] if vector else action)
    blocking.release.set()
    stepper.join(10.0)
    observation = results[0][0][0] if vector else results[0][0]
    assert observation == (prompt[0] if vector else prompt) + action  # the step's own trajectory
    env.reset(seed=1)  # the env is usable again


def test_a_failed_model_call_in_a_vector_step_leaves_the_random_state_unchanged() -> None:
    """μ fails once mid-step: the step raises and the next steps draw what they would have."""
    failures = iter([True])

    def flaky(request: ProverRequest) -> float:
        if request.prefix and next(failures, False):
            raise ConnectionError("μ's server went away")
        return min(1.0, 0.25 * request.prefix.count("="))

    mode = "vector_entry_point"
    reference = gym.make_vec("MRTMath-v0", num_envs=2, vectorization_mode=mode, **env_kwargs())
    envs = gym.make_vec(
        "MRTMath-v0", num_envs=2, vectorization_mode=mode, **env_kwargs(prover=SpyProver(flaky))
    )
    expected = [reference.reset(seed=3)[0], *_step_trace(reference, STEPS)]
    observations, _ = envs.reset(seed=3)
    with pytest.raises(ConnectionError):
        envs.step(STEPS[0])
    assert [observations, *_step_trace(envs, STEPS)] == expected
