"""Prompt and termination templates per model family.

A :class:`ChatTemplate` renders the prompt the policy continues (it ends where the thinking
starts) and the meta-prover's forced-termination input (prompt + thinking prefix + the
termination suffix, which closes the thinking so that the model states an answer).

Presets: ``"tiny"`` (the shipped TinyMath LM), ``"tiny-explain"`` (a tiny LM whose forced
answers write a short solution before ``\\boxed{}``, as R1's do), ``"r1-distill"`` (R1's
own chat format, written out), ``"plain"`` (any base model) and ``"chat"``, which renders
the prompt with the model's own tokenizer chat template (:func:`chat_template`) and
therefore needs the model: :func:`resolve_template` builds it. Leaving the template unset
(``None``) picks the preset the model's tokenizer declares (:data:`DECLARED_TEMPLATE`),
else ``"tiny"`` for the tiny LM and its test doubles and ``"chat"`` for a model whose
tokenizer has a chat template.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)
_NOTICED: set[str] = set()
"""Models whose automatic choice of the ``"chat"`` preset was already announced."""

BOXED_ANSWER_TOKENS = 32
"""Answer cap after a termination suffix that already opens ``\\boxed{``: the answer itself."""

FULL_ANSWER_TOKENS = 1024
"""Answer cap after a natural end of thinking: R1-style models restate the solution before
``\\boxed{}``, often several hundred tokens."""

FORCED_ANSWER_TOKENS = 512
"""Answer cap after a termination suffix that does not open ``\\boxed{`` (R1's suffix opens a
numbered explanation, ``1. **``): long enough for a short explanation and the boxed answer."""

R1_TERMINATION = (
    "Time is up.\n\n"
    "Given the time I've spent and the approaches I've tried, I should stop thinking and "
    "formulate a final answer based on what I already have.\n"
    "</think>\n\n"
    "**Step-by-Step Explanation and Answer:**\n\n"
    "1. **"
)


@dataclass(frozen=True)
class ChatTemplate:
    """How prompts, thinking and forced terminations are laid out for one model family.

    Attributes:
        name: Preset name.
        prompt: Format string with ``{problem}``; the rendered text ends where thinking starts
            (e.g. after ``<think>\\n``).
        end_think: The marker that ends thinking (``</think>``).
        termination: Suffix appended after a thinking prefix to force an answer (PAPER.md's
            "Time is up ..." for R1-style models).
        separator: Joins a non-empty thinking prefix and the termination suffix: the prefix
            is right-stripped of newlines and followed by this separator.
        answer_tokens: Token cap of the final answer after a natural end of thinking (the
            policy's own answer). ``None``: :data:`FULL_ANSWER_TOKENS`.
        forced_answer_tokens: Token cap of a forced answer after :attr:`termination` (μ's
            answers, the forced answer of a truncated trajectory). ``None``:
            :data:`BOXED_ANSWER_TOKENS` when the suffix ends by opening ``\\boxed{``, else
            :data:`FORCED_ANSWER_TOKENS`.

    Example:
        >>> t = TEMPLATES["tiny"]
        >>> t.render_prompt("1+1?").endswith("<think>\\n")
        True
        >>> t.answer_caps(), TEMPLATES["r1-distill"].answer_caps()
        (AnswerCaps(natural=32, forced=16), AnswerCaps(natural=1024, forced=512))
    """

    name: str
    prompt: str
    end_think: str = "</think>"
    termination: str = R1_TERMINATION
    separator: str = "\n\n"
    answer_tokens: int | None = None
    forced_answer_tokens: int | None = None

    def answer_caps(self, natural: int | None = None, forced: int | None = None) -> AnswerCaps:
        """The answer caps of this template; ``natural``/``forced`` override them."""
        opens_boxed = self.termination.rstrip().endswith("\\boxed{")
        default_forced = BOXED_ANSWER_TOKENS if opens_boxed else FORCED_ANSWER_TOKENS
        return AnswerCaps(
            natural=_first(natural, self.answer_tokens, FULL_ANSWER_TOKENS),
            forced=_first(forced, self.forced_answer_tokens, default_forced),
        )

    def render_prompt(self, problem: str) -> str:
        """The prompt text for ``problem``."""
        return self.prompt.format(problem=problem)

    def render_forced(self, prompt: str, prefix: str) -> str:
        """Prompt + thinking prefix + termination suffix: the meta-prover's input."""
        body = prefix.rstrip("\n")
        if body:
            return prompt + body + self.separator + self.termination
        return prompt + self.termination

    def render_meta(self, prompt: str, prefix: str) -> str:
        """The meta-prover's input for ``prefix``.

        A prefix that has ended thinking (it contains ``end_think``) gets the *natural* end:
        the prompt and the prefix up to and including the first ``end_think``, with no
        termination suffix (PAPER.md: J after the full trace). Any other prefix gets
        :meth:`render_forced`.

        Example:
            >>> t = TEMPLATES["tiny"]
            >>> t.render_meta("P\\n", "x = 2.\\n</think>\\n\\\\boxed{2}")
            'P\\nx = 2.\\n</think>'
        """
        cut = prefix.find(self.end_think)
        if cut < 0:
            return self.render_forced(prompt, prefix)
        return prompt + prefix[: cut + len(self.end_think)]


@dataclass(frozen=True)
class AnswerCaps:
    """Token caps of answers: the one definition shared by the env, μ, trainers and evaluation.

    Attributes:
        natural: Tokens kept after a natural end of thinking (the policy's final answer).
        forced: Tokens of a forced answer after the termination suffix (μ's K answers and the
            forced answer that grades a truncated trajectory).

    Example:
        >>> AnswerCaps(natural=64, forced=0)
        Traceback (most recent call last):
        ...
        ValueError: forced answer cap must be a positive int, got 0
    """

    natural: int
    forced: int

    def __post_init__(self) -> None:
        for name, value in (("natural", self.natural), ("forced", self.forced)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} answer cap must be a positive int, got {value!r}")


def _first(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def answer_caps(
    template: str | ChatTemplate, natural: int | None = None, forced: int | None = None
) -> AnswerCaps:
    """The answer caps of a template preset or instance (``natural``/``forced`` override).

    Example:
        >>> answer_caps("r1-distill", forced=256)
        AnswerCaps(natural=1024, forced=256)
    """
    return get_template(template).answer_caps(natural, forced)


_TINY = ChatTemplate(
    name="tiny",
    prompt="Problem: {problem}\n<think>\n",
    termination="Time is up. I should stop thinking and answer.\n</think>\n\\boxed{",
    answer_tokens=32,
    forced_answer_tokens=16,
)

TEMPLATES: dict[str, ChatTemplate] = {
    "tiny": _TINY,
    # the same prompt; the suffix closes the thinking without opening \boxed{: a line of work
    "tiny-explain": dataclasses.replace(
        _TINY,
        name="tiny-explain",
        termination=_TINY.termination.removesuffix("\\boxed{"),
        forced_answer_tokens=128,
    ),
    "r1-distill": ChatTemplate(
        name="r1-distill",
        prompt=(
            "<｜begin▁of▁sentence｜><｜User｜>{problem}\n"
            "Please reason step by step, and put your final answer within \\boxed{{}}."
            "<｜Assistant｜><think>\n"
        ),
    ),
    "plain": ChatTemplate(
        name="plain",
        prompt=(
            "Problem: {problem}\nPlease reason step by step inside <think> ... </think>, "
            "then put your final answer within \\boxed{{}}.\n<think>\n"
        ),
    ),
}


TINY_TEMPLATES: tuple[str, ...] = ("tiny", "tiny-explain")
"""The tiny LMs' presets: an episode per marker paragraph (min_paragraphs=1)."""

DECLARED_TEMPLATE = "mrt_template"
"""Key of ``tokenizer_config.json`` by which a model folder names its preset (the tiny LMs
whose forced answers explain, ``"tiny-explain"``); a fine-tuned copy keeps it, since
``save_pretrained`` writes it back."""

CHAT = "chat"
"""The preset rendered with the model's own tokenizer chat template (see :func:`chat_template`)."""

PRESETS: tuple[str, ...] = (*TEMPLATES, CHAT)
"""Every preset name accepted by :func:`resolve_template`."""


def get_template(name_or_template: str | ChatTemplate) -> ChatTemplate:
    """Look up a fixed preset by name (or pass a :class:`ChatTemplate` through).

    ``"chat"`` depends on a tokenizer: build it with :func:`resolve_template`.
    """
    if isinstance(name_or_template, ChatTemplate):
        return name_or_template
    if name_or_template == CHAT:
        raise ValueError(
            "template 'chat' renders the model's own chat template and needs its tokenizer: "
            "use mrt_env.templates.resolve_template('chat', lm)"
        )
    try:
        return TEMPLATES[name_or_template]
    except (KeyError, TypeError):
        known = ", ".join(PRESETS)
        raise KeyError(f"unknown template {name_or_template!r}; known: {known}") from None


def check_template_spec(spec: str | ChatTemplate | None) -> None:
    """Raise ``KeyError`` naming the presets unless ``spec`` is a preset, a template or ``None``."""
    if spec is None or isinstance(spec, ChatTemplate) or spec == CHAT:
        return
    get_template(spec)


def resolve_template(spec: str | ChatTemplate | None, lm: Any) -> ChatTemplate:
    """The template of ``spec`` for the language model ``lm``.

    Args:
        spec: A :class:`ChatTemplate`, a preset name (``"chat"`` builds one from
            ``lm.tokenizer``) or ``None``: the preset the tokenizer declares
            (:data:`DECLARED_TEMPLATE`), else ``"tiny"`` for the tiny LM and models without a
            tokenizer (test doubles), ``"chat"`` (with a logged notice) for a model whose
            tokenizer has a chat template, and an error naming the presets otherwise.
        lm: The language model that counts tokens and backs the meta-prover.

    Example:
        >>> from mrt_env.lm.scripted import ScriptedLM
        >>> resolve_template(None, ScriptedLM(["2}"])).name
        'tiny'
    """
    if spec is not None and spec != CHAT:
        return get_template(spec)
    loader = getattr(lm, "chat_tokenizer", None)  # a served model: its local tokenizer
    tokenizer = loader() if callable(loader) else getattr(lm, "tokenizer", None)
    name = str(getattr(lm, "name", type(lm).__name__))
    declared = getattr(tokenizer, "init_kwargs", {}).get(DECLARED_TEMPLATE)
    if spec is None and declared is not None:
        return get_template(declared)
    if spec == CHAT:
        if tokenizer is None:
            raise ValueError(
                f"template='chat' needs a model with a Hugging Face tokenizer; {name!r} has "
                f"none (a served model: pass tokenizer=PATH): pass one of {', '.join(TEMPLATES)}"
            )
        return chat_template(tokenizer, model_name=name)
    if (
        _is_tiny(name)
        or _is_tiny_tokenizer(tokenizer)
        or (tokenizer is None and not callable(loader))
    ):
        return TEMPLATES["tiny"]
    if tokenizer is None:
        raise ValueError(
            f"served model {name!r} has no local tokenizer to read its chat template from: "
            f"pass tokenizer=PATH to the backend or template= one of {', '.join(TEMPLATES)}"
        )
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"model {name!r} has no chat template and no template was given: pass "
            f"template='plain' (any base model) or one of {', '.join(TEMPLATES)}"
        )
    if name not in _NOTICED:
        _NOTICED.add(name)
        logger.warning(
            "mrt_env: no template given for model %r: using its tokenizer's chat template "
            "(template='chat'); pass template=... to choose another",
            name,
        )
    return chat_template(tokenizer, model_name=name)


TINY_FOLDERS = ("tiny-lm", "tiny-lm-graded", "tiny-lm-explain", "tiny-lm-grpo", "tiny-lm-mrt")
"""Folder names of the shipped tiny LMs (``mrt_env/assets``; also a served copy of one)."""


def _is_tiny_tokenizer(tokenizer: Any) -> bool:
    """The TinyMath character tokenizer (a fine-tuned tiny LM saved anywhere keeps it)."""
    from mrt_env.tinymath.tokenizer import CHARACTERS, SPECIAL_TOKENS

    get_vocab = getattr(tokenizer, "get_vocab", None)
    if not callable(get_vocab):
        return False
    return set(get_vocab()) == {*SPECIAL_TOKENS, *CHARACTERS}


def _is_tiny(name: str) -> bool:
    """The shipped tiny LMs (their folders, or a copy served under the same folder name) and the
    tiny test doubles."""
    path = name.replace("\\", "/").rstrip("/")
    return name.startswith("tiny") or path.rsplit("/", 1)[-1] in TINY_FOLDERS


MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""The user-turn instruction of the ``"chat"`` preset (DeepSeek-R1's evaluation prompt)."""

THINKING_TERMINATION = (
    "Time is up.\n\n"
    "Given the time I've spent and the approaches I've tried, I should stop thinking and "
    "formulate a final answer based on what I already have.\n"
    "</think>\n\n"
    "The final answer is \\boxed{"
)
"""Termination of the ``"chat"`` preset for thinking models: PAPER.md's "Time is up" text,
then the end of thinking and an opened ``\\boxed{``, so a short answer cap reaches the answer."""

DIRECT_TERMINATION = (
    "Time is up. I should stop here and state my final answer.\n\nThe final answer is \\boxed{"
)
"""Termination of the ``"chat"`` preset for models without think tags: it asks for the boxed
answer directly (there is no thinking to close)."""

_PROBLEM = "mrtGymProblemSlot"
_PROBE = "Find $x$ if {x} + 1 = 2."
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


def chat_template(
    tokenizer: Any,
    *,
    model_name: str | None = None,
    system: str | None = None,
    instruction: str = MATH_INSTRUCTION,
) -> ChatTemplate:
    r"""The ``"chat"`` preset: prompts rendered with the tokenizer's own chat template.

    The user turn is ``problem + "\n" + instruction`` (after an optional system turn), rendered
    with ``apply_chat_template(..., add_generation_prompt=True)``, so the prompt ends where the
    assistant's reply starts. The meta-prover's forced input continues that reply verbatim:
    prompt + thinking prefix + termination suffix, i.e. what
    ``apply_chat_template(..., continue_final_message=True)`` renders for an assistant message
    holding the prefix and the suffix.

    Three kinds of model are told apart:

    * thinking models whose template opens ``<think>`` (R1 distills): the prompt ends after it;
    * thinking models whose vocabulary has ``<think>``/``</think>`` but whose template does not
      open it (Qwen3): ``<think>\n`` is appended, as the model would write it itself;
    * instruct models without think tags (SmolLM2, Llama): the whole reply is the "thinking",
      its first ``\boxed{`` ends it (``end_think``, so the episode that states the boxed answer
      is the last one and holds the answer), and the termination suffix asks for the boxed
      answer directly. A reply that ends (EOS) without a boxed answer is graded as it stands.

    A BOS token that the tokenizer adds to plain text (``add_special_tokens=True``) but the
    chat template leaves out is written into the prompt, because the models' token counting
    and sampling encode text without special tokens.

    Args:
        tokenizer: A Hugging Face tokenizer with a ``chat_template``.
        model_name: Named in errors (defaults to the tokenizer's ``name_or_path``).
        system: Optional system message.
        instruction: Appended to the problem in the user turn.

    Raises:
        ValueError: The tokenizer has no chat template (the message names the model and the
            presets that work without one), or the template does not print the user's text
            verbatim.
    """
    name = model_name or str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"model {name!r} has no chat template, so template='chat' cannot render its "
            f"prompts; use one of the presets {', '.join(TEMPLATES)} (e.g. 'plain' for a base "
            "model) or pass a ChatTemplate"
        )

    def render(problem: str) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": f"{problem}\n{instruction}"})
        return str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )

    rendered = render(_PROBLEM)
    escaped = rendered.replace("{", "{{").replace("}", "}}").replace(_PROBLEM, "{problem}")
    if rendered.count(_PROBLEM) != 1 or escaped.format(problem=_PROBE) != render(_PROBE):
        raise ValueError(
            f"the chat template of {name!r} does not print the user's message verbatim; "
            f"pass a ChatTemplate or one of {', '.join(TEMPLATES)}"
        )
    rendered = _with_bos(tokenizer, rendered)
    thinking = rendered.rstrip().endswith(_THINK_OPEN)
    if not thinking and _has_think_tokens(tokenizer):
        rendered, thinking = rendered + _THINK_OPEN + "\n", True
    escaped = rendered.replace("{", "{{").replace("}", "}}").replace(_PROBLEM, "{problem}")
    if thinking:
        return ChatTemplate(CHAT, escaped, _THINK_CLOSE, THINKING_TERMINATION)
    return ChatTemplate(CHAT, escaped, "\\boxed{", DIRECT_TERMINATION)


def _with_bos(tokenizer: Any, rendered: str) -> str:
    """``rendered`` with the BOS text in front when the tokenizer adds BOS but the template not."""
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    if not bos or bos_id is None or rendered.startswith(bos):
        return rendered
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bos + rendered if ids and ids[0] == bos_id else rendered


def _has_think_tokens(tokenizer: Any) -> bool:
    """Whether ``<think>`` and ``</think>`` are single tokens (a thinking model's vocabulary)."""
    vocab = tokenizer.get_vocab()
    return _THINK_OPEN in vocab and _THINK_CLOSE in vocab
