"""Both training engines hand their loss the advantages PAPER.md defines, on fixed data.

Hand-specified completions (three groups of four, unequal lengths, a truncated one, a finished
one without ``</think>``), a ``TableMetaProver`` and a scripted policy (named test doubles) go
through the native trainer (:class:`agents.mrt.MRT` over the env and the rollout collector)
and through a real ``MRTGRPOTrainer`` (TRL 1.16, completions fixed by a ``rollout_func``). The
per-token advantages of both must equal values computed here, by hand, from PAPER.md's
formulas and the documented credit (agents/README.md, "Design notes"):

- R: the verified 0/1 outcome; a truncated trajectory is graded on the policy's forced answer
  (``truncation="forced_answer"``) or gets μ's J of its thinking (``"expected"``);
- J(c_j) from the table; J after the last episode of a finished trajectory is μ's estimate at
  the natural end of thinking (``final_j="prover"``) or R (``"outcome"``); after a truncated
  one, μ's estimate of its whole thinking;
- progress ``J(c_{j+1}) - J(c_j)``, progress-to-go ``J_final - J(c_j)``;
- token advantage ``(R - mean_group(R) + alpha * bonus_j) / scale_group`` with ``scale`` the
  group's population std (+1e-6), 1 for a group whose rewards are all equal.

No library credit function is called to compute an expectation. Values are compared with
``rtol=1e-6``: both engines hand float32 advantages to the loss.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("trl")

from agents.config import MRTConfig, PolicyConfig, TrainConfig
from agents.mrt import MRT
from agents.policy import LLMPolicy
from agents.rollout import RolloutCollector
from agents.session import TrainSession
from mrt_env.config import EnvConfig, build_components
from mrt_env.lm.scripted import ScriptedLM
from mrt_env.problems import Problem
from mrt_env.prover.table import TableMetaProver
from mrt_env.sources import from_list
from mrt_env.templates import get_template

BUDGET = 48
ALPHA = 0.5
STD_EPS = 1e-6  # documented: the group std plus 1e-6 (agents.grpo.group_scales)
TEMPLATE = get_template("tiny")
PROBLEMS = {"p0": ("1+1?", "2"), "p1": ("2+1?", "3"), "p2": ("2+2?", "4")}
LONG = "2+1=3.\n\nWait, let me recheck that sum once more, digit by digit, to be sure."
# Each completion as its episodes (the env's segmenter splits at "\n\nWait" for `tiny`).
EPISODES: dict[str, list[tuple[str, list[str]]]] = {
    "p0": [
        ("A", ["1+1=2.", "\n\nWait, yes.</think>\\boxed{2}"]),
        ("B", ["1+1=3.", "\n\nWait, no.", "\n\nWait, 3.</think>\\boxed{3}"]),
        ("C", ["1+1 is 2 so \\boxed{2}"]),  # finished (EOS) without </think>: graded as is
        ("H", ["1+1=2.</think>\\boxed{2}"]),
    ],
    "p1": [
        ("D", [LONG[:6], LONG[6:BUDGET]]),  # truncated at the token budget (one token a char)
        ("E", ["2+1=3.</think>\\boxed{3}"]),
        ("F", ["2+1=4.", "\n\nWait, 4.</think>\\boxed{4}"]),
        ("I", ["2+1=5.</think>\\boxed{5}"]),
    ],
    "p2": [  # every answer wrong: the group's scale is 1
        ("K", ["2+2=5.</think>\\boxed{5}"]),
        ("L", ["2+2=3.", "\n\nWait, 3.</think>\\boxed{3}"]),
        ("K", ["2+2=5.</think>\\boxed{5}"]),
        ("L", ["2+2=3.", "\n\nWait, 3.</think>\\boxed{3}"]),
    ],
}
TEXT = {name: "".join(eps) for group in EPISODES.values() for name, eps in group}
OUTCOME = {"A": 1, "B": 0, "C": 1, "H": 1, "E": 1, "F": 0, "I": 0, "K": 0, "L": 0}
FORCED = {"p0": "2}", "p1": "3}", "p2": "5}"}  # the policy's forced answer (D's is right)
J = {  # μ's J of (problem, thinking prefix); final prefixes are whole texts
    ("p0", ""): 0.5,
    ("p0", "1+1=2."): 0.75,
    ("p0", TEXT["A"]): 0.875,
    ("p0", "1+1=3."): 0.25,
    ("p0", "1+1=3.\n\nWait, no."): 0.125,
    ("p0", TEXT["B"]): 0.375,
    ("p0", TEXT["C"]): 0.625,
    ("p0", TEXT["H"]): 0.75,
    ("p1", ""): 0.375,
    ("p1", LONG[:6]): 0.625,
    ("p1", TEXT["D"]): 0.5,
    ("p1", TEXT["E"]): 0.75,
    ("p1", "2+1=4."): 0.25,
    ("p1", TEXT["F"]): 0.125,
    ("p1", TEXT["I"]): 0.0,
    ("p2", ""): 0.125,
    ("p2", TEXT["K"]): 0.25,
    ("p2", "2+2=3."): 0.375,
    ("p2", TEXT["L"]): 0.0,
}
MODES = [
    ("progress", "prover", "forced_answer"),
    ("progress_to_go", "prover", "forced_answer"),
    ("progress", "outcome", "forced_answer"),
    ("progress_to_go", "outcome", "expected"),
]


# --- expectations, by hand -----------------------------------------------------------------
def _reward(problem: str, name: str, truncation: str) -> float:
    if name == "D":
        return 1.0 if truncation == "forced_answer" else J[("p1", TEXT["D"])]
    return float(OUTCOME[name])


def _expected(credit: str, final_j: str, truncation: str) -> dict[tuple[str, str], list[float]]:
    """Per completion, the advantage of each of its characters (= tokens)."""
    expected = {}
    for problem, members in EPISODES.items():
        rewards = np.array([_reward(problem, name, truncation) for name, _ in members])
        mean, std = rewards.mean(), rewards.std()  # population std (ddof=0)
        scale = std + STD_EPS if std > STD_EPS else 1.0
        for (name, episodes), reward in zip(members, rewards, strict=True):
            prefixes = ["".join(episodes[:j]) for j in range(len(episodes))]
            j_values = [J[(problem, p)] for p in prefixes]
            truncated = name == "D"
            final = reward if final_j == "outcome" and not truncated else J[(problem, TEXT[name])]
            j_values.append(final)
            tokens: list[float] = []
            for j, episode in enumerate(episodes):
                if credit == "progress":
                    bonus = j_values[j + 1] - j_values[j]
                else:
                    bonus = j_values[-1] - j_values[j]
                tokens += [(reward - mean + ALPHA * bonus) / scale] * len(episode)
            expected[(problem, name)] = tokens
    return expected


# --- the native engine -----------------------------------------------------------------------
def _problem_of(prompt: str) -> str:
    return next(p for p, (text, _) in PROBLEMS.items() if f"Problem: {text}" in prompt)


def _policy_script() -> Any:
    """The policy (a ScriptedLM): each group's completions in turn; forced answers."""
    handed: dict[str, int] = defaultdict(int)

    def script(prompt: str, sample: int) -> str:
        problem = _problem_of(prompt)
        if prompt.endswith("\\boxed{"):
            return FORCED[problem]
        name, _ = EPISODES[problem][handed[problem] % 4]
        handed[problem] += 1
        return LONG if name == "D" else TEXT[name]  # D runs past the budget

    return script


