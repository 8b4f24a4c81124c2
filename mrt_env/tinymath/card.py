"""Render a tiny LM's model card (``README.md``) from ``training.json`` and ``eval.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrt_env.tinymath.card_texts import limitations
from mrt_env.tinymath.loading import DEFAULT_VARIANT, VARIANTS

GRADED_RECIPES = ("graded", "graded-checks", "graded-direct", "worked", "explain")
"""Data recipes whose forced answers do not just copy the last answer (a graded J)."""


def _usage(folder: str) -> str:
    """How to load the model in ``mrt_env/assets/<folder>``."""
    variant = next((name for name, (f, _) in VARIANTS.items() if f == folder), None)
    call = "" if variant in (None, DEFAULT_VARIANT) else f'"{variant}"'
    env = (
        ""
        if variant in (None, DEFAULT_VARIANT)
        else f'\n# in the env: gym.make("MRTMath-v0", lm="tiny:{variant}")'
    )
    return f"""```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("mrt_env/assets/{folder}")
tokenizer = AutoTokenizer.from_pretrained("mrt_env/assets/{folder}")
# or, as an mrt-gym LanguageModel:
from mrt_env.tinymath import load_tiny_lm

lm = load_tiny_lm({call}){env}
```"""


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _training_section(training: dict[str, Any], folder: str) -> str:
    config, result = training["config"], training["result"]
    early = " (stopped early by the time cap)" if result["stopped_early"] else ""
    first, last = result["test_loss"][0], result["test_loss"][-1]
    return f"""## Training

- Command: `{training["command"]} --out mrt_env/assets/{folder}`
- Seed {config["seed"]}: {_start(config)}, data from a numpy
  `Generator`. {result["steps"]} steps of batch {config["batch_size"]}, AdamW (lr
  {config["learning_rate"]}, warmup {config["warmup_steps"]} steps, cosine to 10%).
- {result["tokens"]:,} tokens in {result["seconds"] / 60:.1f} minutes on
  {config["threads"]} CPU thread of a 2-core machine
  ({training["tokens_per_second"]:.0f} tokens/s), torch {training["torch"]}{early}.
- Held-out test loss (nats/token): {first[1]:.3f} at step {first[0]} → {last[1]:.3f} at
  step {last[0]}.{_reproduction(training.get("reproduction"))}"""


def _start(config: dict[str, Any]) -> str:
    """Where the weights started: a seeded init, or a saved model (``--init``)."""
    if config.get("init"):
        return f"weights start from `{config['init']}` (fine-tuning)"
    return "parameter init from a `torch.Generator`"


def _reproduction(check: dict[str, Any] | None) -> str:
    """The reproduction check recorded in ``training.json`` (``reproduction``), if any."""
    if not check:
        return ""
    same = "bit-identical to" if check["identical"] else "different from"
    return f"""
- Reproduction check: `{check["command"]}` took {check["minutes"]:.1f} minutes and wrote a
  `model.safetensors` {same} this one (sha256 `{check["sha256"][:16]}…`)."""


def _data_section(data: dict[str, Any], recipe: str | None = None) -> str:
    trace, forced = data["trace"], data["forced"]
    direct, natural = data.get("direct_fraction", 0.0), 1 - data["forced_fraction"]
    kinds = (
        f"Each example is a direct answer (probability {direct:.2f}, below), else a natural"
        f"\ntrace (probability {natural:.2f}) or a forced termination"
        f" ({data['forced_fraction']:.2f})."
        if direct
        else f"Each example is a natural trace (probability\n{natural:.2f}) or a forced"
        f" termination ({data['forced_fraction']:.2f})."
    )
    return f"""## Data recipe

TinyMath levels {tuple(data["levels"])}, training split only (the held-out split is disjoint
by a hash of the expression). {kinds}

