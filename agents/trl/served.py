"""TRL's ``GRPOTrainer`` trained with the served ``MRTMath-v0`` as its reward (an example).

:class:`ServedEnvReward` is a TRL reward function: each completion is split into episodes by
the env's segmenter and replayed through its own session of an ``mrt-gym serve`` server (all
completions of a batch at once, so the server batches their μ calls); the reward is the env's
return, outcome + α·Σ progress = outcome + α·(J(final) − J(empty thinking)).

Why a reward function, not ``environment_factory`` or ``rollout_func``: TRL 1.16's
``environment_factory`` exposes an env's methods as *tools* the model calls in a chat (it needs
a tool-calling chat template); MRT's episodes are segments of one continuous generation, not
tool calls. ``rollout_func`` would have to re-implement TRL's generation. Scoring each finished
completion through the served env keeps TRL's generation and gives the trajectory-level
return; per-episode credit (progress per episode as its own advantage) is what
``agents.trl.trainer.MRTGRPOTrainer`` adds, with μ in-process.

Example (with ``mrt-gym serve --port 8000`` running)::

    trainer = build_served_trainer(TRLRunOptions(out=Path("runs/trl-served")), TrainConfig(),
                                   "http://127.0.0.1:8000")
    trainer.train()
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.trl.rewards import completion_text


class ServedEnvReward:
    """The served env's return of each completion (a TRL reward function).

    Args:
        base_url: The ``mrt-gym serve`` server.
        token: Its bearer token, if any.
        options: Reset options of every session (``k``, ``token_budget``, ``template``, ...).
        segmenter: Splits a completion into episodes (``None``: the template's default).
        template: The chat template's preset name (for the default segmenter).
    """

    __name__ = "served_env"

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        options: dict[str, Any] | None = None,
        segmenter: Any = None,
        template: str = "tiny",
    ) -> None:
        from mrt_env.config import default_segmenter
        from mrt_env.templates import get_template

        self.base_url = base_url
        self.token = token
        self.options = dict(options or {})
        self.segmenter = segmenter or default_segmenter(get_template(template))
        self.last_infos: list[list[dict[str, Any]]] = []

    def __call__(
        self,
        completions: Sequence[Any],
        problem: Sequence[str],
        answer: Sequence[str],
        problem_id: Sequence[str],
        **_: Any,
    ) -> list[float | None]:
        rows = list(zip(completions, problem, answer, problem_id, strict=True))
        with ThreadPoolExecutor(max_workers=max(len(rows), 1)) as pool:
            results = list(pool.map(self._replay, rows))
        self.last_infos = [infos for _, infos in results]
        return [float(reward) for reward, _ in results]

    def _replay(self, row: tuple[Any, str, str, str]) -> tuple[float, list[dict[str, Any]]]:
        """One completion through one session: the summed rewards and the step infos."""
        from mrt_env.openenv.client import MRTMathEnv
        from mrt_env.openenv.models import MRTAction

        completion, problem, answer, problem_id = row
        episodes = self.segmenter.split(completion_text(completion)) or [""]
        record = {"id": problem_id, "problem": problem, "answer": answer}
        total, infos = 0.0, []
        with MRTMathEnv(self.base_url, token=self.token).sync() as env:
            env.reset(problem=record, **self.options)
            for i, episode in enumerate(episodes):
                result = env.step(MRTAction(text=episode, final=i == len(episodes) - 1))
                total += float(result.reward or 0.0)
                infos.append(result.observation.info)
                if result.done:
                    break
        return total, infos


def build_served_trainer(
    options: Any, train: Any, base_url: str, token: str | None = None, *, tensorboard: bool = False
) -> Any:
    """TRL's ``GRPOTrainer`` on ``options.problems`` with :class:`ServedEnvReward`.

    Args:
        options: An ``agents.trl.run.TRLRunOptions`` (model, problems, template, out).
        train: An ``agents.config.TrainConfig`` (steps, group size, budget, K, ...).
        base_url: The ``mrt-gym serve`` server.
        token: Its bearer token, if any.
    """
    from trl import GRPOTrainer

    from agents.session import load_language_model
    from agents.trl.data import problems_dataset
    from agents.trl.run import _source, grpo_args
    from mrt_env.sources import resolve_source
    from mrt_env.templates import resolve_template

    source = resolve_source(_source(options.problems, train.seed))
    lm = load_language_model(options.model, "cpu", train.seed)
    template = resolve_template(options.template, lm)
    dataset = problems_dataset(source, template=template)
    dataset = dataset.add_column("problem", [source[i].problem for i in range(len(source))])
    reward = ServedEnvReward(
        base_url,
        token=token,
        options={"k": train.prover_samples, "token_budget": train.token_budget},
        template=template.name,
    )
    return GRPOTrainer(
        model=lm.model,
        reward_funcs=[reward],
        args=grpo_args(
            options,
            train,
            normalize_std=True,
            report_to=("tensorboard",) if tensorboard else (),
        ),
        train_dataset=dataset,
        processing_class=lm.tokenizer,
    )
