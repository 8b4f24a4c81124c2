"""Train the tiny LM on TinyMath traces (reproducible: every random choice flows from ``seed``).

Run::

    python -m mrt_env.tinymath.train --preset default --seed 0 --out mrt_env/assets/tiny-lm

The run takes ``steps`` optimizer steps (from the preset unless given), stopping early only if
the ``minutes`` wall-clock cap is hit (recorded in ``training.json``). Files are written to a
temporary folder and moved into ``out`` one by one, so an interrupted save never leaves a
half-written weights file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mrt_env.templates import DECLARED_TEMPLATE
from mrt_env.tinymath.data import DATA_RECIPES, DataRecipe, batches, fixed_batches


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        preset: Model preset (``tiny``, ``default``, ``quality``).
        seed: Seeds parameter init (a ``torch.Generator``) and data (a numpy ``Generator``).
        steps: Optimizer steps.
        batch_size: Examples per step.
        learning_rate: Peak AdamW learning rate (cosine decay to 10% after warmup).
        warmup_steps: Linear warmup steps.
        weight_decay: AdamW weight decay.
        minutes: Wall-clock cap; training stops early when it is reached.
        eval_every: Steps between held-out test-loss evaluations.
        eval_examples: Held-out examples in the test-loss set.
        threads: Torch CPU threads.
        init: A saved tiny LM to start from (fine-tuning) instead of a fresh seeded init; it
            must have ``preset``'s shape.
        anchor: Share of natural traces trained toward the ``init`` model's next-token
            distribution (the KL divergence from it, see :func:`anchored_loss`) instead of the
            recipe's tokens, so fine-tuning the forced answers leaves the policy near where it
            was (1: all of them; 0: none, the recipe's tokens). Rows are picked by a generator
            seeded from ``seed``. Needs ``init`` when positive.
        data: The data recipe.
    """

    preset: str = "default"
    seed: int = 0
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    minutes: float = 60.0
    eval_every: int = 250
    eval_examples: int = 256
    threads: int = 1
    init: str | None = None
    anchor: float = 0.0
    data: DataRecipe = field(default_factory=DataRecipe)

    def __post_init__(self) -> None:
        if not 0.0 <= self.anchor <= 1.0:
            raise ValueError(f"anchor is a share of natural traces in [0, 1], got {self.anchor}")
        if self.anchor and self.init is None:
            raise ValueError("anchor keeps the policy of the starting model: give init too")


@dataclass
class TrainResult:
    """What a run measured.

    Attributes:
        steps: Steps taken.
        tokens: Tokens processed (padding excluded).
        seconds: Wall-clock training time.
        test_loss: ``(step, loss)`` pairs on the held-out set, the first at step 0.
        stopped_early: Whether the ``minutes`` cap ended the run.
    """

    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    test_loss: list[tuple[int, float]] = field(default_factory=list)
    stopped_early: bool = False


def init_parameters(model: Any, seed: int, std: float = 0.02) -> None:
    """Re-initialise all weights from a seeded ``torch.Generator`` (norm weights to 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, std, generator=generator)


def build_model(preset: str, tokenizer: Any, seed: int) -> Any:
    """A freshly initialised ``LlamaForCausalLM`` for ``preset``."""
    from transformers import LlamaForCausalLM

    from mrt_env.tinymath.model import model_config

    config = model_config(
        preset,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    init_parameters(model, seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _load_weights(model: Any, folder: Path) -> None:
    """Copy the weights saved in ``folder`` into ``model`` (the same shape, or an error)."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if name != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise ValueError(f"{folder} does not fit the preset: missing {missing}, extra {unexpected}")