class RecordingLearner:
    """A test double of :class:`agents.update.Learner`: records what the loss would get."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], list[np.ndarray]]] = []

    def policy_gradient(self, trajectories: Any, tokens: Any) -> dict[str, float]:
        self.calls.append((list(trajectories), [np.asarray(t) for t in tokens]))
        return {}


def _native(credit: str, final_j: str, truncation: str) -> tuple[dict[Any, Any], dict[str, float]]:
    lm = ScriptedLM(_policy_script())
    problems = [Problem(p, text, gold) for p, (text, gold) in PROBLEMS.items()]
    config = TrainConfig(
        problems_per_step=3,
        group_size=4,
        token_budget=BUDGET,
        final_j=final_j,  # type: ignore[arg-type]
        truncation=truncation,  # type: ignore[arg-type]
    )
    env_config = EnvConfig(
        problems=problems,
        lm=lm,
        prover=TableMetaProver(J),
        template=TEMPLATE,
        token_budget=BUDGET,
        truncation_lm=lm,
        final_j=final_j,  # type: ignore[arg-type]
        truncation_outcome=truncation,  # type: ignore[arg-type]
    )
    components = build_components(env_config)
    policy = LLMPolicy.for_env(lm, PolicyConfig(), components, BUDGET)
    learner = RecordingLearner()
    collector = RolloutCollector(env_config, components, policy)
    session = TrainSession(config, lm, policy, learner, collector, from_list(problems))  # type: ignore[arg-type]
    metrics = MRT(MRTConfig(credit=credit, alpha=ALPHA)).train_step(session, seed=0)  # type: ignore[arg-type]
    [(trajectories, tokens)] = learner.calls
    handed = {}
    for trajectory, values in zip(trajectories, tokens, strict=True):
        name = next(n for n, text in TEXT.items() if text == trajectory.response_text)
        handed[(trajectory.problem_id, name)] = values
    return handed, metrics


# --- the TRL engine --------------------------------------------------------------------------
def _dataset() -> Any:
    """The three problems as TRL rows (prompts rendered with the env's template)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt": [TEMPLATE.render_prompt(text) for text, _ in PROBLEMS.values()],
            "answer": [gold for _, gold in PROBLEMS.values()],
            "problem_id": list(PROBLEMS),
        }
    )


