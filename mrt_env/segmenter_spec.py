"""Segmenters from command-line specs, and binding the env's token counter.

:func:`segmenter_from_spec` is the one parser of the ``--segmenter`` specs of training,
evaluation and analysis; :func:`bind_segmenter` gives a segmenter that counts tokens
(:class:`~mrt_env.segmenters.FallbackSegmenter`) the policy model's counter. Both are also
names of :mod:`mrt_env.segmenters`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mrt_env.paragraphs import PARAGRAPH_RULES
from mrt_env.templates import TINY_TEMPLATES


def bind_segmenter(segmenter: Any, count_tokens: Callable[[str], int]) -> Any:
    """``segmenter`` with ``count_tokens`` bound where it needs one
    (:class:`~mrt_env.segmenters.FallbackSegmenter`)."""
    bind = getattr(segmenter, "bind", None)
    return bind(count_tokens) if callable(bind) else segmenter


def segmenter_from_spec(spec: str | None, template_name: str = "") -> Any:
    """A segmenter from a command-line spec, shared by training, evaluation and analysis.

    Specs: ``marker[:MIN_PARAGRAPHS]`` (:class:`~mrt_env.segmenters.MarkerSegmenter`, 3 by
    default), ``preset:NAME`` (:meth:`~mrt_env.segmenters.MarkerSegmenter.preset`),
    ``paragraph`` (:class:`~mrt_env.segmenters.ParagraphSegmenter`) or ``fallback[:MIN_TOKENS]``
    (:class:`~mrt_env.segmenters.FallbackSegmenter`, 48 by default; the env binds its model's
    token counter), each optionally followed by
    ``+blank_lines`` (the ``paragraph_rule``; the default is the official
    ``text.split("\\n\\n")``). ``None`` or ``""`` gives ``marker:1`` for ``tiny`` (one
    paragraph per episode) and the official ``marker`` otherwise; the env's own default
    (``segmenter=None``, :func:`mrt_env.config.default_segmenter`) also picks ``fallback`` for
    ``template="chat"`` on a model without thinking tags.

    Example:
        >>> segmenter_from_spec("marker:1").min_paragraphs
        1
        >>> segmenter_from_spec(None, "r1-distill").min_paragraphs
        3
        >>> segmenter_from_spec("marker+blank_lines").paragraph_rule
        'blank_lines'
    """
    # the classes import this module (it is one of their module's names): import them here
    from mrt_env.segmenters import FallbackSegmenter, MarkerSegmenter, ParagraphSegmenter

    if not spec:
        spec = "marker:1" if template_name in TINY_TEMPLATES else "marker"
    spec, _, rule = spec.partition("+")
    if rule not in ("", *PARAGRAPH_RULES):
        raise ValueError(f"unknown paragraph rule {rule!r}; use +blank_lines or +official")
    kind, _, value = spec.partition(":")
    segmenter: Any
    if kind == "marker":
        segmenter = MarkerSegmenter(min_paragraphs=int(value or 3))
    elif kind == "preset":
        segmenter = MarkerSegmenter.preset(value)
    elif kind == "paragraph":
        segmenter = ParagraphSegmenter()
    elif kind == "fallback":
        segmenter = FallbackSegmenter(min_tokens=int(value or 48))
    elif kind == "tokens":
        raise ValueError("tokens:N needs the policy's tokenizer; build TokenChunkSegmenter")
    else:
        raise ValueError(
            f"unknown segmenter {spec!r}; use marker[:MIN], preset:NAME, paragraph or "
            "fallback[:MIN_TOKENS]"
        )
    if rule and isinstance(segmenter, FallbackSegmenter):
        marker = dataclasses.replace(segmenter.marker, paragraph_rule=rule)  # type: ignore[arg-type]
        return dataclasses.replace(segmenter, marker=marker)
    return dataclasses.replace(segmenter, paragraph_rule=rule) if rule else segmenter
