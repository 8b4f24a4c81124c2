"""A catalogue of adversarial verifier inputs, and a runner that counts how the verifier held up.

Each :class:`Attack` names the statuses a sound verifier may answer; ``correct`` is allowed only
where the response really states the gold answer. :func:`run_attack` times one attack and then
checks that the verifier still grades ordinary responses; :class:`Tally` counts inputs tried,
time bounds held, crashes (an exception escaped) and silent successes (``correct`` where it is
not allowed).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rewards import Verifier

_FRESH = itertools.count(1)  # follow-up checks use new answers, so the cache never answers them

#: A file that a TeX engine would create for ``\write18``; it must never appear.
PWN_MARKER = "/tmp/mrt-gym-attack-write18-marker"


def respond(answer: str) -> str:
    """A response that ends thinking and boxes ``answer``."""
    return f"<think>Let me work it out.</think>\nThe answer is $\\boxed{{{answer}}}$."


@dataclass(frozen=True)
class Attack:
    """One adversarial input.

    Attributes:
        name: What it tries.
        build: Makes the ``(response, gold)`` pair (big inputs are built only when run).
        statuses: The statuses a sound verifier may answer.
        patterns: Whether to grade with the shipped extra patterns (``FINAL_ANSWER_PATTERN``,
            ``ANSWER_IS_PATTERN``).
    """

    name: str
    build: Callable[[], tuple[str, str]]
    statuses: frozenset[str]
    patterns: bool = False


def _attack(name: str, response: str, gold: str, *statuses: str) -> Attack:
    return Attack(name, lambda: (response, gold), frozenset(statuses))


def _big(name: str, build: Callable[[], tuple[str, str]], *statuses: str) -> Attack:
    return Attack(name, build, frozenset(statuses))


def _tower(base: str, height: int) -> str:
    return "^{".join([base] * height) + "}" * (height - 1)


MB = 1_000_000

EXPENSIVE = [
    _attack("power tower 9^9^9^9", respond(_tower("9", 4)), "5", "timeout", "wrong"),
    _attack("power tower of six 2s", respond(_tower("2", 6)), "5", "timeout", "wrong"),
    _attack("100000!", respond("100000!"), "5", "timeout", "wrong"),
    _attack("10^{10^{10}}", respond("10^{10^{10}}"), "5", "timeout", "wrong"),
    _attack(
        "nested frac x16 (161 chars)", respond("\\frac{1}{" * 16 + "2" + "}" * 16), "5", "wrong"
    ),
    _attack("nested parens x100", respond("(" * 100 + "1+x" + ")" * 100), "5", "wrong"),
    _attack("nested braces x400", respond("{1+" * 400 + "1" + "}" * 400), "5", "wrong"),
    _attack("nested sqrt x100", respond("\\sqrt{" * 100 + "2" + "}" * 100), "5", "wrong"),
    _attack(
        "nested frac x500 (5,000 chars)",
        respond("\\frac{1}{" * 500 + "2" + "}" * 500),
        "5",
        "wrong",
    ),
]

BOXES = [
    _attack(
        "1,000 distinct boxes incl. the gold",
        "</think>" + " ".join(f"\\boxed{{{i}}}" for i in range(1000)),
        "5",
        "wrong",
    ),
    _attack(
        "5,000 boxes alternating 3 and 5", "</think>" + "\\boxed{3}\\boxed{5}" * 2500, "5", "wrong"
    ),
    _attack("10,000 boxes of the gold", "</think>" + "\\boxed{5}" * 10_000, "5", "correct"),
    _attack("1,000 empty boxes", "</think>" + "\\boxed{}" * 1000, "5", "no_answer"),
    _attack("unclosed box", "</think>\\boxed{5", "5", "no_answer"),
    _attack("unclosed box after opening braces", "</think>\\boxed{{{{{5}", "5", "no_answer"),
    _attack("stray braces around a wrong box", "</think>}{\\boxed{6}{", "5", "wrong"),
    _attack("escaped brace inside the box", respond("\\}5"), "5", "wrong", "no_answer"),
    _attack(
        "box inside the thinking only", "<think>\\boxed{5}</think>I am not sure.", "5", "no_answer"
    ),
    _attack("answer after unfinished thinking", "<think>\\boxed{5}", "5", "no_answer"),
    _attack("\\boxed5 (one token)", "</think>\\boxed5", "5", "correct"),
]

CHARACTERS = [
    _attack("fullwidth digit", respond("５"), "5", "wrong"),
    _attack("Arabic-Indic digit", respond("٥"), "5", "wrong"),
    _attack("NUL after a wrong digit", respond("6\x00"), "5", "wrong"),
    _attack("NUL alone", respond("\x00"), "5", "wrong", "no_answer"),
    _attack("NUL before the box", "</think>\x00\\boxed{6}", "5", "wrong"),
    _attack("lone surrogate answer", respond("\ud800"), "5", "wrong"),
    _attack("lone surrogate gold", respond("5"), "\ud800", "wrong", "unparsable_gold"),
    _attack("right-to-left override", respond("\u202e6"), "5", "wrong"),
]

TEX = [
    _attack("\\def", respond("\\def\\x{5}\\x"), "5", "wrong"),
    _attack("\\input", respond("\\input{/etc/passwd}"), "5", "wrong"),
    _attack("\\write18", respond(f"\\write18{{touch {PWN_MARKER}}}6"), "5", "wrong"),
    _attack(
        "\\immediate\\write18", respond(f"\\immediate\\write18{{touch {PWN_MARKER}}}"), "5", "wrong"
    ),
    _attack("\\csname", respond("\\csname 6\\endcsname"), "5", "wrong"),
    _attack("\\catcode", respond("\\catcode`\\{=12 6"), "5", "wrong"),
]

HEDGING = [
    _attack("two boxes", "</think>\\boxed{3} \\boxed{5}", "5", "wrong"),
    _attack("text or", respond("3 \\text{ or } 5"), "5", "wrong"),
    _attack("text and", respond("3 \\text{ and } 5"), "5", "wrong"),
    _attack("\\lor", respond("3 \\lor 5"), "5", "wrong"),
    _attack("\\vee", respond("5 \\vee 3"), "5", "wrong"),
    _attack("comma list", respond("3, 5"), "5", "wrong"),
    _attack("semicolon list", respond("3; 5"), "5", "wrong"),
    _attack("set of candidates", respond("\\{3, 5\\}"), "5", "wrong"),
    _attack("membership", respond("x \\in \\{3,5\\}"), "5", "wrong"),
    _attack("or inside text", respond("\\text{5 or 3}"), "5", "wrong"),
    _attack("plus-minus", respond("5 \\pm 2"), "5", "wrong"),
    _attack("interval around the gold", respond("[3, 7]"), "5", "wrong"),
    _attack(
        "five distinct boxes",
        "</think>" + "".join(f"\\boxed{{{i}}}" for i in (3, 4, 5, 6, 7)),
        "5",
        "wrong",
    ),
    _attack(
        "box in thinking, other box after", "<think>\\boxed{5}</think>\\boxed{3}", "5", "wrong"
    ),
    _attack("parenthesised alternative", respond("5 \\text{ (or maybe } 3)"), "5", "wrong"),
]


def _huge() -> list[Attack]:
    box_run = "\\boxed{1}" * (10 * MB // 9)
    return [
        _big("10 MB of \\boxed{1}", lambda: ("</think>" + box_run, "1"), "no_answer"),
        _big(
            "0.9 MB of \\boxed{1}", lambda: ("</think>" + "\\boxed{1}" * (MB // 10), "1"), "correct"
        ),
        _big(
            "0.9 MB of distinct boxes equal after normalisation",
            lambda: (
                "</think>" + "".join(f"\\boxed{{5\\text{{ u{i} }}}}" for i in range(35_000)),
                "5",
            ),
            "correct",
            "wrong",
        ),
        _big(
            "5 MB thinking, then the answer",
            lambda: ("<think>" + "a" * 5 * MB + "</think>\\boxed{5}", "5"),
            "correct",
        ),
        _big(
            "5 MB unfinished thinking",
            lambda: ("<think>" + "\\boxed{5}" * (5 * MB // 9), "5"),
            "no_answer",
        ),
        _big("2 MB gold", lambda: (respond("5"), "5" + " " * 2 * MB + "6"), "unparsable_gold"),
        _big("100,000-digit integer gold", lambda: (respond("7"), "7" * 100_000), "wrong"),
        _big(
            "1,000-digit integer answer and gold",
            lambda: (respond("9" * 1000), "9" * 1000),
            "correct",
        ),
        _big(
            "gold of 5, 8,000 spaces, y",
            lambda: (respond("5"), "5" + " " * 8000 + "y"),
            "wrong",
            "unparsable_gold",
            "timeout",
        ),
        _big(
            "answer of 5, 900 spaces, y",
            lambda: (respond("5" + " " * 900 + "y"), "5"),
            "wrong",
            "timeout",
        ),
        _big(
            "1 MB of spaces in the answer region",
            lambda: ("</think>" + " " * (MB - 100) + "\\boxed{6}", "5"),
            "wrong",
        ),
        _big("1 MB of opening braces", lambda: ("</think>\\boxed{" + "{" * MB, "5"), "no_answer"),
        _big(
            "1 MB of backslashes",
            lambda: ("</think>\\boxed{" + "\\" * MB + "}", "5"),
            "no_answer",
            "wrong",
        ),
    ]


def _patterned() -> list[Attack]:
    def pattern(name: str, build: Callable[[], tuple[str, str]], *statuses: str) -> Attack:
        return Attack(name, build, frozenset(statuses), patterns=True)

    return [
        pattern(
            "final answer, 1,900 spaces, x",
            lambda: ("</think>Final answer: 5" + " " * 1900 + "x", "5"),
            "wrong",
        ),
        pattern(
            "final answer, 1 MB line",
            lambda: ("</think>Final answer: 5" + " " * MB + "x", "5"),
            "no_answer",
        ),
        pattern(
            "many final-answer lines",
            lambda: ("</think>" + "final answer is 6\n" * 50_000, "5"),
            "wrong",
        ),
        pattern(
            "final answer: the gold",
            lambda: ("</think>So the final answer is $5$.", "5"),
            "correct",
        ),
    ]


def catalogue() -> list[Attack]:
    """Every attack, in a fixed order."""
    return [*EXPENSIVE, *BOXES, *CHARACTERS, *TEX, *HEDGING, *_huge(), *_patterned()]


@dataclass(frozen=True)
class AttackResult:
    """How one attack went: the status (or the exception), the time, and the follow-up check."""

    name: str
    status: str | None
    seconds: float
    allowed: frozenset[str]
    error: str | None = None
    still_works: bool = True

    @property
    def crashed(self) -> bool:
        return self.error is not None

    @property
    def silent_success(self) -> bool:
        return self.status == "correct" and "correct" not in self.allowed

    @property
    def expected(self) -> bool:
        return self.status in self.allowed


def run_attack(verifier: Verifier, attack: Attack) -> AttackResult:
    """Verify the attack's pair, timing it; then check ordinary responses still grade (this also
    waits until replaced workers are ready, so each attack starts with warm workers)."""
    response, gold = attack.build()
    start = time.perf_counter()
    try:
        status: str | None = verifier.verify(response, gold).status
        error = None
    except Exception as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    k = next(_FRESH)  # two fresh tasks: both workers (and their replacements) must answer
    pairs = [
        (respond(f"\\frac{{{5 * k}}}{{{k}}}"), "5"),
        (respond(f"\\frac{{{6 * k}}}{{{k}}}"), "5"),
    ]
    follow_up = verifier.verify_many(pairs)
    still_works = [result.status for result in follow_up] == ["correct", "wrong"]
    return AttackResult(attack.name, status, seconds, attack.statuses, error, still_works)


@dataclass
class Tally:
    """Counts over many attacks: tried, within the time bound, crashes, silent successes."""

    bound_s: float
    results: list[AttackResult] = field(default_factory=list)

    def add(self, result: AttackResult) -> None:
        self.results.append(result)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "tried": len(self.results),
            "time_bound_held": sum(r.seconds <= self.bound_s for r in self.results),
            "crashes": sum(r.crashed for r in self.results),
            "silent_successes": sum(r.silent_success for r in self.results),
            "unexpected_status": sum(not r.expected for r in self.results),
            "broken_afterwards": sum(not r.still_works for r in self.results),
        }

    def report(self) -> str:
        """A table of every result, then the counts."""
        lines = [f"{'attack':55} {'status':16} {'seconds':>8}"]
        for r in self.results:
            flag = "" if r.expected and r.seconds <= self.bound_s else "  <-- !"
            lines.append(f"{r.name[:55]:55} {r.status or r.error or '':16} {r.seconds:8.2f}{flag}")
        lines.append(
            f"time bound {self.bound_s:.1f} s; "
            + ", ".join(f"{k} {v}" for k, v in self.counts.items())
        )
        return "\n".join(lines)