- Natural trace: `Problem: <expr>\\n<think>\\n`, the episodes, then
  `\\n</think>\\n\\boxed{{answer}}` and EOS. With probability {trace["guess_first"]} the
  thinking opens with a quick guess (`47+38 is about 84.`, right with probability
  {trace["guess_right"]}) and the worked attempt follows as `Wait, let me work it out: ...`.
  The worked attempt goes column by column and
  slips with probability {trace["first_slip"]} (a dropped carry or a digit off by one, the
  rest following consistently); a wrong answer stays unchecked with probability
  {trace["unchecked_error"]}. A check of a difference adds back (probability
  {trace["inverse_check"]}; `Wait, check: ...`, then `Alternatively, ...` when it fails) or is a
  recomputation (`But let me double-check: ...`), which ends by restating the answer it checks
  and a verdict (`..., so 75 (before: 85). Different.`), so by itself it changes nothing (the
  last number written is still the earlier answer); after `Different` a tie-break follows
  (`Wait, once more: ...`) and its result is kept. Checks
  and new attempts slip with probability {trace["later_slip"]}. A correct answer is
  checked with probability {trace["first_check"]}, again with {trace["extra_check"]}; at most
  {trace["max_episodes"]} episodes, one paragraph each, so `MarkerSegmenter(min_paragraphs=1)`
  splits them.
{_forced_section(forced, recipe)}{_direct_section(data)}"""


def _direct_section(data: dict[str, Any]) -> str:
    """The direct-answer bullet (``DataRecipe.direct_fraction``), when the recipe has them."""
    if not data.get("direct_fraction"):
        return ""
    levels = ", ".join(str(level) for level in data["direct_levels"])
    return f"""
- Direct answer: a problem of level {levels} forced to answer from the empty thinking
  (`Problem: 47+38\\n<think>\\n` and the termination suffix), its target the direct answer
  above. These teach the model to add in its head, without writing any work, so that J of
  the empty thinking, of a quick guess and of a wrong answer can be graded on those problems
  (from nothing the model can answer them right some of the time, not always). The loss covers
  only the answer."""


def _forced_section(forced: dict[str, Any], recipe: str | None = None) -> str:
    """The forced-termination bullet (the classic or the graded recipe)."""
    cuts = f"""- Forced termination: the thinking cut at nothing ({forced["empty"]}), at an episode
  boundary ({forced["boundary"]}) or at a random character (the rest), then the `tiny`
  template's termination suffix and"""
    if forced.get("worked"):
        slips = (forced.get("trace") or {}).get("first_slip")
        cut_from = (
            f" The traces cut for these examples slip in their first attempt with probability"
            f" {slips:g} (the natural traces: as above), so that a stated answer is often wrong."
            if slips is not None
            else ""
        )
        return f"""{cuts} the gold answer, whatever the prefix
  states (the *worked* recipe, `--recipe worked`): what finishing the written work without a
  slip gives.{cut_from} A forced answer thus no longer copies the last number: the model
  copies a stated answer it cannot tell from a slipped one and recomputes a slipped one only
  partly, so J is its own probability of finishing the work right from the prefix. The loss
  covers only the forced answer."""
    if forced.get("explain"):
        return _explain_section(forced)
    if not forced.get("confidence"):
        return f"""{cuts} the last answer stated in the prefix (the gold answer as
  a direct guess when none is). The loss covers only the forced answer."""
    beliefs = ", ".join(f"{c:g}" for c in forced["confidence"])
    halving = all(abs((1 - b) - 0.5 ** (i + 1)) < 1e-9 for i, b in enumerate(forced["confidence"]))
    growth = (
        "each check halves the doubt"
        if halving
        else "each check raises it, capped below 0.9 so that J stays inside (0.1, 0.9)"
    )
    name = recipe if recipe in GRADED_RECIPES else "graded"
    direct = forced.get("direct", 1.0)
    opening = (
        "with no answer stated yet, the gold answer\n  (a direct guess); after a quick guess,"
        " the guess with probability"
        if direct >= 1.0
        else f"with no answer stated yet, a direct\n  answer: the gold answer with probability"
        f" {direct:g}, else a near miss; after a quick\n  guess, the guess with probability"
    )
    return f"""{cuts} an answer drawn from the belief the prefix
  earns (the *graded* recipe, `--recipe {name}`): {opening}
  {forced["guess_confidence"]:g}; after a worked answer confirmed by 0, 1, 2, 3 checks that
  passed (`Yes.`/`Same.`; a failed check resets the count), that answer with probability
  {beliefs} ({growth}). Otherwise the other candidate: the gold answer
  when the stated one is wrong, a near miss one digit off by one when it is right. A forced
  answer thus no longer copies the last number: J of a right answer is the belief its
  evidence earns and rises with every check, J of a wrong one is at most one minus it. The
  loss covers only the forced answer."""


