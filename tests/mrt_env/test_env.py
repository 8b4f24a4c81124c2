"""MRTMath-v0 behaviour with test doubles: reset, step, termination, truncation, info, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded

from mrt_env.env import MRTMathEnv
from mrt_env.problems import Problem
from mrt_env.segmenters import MarkerSegmenter
from mrt_env.spaces import FinalEpisode
from tests.mrt_env.env_doubles import PROBLEMS, SpyProver, env_kwargs, scripted_lm

STEP_INFO_KEYS = {
    "problem_id",
    "episode_index",
    "episode_tokens",
    "total_tokens",
    "episode_cut",
    "j_before",
    "j_after",
    "progress",
    "outcome",
    "verification",
    "reward_terms",
    "j_source",
    "j_estimator",
    "regret",
    "curve",
}


def make_env(**overrides: Any) -> MRTMathEnv:
    return MRTMathEnv(**env_kwargs(**overrides))


def started(index: int = 0, **overrides: Any) -> tuple[MRTMathEnv, str, dict[str, Any]]:
    env = make_env(**overrides)
    observation, info = env.reset(seed=0, options={"index": index})
    return env, observation, info


# ----------------------------------------------------------------------------- registration
def test_ids_are_registered_on_import() -> None:
    spec = gym.spec("MRTMath-v0")
    assert spec.entry_point == "mrt_env.env:MRTMathEnv"
    assert spec.vector_entry_point == "mrt_env.vector:MRTMathVectorEnv"
    assert gym.spec("MRTStrategy-v0").entry_point == "mrt_env.strategy:MRTStrategyEnv"


def test_module_prefix_works_in_a_fresh_interpreter() -> None:
    script = textwrap.dedent(
        """
        import gymnasium as gym

        class CharLM:  # a minimal LanguageModel, so that mrt_env is not imported beforehand
            name = "char"
            def encode(self, text): return [ord(c) for c in text]
            def decode(self, ids): return "".join(map(chr, ids))
            def count_tokens(self, text): return len(text)
            def generate(self, prompts, params, seeds=None): raise AssertionError

        assert "MRTMath-v0" not in gym.registry
        try:
            gym.make("MRTMath-v0")
        except gym.error.NameNotFound:
            pass
        else:
            raise AssertionError("the id resolved without importing mrt_env")
        env = gym.make("mrt_env:MRTMath-v0", problems=[{"problem": "1+1?", "answer": "2"}],
                       lm=CharLM(), prover="none")
        observation, _ = env.reset(seed=0)
        print(type(env.unwrapped).__name__, observation.startswith("Problem: 1+1?"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MRTMathEnv", "True"]


# ----------------------------------------------------------------------------------- reset
def test_reset_returns_the_prompt_and_j_of_the_empty_thinking() -> None:
    env, observation, info = started(index=1)
    assert observation == "Problem: What is 3*4?\n<think>\n"
    assert "12" not in observation  # the gold answer is never observed
    assert observation in env.observation_space
    assert info["problem_id"] == "mul"
    assert info["j"] == 0.0
    prompt_tokens = len(observation)  # the scripted LM counts characters
    assert info["curve"] == [(prompt_tokens + 3.0, 0.0)]  # + the forced answer's mean tokens


def test_reset_seed_picks_the_same_problem() -> None:
    ids = [make_env().reset(seed=7)[1]["problem_id"] for _ in range(2)]
    assert ids[0] == ids[1]
    drawn = {make_env().reset(seed=s)[1]["problem_id"] for s in range(20)}
    assert drawn == {p["id"] for p in PROBLEMS}


@pytest.mark.parametrize(
    ("options", "problem_id"),
    [
        ({"index": 2}, "sub"),  # by position in the source
        ({"index": -1}, "sub"),  # negative index, like a list
        ({"id": "sub"}, "sub"),  # by problem id
        ({"problem": Problem("own", "What is 2+5?", "7")}, "own"),  # a Problem outside the source
        ({"problem": {"problem": "What is 2+6?", "answer": "8"}}, "custom"),  # a plain dict
    ],
)
def test_reset_options_choose_the_problem(options: dict[str, Any], problem_id: str) -> None:
    _, info = make_env().reset(seed=0, options=options)
    assert info["problem_id"] == problem_id


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"index": 3}, IndexError, "out of range"),  # past the end
        ({"index": "0"}, TypeError, "must be an int"),  # wrong type
        ({"problem": {"problem": "x"}}, ValueError, "missing field 'answer'"),  # bad problem
        ({"index": 0, "problem": PROBLEMS[0]}, ValueError, "not several"),  # ambiguous
        ({"seed": 3}, ValueError, "unknown reset option"),  # unsupported key
        ({"id": "nope"}, KeyError, "no problem with id 'nope'"),  # unknown id
        ({"id": "sub", "index": 0}, ValueError, "not several"),  # ambiguous
    ],
)
def test_reset_rejects_bad_options(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make_env().reset(seed=0, options=options)


# ------------------------------------------------------------------------------------ step
def test_step_appends_the_episode_and_reports_j_progress_regret_curve() -> None:
    env, prompt, _ = started(index=0)
    observation, reward, terminated, truncated, info = env.step("1+1=2.")
    assert observation == prompt + "1+1=2."
    assert (terminated, truncated) == (False, False)
    assert set(info) == STEP_INFO_KEYS
    assert info["episode_index"] == 0
    assert info["episode_tokens"] == info["total_tokens"] == 6
    assert (info["j_before"], info["j_after"], info["progress"]) == (0.0, 0.25, 0.25)
    assert info["regret"] == 1.0  # J* - J(c_0) = 1 - 0
    assert info["outcome"] is None and info["verification"] is None
    assert info["reward_terms"] == {"outcome": 0.0, "progress": 0.25}
    assert reward == 0.25
    assert info["curve"][-1] == (len(prompt) + 6 + 3.0, 0.25)

    _, _, _, _, info = env.step(" 2=2.")
    assert info["episode_index"] == 1
    assert (info["episode_tokens"], info["total_tokens"]) == (5, 11)
    assert info["regret"] == pytest.approx(1.0 + 0.75)  # + (1 - J(c_1))
    assert len(info["curve"]) == 3


def test_ending_thinking_with_the_right_answer_terminates_with_outcome_1() -> None:
    env, _, _ = started(index=0)
    env.step("1+1=2.")
    _, reward, terminated, truncated, info = env.step(" Done.\n</think>\nSo \\boxed{2}.")
    assert (terminated, truncated) == (True, False)
    assert (info["outcome"], info["verification"]) == (1.0, "correct")
    assert info["reward_terms"]["outcome"] == 1.0  # the policy's own verified answer
    assert (info["j_after"], info["j_source"]) == (0.25, "prover")  # μ's J(final): one "="
    assert info["j_estimator"] == "sampled"  # the double's JEstimate keeps the default source
    assert info["progress"] == 0.0
    assert reward == pytest.approx(1.0)
    assert info["curve"][-1][1] == 0.25


def test_final_j_reads_the_natural_end_of_thinking() -> None:
    prover = SpyProver()
    env, prompt, _ = started(index=0, prover=prover)
    env.step(" Done.\n</think>\nSo \\boxed{2}.")
    [request] = prover.calls[-1]
    assert request.prefix == " Done.\n</think>\nSo \\boxed{2}."
    template = env.core.components.template
    assert template.render_meta(prompt, request.prefix) == prompt + " Done.\n</think>"


def test_final_j_outcome_keeps_the_policys_0_1_answer_as_j() -> None:
    env, _, _ = started(index=0, final_j="outcome")
    env.step("1+1=2.")
    _, reward, terminated, _, info = env.step(" Done.\n</think>\nSo \\boxed{2}.")
    assert terminated and (info["j_after"], info["j_source"]) == (1.0, "outcome")
    assert info["j_estimator"] is None  # J came from the outcome, not from μ
    assert info["progress"] == 0.75
    assert reward == pytest.approx(1.0 + 0.75)


@pytest.mark.parametrize(
    ("episode", "status"),
    [
        ("</think>\\boxed{3}", "wrong"),  # a wrong final answer
        ("</think>I give up.", "no_answer"),  # ended thinking without an answer
        ("\\boxed{2}</think>", "no_answer"),  # the answer is inside the thinking
    ],
)
def test_ending_thinking_without_the_right_answer_has_outcome_0(episode: str, status: str) -> None:
    env, _, _ = started(index=0)
    _, reward, terminated, _, info = env.step(episode)
    assert terminated and info["outcome"] == 0.0 and info["verification"] == status
    assert reward == info["progress"] == 0.0


def test_end_of_thinking_split_across_episodes_terminates() -> None:
    env, _, _ = started(index=0)
    assert env.step("1+1=2 </thi")[2] is False
    _, _, terminated, _, info = env.step("nk> \\boxed{2}")
    assert terminated and info["outcome"] == 1.0


@pytest.mark.parametrize(
    ("episode", "outcome", "status"),
    [
        ("1+1=2, so \\boxed{2}", 1.0, "correct"),  # no think tags: graded on its answer
        ("1+1 is", 0.0, "no_answer"),  # stopped early without an answer: wrong
    ],
)
def test_a_final_episode_without_the_end_marker_terminates(
    episode: str, outcome: float, status: str
) -> None:
    """EOS without </think>: the response is graded as it stands, not padded with episodes."""
    env, _, _ = started(index=0, max_episodes=50, final_j="outcome")
    assert env.step("Let me see.")[2:4] == (False, False)
    _, _, terminated, truncated, info = env.step(FinalEpisode(episode))
    assert (terminated, truncated) == (True, False)
    assert (info["outcome"], info["verification"]) == (outcome, status)
    assert info["j_after"] == outcome and info["episode_index"] == 1


def test_a_final_episode_cut_at_the_budget_truncates() -> None:
    env, _, _ = started(index=0, token_budget=5)
    _, _, terminated, truncated, info = env.step(FinalEpisode("1+1=2, so \\boxed{2}"))
    assert (terminated, truncated, info["episode_cut"]) == (False, True, True)


def test_budget_overrun_is_cut_at_the_budget_and_truncates() -> None:
    env, prompt, _ = started(index=0, token_budget=10)
    observation, _, terminated, truncated, info = env.step("1+1=2. Then 2+2=4.")
    assert (terminated, truncated) == (False, True)
    assert observation == prompt + "1+1=2. The"  # first 10 tokens (characters)
    assert (info["episode_tokens"], info["total_tokens"], info["episode_cut"]) == (10, 10, True)
    # the forced answer "2}" after the tiny template's "\boxed{" verifies
    assert (info["outcome"], info["verification"]) == (1.0, "correct")
    assert info["reward_terms"]["outcome"] == 1.0


def test_a_wrong_forced_answer_at_the_budget_scores_0() -> None:
    env, _, _ = started(index=0, token_budget=4, lm=scripted_lm("7}"))
    _, reward, _, truncated, info = env.step("1+1=2")
    assert truncated and (info["outcome"], info["verification"]) == (0.0, "wrong")
    assert reward == info["progress"]


def test_expected_truncation_outcome_is_j() -> None:
    env, _, _ = started(index=0, token_budget=6, truncation_outcome="expected")
    _, _, _, truncated, info = env.step("1+1=2.")
    assert truncated
    assert info["outcome"] == info["j_after"] == 0.25
    assert info["verification"] is None
    assert info["reward_terms"]["outcome"] == 0.25  # the expected outcome is the reward


def test_ending_thinking_exactly_at_the_budget_terminates_only() -> None:
    episode = "</think>\\boxed{2}"
    env, _, _ = started(index=0, token_budget=len(episode))
    _, _, terminated, truncated, _ = env.step(episode)
    assert (terminated, truncated) == (True, False)


def test_episode_cap_truncates() -> None:
    env, _, _ = started(index=0, max_episodes=2)
    assert env.step("a")[3] is False
    _, _, terminated, truncated, info = env.step("b")
    assert (terminated, truncated) == (False, True)
    assert info["episode_index"] == 1 and info["outcome"] is not None


def test_observation_size_limit_truncates() -> None:
    env, prompt, _ = started(index=0, max_observation_chars=40, token_budget=1000)
    observation, _, _, truncated, info = env.step("x" * 100)
    assert truncated and info["episode_cut"]
    assert len(observation) == 40 and observation.startswith(prompt)


@pytest.mark.parametrize(
    "episode",
    [
        "",  # an empty episode
        "∫₀¹ x² dx = ⅓ — 中文 🙂\n\n\t",  # arbitrary Unicode and whitespace
        "\x00\ud7ff",  # control and edge code points
    ],
)
def test_empty_and_unicode_episodes(episode: str) -> None:
    env, prompt, _ = started(index=0)
    observation, _, terminated, truncated, info = env.step(episode)
    assert observation == prompt + episode
    assert info["episode_tokens"] == len(episode)
    assert not terminated and not truncated


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("action", [None, 3, b"bytes", ["text"]])
def test_non_str_action_raises_type_error_and_changes_nothing(action: Any) -> None:
    env, _, _ = started(index=0)
    env.step("a=")
    before = (env.trajectory.thinking, env.trajectory.episode_index, env.trajectory.regret)
    with pytest.raises(TypeError, match=type(action).__name__):
        env.step(action)
    after = (env.trajectory.thinking, env.trajectory.episode_index, env.trajectory.regret)
    assert after == before
    _, _, _, _, info = env.step("b")  # still usable
    assert info["episode_index"] == 1


def test_step_before_reset_raises() -> None:
    with pytest.raises(ResetNeeded, match="before reset"):
        make_env().step("x")


def test_step_after_the_trajectory_ended_raises_until_reset() -> None:
    env, _, _ = started(index=0)
    env.step("</think>\\boxed{2}")
    with pytest.raises(ResetNeeded, match="ended"):
        env.step("more")
    env.reset(seed=1)
    assert env.step("x")[4]["episode_index"] == 0


# --------------------------------------------------------------------------- configuration
def test_without_a_meta_prover_there_is_no_j() -> None:
    env, _, info = started(index=0, prover="none")
    assert info["j"] is None and info["curve"] == []
    _, reward, _, _, info = env.step("1+1=2.")
    assert info["j_before"] is info["j_after"] is info["progress"] is info["regret"] is None
    assert info["reward_terms"] == {"outcome": 0.0, "progress": None}
    assert reward == 0.0


def test_reward_modules_and_weights_are_configurable() -> None:
    env, _, _ = started(
        index=0, rewards=("outcome", "progress", "length"), reward_weights=(2.0, 0.5, 1.0)
    )
    _, reward, _, _, info = env.step("</think>\\boxed{2}")
    terms = info["reward_terms"]
    assert set(terms) == {"outcome", "progress", "length"}
    assert reward == pytest.approx(
        2.0 * terms["outcome"] + 0.5 * terms["progress"] + terms["length"]
    )


def test_j_star_changes_the_regret() -> None:
    env, _, _ = started(index=0, j_star=0.5)
    assert env.step("x")[4]["regret"] == 0.5


def test_stop_strings_are_the_segmenter_boundaries() -> None:
    assert make_env().stop_strings == MarkerSegmenter().boundaries
    segmenter = MarkerSegmenter(markers=("Hmm",))
    assert make_env(segmenter=segmenter).stop_strings == ("\n\nHmm",)


def test_render_ansi_shows_the_observation() -> None:
    env = MRTMathEnv(render_mode="ansi", **env_kwargs())
    observation, _ = env.reset(seed=0)
    assert env.render() == observation
    assert make_env().render() is None


def test_timings_split_model_calls_from_the_rest() -> None:
    env, _, _ = started(index=0)
    env.step("1+1=2.")
    timings = env.timings
    assert timings["step_s"] >= timings["step_model_s"] > 0
    assert timings["reset_model_s"] > 0
    assert 0 <= env.core.overhead_share() <= 1


def test_one_prover_call_per_step() -> None:
    prover = SpyProver()
    env, _, _ = started(index=0, prover=prover)
    env.step("a")
    env.step("b")
    assert [len(batch) for batch in prover.calls] == [1, 1, 1]  # reset + two steps
    assert [r.prefix for r in prover.calls[-1]] == ["ab"]


def test_prover_seeds_are_drawn_from_the_env_rng() -> None:
    def seeds(reset_seed: int) -> list[int]:
        prover = SpyProver()
        env = make_env(prover=prover)
        env.reset(seed=reset_seed)
        env.step("a")
        return [request.seed for batch in prover.calls for request in batch]

    assert seeds(1) == seeds(1)
    assert seeds(1) != seeds(2)
    assert len(set(seeds(1))) == 2  # a fresh seed per request


def test_budget_cut_with_multi_character_tokens() -> None:
    from mrt_env.lm.scripted import ScriptedLM

    lm = ScriptedLM(["2}"], tokenization="word")
    env, prompt, _ = started(index=0, lm=lm, token_budget=3)
    observation, _, _, truncated, info = env.step("one two three four five")
    assert truncated and observation == prompt + "one two three"
    assert info["total_tokens"] == 3


def test_importing_the_env_imports_no_model_library() -> None:
    script = (
        "import sys, mrt_env, mrt_env.env, mrt_env.vector, mrt_env.replay\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
