"""Model cards of trained tiny-LM checkpoints, rendered from a run folder and evaluation JSON.

Every figure in a card comes from files the project's own commands wrote: the run's
``run.json``, ``tb/metrics.jsonl`` and last checkpoint (``mrt-train``), and the results JSON of
``python -m agents.evaluate`` (pass@1 and, with ``--budgets``, normalized regret).

Command line::

    python -m agents.card --variant mrt --run runs/ship-mrt \\
        --eval-pass runs/eval-pass.json --eval-regret runs/eval-regret.json \\
        --out mrt_env/assets/tiny-lm-mrt/README.md
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

TITLES = {
    "grpo": "outcome-only GRPO (the baseline)",
    "mrt": "MRT-RL with per-episode progress credit",
}


def training_command(run: dict[str, Any], out: str) -> str:
    """The ``mrt-train`` command line that reproduces ``run`` (from its ``run.json``)."""
    train, algo = run["train"], run["algo"]
    parts = ["mrt-train", "--algo", algo]
    if algo == "mrt":
        config = run["algo_config"]
        parts += ["--credit", config["credit"], "--alpha", str(config["alpha"])]
    parts += ["--model", run["model"], "--minutes", f"{train['minutes']:g}"]
    parts += ["--steps", str(train["steps"]), "--seed", str(train["seed"])]
    parts += ["--problems-per-step", str(train["problems_per_step"])]
    parts += ["--group-size", str(train["group_size"]), "--lr", f"{train['lr']:g}"]
    parts += ["--token-budget", str(train["token_budget"])]
    if train.get("max_episodes") is not None:
        parts += ["--max-episodes", str(train["max_episodes"])]
    if train["policy"].get("max_episode_tokens") is not None:
        parts += ["--max-episode-tokens", str(train["policy"]["max_episode_tokens"])]
    parts += ["--prover-samples", str(train["prover_samples"])]
    parts += ["--eval-interval", str(train["eval_interval"])]
    parts += ["--eval-problems", str(train["eval_problems"]), "--out", out]
    return " ".join(parts)


def read_run(folder: Path) -> dict[str, Any]:
    """Configuration, steps, training seconds and the periodic evaluations of a run folder."""
    run = json.loads((folder / "run.json").read_text())
    rows = [json.loads(line) for line in (folder / "tb" / "metrics.jsonl").read_text().splitlines()]
    latest = json.loads((folder / "checkpoints" / "latest.json").read_text())
    train_rows = [r for r in rows if "charts/elapsed_s" in r]
    return {
        "run": run,
        "steps": int(latest["step"]),
        "seconds": float(train_rows[-1]["charts/elapsed_s"]) if train_rows else 0.0,
        "evals": [(int(r["step"]), float(r["eval/pass@1"])) for r in rows if "eval/pass@1" in r],
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _figures_table(variants: list[str], passes: dict[str, Any], regret: dict[str, Any]) -> str:
    def ci(row: dict[str, Any]) -> str:
        return f"{row['pass_at_1']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"

    def diff(row: dict[str, Any]) -> str:
        d = row.get("minus_first")
        return "–" if d is None else f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"

    lines = [
        "| | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
        "| pass@1 [95% CI] | " + " | ".join(ci(passes[v]) for v in variants) + " |",
        f"| pass@1 − {variants[0]} [95% CI] | "
        + " | ".join(diff(passes[v]) for v in variants)
        + " |",
        "| mean tokens per response | "
        + " | ".join(f"{passes[v]['mean_tokens']:.1f}" for v in variants)
        + " |",
    ]
    if all(passes[v].get("mean_episodes") is not None for v in variants):
        cells = [
            f"{passes[v]['mean_episodes']:.2f} ({100 * passes[v]['single_episode_share']:.0f}%)"
            for v in variants
        ]
        lines.append("| episodes per response (one-episode share) | " + " | ".join(cells) + " |")
    for budget in regret.get("budgets", []):
        key = str(int(budget))
        values = [f"{regret[v]['normalized_regret'][key]:.3f}" for v in variants]
        lines.append(f"| normalized regret @ {key} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _versus(passes: dict[str, Any]) -> str:
    """MRT − GRPO pass@1, paired over the same problems (empty unless both were evaluated)."""
    from agents.evaluate import paired_difference

    if "grpo" not in passes or "mrt" not in passes:
        return ""
    d = paired_difference(passes["mrt"]["per_problem"], passes["grpo"]["per_problem"])
    return (
        f"MRT − GRPO pass@1 (paired): {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]. "
    )


def _degenerate(row: dict[str, Any]) -> str:
    """The evaluation's degenerate-run flags of a variant, as a warning paragraph (or nothing).

    Example:
        >>> _degenerate({"degenerate": []})
        ''
        >>> _degenerate({"degenerate": ["91% of responses are one episode"]}).strip()
        'Warning: 91% of responses are one episode.'
    """
    reasons = row.get("degenerate") or []
    return "".join(f"\nWarning: {reason}.\n" for reason in reasons)


def _prover_words(train: dict[str, Any]) -> str:
    """Who μ was in a run (runs recorded before ``prover_policy`` existed used a frozen μ).

    Example:
        >>> _prover_words({"prover_policy": "current"}), _prover_words({})
        ('μ = the policy being trained', 'a frozen copy of the base model')
    """
    if train.get("prover_policy", "frozen") == "current":
        return "μ = the policy being trained"
    return "a frozen copy of the base model"


def study_command(settings: dict[str, Any]) -> str:
    """The ``benchmarks/reproduce.py`` command of a study (from its ``summary.json`` settings).

    Example:
        >>> command = study_command({"seeds": [0, 1], "methods": ["grpo"], "train_minutes": 7.0,
        ...                          "train_flags": "--lr 3e-5", "name": "s"})
        >>> command.split(" --")[1:]
        ['seeds 0 1', 'methods grpo', 'train-minutes 7', "train-flags '--lr 3e-5'", 'name s']
    """
    import shlex

    parts = ["python", "benchmarks/reproduce.py", "--seeds", *map(str, settings["seeds"])]
    parts += ["--methods", *settings["methods"]]
    parts += ["--train-minutes", f"{settings['train_minutes']:g}"]
    if settings.get("train_flags"):
        parts += ["--train-flags", shlex.quote(settings["train_flags"])]
    for key in ("curve_interval", "num_problems"):
        if key in settings:
            parts += [f"--{key.replace('_', '-')}", str(settings[key])]
    return " ".join([*parts, "--name", settings["name"]])


def study_section(study: dict[str, Any], method: str, seed: int) -> str:
    """Where a shipped checkpoint comes from: which seed of which study run, and why that one."""
    settings = study["settings"]
    stats = study["methods"][method]
    position = list(settings["seeds"]).index(seed)
    mine = stats["per_seed"]["pass@1"][position]
    mean = stats["across_seeds"]["pass@1"]
    steps = "/".join(map(str, stats["steps"]))
    return f"""## Chosen from the study

