"""Configuration of the MRT math environment: one frozen dataclass, validated on creation.

:class:`EnvConfig` holds *what* to build (names, paths, instances); :func:`build_components`
turns it into the objects a running environment uses (problem source, language model,
meta-prover, template, segmenter, reward). Heavy libraries are imported only there.

Example:
    >>> config = EnvConfig(token_budget=256, max_episodes=4)
    >>> config.k, config.truncation_outcome
    (8, 'forced_answer')
    >>> EnvConfig(k=0)
    Traceback (most recent call last):
    ...
    ValueError: k must be a positive int, got 0
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrt_env.answer_patterns import check_answer_patterns, resolve_answer_patterns
from mrt_env.grading import FINAL_J, TRUNCATIONS, FinalJ, Truncation
from mrt_env.lm.base import LanguageModel
from mrt_env.lm_options import check_lm_options
from mrt_env.problems import Problem, ProblemSource
from mrt_env.prover.base import MetaProver
from mrt_env.sources import FieldNames, resolve_source
from mrt_env.templates import (
    TINY_TEMPLATES,
    AnswerCaps,
    ChatTemplate,
    check_template_spec,
    resolve_template,
)

TruncationOutcome = Truncation
TRUNCATION_OUTCOMES: tuple[str, ...] = TRUNCATIONS


@dataclass(frozen=True)
class EnvConfig:
    """Settings of ``MRTMath-v0`` (also accepted as ``gym.make`` keyword arguments)."""

    problems: ProblemSource | Sequence[Problem | Mapping[str, Any]] | str | Path = "tinymath"
    """Problem source: a ``ProblemSource``, a list of ``Problem``/dicts, a JSONL path,
    ``"hf:NAME:SPLIT"`` (needs ``datasets``) or ``"tinymath"`` / ``"tinymath:SPLIT"``. A
    string may end in a filter, ``"math500.jsonl?level=1,2&subject=Algebra&sample=20"``
    (metadata fields, ``ids``, a seeded ``shuffle``/``sample``; :mod:`mrt_env.problem_filter`)."""

    problem_fields: FieldNames = field(default_factory=FieldNames)
    """Record field names (problem / answer / id) for JSONL files, lists and datasets."""

    lm: LanguageModel | str = "tiny"
    """The model that counts tokens and backs μ: an instance, ``"tiny"`` (the embedded TinyMath
    model, whose forced answers write a line of work so that J is graded; ``"tiny:classic"``
    for the one whose J is a step, ``"tiny:grpo"``/``"tiny:mrt"`` for trained variants) or a
    local path / hub id for
    ``HFLanguageModel.from_pretrained`` (no download unless allowed)."""

    prover: MetaProver | str | None = None
    """The meta-prover μ: ``None`` builds a ``SampledMetaProver`` on ``lm``; an instance is
    used as is; ``"learned:PATH"`` loads a ``LearnedMetaProver`` folder (J from one forward
    pass of its feature model, which must share ``lm``'s tokenizer); ``"none"`` disables μ
    (no J, progress, regret or curve)."""

    template: str | ChatTemplate | None = None
    """Chat/termination template: a preset name (``"tiny"``, ``"r1-distill"``, ``"plain"``,
    ``"chat"`` for the model's own tokenizer chat template) or a ``ChatTemplate``. ``None``:
    the preset the model folder declares (the default tiny LM: ``"tiny-explain"``), else
    ``"tiny"`` for a tiny LM (and LMs without a tokenizer), ``"chat"`` with a logged notice
    for a model whose tokenizer has a chat template (see ``mrt_env.templates``)."""

    k: int = 8
    """Forced answers sampled per J estimate (K)."""

    max_answer_tokens: int | None = None
    """Token cap of one forced answer (μ's and a truncated trajectory's); ``None``: the
    template's (:meth:`ChatTemplate.answer_caps`: 16 for ``tiny``, whose suffix opens
    ``\\boxed{``; 128 for ``tiny-explain``; 512 after R1's suffix)."""

    prover_temperature: float = 1.0
    """Sampling temperature of μ's forced answers."""

    token_budget: int = 512
    """Maximum response tokens of a trajectory (model tokenizer): the thinking, not the prompt
    (the regret budgets ``C0`` of ``mrt_env.regret`` count prompt + thinking + forced-answer
    tokens instead); an episode that overruns it is cut at the budget and the trajectory is
    truncated."""

    max_episodes: int = 16
    """Maximum episodes (steps) of a trajectory; reaching it truncates the trajectory."""

    rewards: tuple[Any, ...] = ("outcome", "progress")
    """Reward modules: registry names (``"outcome"``, ``"progress"``, ``"pkg.mod:Class"``)
    and/or ``RewardModule`` instances."""

    reward_weights: tuple[float, ...] | None = None
    """Weight of each reward module (``None``: all 1, i.e. outcome + progress with α = 1)."""

    truncation_outcome: TruncationOutcome = "forced_answer"
    """Outcome of a truncated trajectory (``mrt-train --truncation``, the same setting in both
    training engines; see :mod:`mrt_env.grading`): ``"forced_answer"`` samples one forced answer
    from ``truncation_lm`` and verifies it (the paper's evaluation at a budget); ``"expected"``
    uses J of the final prefix (lower variance, needs a meta-prover)."""

    truncation_lm: LanguageModel | str | None = None
    """The model whose forced answer grades a truncated trajectory (``None``: ``lm``). Trainers
    pass the policy here, so a truncated trajectory is graded on the policy's own answer, and
    J on μ's (``lm``: the policy itself with ``--prover-policy current``, the default, or a
    frozen copy of the starting model with ``--prover-policy frozen``)."""

    lm_options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword options of the backend built from a name: ``HFLanguageModel.from_pretrained``
    for a path or hub id (e.g. ``{"prefix_cache_size": 256, "max_decode_rows": 64,
    "dtype": "bfloat16"}``), ``OpenAICompatibleLM`` for ``"openai:URL"`` (e.g.
    ``{"max_concurrency": 1, "stop_mode": "client"}``), ``VLLMLanguageModel.from_pretrained``
    for ``"vllm:..."``. An option the backend does not take raises ``TypeError``."""

    final_j: FinalJ = "prover"
    """J after the last episode of a trajectory that ended thinking: ``"prover"`` is μ's
    K-sample estimate from the natural end of thinking (PAPER.md; the prefix up to
    ``end_think``, no termination suffix); ``"outcome"`` is the policy's own verified 0/1
    answer. The J curve, progress and regret use it (``info["j_source"]`` says which); the
    outcome reward always grades the policy's own answer. Without a meta-prover the outcome
    is used. ``mrt-train --final-j`` sets it in both training engines (:mod:`mrt_env.grading`)."""

    segmenter: Any = None
    """Segmenter whose ``boundaries`` are the policy's stop strings (``None``: the official
    ``MarkerSegmenter``; with the ``tiny`` template ``MarkerSegmenter(min_paragraphs=1)``, since
    the tiny LM writes one paragraph per episode; with ``template="chat"`` on a model without
    thinking tags a ``FallbackSegmenter``, see :func:`default_segmenter`); ``replay`` splits
    responses with it. A ``FallbackSegmenter`` without ``count_tokens`` gets ``lm``'s."""

    answer_patterns: Sequence[str] | None = None
    """Regular expressions (first group = answer) that read the policy's final answer when its
    response has no ``\\boxed{}`` (a box always wins). ``None``: the template's default, see
    :func:`default_answer_patterns` (``rewards.extraction.ANSWER_IS_PATTERN``, "the answer is
    X", for ``template="chat"`` on a model without thinking tags; none otherwise); ``()``:
    boxed answers only, as in the paper. The forced answers of μ are always read from their box."""

    j_star: float = 1.0
    """Comparator J* of the cumulative regret."""

    device: str | None = None
    """Device for models built from names (``"cpu"``, ``"cuda"``; ``None``: the backend's
    default)."""

    max_observation_chars: int = 200_000
    """Maximum characters of an observation (prompt + thinking); the observation space's
    ``max_length``. Reaching it truncates the trajectory."""

    seed: int | None = None
    """Seed of the first ``reset()`` called without one (``reset(seed=...)`` always wins;
    sub-environment ``i`` of a vector env uses ``seed + i``)."""

    def __post_init__(self) -> None:
        for name in ("k", "token_budget", "max_episodes"):
            _check_positive_int(name, getattr(self, name))
        if self.max_answer_tokens is not None:
            _check_positive_int("max_answer_tokens", self.max_answer_tokens)
        _check_positive_int("max_observation_chars", self.max_observation_chars)
        if not _is_number(self.prover_temperature) or not 0 <= self.prover_temperature < math.inf:
            raise ValueError(
                f"prover_temperature must be a finite number >= 0, got {self.prover_temperature!r}"
            )
        if not _is_number(self.j_star) or not 0 <= self.j_star <= 1:
            raise ValueError(f"j_star must be in [0, 1], got {self.j_star!r}")
        if self.truncation_outcome not in TRUNCATION_OUTCOMES:
            raise ValueError(
                f"truncation_outcome must be one of {TRUNCATION_OUTCOMES}, "
                f"got {self.truncation_outcome!r}"
            )
        if self.final_j not in FINAL_J:
            raise ValueError(f"final_j must be one of {FINAL_J}, got {self.final_j!r}")
        if self.truncation_outcome == "expected" and self.prover == "none":
            raise ValueError("truncation_outcome='expected' needs a meta-prover (prover='none')")
        if isinstance(self.prover, str) and not (
            self.prover == "none" or self.prover.startswith("learned:")
        ):
            raise ValueError(
                f"prover must be None, a MetaProver, 'learned:PATH' or 'none', got {self.prover!r}"
            )
        if self.prover is not None and not isinstance(self.prover, str | MetaProver):
            raise TypeError(f"prover must implement MetaProver.estimate, got {self.prover!r}")
        for name in ("lm", "truncation_lm"):
            value = getattr(self, name)
            if not isinstance(value, str | LanguageModel) and not (
                name == "truncation_lm" and value is None
            ):
                raise TypeError(f"{name} must be a LanguageModel or a name/path, got {value!r}")
        if not isinstance(self.lm_options, Mapping):
            raise TypeError(f"lm_options must be a mapping, got {self.lm_options!r}")
        if not isinstance(self.problem_fields, FieldNames):
            raise TypeError(f"problem_fields must be FieldNames, got {self.problem_fields!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise TypeError(f"seed must be an int or None, got {self.seed!r}")
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {self.device!r}")
        check_template_spec(self.template)  # raises KeyError with the known names
        if self.answer_patterns is not None:
            object.__setattr__(self, "answer_patterns", check_answer_patterns(self.answer_patterns))
        self._check_rewards()
        _check_segmenter(self.segmenter)

    def _check_rewards(self) -> None:
        if isinstance(self.rewards, str):
            raise TypeError(f"rewards must be a tuple of names/modules, got {self.rewards!r}")
        object.__setattr__(self, "rewards", tuple(self.rewards))
        if not self.rewards:
            raise ValueError("rewards must name at least one reward module")
        for module in self.rewards:
            if not isinstance(module, str) and not callable(module):
                raise TypeError(f"a reward must be a name or a callable module, got {module!r}")
        if self.reward_weights is None:
            return
        weights = tuple(self.reward_weights)
        if len(weights) != len(self.rewards) or not all(_is_number(w) for w in weights):
            raise ValueError(
                f"reward_weights must be {len(self.rewards)} numbers (one per reward), "
                f"got {self.reward_weights!r}"
            )
        object.__setattr__(self, "reward_weights", tuple(float(w) for w in weights))

    @classmethod
    def from_kwargs(cls, config: EnvConfig | None = None, **kwargs: Any) -> EnvConfig:
        """``config`` (or the defaults) with ``kwargs`` fields replaced; unknown names raise.

        Example:
            >>> EnvConfig.from_kwargs(EnvConfig(k=4), token_budget=64).k
            4
        """
        if config is not None and not isinstance(config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown EnvConfig field(s) {unknown}; valid: {sorted(known)}")
        return dataclasses.replace(config or cls(), **kwargs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_segmenter(segmenter: Any) -> None:
    if segmenter is None:
        return
    if not callable(getattr(segmenter, "split", None)) or not hasattr(segmenter, "boundaries"):
        raise TypeError(f"segmenter must have .boundaries and .split(text), got {segmenter!r}")


@dataclass(frozen=True)
class Components:
    """The objects built from an :class:`EnvConfig`, shared by all copies of the env.

    Attributes:
        source: The problem source.
        lm: The language model (token counting, forced answers).
        prover: The meta-prover, or ``None`` when disabled.
        template: The chat/termination template.
        segmenter: The episode segmenter.
        reward: The composed reward (a ``rewards.WeightedSum``).
        truncation_lm: The model that answers for a truncated trajectory (``None``: ``lm``).
        answer_caps: The template's answer caps, ``max_answer_tokens`` as the forced cap
            (``None``: the template's own).
        answer_patterns: Extra patterns reading the policy's unboxed final answers.
    """

    source: ProblemSource
    lm: LanguageModel
    prover: MetaProver | None
    template: ChatTemplate
    segmenter: Any
    reward: Any
    truncation_lm: LanguageModel | None = None
    answer_caps: AnswerCaps = None  # type: ignore[assignment]
    answer_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.answer_caps is None:  # the template's own caps
            object.__setattr__(self, "answer_caps", self.template.answer_caps())


def build_lm(
    spec: LanguageModel | str, device: str | None, options: Mapping[str, Any] | None = None
) -> LanguageModel:
    """An ``lm`` setting as a model: instances pass through, names are loaded.

    ``"tiny"`` / ``"tiny:VARIANT"`` load the shipped TinyMath model (``mrt_env.tinymath``);
    ``"openai:URL"`` / ``"openai:URL#MODEL"`` connect an ``OpenAICompatibleLM`` to a completions
    server (``vllm serve``, SGLang, ``transformers serve``); ``"vllm:PATH_OR_ID"`` starts an
    in-process ``VLLMLanguageModel``; any other string is a local path or hub id for
    ``HFLanguageModel.from_pretrained``. ``options`` are the keyword arguments of whichever
    backend is built (``OpenAICompatibleLM``, e.g. ``max_concurrency=1``,
    ``stop_mode="client"``; ``VLLMLanguageModel.from_pretrained``; the HF and tiny models); an
    option the backend does not take raises ``TypeError``.
    """
    if not isinstance(spec, str):
        return spec
    check_lm_options(spec, options)
    if spec.startswith("openai:"):
        openai_lm = importlib.import_module("mrt_env.lm.openai_compat").OpenAICompatibleLM
        server: LanguageModel = openai_lm.from_spec(spec, **dict(options or {}))
        return server
    if spec.startswith("vllm:"):
        vllm_lm = importlib.import_module("mrt_env.lm.vllm_backend").VLLMLanguageModel
        engine: LanguageModel = vllm_lm.from_pretrained(spec[len("vllm:") :], **dict(options or {}))
        return engine
    kwargs: dict[str, Any] = dict(options or {})
    if device is not None:
        kwargs["device"] = device
    tinymath = importlib.import_module("mrt_env.tinymath")
    variant = tinymath.tiny_variant(spec)
    if variant is not None:
        tiny: LanguageModel = tinymath.load_tiny_lm(variant, **kwargs)
        return tiny
    check_model_path(spec)
    hf = importlib.import_module("mrt_env.lm.hf")
    loaded: LanguageModel = hf.HFLanguageModel.from_pretrained(spec, **kwargs)
    return loaded


def check_model_path(spec: str) -> None:
    """Raise ``FileNotFoundError`` when ``spec`` is written as a path (starting with ``/``,
    ``.`` or ``~``, or with more than one ``/``) that does not exist, and ``ValueError`` when
    it names a file (``FOLDER/model.safetensors``) instead of the model folder; hub ids
    (``name``, ``org/name``) pass.

    Example:
        >>> check_model_path("HuggingFaceTB/SmolLM2-135M-Instruct")
        >>> check_model_path("/nonexistent/model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: model path /nonexistent/model does not exist (or give a hub id)
    """
    path = Path(spec).expanduser()
    if path.is_file():
        raise ValueError(
            f"model path {spec} is a file; pass the folder that holds it and its config.json "
            f"({path.parent})"
        )
    looks_like_path = spec.startswith(("/", ".", "~")) or spec.count("/") > 1
    if looks_like_path and not path.exists():
        raise FileNotFoundError(f"model path {spec} does not exist (or give a hub id)")


def build_prover(config: EnvConfig, lm: LanguageModel, template: ChatTemplate) -> MetaProver | None:
    """The configured meta-prover (``None`` when disabled)."""
    if config.prover == "none":
        return None
    if isinstance(config.prover, str) and config.prover.startswith("learned:"):
        learned = importlib.import_module("mrt_env.prover.learned")
        loaded: MetaProver = learned.LearnedMetaProver.from_pretrained(
            config.prover[len("learned:") :], policy_lm=lm, device=config.device, template=template
        )
        return loaded
    if config.prover is not None:
        return config.prover  # type: ignore[return-value]
    sampled = importlib.import_module("mrt_env.prover.sampled")
    prover: MetaProver = sampled.SampledMetaProver(
        lm,
        template=template,
        k=config.k,
        max_answer_tokens=template.answer_caps(forced=config.max_answer_tokens).forced,
        temperature=config.prover_temperature,
    )
    return prover


def build_reward(config: EnvConfig) -> Any:
    """``rewards.WeightedSum`` over the configured modules and weights."""
    import rewards

    modules = tuple(rewards.make_reward(m) if isinstance(m, str) else m for m in config.rewards)
    return rewards.WeightedSum(modules, weights=config.reward_weights)


def default_segmenter(template: ChatTemplate, lm: LanguageModel | None = None) -> Any:
    """The env's segmenter when none is given.

    The official ``MarkerSegmenter`` for R1-style thinking (and any fixed preset but ``tiny``);
    one paragraph per episode (``min_paragraphs=1``) for the tiny LM's template; and for
    ``template="chat"`` on a model without thinking tags (its end of thinking is the first
    ``\\boxed{``), a ``FallbackSegmenter`` counting ``lm``'s tokens: the marker rule, else
    paragraphs of at least 48 tokens (such models rarely write marker words, and one episode
    per response leaves progress credit empty).

    Example:
        >>> from mrt_env.templates import TEMPLATES
        >>> default_segmenter(TEMPLATES["tiny"]).min_paragraphs
        1
    """
    from mrt_env.segmenters import FallbackSegmenter, MarkerSegmenter

    if template.name in TINY_TEMPLATES:
        return MarkerSegmenter(min_paragraphs=1)
    if template.name == "chat" and template.end_think != "</think>" and lm is not None:
        return FallbackSegmenter(count_tokens=lm.count_tokens)
    return MarkerSegmenter()


def _segmenter(config: EnvConfig, template: ChatTemplate, lm: LanguageModel) -> Any:
    """The configured segmenter (a ``FallbackSegmenter`` from a spec counts ``lm``'s tokens),
    else :func:`default_segmenter`."""
    from mrt_env.segmenters import bind_segmenter

    if config.segmenter is None:
        return default_segmenter(template, lm)
    return bind_segmenter(config.segmenter, lm.count_tokens)


def build_components(config: EnvConfig) -> Components:
    """Build (and thereby validate) everything the environment needs from ``config``."""
    source = resolve_source(config.problems, config.problem_fields)  # fail fast, before models
    lm = build_lm(config.lm, config.device, config.lm_options)
    template = resolve_template(config.template, lm)
    truncation_lm = config.truncation_lm
    if truncation_lm is not None:
        truncation_lm = build_lm(truncation_lm, config.device, config.lm_options)
    return Components(
        source=source,
        lm=lm,
        prover=build_prover(config, lm, template),
        template=template,
        segmenter=_segmenter(config, template, lm),
        reward=build_reward(config),
        truncation_lm=truncation_lm,
        answer_caps=template.answer_caps(forced=config.max_answer_tokens),
        answer_patterns=resolve_answer_patterns(template, config.answer_patterns),
    )