def _figures_section(figures: dict[str, Any], folder: str) -> str:
    config = figures["config"]
    model = "" if folder == "tiny-lm" else f" --model mrt_env/assets/{folder}"
    by_level = ", ".join(f"L{k} {_pct(v)}" for k, v in figures["greedy_pass_at_1_by_level"].items())
    curve = " → ".join(f"{v:.3f}" for v in figures["mean_j_by_episode"])
    reached = ", ".join(str(n) for n in figures["trajectories_reaching_episode"])
    rows = [
        ("Greedy pass@1", f"{_pct(figures['greedy_pass_at_1'])} ({by_level})"),
        (f"Sampled pass@1 (T = {config['temperature']})", _pct(figures["sampled_pass_at_1"])),
        (
            "Check/new-attempt episodes per response, sampled",
            f"{figures['extra_episodes_per_response_sampled']:.2f}",
        ),
        (
            "Check/new-attempt episodes per response, greedy",
            f"{figures['extra_episodes_per_response_greedy']:.2f}",
        ),
        ("Mean sampled response length (tokens)", f"{figures['mean_response_tokens_sampled']:.0f}"),
        ("Forced answers well formed (random prefixes)", _pct(figures["forced_well_formed"])),
        ("J(empty thinking)", f"{figures['j_empty']:.3f}"),
        ("J(whole thinking)", f"{figures['j_final']:.3f}"),
        ("Mean J after 0, 1, 2, ... episodes (ended responses keep their last J)", curve),
        ("Responses with at least 0, 1, 2, ... episodes", reached),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    example = figures["examples"][0]
    return f"""## Measured figures

`python -m mrt_env.tinymath.evaluate --n {config["n"]} --seed {config["seed"]}{model}` on
{config["n"]} held-out problems. J comes from {config["j_problems"]} sampled responses,
K = {config["k"]} forced answers at T = 1 per prefix (`SampledMetaProver`); episodes from
`MarkerSegmenter(min_paragraphs=1)`; answers checked by `rewards.verify`. The evaluation took
{figures["seconds"]:.0f} s.

| figure | value |
|---|---|
{table}

![mean J vs episode and vs tokens](j_curves.png)

A sampled response to `{example["problem"]}`:

```
{example["response"]}
```"""


def _j_distribution_section(measured: dict[str, Any] | None, recipe: str | None) -> str:
    """The J* distribution printed by ``benchmarks/j_distribution.py`` (when measured)."""
    if not measured:
        return ""
    args = measured["args"]
    command = (
        f"python benchmarks/j_distribution.py --model {args['model']} --out {args['out']} "
        f"--trajectories {args['trajectories']} --k {args['k']} --seed {args['seed']}"
    )
    curve = " → ".join(f"{v:.3f}" for v in measured["mean_j_by_episode"])
    load = ", ".join(f"{v:.2f}" for v in measured["load_average"])
    rising = _pct(measured["share_trajectories_rising"])
    return f"""

## How graded is J

`{command}`: {args["trajectories"]} held-out problems, one sampled response each
(T = {args["temperature"]}), J* at every episode boundary (the empty thinking included) from
K = {args["k"]} forced answers at T = 1. It took {measured["seconds"]:.0f} s (load average
{load} on a shared 2-core machine).

| figure | value |
|---|---|
| Prefixes measured | {measured["prefixes"]} |
| Share with J* in (0.1, 0.9) | {_pct(measured["share_graded"])} |
| Histogram of J* over [0, 0.1), ..., [0.9, 1] | {", ".join(map(str, measured["histogram"]))} |
| Mean J* after 0, 1, 2, ... episodes | {curve} |
| Trajectories whose J* rises at some boundary | {rising} |{_answer_row(measured)}

![J* histogram and mean J* by episode](j_distribution.png){_checks(measured)}{_reading(recipe)}"""


def _answer_row(measured: dict[str, Any]) -> str:
    """The forced answers' length (μ's cost per sample), when ``j_distribution.py`` printed it."""
    tokens = measured.get("forced_answer_tokens")
    if not tokens:
        return ""
    return (
        f"\n| Forced-answer tokens (μ's cost per sample): mean, largest prefix mean, cap | "
        f"{tokens['mean']:.1f}, {tokens['max_prefix_mean']:.1f}, {tokens['cap']} |"
    )


def _checks(measured: dict[str, Any]) -> str:
    """The graded world's targets as printed by ``j_distribution.py`` (when it checked them)."""
    checks = measured.get("checks")
    if not checks:
        return ""
    rows = "\n".join(
        f"| {c['name']} | {c['value']} | {c['target']} | {'PASS' if c['passed'] else 'FAIL'} |"
        for c in checks
    )
    base = measured.get("base") or {}
    band = (
        f" The pass@1 band is the 95% Wilson interval of `{base['model']}`'s pass@1 on the same"
        f" {measured['args']['pass_problems']} held-out problems (its measurement uncertainty)."
        if base
        else ""
    )
    return f"""

The targets of a graded world, checked by the same command (`mrt_env.tinymath.targets`).{band}

| target | measured | required | |
|---|---|---|---|
{rows}"""


def _explain_section(forced: dict[str, Any]) -> str:
    """The forced-termination bullet of the explain recipe (``ForcedRecipe.explain``)."""
    beliefs = ", ".join(f"{c:g}" for c in forced["confidence"])
    return f"""- Forced termination: the thinking cut at nothing ({forced["empty"]}), at an episode
  boundary ({forced["boundary"]}) or at a random character (the rest), then the
  `tiny-explain` template's termination suffix, which closes the thinking without opening
  `\\boxed{{}}` (the model folder declares this template in `tokenizer_config.json`, key
  `mrt_template`). The forced answer (the *explain* recipe, `--recipe explain`): a stated
  answer is boxed at once with the belief its evidence earns (a quick guess
  {forced["guess_confidence"]:g}; a worked answer confirmed by 0, 1, 2, 3 checks that passed
  {beliefs}); otherwise, and always when nothing is stated yet, the answer writes one more
  attempt in a line (`86+67: 6+7=13, 8+6+1=15, so 153.`) and boxes its result, as R1's forced
  answers restate a short solution. That attempt slips with probability
  {forced["explain_slip"]:g}, more often than a written first attempt: a hurried answer is
  worth less than the thinking it replaces. J of any prefix is thus the model's own chance of
  finishing right from it: about its one-line accuracy from the empty thinking, more after a
  right answer, less after a wrong one. The loss covers only the forced answer."""


def _reading(recipe: str | None) -> str:
    if recipe in GRADED_RECIPES:
        return ""
    return """

A forced answer copies the last answer the thinking wrote, so J is a step: about 0 until the
episode that writes a right answer, about 1 after it. `tiny-lm-graded` is this model
fine-tuned on a graded forced-answer recipe; there J rises with partial work."""


def _intro(training: dict[str, Any], folder: str) -> str:
    recipe = training.get("recipe")
    if recipe in GRADED_RECIPES:
        anchored = (
            ", its policy held at `tiny-lm`'s (natural traces trained toward `tiny-lm`'s own"
            " next-token distribution, `--anchor`)"
            if training["config"].get("anchor")
            else ""
        )
        role = f"""It is a *graded* tiny LM: the same model size as `tiny-lm`{anchored},
with the {recipe} forced-answer recipe (`--recipe {recipe}`, below), so that J rises with
partial work instead of jumping from 0 to 1 at the episode that writes the answer."""
    else:
        role = """Its forced answers copy the last answer its thinking wrote, so J is a step
function of the prefix."""
    if folder == VARIANTS[DEFAULT_VARIANT][0]:
        role += """ It is the default policy and meta-prover μ of `gym.make("MRTMath-v0")`
(`lm="tiny"`)."""
    init = training["config"].get("init")
    how = f"fine-tuned from `{init}`" if init else "trained from scratch"
    template = "tiny-explain" if recipe == "explain" else "tiny"
    return f"""# {folder}: a tiny reasoning LM for TinyMath

A {training["parameters"]:,}-parameter Llama-architecture causal LM with a character-level
tokenizer, {how} by mrt-gym on synthetic TinyMath reasoning traces. It writes
R1-style thinking in episodes (an attempt, checks, new attempts) and answers in `\\boxed{{}}`;
forced to stop with the `{template}` template's termination suffix, it answers from any thinking
prefix. {role}"""


def render_card(
    training: dict[str, Any],
    figures: dict[str, Any],
    folder: str = "tiny-lm",
    j_distribution: dict[str, Any] | None = None,
) -> str:
    """The model card text of the tiny LM in ``mrt_env/assets/<folder>``."""
    return f"""{_intro(training, folder)}

{_usage(folder)}

{_training_section(training, folder)}

{_data_section(training["config"]["data"], training.get("recipe"))}

{_figures_section(figures, folder)}{_j_distribution_section(j_distribution, training.get("recipe"))}

## Limitations

{limitations(training)}
"""


def write_card(folder: Path) -> Path:
    """Write ``README.md`` into ``folder`` from its ``training.json`` and ``eval.json`` (and
    ``j_distribution.json``, written by ``benchmarks/j_distribution.py``, when present)."""
    training = json.loads((folder / "training.json").read_text())
    figures = json.loads((folder / "eval.json").read_text())
    measured = folder / "j_distribution.json"
    j_distribution = json.loads(measured.read_text()) if measured.is_file() else None
    path = folder / "README.md"
    text = render_card(training, figures, folder.name, j_distribution)
    init = training["config"].get("init")
    start = folder.parent / Path(init).name if init else None
    if start is not None and (start / "eval.json").is_file():
        text = text.replace("\n## Limitations\n", _comparison(folder, start) + "\n## Limitations\n")
    path.write_text(text)
    return path


def _comparison(folder: Path, start: Path) -> str:
    """Before → after: the model a fine-tuned one starts from against it (their own files)."""

    def read(model: Path, name: str) -> dict[str, Any]:
        path = model / name
        return json.loads(path.read_text()) if path.is_file() else {}

    rows = [
        ("Greedy pass@1 (eval.json)", "eval.json", "greedy_pass_at_1", _pct),
        ("Sampled pass@1, T = 0.8 (eval.json)", "eval.json", "sampled_pass_at_1", _pct),
        ("Mean sampled response length, tokens", "eval.json", "mean_response_tokens_sampled", None),
        ("Share of prefixes with J* in (0.1, 0.9)", "j_distribution.json", "share_graded", _pct),
        ("Trajectories whose J* rises", "j_distribution.json", "share_trajectories_rising", _pct),
    ]
    lines = []
    for label, name, key, fmt in rows:
        values: list[float] = []
        for model in (start, folder):
            value = read(model, name).get(key)
            if value is not None:
                values.append(float(value))
        if len(values) < 2:
            continue
        shown = [fmt(v) if fmt else f"{v:.0f}" for v in values]
        lines.append(f"| {label} | {shown[0]} | {shown[1]} |")
    table = "\n".join(lines)
    return f"""
## Against `{start.name}`, the model it starts from

Each figure comes from the two models' own `eval.json` (`python -m mrt_env.tinymath.evaluate`)
and `j_distribution.json` (`python benchmarks/j_distribution.py`), measured the same way.

| figure | {start.name} | {folder.name} |
|---|---|---|
{table}
"""