This is training seed {seed} of `{method}` in the {len(settings["seeds"])}-seed study of the \
README ("MRT vs GRPO across training seeds"), every run with the same wall-clock budget, two at \
a time on 2 CPU cores (1 torch thread each):

```bash
{study_command(settings)}
```

Its pass@1 on the study's evaluation ({study["problems"]} held-out problems x \
{settings["samples"]} samples) is {mine:.3f}, the closest of the {len(settings["seeds"])} seeds to \
the method's mean across seeds, {mean["mean"]:.3f} [{mean["ci_low"]:.3f}, \
{mean["ci_high"]:.3f}] (95% t-interval). Steps reached per seed: {steps}.
"""


def render_card(
    variant: str,
    folder: Path,
    passes: dict[str, Any],
    regret: dict[str, Any],
    base: Path,
    study: tuple[dict[str, Any], str] | None = None,
) -> str:
    """The card text of ``variant`` trained in ``folder`` (``study``: the ``reproduce.py``
    summary and the method the run belongs to, when it was chosen from a study)."""
    info = read_run(folder)
    variants: list[str] = [v for v in ("base", "grpo", "mrt") if v in passes]
    run, train = info["run"], info["run"]["train"]
    evals = ", ".join(f"step {s}: {p:.2f}" for s, p in info["evals"])
    mine = passes[variant].get("minus_first")
    verdict = (
        "beats the base by more than the CI (the paired difference CI excludes 0)"
        if mine and mine["ci_low"] > 0
        else "does not beat the base by more than the CI"
    )
    other = "mrt" if variant == "grpo" else "grpo"
    equal = (
        "Equal wall-clock: the GRPO and MRT runs ran at the same time on the same 2 CPU cores "
        "(1 torch thread each), each limited to the same minutes."
    )
    chosen, study_args, run_folder = "", "", f"runs/ship-{variant}"
    if study is not None:
        chosen = "\n" + study_section(study[0], study[1], int(train["seed"]))
        equal = "Equal wall-clock with every other run of the study (below)."
        name, method = study[0]["settings"]["name"], study[1]
        run_folder = f"runs/reproduce/{name}/train/{method}-s{train['seed']}"
        study_args = f" \\\n    --study runs/reproduce/{name}/summary.json --method {method}"
    return f"""# tiny-lm-{variant}: the TinyMath tiny LM after {TITLES[variant]}