def _trl_trainer(tmp_path: Path, credit: str, final_j: str, truncation: str) -> Any:
    from trl import GRPOConfig

    from agents.session import load_language_model
    from agents.trl.rewards import OutcomeReward
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    lm = load_language_model("random-tiny", "cpu", 0)
    eos = lm.tokenizer.eos_token_id
    order: list[tuple[str, str]] = []

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        handed: dict[str, int] = defaultdict(int)
        order.clear()
        completions = []
        for prompt in prompts:
            problem = _problem_of(prompt)
            name, _ = EPISODES[problem][handed[problem] % 4]
            handed[problem] += 1
            order.append((problem, name))
            ids = lm.encode(TEXT[name])
            completions.append(ids if name == "D" else [*ids, eos])  # finished: EOS
        return {
            "prompt_ids": [lm.encode(p) for p in prompts],
            "completion_ids": completions,
            "logprobs": None,
        }

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=12,
        num_generations=4,
        max_completion_length=64,
        use_cpu=True,
        report_to=[],
        seed=0,
        shuffle_dataset=False,
    )
    trainer = MRTGRPOTrainer(
        lm.model,
        reward_funcs=[OutcomeReward()],
        args=args,
        train_dataset=_dataset(),
        processing_class=lm.tokenizer,
        rollout_func=rollout,
        mrt=MRTSettings(
            credit=MRTConfig(credit=credit, alpha=ALPHA),  # type: ignore[arg-type]
            template=TEMPLATE,
            prover=TableMetaProver(J),
            final_j=final_j,  # type: ignore[arg-type]
            truncation=truncation,  # type: ignore[arg-type]
            truncation_lm=ScriptedLM(_policy_script()),  # the policy's forced answer
        ),
    )
    trainer.rollout_order = order
    return trainer


def _trl(tmp_path: Path, credit: str, final_j: str, truncation: str) -> tuple[dict[Any, Any], Any]:
    trainer = _trl_trainer(tmp_path, credit, final_j, truncation)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    output = trainer._generate_and_score_completions(batch)
    lengths = output["completion_mask"].sum(dim=1).tolist()
    handed = {}
    for row, (key, n) in enumerate(zip(trainer.rollout_order, lengths, strict=True)):
        handed[key] = output["advantages"][row, :n].double().numpy()
    return handed, trainer


