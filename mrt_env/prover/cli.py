"""``mrt-prover``: collect labels for a learned meta-prover and train it.

Example (CPU, the shipped tiny LM)::

    mrt-prover collect --model tiny --problems tinymath --k 8 --out labels/
    mrt-prover train --labels labels/ --out prover/
    python -c "import gymnasium as gym, mrt_env; gym.make('MRTMath-v0', prover='learned:prover/')"

``collect`` is resumable: rerunning it after an interruption skips the problems already in
``OUT/labels.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@app.command()
def collect(
    out: Annotated[Path, typer.Option(help="output folder (labels.jsonl is appended to)")],
    model: Annotated[str, typer.Option(help="policy: tiny, tiny:VARIANT, a path or hub id")] = (
        "tiny"
    ),
    problems: Annotated[
        str, typer.Option(help="problem source: tinymath, tinymath:SPLIT or a JSONL path")
    ] = "tinymath",
    num_problems: Annotated[int, typer.Option(help="problems used (first N of the source)")] = 200,
    k: Annotated[int, typer.Option(help="forced answers per prefix (K)")] = 8,
    responses: Annotated[int, typer.Option(help="responses sampled per problem")] = 2,
    max_tokens: Annotated[int, typer.Option(help="token cap of one response")] = 256,
    temperature: Annotated[float, typer.Option(help="sampling temperature of responses")] = 1.0,
    template: Annotated[str | None, typer.Option(help="template preset (default: model's)")] = (
        None
    ),
    seed: Annotated[int, typer.Option(help="seed of responses and forced answers")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu or cuda")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = torch's default)")] = 1,
) -> None:
    """Label every episode boundary of a policy's responses with K forced answers."""
    _set_threads(threads)
    from mrt_env.config import build_lm
    from mrt_env.prover.labels import collect_labels
    from mrt_env.sources import resolve_source

    if k < 1:
        raise typer.BadParameter(f"--k must be >= 1, got {k}")
    source = resolve_source(problems)
    chosen = [source[i] for i in range(min(num_problems, len(source)))]
    lm = build_lm(model, device)
    path = collect_labels(
        lm,
        chosen,
        out,
        policy_id=model,
        k=k,
        responses_per_problem=responses,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        template=template,
    )
    rows = sum(1 for line in path.read_text().splitlines() if line.strip())
    typer.echo(f"{rows} label rows in {path}")


@app.command()
def train(
    labels: Annotated[Path, typer.Option(help="labels file or folder (mrt-prover collect)")],
    out: Annotated[Path, typer.Option(help="output folder of the learned meta-prover")],
    feature_model: Annotated[
        str, typer.Option(help="feature model: tiny, tiny:VARIANT, a path or hub id")
    ] = "tiny",
    template: Annotated[
        str | None,
        typer.Option(help="template the labels were collected with (default: the model's)"),
    ] = None,
    head: Annotated[str, typer.Option(help="auto (best of logistic and mlp), logistic, mlp")] = (
        "auto"
    ),
    layer: Annotated[int | None, typer.Option(help="hidden-state layer (default: best)")] = None,
    features: Annotated[
        str,
        typer.Option(
            help="hidden (state where the forced answer starts) | hidden+gold (plus the "
            "reference answer's log-likelihood, same forward pass)"
        ),
    ] = "hidden",
    val_fraction: Annotated[float, typer.Option(help="share of problems for validation")] = 0.2,
    seed: Annotated[int, typer.Option(help="seed of the split and the heads")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu or cuda")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = torch's default)")] = 1,
) -> None:
    """Fit the probe with the binomial loss, early stopping on held-out problems."""
    _set_threads(threads)
    from mrt_env.prover.fit import FitConfig
    from mrt_env.prover.train import train_from_labels

    if head not in ("auto", "logistic", "mlp"):
        raise typer.BadParameter(f"--head must be auto, logistic or mlp, got {head!r}")
    if features not in ("hidden", "hidden+gold"):
        raise typer.BadParameter(f"--features must be hidden or hidden+gold, got {features!r}")
    kinds = ("logistic", "mlp") if head == "auto" else (head,)
    prover = train_from_labels(
        labels,
        out,
        feature_model=feature_model,
        template=template,
        kinds=kinds,
        layers=None if layer is None else (layer,),
        config=FitConfig(val_fraction=val_fraction, seed=seed),
        device=device,
        features=features,
    )
    chosen = prover.card["training"]["chosen"]
    typer.echo(json.dumps({"out": str(out), **chosen}, indent=2))


def _set_threads(threads: int) -> None:
    """Small models on shared CPUs run faster single-threaded (no thread-pool contention)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


if __name__ == "__main__":  # pragma: no cover - python -m mrt_env.prover.cli
    app()
