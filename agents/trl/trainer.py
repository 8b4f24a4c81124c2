"""``MRTGRPOTrainer``: MRT's credit on TRL's ``GRPOTrainer`` (a drop-in subclass).

TRL generates and scores the completions as usual; this trainer then splits each completion
into the env's episodes, estimates J after every episode with the meta-prover μ (the current
policy, batched, cached per weights version, common random numbers) and replaces TRL's
per-sequence advantages with MRT's per-token ones, built by the same functions the reference
trainer uses (:func:`agents.mrt.per_episode_credit`, :func:`agents.mrt.released_credit`):

- ``credit="progress"`` / ``"progress_to_go"``: every episode's tokens get
  ``(R - mean_group(R) + alpha * bonus) / scale`` over TRL's groups of ``num_generations``.
- ``credit="released"``: per group TRL samples one source completion, cuts it after a random
  number of episodes, continues the prefix ``num_generations - 1`` times (through TRL's own
  generation: vLLM or the training model) and trains every member's continuation tokens on
  ``R - J(prefix)``; the replayed prefix is masked out of the loss.

``R`` is TRL's combined reward (``reward_funcs`` weighted by ``reward_weights``); rows every
reward function left unscored (``None``) get advantage 0, as in TRL. Progress and J statistics
are logged through TRL's metrics (``mrt/...``).

The end of a completion is graded as in the env, by the same functions
(:mod:`mrt_env.grading`), with the same settings and defaults: a completion that closed its
thinking or ended (EOS) is *finished*, and J after its last episode is μ's estimate from the
natural end of thinking (``final_j="prover"``) or its verified outcome (``"outcome"``); one that
hit ``max_completion_length`` is *truncated*: the reward functions grade the policy's forced
answer after the termination suffix (``truncation="forced_answer"``), or
:class:`~agents.trl.rewards.OutcomeReward` takes μ's J of its thinking (``"expected"``), and J
after its last episode is μ's estimate of its thinking.

Example (TRL user code; swap the trainer class of an existing GRPO recipe)::

    from agents.trl import data, rewards, trainer
    t = trainer.MRTGRPOTrainer(model, reward_funcs=[rewards.OutcomeReward()], args=grpo_args,
                               train_dataset=data.problems_dataset("tinymath"),
                               processing_class=tokenizer, mrt=MRTSettings(credit="progress"))
    t.train()
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation

from agents.monitor import end_metrics
from agents.mrt import per_episode_credit, released_credit
from agents.trl.ends import CompletionEnd, grade_ends, problem_id_of
from agents.trl.episodes import CompletionEpisodes, prefix_seed, split_completion
from agents.trl.prover import HybridPolicyProver, PolicyProver, VLLMEngineLM
from agents.trl.settings import CreditRecord, MRTSettings
from agents.trl.skip import SkipZeroAdvantageSteps
from mrt_env.config import default_segmenter
from mrt_env.grading import (
    end_j,
    needs_final_estimate,
)
from mrt_env.lm.base import SamplingParams
from mrt_env.lm.hf import HFLanguageModel
from mrt_env.prover.base import ProverRequest
from mrt_env.segmenters import bind_segmenter
from mrt_env.templates import get_template


class MRTGRPOTrainer(SkipZeroAdvantageSteps, GRPOTrainer):
    """``GRPOTrainer`` with MRT's per-token advantages (see the module docs); a step whose
    every advantage is 0 (and no KL term) is skipped (:mod:`agents.trl.skip`).

    Args:
        *args: ``GRPOTrainer``'s arguments.
        mrt: MRT settings.
        **kwargs: ``GRPOTrainer``'s keyword arguments (``rollout_func`` is taken by the
            released recipe).
    """

    def __init__(self, *args: Any, mrt: MRTSettings | None = None, **kwargs: Any) -> None:
        self.mrt = mrt or MRTSettings()
        released = self.mrt.credit is not None and self.mrt.credit.credit == "released"
        if released and kwargs.get("rollout_func") is not None:
            raise ValueError("credit='released' generates its own continuations: no rollout_func")
        super().__init__(*args, **kwargs)
        self.chat = get_template(self.mrt.template)
        self.segmenter = bind_segmenter(
            self.mrt.segmenter or default_segmenter(self.chat), self._count_tokens
        )
        self.mu: Any = self.mrt.prover or self._policy_prover()
        if self.mrt.prover_sample_share > 0:
            self.mu = self._hybrid_prover()
        self.last_credit: CreditRecord | None = None
        self._released_rows: list[tuple[int, float]] = []  # (prefix tokens, J(prefix)) per row
        self._ends: list[CompletionEnd] = []  # this process's rows: how each one ended
        self._graded: list[str] = []  # this process's rows: the text the rewards graded
        if released:
            from agents.trl.released import released_rollout

            self.rollout_func = released_rollout

    def _count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the policy's tokenizer (a ``fallback`` segmenter's counter)."""
        tokenizer: Any = getattr(self.processing_class, "tokenizer", self.processing_class)
        return len(tokenizer.encode(text, add_special_tokens=False))

    # -- μ ---------------------------------------------------------------------------------
    def _policy_prover(self) -> PolicyProver:
        """μ over the current weights: TRL's colocated vLLM engine, else the training model."""
        lm: Any
        if self._mu_on_vllm():
            lm = VLLMEngineLM(self.vllm_generation.llm)
        else:
            lm = HFLanguageModel(self.accelerator.unwrap_model(self.model), self._tokenizer)
        return PolicyProver(
            lm,
            self.chat,
            k=self.mrt.prover_samples,
            max_answer_tokens=self.mrt.max_answer_tokens,
        )

    def _hybrid_prover(self) -> HybridPolicyProver:
        """The learned ``prover`` with the policy's own forced answers on a share ρ."""
        if self.accelerator.num_processes > 1:
            raise ValueError(
                "the hybrid μ (--prover hybrid:PATH) runs on one process on TRL: each process "
                "would update its own copy of the head; use learned:PATH or the native engine"
            )
        online = self._policy_prover()
        share, seed = self.mrt.prover_sample_share, int(self.args.seed)
        return HybridPolicyProver(self.mrt.prover, online, share=share, seed=seed)

    def _mu_on_vllm(self) -> bool:
        """μ samples on TRL's colocated engine when it runs whole on this process and awake."""
        args = self.args
        return bool(
            self.use_vllm
            and getattr(self.vllm_generation, "mode", None) == "colocate"
            and getattr(args, "vllm_tensor_parallel_size", 1) == 1
            and not getattr(args, "vllm_enable_sleep_mode", False)
        )

    @contextlib.contextmanager
    def _current_weights(self) -> Iterator[Any]:
        """The training model with its current weights for generation (gathered under
        ZeRO-3: every process must enter this together, even with nothing to generate)."""
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=getattr(self.args, "ds3_gather_for_generation", True),
                gradient_checkpointing_kwargs=getattr(
                    self.args, "gradient_checkpointing_kwargs", None
                ),
            ) as unwrapped,
            torch.no_grad(),
        ):
            yield unwrapped

    def estimate_j(self, requests: list[ProverRequest]) -> list[float]:
        """J of each request with the current weights (version: TRL's optimizer step)."""
        version = int(self.state.global_step)
        on_policy = isinstance(self.mu, PolicyProver | HybridPolicyProver)
        if on_policy and isinstance(self.mu.lm, HFLanguageModel):
            with self._current_weights() as unwrapped:
                self.mu.lm.model = unwrapped
                return [e.j for e in self.mu.estimate(requests, version)] if requests else []
        if not requests:
            return []
        if on_policy:
            return [e.j for e in self.mu.estimate(requests, version)]
        return [e.j for e in self.mu.estimate(requests)]  # a fixed μ (MetaProver protocol)

    def forced_answers(self, prompts: list[str], seeds: list[int]) -> list[str]:
        """One answer of the policy (``truncation_lm``) after each forced prompt, seeded."""
        params = SamplingParams(
            max_new_tokens=self.chat.answer_caps(forced=self.mrt.max_answer_tokens).forced,
            temperature=1.0,
        )
        lm = self.mrt.truncation_lm
        if lm is not None:
            return [s[0].text for s in lm.generate(prompts, params, seeds=seeds)] if prompts else []
        if isinstance(self.mu, PolicyProver) and not isinstance(self.mu.lm, HFLanguageModel):
            lm = self.mu.lm  # TRL's colocated vLLM engine: it holds the current weights
            return [s[0].text for s in lm.generate(prompts, params, seeds=seeds)] if prompts else []
        with self._current_weights() as unwrapped:
            if not prompts:
                return []
            lm = HFLanguageModel(unwrapped, self._tokenizer)
            return [s[0].text for s in lm.generate(prompts, params, seeds=seeds)]

    def request(self, row: dict[str, Any], prefix: str) -> ProverRequest:
        """μ's request for the thinking ``prefix`` of a dataset row (seeded per prefix)."""
        problem_id = problem_id_of(row)
        seed = prefix_seed(self.args.seed, int(self.state.global_step), problem_id, prefix)
        return ProverRequest(problem_id, row["prompt"], str(row["answer"]), prefix, seed)

    def split(self, token_ids: list[int]) -> CompletionEpisodes:
        """The env's episodes of one completion."""
        return split_completion(self.mu_tokens, token_ids, self.segmenter, self.chat.end_think)

    @property
    def mu_tokens(self) -> Any:
        """Something with ``decode`` in the policy's tokenizer."""
        return _TokenizerLM(self._tokenizer)

    def _truncation_rows(self) -> list[str | None]:
        """Per row, ``None`` (finished) or how the truncated completion was graded."""
        return [None if end.finished else str(self.mrt.truncation) for end in self._ends]

    # -- TRL hooks -------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        if self.model is not None and self.model.training:
            completions = grade_ends(self, inputs, completions, completion_ids_list)
        rewards_per_func = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        combined = (rewards_per_func * weights).nansum(dim=1)
        combined[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        self._mrt_rewards = combined.detach().cpu().numpy().astype(np.float64)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):  # type: ignore[no-untyped-def]
        self._mrt_inputs = inputs  # the rows' columns (answer, problem_id) for μ's requests
        output = super()._generate_and_score_completions(inputs)
        if self.model is None or not self.model.training:
            return output
        if self.mrt.credit is None:  # outcome-only GRPO: TRL's advantages, the env's grading
            truncation = self._truncation_rows()
            stats = end_metrics([None] * len(truncation), truncation, prefix="mrt")
            for name, value in stats.items():
                self._metrics["train"][name].append(value)
            return output
        if isinstance(self.mu, HybridPolicyProver):  # the head learns once per optimizer step
            for name, value in self.mu.update(int(self.state.global_step)).items():
                self._metrics["train"][name].append(value)
        start = time.perf_counter()
        local = len(inputs)
        first = self.accelerator.process_index * local
        rewards = self._mrt_rewards[first : first + local]
        rows = _completion_rows(output["completion_ids"], output["completion_mask"])
        episodes = [self.split(ids) for ids in rows]
        if len(self._ends) != len(rows):
            raise RuntimeError("the completions' ends were not graded (_calculate_rewards)")
        pairs: list[list[tuple[float | None, float | None]]] = []
        sources: list[str | None] = []
        prefix_j: list[float] = []
        if self.mrt.credit.credit == "released":  # type: ignore[union-attr]
            tokens = self._released_credit(rewards, rows)
            prefix_j = [j for _, j in self._released_rows]
        else:
            pairs, sources = self._episode_j(inputs, episodes, rows)
            tokens = self._episode_credit(pairs, episodes, rows)
        width = output["completion_ids"].size(1)
        advantages = torch.zeros(len(rows), width, dtype=torch.float32)
        for row, values in enumerate(tokens):
            advantages[row, : len(values)] = torch.from_numpy(values)
        output["advantages"] = advantages.to(output["completion_ids"].device)
        truncation = self._truncation_rows()
        self.last_credit = CreditRecord(
            episodes, pairs, rewards, prefix_j, advantages, sources, truncation, self._graded
        )
        self._log_credit(episodes, pairs, prefix_j, advantages, output, time.perf_counter() - start)
        return output

    # -- credit ----------------------------------------------------------------------------
    def _episode_j(
        self,
        inputs: list[dict[str, Any]],
        episodes: list[CompletionEpisodes],
        rows: list[list[int]],
    ) -> tuple[list[list[tuple[float | None, float | None]]], list[str | None]]:
        """``(J before, J after)`` of every episode (one batched μ call for the batch) and the
        source of each row's final J (:func:`mrt_env.grading.end_j`, as in the env)."""
        final_j = self.mrt.final_j
        finished = [end.finished for end in self._ends]
        outcome: list[float | None] = [None] * len(rows)
        if final_j == "outcome":
            outcome = list(self._outcomes(inputs, rows))
        requests = []
        for row, split in enumerate(episodes):
            # natural end of thinking when finished (the whole text), else the thinking
            final = [split.text if finished[row] else split.thinking]
            for prefix in [*split.prefixes, *final[: needs_final_estimate(finished[row], final_j)]]:
                requests.append(self.request(inputs[row], prefix))
        values = iter(self.estimate_j(requests))
        pairs: list[list[tuple[float | None, float | None]]] = []
        sources: list[str | None] = []
        for row, split in enumerate(episodes):
            j: list[float | None] = [next(values) for _ in split.prefixes]
            estimate = next(values) if needs_final_estimate(finished[row], final_j) else None
            last, source = end_j(finished[row], outcome[row], estimate, final_j)
            j.append(last)
            sources.append(source)
            pairs.append(list(itertools.pairwise(j)))
        return pairs, sources

    def _outcomes(self, inputs: list[dict[str, Any]], rows: list[list[int]]) -> list[float]:
        """The verified 0/1 outcome of each completion (J after a finished trajectory with
        ``final_j="outcome"``)."""
        import rewards as reward_lib

        texts = self._tokenizer.batch_decode(rows, skip_special_tokens=True)
        pairs = [(text, str(row["answer"])) for text, row in zip(texts, inputs, strict=True)]
        return [float(v.correct) for v in reward_lib.verify_many(pairs)]

    def _episode_credit(
        self,
        pairs: list[list[tuple[float | None, float | None]]],
        episodes: list[CompletionEpisodes],
        rows: list[list[int]],
    ) -> list[np.ndarray]:
        """:func:`agents.mrt.per_episode_credit` over TRL's groups (all processes' rows)."""
        settings, local = self.mrt.credit, len(rows)
        assert settings is not None  # per-episode credit modes only
        everything = gather_object(
            [(p, list(e.spans), len(r)) for p, e, r in zip(pairs, episodes, rows, strict=True)]
        )
        rewards = self._mrt_rewards
        scored = np.flatnonzero(~np.isnan(rewards))
        groups = np.arange(len(rewards)) // int(self.num_generations or 1)
        credit = per_episode_credit(
            rewards[scored],
            groups[scored],
            [everything[i][0] for i in scored],
            [everything[i][1] for i in scored],
            [everything[i][2] for i in scored],
            alpha=settings.alpha,
            mode=settings.credit,
            normalize_std=settings.normalize_std,
        )
        tokens = [np.zeros(item[2], dtype=np.float32) for item in everything]
        for index, values in zip(scored, credit, strict=True):
            tokens[index] = values
        first = self.accelerator.process_index * local
        return tokens[first : first + local]

    def _released_credit(self, rewards: np.ndarray, rows: list[list[int]]) -> list[np.ndarray]:
        """:func:`agents.mrt.released_credit` for this process's rows (0 where unscored)."""
        prefix_tokens = [n for n, _ in self._released_rows]
        prefix_j = [j for _, j in self._released_rows]
        outcome = np.nan_to_num(rewards, nan=0.0)
        credit = released_credit(outcome, prefix_j, prefix_tokens, [len(r) for r in rows])
        return [
            c if not np.isnan(r) else np.zeros_like(c) for c, r in zip(credit, rewards, strict=True)
        ]

    def _log_credit(
        self,
        episodes: list[CompletionEpisodes],
        pairs: list[list[tuple[float | None, float | None]]],
        prefix_j: list[float],
        advantages: torch.Tensor,
        output: dict[str, Any],
        seconds: float,
    ) -> None:
        """Progress and J statistics through TRL's metrics (averaged over processes)."""
        mask = output["completion_mask"].cpu()
        if "tool_mask" in output:
            mask = mask * output["tool_mask"].cpu()
        trained = advantages[mask.bool()]
        stats = {
            "mrt/episodes": float(np.mean([len(e.spans) for e in episodes])),
            "mrt/advantage_abs": float(trained.abs().mean()) if trained.numel() else 0.0,
            "mrt/credit_seconds": seconds,
            "prover/learned": float(getattr(self.mu, "source", "sampled") == "learned"),
        }
        if pairs:
            progress = [sum(a - b for b, a in p if a is not None and b is not None) for p in pairs]
            j_values = [b for p in pairs for b, _ in p if b is not None]
            stats["mrt/progress"] = float(np.mean(progress))
            stats["mrt/j"] = float(np.mean(j_values)) if j_values else float("nan")
            stats["mrt/j_empty"] = float(
                np.mean([p[0][0] for p in pairs if p and p[0][0] is not None])
            )
        if prefix_j:
            stats["mrt/j_prefix"] = float(np.mean(prefix_j))
        record = self.last_credit
        if record is not None:  # which final J and truncation grading the batch used
            j_sources = record.j_sources or [None] * len(record.truncation)
            stats.update(end_metrics(j_sources, record.truncation, prefix="mrt"))
        device = self.accelerator.device
        for name, value in stats.items():
            mean = self.accelerator.gather(torch.tensor([value], device=device)).float().nanmean()
            self._metrics["train"][name].append(float(mean))


class _TokenizerLM:
    """``decode`` of a tokenizer, as :func:`agents.policy.token_offsets` needs it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def decode(self, ids: Any) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))


def _completion_rows(completion_ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """Each row's completion token ids (padding dropped)."""
    return [ids[m.bool()].tolist() for ids, m in zip(completion_ids.cpu(), mask.cpu(), strict=True)]