def test_loss(model: Any, eval_set: list[Any]) -> float:
    """Mean per-token loss over a fixed set of batches."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in eval_set:
            tokens = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def anchored_loss(logits: Any, labels: Any, natural: Any, reference: Any) -> Any:
    """Mean loss over the labelled positions of a batch, natural traces anchored.

    A forced-termination row (``natural`` False) is trained on its tokens (cross-entropy, as
    usual); a natural-trace row on the reference model's next-token distribution: at each
    labelled position ``KL(p_ref || p) = sum_v p_ref(v) (log p_ref(v) - log p(v))``, zero when
    the model predicts as the reference does. Positions are shifted as in causal-LM training
    (the logits at ``t`` predict ``labels[t + 1]``) and ``-100`` labels are ignored.

    Args:
        logits: ``(batch, length, vocab)`` logits of the model being trained.
        labels: ``(batch, length)`` token ids, ``-100`` where no loss is taken.
        natural: ``(batch,)`` booleans, True for natural-trace rows.
        reference: ``(batch, length, vocab)`` logits of the reference (starting) model.
    """
    import torch

    logits, reference, targets = logits[:, :-1], reference[:, :-1], labels[:, 1:]
    kept = targets != -100
    log_p = torch.log_softmax(logits.float(), dim=-1)
    cross_entropy = -log_p.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    log_ref = torch.log_softmax(reference.float(), dim=-1)
    kl = (log_ref.exp() * (log_ref - log_p)).sum(-1)
    per_token = torch.where(natural.unsqueeze(-1), kl, cross_entropy)
    return (per_token * kept).sum() / kept.sum().clamp(min=1)


def _step_loss(model: Any, reference: Any, batch: dict[str, Any], anchored: Any) -> Any:
    """The training loss of one batch; ``anchored`` marks the rows trained toward
    ``reference`` (``None``: no reference, the usual loss)."""
    import torch

    batch.pop("natural", None)
    if reference is None:
        return model(**batch).loss
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        reference_logits = reference(**inputs).logits
    return anchored_loss(model(**inputs).logits, batch["labels"], anchored, reference_logits)


def _lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train(config: TrainConfig, progress: bool = True) -> tuple[Any, Any, TrainResult]:
    """Train a model; returns ``(model, tokenizer, result)``."""
    import torch
    from tqdm.auto import tqdm

    from mrt_env.tinymath.tokenizer import build_tokenizer

    torch.set_num_threads(config.threads)
    tokenizer = build_tokenizer()
    if config.data.forced.explain:  # the folder names its template: forced answers explain
        tokenizer.init_kwargs[DECLARED_TEMPLATE] = "tiny-explain"
    model = build_model(config.preset, tokenizer, config.seed)
    reference = None
    if config.init is not None:
        _load_weights(model, Path(config.init))
    if config.anchor > 0:
        reference = build_model(config.preset, tokenizer, config.seed)
        _load_weights(reference, Path(str(config.init)))
        reference.eval()
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        betas=(0.9, 0.98),
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    eval_set = fixed_batches(tokenizer, config.data, config.eval_examples, 64, config.seed + 1)
    anchoring = config.anchor > 0
    stream = batches(tokenizer, config.data, config.batch_size, config.seed, kinds=anchoring)
    picker = torch.Generator().manual_seed(config.seed + 2)
    result = TrainResult(test_loss=[(0, test_loss(model, eval_set))])
    start = time.monotonic()
    bar = tqdm(range(config.steps), desc="train tiny LM", disable=not progress)
    model.train()
    for step in bar:
        batch = next(stream)
        anchored = None
        if reference is not None:
            picked = torch.rand(len(batch["natural"]), generator=picker) < config.anchor
            anchored = batch["natural"] & picked
        loss = _step_loss(model, reference, batch, anchored)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.steps, result.tokens = step + 1, result.tokens + int(batch["attention_mask"].sum())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            result.test_loss.append((step + 1, test_loss(model, eval_set)))
            bar.write(f"step {step + 1}: test loss {result.test_loss[-1][1]:.4f}")
        if time.monotonic() - start > config.minutes * 60:
            result.stopped_early = step + 1 < config.steps
            if result.test_loss[-1][0] != step + 1:
                result.test_loss.append((step + 1, test_loss(model, eval_set)))
            break
    result.seconds = time.monotonic() - start
    model.eval()
    return model, tokenizer, result


def save(model: Any, tokenizer: Any, out: Path, record: dict[str, Any]) -> None:
    """Write weights, tokenizer and ``training.json`` into ``out`` without torn files."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".tmp-") as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        Path(staging, "training.json").write_text(json.dumps(record, indent=2) + "\n")
        for name in sorted(os.listdir(staging)):
            os.chmod(Path(staging, name), 0o644)
            os.replace(Path(staging, name), out / name)


def recipe_name(data: DataRecipe) -> str | None:
    """The name in :data:`DATA_RECIPES` of ``data`` (levels, forced fraction, direct answers,
    beliefs and the explain slip aside)."""
    for name, recipe in DATA_RECIPES.items():
        same = replace(
            recipe,
            levels=data.levels,
            forced_fraction=data.forced_fraction,
            direct_fraction=data.direct_fraction,
            direct_levels=data.direct_levels,
            forced=replace(
                recipe.forced,
                explain_slip=data.forced.explain_slip,
                confidence=data.forced.confidence if recipe.forced.confidence else (),
            ),
        )
        if same == data:
            return name
    return None


