"""``mrt-train --engine trl``: TRL GRPO and MRT on the shipped tiny LM on CPU, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("trl")

from agents.cli import app

TINY = [
    "--engine",
    "trl",
    "--model",
    "tiny",
    "--seed",
    "0",
    "--problems-per-step",
    "2",
    "--group-size",
    "2",
    "--token-budget",
    "96",
    "--prover-samples",
    "2",
    "--train-size",
    "20",
    "--no-tensorboard",
]


def _history(out: Path, step: int) -> list[dict[str, float]]:
    state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return [h for h in state["log_history"] if "loss" in h]


def _check_run(out: Path, keys: tuple[str, ...]) -> None:
    from transformers import AutoModelForCausalLM

    history = _history(out, 2)
    assert [h["step"] for h in history] == [1, 2]
    for key in keys:
        assert all(np.isfinite(h[key]) for h in history), key
    for folder in (out / "checkpoint-2", out / "model"):
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize(
    ("algo", "keys"),
    [
        (["--algo", "mrt", "--credit", "progress"], ("mrt/progress", "mrt/j", "mrt/j_empty")),
        pytest.param(
            ["--algo", "mrt", "--credit", "released"], ("mrt/j_prefix",), marks=pytest.mark.slow
        ),
        pytest.param(["--algo", "grpo"], ("rewards/outcome/mean",), marks=pytest.mark.slow),
    ],
)
def test_two_optimizer_steps_write_a_loadable_checkpoint(
    tmp_path: Path, algo: list[str], keys: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(app, [*TINY, *algo, "--steps", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output
    _check_run(tmp_path, ("loss", "mrt/advantage_abs", *keys) if algo[1] == "mrt" else keys)


def test_learned_prover_on_trl_logs_its_source(tmp_path: Path) -> None:
    args = ["--algo", "mrt", "--credit", "progress", "--prover", "learned:tiny"]
    result = CliRunner().invoke(app, [*TINY, *args, "--steps", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    _check_run(tmp_path, ("loss", "mrt/progress", "mrt/j"))
    assert [h["prover/learned"] for h in _history(tmp_path, 2)] == [1.0, 1.0]


def test_hybrid_prover_on_trl_samples_a_share_and_updates_the_head(tmp_path: Path) -> None:
    import torch

    from agents.config import MRTConfig, TrainConfig
    from agents.trl.prover import HybridPolicyProver
    from agents.trl.run import TRLRunOptions, build_trainer
    from mrt_env.prover.learned import LearnedMetaProver

    config = TrainConfig(
        steps=2,
        problems_per_step=2,
        group_size=2,
        token_budget=48,
        prover_samples=2,
        prover="hybrid:tiny",
        prover_sample_share=1.0,  # every request also sampled: labels for sure
    )
    options = TRLRunOptions(out=tmp_path, model="tiny", extra=(("save_strategy", "no"),))
    trainer = build_trainer(options, config, MRTConfig(credit="progress"), tensorboard=False)
    assert isinstance(trainer.mu, HybridPolicyProver)
    shipped = LearnedMetaProver.from_pretrained("tiny").head.state_dict()
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["prover/learned"] for h in logs] == [1.0, 1.0]
    assert "prover/drift" not in logs[0]  # no update before the first optimizer step
    assert logs[1]["prover/online_labels"] > 0 and np.isfinite(logs[1]["prover/drift"])
    assert trainer.mu.online.version == 1  # the share was sampled with step 1's weights
    after = trainer.mu.hybrid.learned.head.state_dict()
    assert any(not torch.equal(after[k], shipped[k]) for k in shipped)  # the head learned
    with pytest.raises(ValueError, match="needs a LearnedMetaProver"):
        from agents.trl.trainer import MRTSettings

        MRTSettings(prover_sample_share=0.1)


def test_engine_trl_rejects_what_it_cannot_run(tmp_path: Path) -> None:
    for extra in (
        ["--algo", "star"],
        ["--algo", "mrt", "--prover-policy", "frozen"],
        ["--algo", "grpo", "--eval-interval", "1"],
    ):
        result = CliRunner().invoke(app, [*TINY, *extra, "--out", str(tmp_path)])
        assert result.exit_code != 0
    assert not list(tmp_path.glob("checkpoint-*"))


@pytest.mark.slow
def test_minutes_stop_training_with_a_checkpoint(tmp_path: Path) -> None:
    args = [*TINY, "--algo", "grpo", "--steps", "50", "--minutes", "0.001"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 steps" in result.output
    assert (tmp_path / "checkpoint-1").exists()


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    args = [*TINY, "--algo", "mrt", "--credit", "progress", "--out", str(tmp_path)]
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1"}
    command = [sys.executable, "-m", "agents.cli", *args, "--steps", "6"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = tmp_path / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.exists()
    finished = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    assert finished and finished[-1] < 6  # killed mid-run
    written = state.stat().st_mtime
    result = CliRunner().invoke(app, [*args, "--steps", str(finished[-1] + 1)])
    assert result.exit_code == 0, result.output
    assert state.stat().st_mtime == written  # resumed: the earlier checkpoint was not redone
    steps = [h["step"] for h in _history(tmp_path, finished[-1] + 1)]
    assert steps == list(range(1, finished[-1] + 2))


CONFIGS = Path(__file__).resolve().parents[2] / "agents" / "configs"


@pytest.mark.parametrize("name", ["single_gpu", "deepspeed_zero2", "deepspeed_zero3", "fsdp2"])
def test_shipped_accelerate_configs_load(name: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(CONFIGS / f"{name}.yaml"))
    assert config.mixed_precision == "bf16"
    assert config.num_processes == (1 if name == "single_gpu" else 8)
    if name.startswith("deepspeed"):
        assert config.deepspeed_config["gradient_accumulation_steps"] == 1


@pytest.mark.gpu
def test_vllm_colocate_two_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("vllm")
    # vLLM's colocated engine joins a process group: a one-process "launch"
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29533")
    args = [*TINY, "--algo", "mrt", "--credit", "progress", "--device", "cuda", "--use-vllm"]
    result = CliRunner().invoke(
        app, [*args, "--vllm-mode", "colocate", "--steps", "2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    _check_run(tmp_path, ("loss", "mrt/progress", "mrt/j"))


@pytest.mark.parametrize("credit", ["progress", "released"])
def test_two_processes_under_torchrun_train_mrt_on_cpu(credit: str, tmp_path: Path) -> None:
    """The TRL engine on 2 CPU processes (gloo): both ranks finish, rank 0 saves the model."""
    out = tmp_path / "run"
    # --standalone: a local rendezvous on a port the launcher picks itself (no probe-then-bind
    # race with other tests' servers)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "agents.cli", "--algo", "mrt", "--credit", credit, "--steps", "2",
        *TINY, "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("mrt (trl): 2 steps") == 2  # one line per rank
    assert (out / "model" / "model.safetensors").exists()
    assert (out / "checkpoint-2").is_dir()


def test_resumed_run_bar_starts_at_the_checkpoint_step(tmp_path: Path) -> None:
    from transformers import TrainerControl, TrainerState
    from transformers.trainer_callback import ProgressCallback

    from agents.trl.run import show_resumed_steps
    from tests.agents.trl_doubles import tiny_trl_trainer

    trainer = tiny_trl_trainer(tmp_path, list, None, "progress", 1, 2)
    show_resumed_steps(trainer)
    [bar] = [c for c in trainer.callback_handler.callbacks if isinstance(c, ProgressCallback)]
    state = TrainerState(max_steps=10, global_step=4)  # as restored from checkpoint-4
    stock = ProgressCallback()
    for callback in (bar, stock):
        callback.on_train_begin(trainer.args, state, TrainerControl())
    assert (bar.training_bar.n, stock.training_bar.n) == (4, 0)  # the stock bar restarts at 0
    state.global_step = 5
    bar.on_step_end(trainer.args, state, TrainerControl())
    assert bar.training_bar.n == 5  # one step later: one more, not 5 more
    bar.training_bar.close()
    stock.training_bar.close()