Trained from the shipped base model `mrt_env/assets/{base.name}` (model.safetensors sha256
`{_sha256(base / "model.safetensors")[:16]}…`) by the project's own trainer. Load it with
`mrt_env.tinymath.load_tiny_lm("{variant}")`.

## Training

```bash
{training_command(run, run_folder)}
```

- seed: {train["seed"]}; steps completed: {info["steps"]}; training time: \
{info["seconds"]:.0f} s (wall-clock limit {train["minutes"]:g} min, evaluation excluded).
- {equal}
- Per step: {train["problems_per_step"]} problems x {train["group_size"]} trajectories, \
temperature {train["policy"]["temperature"]}, AdamW lr {train["lr"]:g}, KL coefficient \
{train["kl_coef"]:g}, {train["updates_per_batch"]} update per batch, token budget \
{train["token_budget"]}, episode cap {train["max_episodes"] or "none"}, meta-prover \
K = {train["prover_samples"]} (MRT only: {_prover_words(train)}).
- Held-out pass@1 during training ({train["eval_problems"]} problems, T = 0.8, fixed \
seed): {evals}.
{chosen}
## Measured (held-out TinyMath, sampled at T = {passes["settings"]["policy"]["temperature"]})

Pass@1 on {passes["n"]} held-out problems (1 sample each; the same problems and sampling \
seeds for every variant), 95% percentile bootstrap CI over problems; the difference to the \
base is a paired bootstrap over the same problems. Normalized regret (PAPER.md) on \
{regret.get("n", 0)} held-out problems, J read by each variant's own forced answers \
(K = {regret.get("settings", {}).get("prover_samples", "–")}), budgets in tokens \
(prompt + thinking + forced answer); point estimates, no CI.

{_figures_table(variants, passes, regret)}

{variant.upper()} {verdict}. {_versus(passes)}Its sibling checkpoint: `tiny-lm-{other}`.
{_degenerate(passes[variant])}
Evaluation commands:

```bash
python -m agents.evaluate --variants {",".join(variants)} --n {passes["n"]} \\
    --token-budget {passes["settings"]["token_budget"]} --out runs/eval-pass.json
python -m agents.evaluate --variants {",".join(variants)} --n {regret.get("n", 0)} \\
    --token-budget {regret.get("settings", {}).get("token_budget", 0)} \\
    --budgets {",".join(str(int(b)) for b in regret.get("budgets", []))} \\
    --out runs/eval-regret.json
python -m agents.card --variant {variant} --run {run_folder} \\
    --eval-pass runs/eval-pass.json --eval-regret runs/eval-regret.json \\
    --out mrt_env/assets/tiny-lm-{variant}/README.md{study_args}
```

All figures are single runs on a shared CPU; timing-dependent step counts vary from run to run.
"""


app = typer.Typer(add_completion=False, help="Write the model card of a trained checkpoint.")


@app.command()
def main(
    variant: Annotated[str, typer.Option(help="grpo or mrt")],
    run: Annotated[Path, typer.Option(help="the mrt-train output folder")],
    eval_pass: Annotated[Path, typer.Option(help="agents.evaluate JSON (pass@1)")],
    eval_regret: Annotated[Path, typer.Option(help="agents.evaluate JSON (--budgets)")],
    out: Annotated[Path, typer.Option(help="where to write the card")],
    base: Annotated[Path | None, typer.Option(help="base model folder")] = None,
    study: Annotated[
        Path | None, typer.Option(help="benchmarks/reproduce.py summary.json the run comes from")
    ] = None,
    method: Annotated[str, typer.Option(help="the run's method in --study")] = "",
) -> None:
    """Render the card from the run folder and the evaluation results."""
    from mrt_env.tinymath.loading import tiny_lm_path

    if variant not in TITLES:
        raise typer.BadParameter(f"variant must be one of {sorted(TITLES)}, got {variant!r}")
    passes = json.loads(eval_pass.read_text())
    regret = json.loads(eval_regret.read_text())
    chosen = None
    if study is not None:
        summary = json.loads(study.read_text())
        if method not in summary["methods"]:
            raise typer.BadParameter(
                f"--method must be one of the study's {sorted(summary['methods'])}"
            )
        chosen = (summary, method)
    text = render_card(variant, run, passes, regret, base or tiny_lm_path("base"), chosen)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