def _record(config: TrainConfig, result: TrainResult, parameters: int) -> dict[str, Any]:
    import torch

    recipe = recipe_name(config.data)
    recipe_flag = f" --recipe {recipe}" if recipe not in (None, "classic") else ""
    if config.data.forced_fraction != DataRecipe.forced_fraction:
        recipe_flag += f" --forced-fraction {config.data.forced_fraction:g}"
    named = DATA_RECIPES.get(recipe or "")
    if named is not None and config.data.direct_fraction != named.direct_fraction:
        recipe_flag += f" --direct-fraction {config.data.direct_fraction:g}"
    if named is not None and config.data.direct_levels != named.direct_levels:
        recipe_flag += f" --direct-levels {','.join(map(str, config.data.direct_levels))}"
    if named is not None and config.data.forced.confidence != named.forced.confidence:
        recipe_flag += " --beliefs " + ",".join(f"{b:g}" for b in config.data.forced.confidence)
    if named is not None and config.data.forced.explain_slip != named.forced.explain_slip:
        recipe_flag += f" --explain-slip {config.data.forced.explain_slip:g}"
    init_flag = f" --warmup {config.warmup_steps}" if config.warmup_steps != 100 else ""
    init_flag += f" --init {config.init}" if config.init else ""
    if config.anchor:
        init_flag += " --anchor" + ("" if config.anchor == 1.0 else f" {config.anchor:g}")

    return {
        "config": asdict(config),
        "result": asdict(result),
        "parameters": parameters,
        "tokens_per_second": result.tokens / max(result.seconds, 1e-9),
        "torch": torch.__version__,
        "command": (
            f"python -m mrt_env.tinymath.train --preset {config.preset} --seed {config.seed} "
            f"--steps {config.steps} --batch-size {config.batch_size} "
            f"--lr {config.learning_rate:g} --levels {','.join(map(str, config.data.levels))} "
            f"--minutes {config.minutes:g}{recipe_flag}{init_flag}"
        ),
        "recipe": recipe or "custom",
    }


PRESET_STEPS = {"tiny": 200, "default": 2000, "quality": 3000}


def config_from_args(argv: list[str] | None = None) -> tuple[TrainConfig, Path]:
    """Parse the command line into a :class:`TrainConfig` and the output folder."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--preset", default="default", help="tiny, default or quality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="default: per preset")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes, help="time cap")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument(
        "--forced-fraction",
        type=float,
        default=None,
        help="share of forced-termination examples (default: the recipe's)",
    )
    parser.add_argument(
        "--direct-fraction",
        type=float,
        default=None,
        help="share of direct-answer examples (default: the recipe's)",
    )
    parser.add_argument(
        "--direct-levels", default=None, help="comma-separated levels of the direct answers"
    )
    parser.add_argument("--warmup", type=int, default=TrainConfig.warmup_steps)
    parser.add_argument("--init", default=None, help="a saved tiny LM to fine-tune from")
    parser.add_argument(
        "--anchor",
        type=float,
        nargs="?",
        const=1.0,
        default=0.0,
        help="share of natural traces trained toward the --init model's distribution "
        "(keeps its policy; no value: all of them)",
    )
    parser.add_argument(
        "--explain-slip",
        type=float,
        default=None,
        help="explain recipe: slip probability of an explained forced answer (default: 0.4)",
    )
    parser.add_argument(
        "--beliefs",
        default=None,
        help="graded recipes: comma-separated beliefs in a worked answer after 0, 1, 2, ... "
        "passed checks (default: the recipe's)",
    )
    parser.add_argument("--levels", default=None, help="comma-separated TinyMath levels")
    parser.add_argument(
        "--recipe",
        default="classic",
        choices=sorted(DATA_RECIPES),
        help="data recipe: classic (forced answers copy the last answer), graded, graded-checks, "
        "graded-direct, worked or explain (forced answers write a short solution)",
    )
    parser.add_argument("--out", type=Path, default=Path("mrt_env/assets/tiny-lm"))
    args = parser.parse_args(argv)
    data = DATA_RECIPES[args.recipe]
    if args.forced_fraction is not None:
        data = replace(data, forced_fraction=args.forced_fraction)
    if args.direct_fraction is not None:
        data = replace(data, direct_fraction=args.direct_fraction)
    if args.direct_levels:
        data = replace(data, direct_levels=tuple(int(x) for x in args.direct_levels.split(",")))
    if args.explain_slip is not None:
        data = replace(data, forced=replace(data.forced, explain_slip=args.explain_slip))
    if args.beliefs:
        beliefs = tuple(float(x) for x in args.beliefs.split(","))
        data = replace(data, forced=replace(data.forced, confidence=beliefs))
    if args.levels:
        data = replace(data, levels=tuple(int(x) for x in args.levels.split(",")))
    config = TrainConfig(
        data=data,
        preset=args.preset,
        seed=args.seed,
        steps=args.steps or PRESET_STEPS.get(args.preset, TrainConfig.steps),
        batch_size=args.batch_size,
        learning_rate=args.lr,
        minutes=args.minutes,
        threads=args.threads,
        warmup_steps=args.warmup,
        init=args.init,
        anchor=args.anchor,
    )
    return config, args.out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: train, then save into ``--out``."""
    config, out = config_from_args(argv)
    model, tokenizer, result = train(config)
    parameters = sum(p.numel() for p in model.parameters())
    save(model, tokenizer, out, _record(config, result, parameters))
    print(
        f"saved {parameters} parameters to {out} after {result.steps} steps "
        f"({result.seconds / 60:.1f} min, test loss {result.test_loss[-1][1]:.4f})"
    )


if __name__ == "__main__":
    main()