@pytest.mark.parametrize(("credit", "final_j", "truncation"), MODES)
def test_native_trainer_hands_the_loss_the_papers_advantages(
    credit: str, final_j: str, truncation: str
) -> None:
    handed, metrics = _native(credit, final_j, truncation)
    expected = _expected(credit, final_j, truncation)
    assert set(handed) == set(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(handed[key], want, rtol=1e-6, atol=1e-7, err_msg=str(key))
    # 12 trajectories: D truncated, the other 11 finished (2 of them are duplicates K, L)
    assert metrics["env/truncated_forced_answer"] == (truncation == "forced_answer") / 12
    assert metrics["env/truncated_expected"] == (truncation == "expected") / 12
    assert metrics[f"env/j_final_{final_j}"] == pytest.approx((12 - (final_j == "outcome")) / 12)


@pytest.mark.parametrize(("credit", "final_j", "truncation"), MODES)
def test_trl_trainer_hands_the_loss_the_papers_advantages(
    tmp_path: Path, credit: str, final_j: str, truncation: str
) -> None:
    handed, trainer = _trl(tmp_path, credit, final_j, truncation)
    expected = _expected(credit, final_j, truncation)
    assert set(handed) == set(expected)
    for key, want in expected.items():
        name = key[1]
        want = want + ([] if name == "D" else [want[-1]])  # the EOS token: last episode's
        np.testing.assert_allclose(handed[key], want, rtol=1e-6, atol=1e-7, err_msg=str(key))
    record = trainer.last_credit
    rows = trainer.rollout_order
    truncated = [name == "D" for _, name in rows]
    assert record.truncation == [truncation if t else None for t in truncated]
    sources = ["prover" if t or final_j == "prover" else "outcome" for t in truncated]
    assert record.j_sources == sources
    d = rows.index(("p1", "D"))
    if truncation == "forced_answer":  # graded on the policy's forced answer, as in the env
        assert record.graded[d].endswith(
            "Time is up. I should stop thinking and answer.\n</think>\n\\boxed{3}"
        )
    metrics = trainer._metrics["train"]
    assert metrics[f"mrt/truncated_{truncation}"][-1] == pytest.approx(1 / 12)
    assert metrics[f"mrt/j_final_{final_j}"][-1] == pytest.approx(sources.count(final_j) / 12)


def test_trl_grpo_normalises_each_group_by_its_own_std(tmp_path: Path) -> None:
    """``--engine trl --algo grpo`` (``grpo_args``: ``--normalize-std`` -> TRL's group scaling;
    ``MRTGRPOTrainer`` without MRT credit): TRL's advantage ``(R - mean_group) / (std_group +
    1e-4)`` (sample std, TRL's definition), each group by its own spread, not the batch's; the
    truncated completion D is graded on the policy's forced answer (right: R = 1), as in the
    env."""
    from agents.session import load_language_model
    from agents.trl.rewards import OutcomeReward
    from agents.trl.run import TRLRunOptions, grpo_args
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    lm = load_language_model("random-tiny", "cpu", 0)
    names = {"p0": ["A", "B", "C", "H"], "p1": ["D", "E", "F", "I"], "p2": ["K", "L", "K", "L"]}

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        handed: dict[str, int] = defaultdict(int)
        completions = []
        for prompt in prompts:
            problem = _problem_of(prompt)
            name = names[problem][handed[problem]]
            ids = lm.encode(TEXT[name])
            completions.append(ids if name == "D" else [*ids, lm.tokenizer.eos_token_id])
            handed[problem] += 1
        return {
            "prompt_ids": [lm.encode(p) for p in prompts],
            "completion_ids": completions,
            "logprobs": None,
        }

    train = TrainConfig(problems_per_step=3, group_size=4, token_budget=32)
    args = grpo_args(TRLRunOptions(out=tmp_path), train, normalize_std=True, report_to=())
    args.shuffle_dataset = False
    trainer = MRTGRPOTrainer(
        lm.model,
        reward_funcs=[OutcomeReward()],
        args=args,
        train_dataset=_dataset(),
        processing_class=lm.tokenizer,
        rollout_func=rollout,
        mrt=MRTSettings(credit=None, template=TEMPLATE, truncation_lm=ScriptedLM(_policy_script())),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    advantages = trainer._generate_and_score_completions(batch)["advantages"].double().numpy()
    expected = []
    for problem in PROBLEMS:
        rewards = np.array([_reward(problem, n, "forced_answer") for n in names[problem]])
        std = rewards.std(ddof=1)
        expected += list((rewards - rewards.mean()) / (std + 1e-4))
    np.testing.assert_allclose(advantages, expected, rtol=1e-6, atol=1e-6)


def test_final_j_and_truncation_reach_both_engines_with_the_same_defaults(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agents.cli import app
    from agents.session import build_session
    from agents.trl.run import TRLRunOptions, build_trainer
    from agents.trl.trainer import MRTSettings

    assert (TrainConfig().final_j, TrainConfig().truncation) == ("prover", "forced_answer")
    assert (MRTSettings().final_j, MRTSettings().truncation) == ("prover", "forced_answer")
    assert (EnvConfig().final_j, EnvConfig().truncation_outcome) == ("prover", "forced_answer")
    config = TrainConfig(final_j="outcome", truncation="expected", token_budget=16)
    problems = from_list([{"id": "p", "problem": "1+1?", "answer": "2"}])
    env = build_session(config, "random-tiny", problems).collector.env_config
    assert (env.final_j, env.truncation_outcome) == ("outcome", "expected")
    options = TRLRunOptions(out=tmp_path, model="random-tiny", problems=problems)
    trainer = build_trainer(options, config, MRTConfig(), tensorboard=False)
    assert (trainer.mrt.final_j, trainer.mrt.truncation) == ("outcome", "expected")
    for engine in ("native", "trl"):
        base = ["--engine", engine, "--model", "random-tiny", "--out", str(tmp_path / engine)]
        result = CliRunner().invoke(app, [*base, "--final-j", "last_text"])
        assert result.exit_code == 2 and "final_j must be one of" in result.output
        # outcome-only GRPO has no μ: truncation="expected" is refused by both engines
        result = CliRunner().invoke(app, [*base, "--algo", "grpo", "--truncation", "expected"])
        assert result.exit_code == 2 and "needs a meta-prover" in result.output, result.output


# --- the released recipe ------------------------------------------------------------------------
SOURCE = {"p0": "B", "p1": "F", "p2": "L"}  # one source per group, cut after c of its episodes
CONTINUATIONS = {  # what the policy writes after the cut prefix, in turn
    "p0": [
        "\n\nWait, 2.</think>\\boxed{2}",
        "\n\nWait, 5.</think>\\boxed{5}",
        " so 2.</think>\\boxed{2}",
    ],
    "p1": [" 3.</think>\\boxed{3}", "\n\nWait, 6.</think>\\boxed{6}", " 4.</think>\\boxed{4}"],
    "p2": [" 4.</think>\\boxed{4}", " 4.</think>\\boxed{4}", " 1.</think>\\boxed{1}"],
}
CONTINUATION_OUTCOME = {"p0": [1, 0, 1], "p1": [1, 0, 0], "p2": [1, 1, 0]}


def _released_script() -> Any:
    """The policy for the released recipe: per problem, the source first, then continuations."""
    calls: dict[str, int] = defaultdict(int)

    def script(prompt: str, sample: int) -> str:
        problem = _problem_of(prompt)
        calls[problem] += 1
        if calls[problem] == 1:
            return TEXT[SOURCE[problem]]
        return CONTINUATIONS[problem][(calls[problem] - 2) % 3]

    return script


def _released_expected(problem: str, prefix: str) -> list[list[float]]:
    """Per member (the source, then the 3 continuations): ``R - J(prefix)`` per token of its
    own tokens, 0 on the replayed prefix (here: the continuations' own tokens only)."""
    baseline = J[(problem, prefix)]  # the mean 0/1 reward of μ's stop-now answers
    source = TEXT[SOURCE[problem]]
    members = [
        [0.0] * len(prefix) + [OUTCOME[SOURCE[problem]] - baseline] * (len(source) - len(prefix))
    ]
    for text, reward in zip(CONTINUATIONS[problem], CONTINUATION_OUTCOME[problem], strict=True):
        members.append([reward - baseline] * len(text))
    return members


def test_native_released_recipe_hands_the_loss_r_minus_j_of_the_prefix() -> None:
    lm = ScriptedLM(_released_script())
    problems = [Problem(p, text, gold) for p, (text, gold) in PROBLEMS.items()]
    config = TrainConfig(problems_per_step=3, group_size=4, token_budget=BUDGET)
    env_config = EnvConfig(
        problems=problems, lm=lm, prover=TableMetaProver(J, default=0.5), template=TEMPLATE,
        token_budget=BUDGET, truncation_lm=lm,
    )  # fmt: skip
    components = build_components(env_config)
    policy = LLMPolicy.for_env(lm, PolicyConfig(), components, BUDGET)
    learner = RecordingLearner()
    collector = RolloutCollector(env_config, components, policy)
    session = TrainSession(config, lm, policy, learner, collector, from_list(problems))  # type: ignore[arg-type]
    MRT(MRTConfig(credit="released")).train_step(session, seed=3)
    [(trajectories, tokens)] = learner.calls
    by_problem: dict[str, list[np.ndarray]] = defaultdict(list)
    prefixes = {}
    for trajectory, values in zip(trajectories, tokens, strict=True):
        by_problem[trajectory.problem_id].append(values)
        if len(by_problem[trajectory.problem_id]) == 1:  # the source: its frozen prefix
            prefixes[trajectory.problem_id] = "".join(
                e.text for e in trajectory.episodes if not e.trainable
            )
    assert set(by_problem) == set(PROBLEMS)
    assert any(prefixes.values())  # some cut replays a prefix (seeded cuts)
    for problem, members in by_problem.items():
        expected = _released_expected(problem, prefixes[problem])
        assert len(members) == len(expected) == 4
        for got, want in zip(members, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=problem)


def test_trl_released_recipe_hands_the_loss_r_minus_j_of_the_prefix(tmp_path: Path) -> None:
    from agents.session import load_language_model
    from agents.trl.rewards import OutcomeReward
    from agents.trl.run import TRLRunOptions, grpo_args
    from agents.trl.trainer import MRTGRPOTrainer, MRTSettings

    lm = load_language_model("random-tiny", "cpu", 0)
    eos = lm.tokenizer.eos_token_id
    script = _released_script()

    def generate(prompt_ids: list[list[int]], *args: Any) -> tuple[list[list[int]], None]:
        """A scripted stand-in for TRL's generation (decode the context, write the script)."""
        texts = [script(lm.tokenizer.decode(ids), 0) for ids in prompt_ids]
        return [[*lm.encode(text), eos] for text in texts], None

    train = TrainConfig(problems_per_step=3, group_size=4, token_budget=32)
    args = grpo_args(TRLRunOptions(out=tmp_path), train, normalize_std=True, report_to=())
    args.shuffle_dataset = False
    trainer = MRTGRPOTrainer(
        lm.model,
        reward_funcs=[OutcomeReward()],
        args=args,
        train_dataset=_dataset(),
        processing_class=lm.tokenizer,
        mrt=MRTSettings(
            credit=MRTConfig(credit="released"),
            template=TEMPLATE,
            prover=TableMetaProver(J, default=0.5),  # continuations' own J: not used here
        ),
    )
    trainer._generate_single_turn = generate  # completions fixed by the script
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    output = trainer._generate_and_score_completions(batch)
    lengths = output["completion_mask"].sum(dim=1).tolist()
    assert any(tokens for tokens, _ in trainer._released_rows)  # some cut replays a prefix
    for group, problem in enumerate(PROBLEMS):
        rows = range(4 * group, 4 * group + 4)
        [prefix_tokens] = {trainer._released_rows[r][0] for r in rows}
        prefix = TEXT[SOURCE[problem]][:prefix_tokens]  # one token per character
        expected = _released_expected(problem, prefix)
        expected = (
            [expected[0] + [expected[0][-1]]]
            + [  # + EOS; continuations follow the prefix
                [0.0] * len(prefix) + want + [want[-1]] for want in expected[1:]
            ]
        )
        for row, want in zip(rows, expected, strict=True):
            got = output["advantages"][row, : lengths[row]].double().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=problem)
