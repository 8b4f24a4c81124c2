"""Budget forcing: keep a model thinking past its natural end to extrapolate test-time compute.

When the model ends its thinking, the end marker (and everything after it) is removed and a
cue is appended: "Wait", "But wait", "Alternatively", "But hold on", rotating; the model then
thinks at most ``max_extension_tokens`` more tokens. This repeats up to ``extensions`` (w)
times. Three entry points share one config:

- :func:`continue_thinking`: the pure text operation;
- :func:`budget_forced_generate`: generation with any :class:`~mrt_env.lm.base.LanguageModel`
  (:func:`budget_forced_generate_many`: the same, batched across prompts);
- :class:`BudgetForcing`: a ``gymnasium.Wrapper`` for environments whose actions are episode
  texts (such as ``MRTMath-v0``).

Example:
    >>> continue_thinking("x = 2.\\n</think>\\n\\\\boxed{2}", extension_index=0)
    'x = 2.\\n\\nWait'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from mrt_env.lm.base import Completion, LanguageModel, SamplingParams
from mrt_env.segmenters import thinking_part

DEFAULT_CUES: tuple[str, ...] = ("Wait", "But wait", "Alternatively", "But hold on")
"""The paper's continuation cues, used in turn."""


@dataclass(frozen=True)
class BudgetForcingConfig:
    """How budget forcing extends thinking.

    Example:
        >>> config = BudgetForcingConfig(extensions=3)
        >>> [config.cue(i) for i in range(5)]
        ['Wait', 'But wait', 'Alternatively', 'But hold on', 'Wait']
    """

    extensions: int = 1
    """Maximum number of forced continuations (w)."""

    max_extension_tokens: int = 2048
    """Token cap of the thinking generated after each cue."""

    cues: tuple[str, ...] = DEFAULT_CUES
    """Cues appended in turn: extension ``i`` uses ``cues[i % len(cues)]``."""

    end_think: str = "</think>"
    """The end-of-thinking marker that is removed."""

    separator: str = "\n\n"
    """Text between the kept thinking and the cue (a blank line, so the cue opens a paragraph
    and the marker segmenters see a new episode)."""

    def __post_init__(self) -> None:
        for name in ("extensions", "max_extension_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.max_extension_tokens == 0:
            raise ValueError("max_extension_tokens must be >= 1")
        if isinstance(self.cues, str) or not self.cues or not all(self.cues):
            raise ValueError(f"cues must be a non-empty tuple of non-empty strings: {self.cues!r}")
        object.__setattr__(self, "cues", tuple(self.cues))
        if not self.end_think:
            raise ValueError("end_think must be a non-empty string")

    def cue(self, extension_index: int) -> str:
        """The cue of extension ``extension_index`` (0-based, rotating)."""
        return self.cues[extension_index % len(self.cues)]


def continue_thinking(
    response: str, extension_index: int, config: BudgetForcingConfig | None = None
) -> str:
    """Replace the end of thinking of ``response`` by the next cue.

    Args:
        response: Text that ends thinking: it contains ``config.end_think``.
        extension_index: Which extension this is (0-based); selects the cue.
        config: Budget-forcing settings (default :class:`BudgetForcingConfig`).

    Returns:
        The thinking before the first end marker, without trailing whitespace, followed by
        ``config.separator`` and the cue. The text is meant to be continued by the model.

    Raises:
        ValueError: If ``response`` does not contain the end marker.

    Example:
        >>> continue_thinking("a\\n\\nb\\n</think> answer", 1)
        'a\\n\\nb\\n\\nBut wait'
    """
    config = config or BudgetForcingConfig()
    thinking, rest = thinking_part(response, config.end_think)
    if not rest:
        raise ValueError(f"response does not end thinking: no {config.end_think!r} in it")
    return thinking.rstrip() + config.separator + config.cue(extension_index)


@dataclass(frozen=True)
class BudgetForcedGeneration:
    """Result of :func:`budget_forced_generate`."""

    text: str
    """The full response: every end of thinking but the last replaced by a cue. If the last
    generation stopped at ``end_think`` as a stop string, the marker is restored."""

    initial_tokens: int
    """Tokens generated before the first cue."""

    extension_tokens: tuple[int, ...]
    """Tokens generated after each cue (one entry per extension used; cues not counted)."""

    completions: tuple[Completion, ...]
    """Every model completion, in order (the first, then one per extension)."""

    ended_thinking: bool
    """Whether the last generation ended thinking (it ran out of tokens otherwise)."""

    responses: tuple[str, ...]
    """The response after each number of extensions: ``responses[w]`` is the ``text`` that
    ``extensions=w`` gives with the same seed (``responses[-1] == text``)."""

    @property
    def extensions_used(self) -> int:
        """Number of cues appended."""
        return len(self.extension_tokens)

    @property
    def total_tokens(self) -> int:
        """All generated tokens (cues excluded)."""
        return self.initial_tokens + sum(self.extension_tokens)


def _ends_thinking(completion: Completion, end_think: str) -> bool:
    return end_think in completion.text or completion.stop_string == end_think


def _generation_seeds(seed: int | None, count: int) -> list[int | None]:
    """``count`` independent seeds derived from ``seed`` (all ``None`` without one)."""
    if seed is None:
        return [None] * count
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def _restored(text: str, completion: Completion, end_think: str) -> str:
    """``text`` with the end marker put back when ``completion`` stopped at it."""
    stopped_at_marker = completion.stop_string == end_think and end_think not in completion.text
    return text + end_think if stopped_at_marker else text


def _checked_many(
    prompts: Sequence[str],
    params: SamplingParams,
    seeds: Sequence[int] | None,
    forced: Sequence[bool] | None,
) -> list[bool]:
    """Validate the batch arguments; returns the per-prompt forcing mask."""
    if params.n != 1:
        raise ValueError(f"budget forcing samples one response per prompt; got params.n={params.n}")
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
    if forced is not None and len(forced) != len(prompts):
        raise ValueError(f"got {len(forced)} forced flags for {len(prompts)} prompts")
    return [True] * len(prompts) if forced is None else [bool(f) for f in forced]


def budget_forced_generate_many(
    lm: LanguageModel,
    prompts: Sequence[str],
    params: SamplingParams,
    config: BudgetForcingConfig | None = None,
    seeds: Sequence[int] | None = None,
    *,
    forced: Sequence[bool] | None = None,
    max_context_tokens: int | None = None,
) -> list[BudgetForcedGeneration]:
    """:func:`budget_forced_generate` for many prompts, one batched ``lm.generate`` per round.

    Round 0 generates every prompt's natural response; round ``w`` continues, after the cue
    of extension ``w``, every response that the previous round ended. As ``seeds[i]`` alone
    fixes prompt ``i``'s samples (the :class:`~mrt_env.lm.base.LanguageModel` contract),
    ``out[i]`` equals ``budget_forced_generate(lm, prompts[i], params, config, seeds[i])``
    (texts, token ids and counts exactly; log-probabilities up to float rounding, which a
    padded batch can move in the last bits).

    Args:
        lm: The language model.
        prompts: Rendered prompts (each ends where the thinking starts).
        params: Sampling settings of the first generation (``n`` must be 1); extensions use
            them too, with ``max_new_tokens`` replaced.
        config: Budget-forcing settings (default :class:`BudgetForcingConfig`).
        seeds: One seed per prompt (extension seeds are derived from it), or ``None``.
        forced: Which prompts are forced (default all); the others keep their natural
            response, generated in the same first batch.
        max_context_tokens: When given, a response is extended only while
            ``count_tokens(prompt + response so far + cue) + max_extension_tokens`` stays
            within it, so no extension can overflow a context of this many tokens.

    Returns:
        One :class:`BudgetForcedGeneration` per prompt, in order.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> lm = ScriptedLM({":": "1+1=2</think>2", "Wait": ", yes.</think>2"})
        >>> outs = budget_forced_generate_many(lm, ["Q1:", "Q2:"], SamplingParams(64))
        >>> outs[0].responses  # after 0 and 1 extensions
        ('1+1=2</think>2', '1+1=2\\n\\nWait, yes.</think>2')
        >>> [prompt for call in lm.calls for prompt in call[0]]  # two batched calls
        ['Q1:', 'Q2:', 'Q1:1+1=2\\n\\nWait', 'Q2:1+1=2\\n\\nWait']
    """
    config = config or BudgetForcingConfig()
    active = _checked_many(prompts, params, seeds, forced)
    if not prompts:
        return []
    streams = [
        _generation_seeds(None if seeds is None else seeds[i], config.extensions + 1)
        for i in range(len(prompts))
    ]
    first = lm.generate(list(prompts), params, _seeds_of(streams, range(len(prompts)), 0))
    completions = [[samples[0]] for samples in first]
    texts = [c[0].text for c in completions]
    responses = [[_restored(c[0].text, c[0], config.end_think)] for c in completions]
    extension_params = dataclasses.replace(params, max_new_tokens=config.max_extension_tokens)
    for index in range(config.extensions):
        ended = [
            a and _ends_thinking(c[-1], config.end_think)
            for a, c in zip(active, completions, strict=True)
        ]
        stems = _stems(lm, prompts, texts, ended, index, config, max_context_tokens)
        active = [i in stems for i in range(len(prompts))]
        if not stems:
            break
        live = list(stems)
        outputs = lm.generate(
            [prompts[i] + stems[i] for i in live],
            extension_params,
            _seeds_of(streams, live, index + 1),
        )
        for i, samples in zip(live, outputs, strict=True):
            completions[i].append(samples[0])
            texts[i] = stems[i] + samples[0].text
            responses[i].append(_restored(texts[i], samples[0], config.end_think))
    return [
        _generation(c, r, config.end_think) for c, r in zip(completions, responses, strict=True)
    ]


def _stems(
    lm: LanguageModel,
    prompts: Sequence[str],
    texts: list[str],
    ended: list[bool],
    index: int,
    config: BudgetForcingConfig,
    max_context_tokens: int | None,
) -> dict[int, str]:
    """``i -> text to continue`` for the responses that extension ``index`` forces: those
    that ended thinking and, under ``max_context_tokens``, still have room for an extension."""
    stems = {
        i: continue_thinking(
            thinking_part(texts[i], config.end_think)[0] + config.end_think, index, config
        )
        for i in range(len(prompts))
        if ended[i]
    }
    if max_context_tokens is None:
        return stems
    room = max_context_tokens - config.max_extension_tokens
    return {i: s for i, s in stems.items() if lm.count_tokens(prompts[i] + s) <= room}


def _seeds_of(streams: list[list[int | None]], indices: Any, index: int) -> list[int] | None:
    """Seed ``index`` of each listed prompt's stream (``None`` for unseeded prompts)."""
    chosen = [streams[i][index] for i in indices]
    return None if any(s is None for s in chosen) else [int(s) for s in chosen if s is not None]


def _generation(
    completions: list[Completion], responses: list[str], end_think: str
) -> BudgetForcedGeneration:
    return BudgetForcedGeneration(
        text=responses[-1],
        initial_tokens=len(completions[0].token_ids),
        extension_tokens=tuple(len(c.token_ids) for c in completions[1:]),
        completions=tuple(completions),
        ended_thinking=_ends_thinking(completions[-1], end_think),
        responses=tuple(responses),
    )


def budget_forced_generate(
    lm: LanguageModel,
    prompt: str,
    params: SamplingParams,
    config: BudgetForcingConfig | None = None,
    seed: int | None = None,
    *,
    max_context_tokens: int | None = None,
) -> BudgetForcedGeneration:
    """Generate a response, forcing the model to keep thinking when it stops.

    The first generation uses ``params``. Each time a generation ends thinking (the end
    marker appears in its text, or it is the stop string that ended it) and extensions are
    left, the marker and everything after it are dropped, the next cue is appended
    (:func:`continue_thinking`) and the model continues from ``prompt + text`` with
    ``max_new_tokens = config.max_extension_tokens``.

    Args:
        lm: The language model.
        prompt: The rendered prompt (ends where the thinking starts).
        params: Sampling settings of the first generation (``n`` must be 1); extensions use
            them too, with ``max_new_tokens`` replaced.
        config: Budget-forcing settings (default :class:`BudgetForcingConfig`).
        seed: Seed of the first generation; extension seeds are derived from it.
        max_context_tokens: Extend only while an extension cannot overflow a context of this
            many tokens (see :func:`budget_forced_generate_many`); ``None``: no limit.

    Returns:
        The full response text and per-extension token counts.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> lm = ScriptedLM({"Q:": "1+1=2</think>2", "Wait": ", yes 2.</think>2"})
        >>> out = budget_forced_generate(lm, "Q:", SamplingParams(max_new_tokens=64))
        >>> out.text, out.extension_tokens
        ('1+1=2\\n\\nWait, yes 2.</think>2', (17,))
    """
    seeds = None if seed is None else [seed]
    [generation] = budget_forced_generate_many(
        lm, [prompt], params, config, seeds, max_context_tokens=max_context_tokens
    )
    return generation


def _env_token_budget(env: gym.Env[Any, Any]) -> int | None:
    """``env.unwrapped.config.token_budget`` when the env has one (``MRTMath-v0`` does)."""
    budget = getattr(getattr(env.unwrapped, "config", None), "token_budget", None)
    return int(budget) if isinstance(budget, int | np.integer) else None


class BudgetForcing(gym.Wrapper[str, str, str, str]):
    """Keep a trajectory thinking when an episode ends it early.

    Actions are episode texts. When an action contains ``config.end_think``, extensions are
    left and the trajectory has token budget left, the action is replaced by
    :func:`continue_thinking` of it (the text before the marker, a blank line, the next cue),
    so the environment sees the trajectory go on; the policy continues after the cue. Once
    the extensions are used up, an action that ends thinking passes through unchanged.

    The wrapper cannot shorten what the policy writes: ``max_extension_tokens`` is reported
    against (``extension_tokens``) but enforced by the policy's sampler (cap its
    ``max_new_tokens``) and by the environment's token budget.

    ``info["budget_forcing"]`` (after reset and every step) holds ``extensions_used``,
    ``extensions_left``, ``forced`` (this step's action was replaced), ``cue`` (the cue
    appended, or ``None``) and ``extension_tokens`` (tokens added after each cue, read from
    ``info["total_tokens"]``).

    Args:
        env: An environment whose actions are ``str`` and whose ``info["total_tokens"]`` is
            the trajectory's token count (``MRTMath-v0``).
        config: Budget-forcing settings (default :class:`BudgetForcingConfig`).
        token_budget: Forcing stops once the trajectory holds this many tokens (for
            extrapolation, set it below the env's budget to let the model answer after it);
            ``None`` reads ``env.unwrapped.config.token_budget`` when present, else only the
            extension count limits forcing.

    Example (a scripted model, no meta-prover; ``gym.make("MRTMath-v0")`` wraps the same way):
        >>> from mrt_env.env import MRTMathEnv
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> inner = MRTMathEnv(problems=[{"id": "p", "problem": "1+1?", "answer": "2"}],
        ...                    lm=ScriptedLM(["2}"]), prover="none")
        >>> env = BudgetForcing(inner, BudgetForcingConfig(extensions=2))
        >>> _, info = env.reset(seed=0)
        >>> obs, _, terminated, _, info = env.step("1+1=2.</think>\\\\boxed{2}")
        >>> terminated, obs.endswith("1+1=2.\\n\\nWait"), info["budget_forcing"]["extensions_left"]
        (False, True, 1)
    """

    def __init__(
        self,
        env: gym.Env[str, str],
        config: BudgetForcingConfig | None = None,
        token_budget: int | None = None,
    ) -> None:
        super().__init__(env)
        self.config = config or BudgetForcingConfig()
        self.token_budget = _env_token_budget(env) if token_budget is None else token_budget
        self._extensions_used = 0
        self._total_tokens = 0
        self._extension_start = 0
        self._extension_tokens: list[int] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset the environment and the extension count."""
        observation, info = self.env.reset(seed=seed, options=options)
        self._extensions_used, self._total_tokens, self._extension_start = 0, 0, 0
        self._extension_tokens = []
        info["budget_forcing"] = self._report(forced=False, cue=None)
        return observation, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with ``action``, replacing an early end of thinking by the next cue."""
        cue = None
        if self._should_force(action):
            cue = self.config.cue(self._extensions_used)
            action = continue_thinking(action, self._extensions_used, self.config)
            self._extensions_used += 1
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._track_tokens(info.get("total_tokens"), started=cue is not None)
        info["budget_forcing"] = self._report(forced=cue is not None, cue=cue)
        return observation, reward, terminated, truncated, info

    def _should_force(self, action: Any) -> bool:
        if not isinstance(action, str) or self.config.end_think not in action:
            return False
        if self._extensions_used >= self.config.extensions:
            return False
        return self.token_budget is None or self._total_tokens < self.token_budget

    def _track_tokens(self, total_tokens: Any, started: bool) -> None:
        known = isinstance(total_tokens, int | float | np.number)
        if known:
            self._total_tokens = int(total_tokens)
        if started:
            self._extension_start = self._total_tokens
            self._extension_tokens.append(0)
        elif self._extension_tokens and known:
            self._extension_tokens[-1] = self._total_tokens - self._extension_start

    def _report(self, forced: bool, cue: str | None) -> dict[str, Any]:
        return {
            "extensions_used": self._extensions_used,
            "extensions_left": self.config.extensions - self._extensions_used,
            "forced": forced,
            "cue": cue,
            "extension_tokens": tuple(self._extension_tokens),
        }
