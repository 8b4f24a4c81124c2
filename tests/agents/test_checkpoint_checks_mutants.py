"""Checkpoint checks on hand-made files, written to kill mutants (see tests/README.md).

Each damaged file is made here on purpose (a missing tensor, a wrong shape, a NaN, a bad
generator state, ...) and the check must name the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agents.checkpoint_checks import (
    WAYS_OUT,
    CheckpointError,
    checked_generators,
    checked_optimizer,
    checked_trainer_state,
    checked_weights,
    load_tensors,
    model_tensors,
    optimizer_state,
    read_json,
)


class _Tied(torch.nn.Module):
    """Embedding and head share one weight (as in tied language models)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(3, 2)
        self.head = torch.nn.Linear(2, 3, bias=False)
        self.head.weight = self.embed.weight
        self.scale = torch.nn.Linear(2, 2)


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_checkpoint_error_names_the_file_and_the_ways_out() -> None:
    error = CheckpointError("run/x.json", "it broke")
    assert str(error) == f"run/x.json: it broke. {WAYS_OUT}"
    assert error.path == Path("run/x.json")
    assert isinstance(error, RuntimeError)
    assert "--resume-fallback" in WAYS_OUT and "--out" in WAYS_OUT


def test_read_json(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"step": 3}', encoding="utf-8")
    assert read_json(good) == {"step": 3}
    with pytest.raises(CheckpointError, match=r"missing.json: the file is missing\."):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"bad.json: not valid JSON \(") as caught:
        read_json(bad)
    assert caught.value.path == bad
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match=r"binary.json: not valid JSON \("):
        read_json(binary)


def test_optimizer_state_from_tensors_and_scalars() -> None:
    tensors = {
        "0.exp_avg": torch.ones(2),
        "1.exp_avg": torch.zeros(3),
        "0.exp_avg_sq": torch.ones(2),
    }
    rest = {"scalars": {"0": {"step": 4}, "2": {"step": 1}}, "param_groups": [{"lr": 0.1}]}
    state = optimizer_state(tensors, rest)
    assert state["param_groups"] == [{"lr": 0.1}]
    assert sorted(state["state"]) == [0, 1, 2]
    assert sorted(state["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    assert state["state"][0]["step"] == 4 and state["state"][2] == {"step": 1}
    assert torch.equal(state["state"][1]["exp_avg"], torch.zeros(3))


def test_optimizer_state_keeps_dotted_names_after_the_index() -> None:
    state = optimizer_state({"3.a.b": torch.ones(1)}, {"scalars": {}, "param_groups": []})
    assert list(state["state"][3]) == ["a.b"]


def test_load_tensors(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file({"x": torch.arange(3.0)}, str(path))
    assert torch.equal(load_tensors(path)["x"], torch.arange(3.0))
    with pytest.raises(CheckpointError, match=r"none.safetensors: the file is missing\."):
        load_tensors(tmp_path / "none.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match=r"garbage.safetensors: not a readable safetensors"):
        load_tensors(garbage)


def test_model_tensors_of_one_file_and_of_shards(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"model.safetensors: the file is missing") as e:
        model_tensors(tmp_path)
    assert e.value.path == tmp_path / "model.safetensors"
    save_file({"a": torch.ones(1)}, str(tmp_path / "model.safetensors"))
    path, tensors = model_tensors(tmp_path)
    assert path == tmp_path / "model.safetensors" and list(tensors) == ["a"]
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"a": torch.ones(1)}, str(sharded / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(2)}, str(sharded / "model-00002-of-00002.safetensors"))
    (sharded / "other.safetensors").write_bytes(b"ignored")
    path, tensors = model_tensors(sharded)
    assert path == sharded and sorted(tensors) == ["a", "b"]


def test_checked_weights_pairs_every_parameter(tmp_path: Path) -> None:
    model = _Tied()
    tensors = _model_tensors(model)
    pairs = checked_weights(model, tmp_path, tensors)
    state = model.state_dict()
    assert len(pairs) == len(state) == 4
    for (target, stored), name in zip(pairs, state, strict=True):
        assert target.data_ptr() == state[name].data_ptr()
        assert torch.equal(stored, tensors[name])


def test_tied_weights_may_be_stored_under_either_name(tmp_path: Path) -> None:
    model = _Tied()
    tensors = _model_tensors(model)
    del tensors["head.weight"]
    pairs = checked_weights(model, tmp_path, tensors)
    assert len(pairs) == 4
    assert torch.equal(pairs[1][1], tensors["embed.weight"])  # head.weight from embed.weight
    other = _model_tensors(model)
    del other["embed.weight"]
    assert torch.equal(checked_weights(model, tmp_path, other)[0][1], other["head.weight"])


def test_checked_weights_reject_unexpected_missing_misshapen_and_nonfinite(tmp_path: Path) -> None:
    model = _Tied()
    extra = {**_model_tensors(model), **{f"z{i}": torch.ones(1) for i in range(7)}}
    with pytest.raises(
        CheckpointError,
        match=r"tensors the model does not have: \['z0', 'z1', 'z2', 'z3', 'z4'\]\.",
    ):
        checked_weights(model, tmp_path / "m", extra)
    missing = _model_tensors(model)
    del missing["scale.weight"], missing["scale.bias"]
    with pytest.raises(
        CheckpointError,
        match=r"2 model tensor\(s\) missing, e\.g\. \['scale\.weight', 'scale\.bias'\] \(inc",
    ):
        checked_weights(model, tmp_path, missing)
    misshapen = _model_tensors(model)
    misshapen["scale.bias"] = torch.zeros(3)
    with pytest.raises(
        CheckpointError, match=r"tensor 'scale\.bias' has shape \(3,\), the model \(2,\)"
    ):
        checked_weights(model, tmp_path, misshapen)
    for bad in (float("nan"), float("inf")):
        nonfinite = _model_tensors(model)
        nonfinite["scale.bias"][1] = bad
        with pytest.raises(
            CheckpointError, match=r"tensor 'scale\.bias' has non-finite values \(NaN or inf\)"
        ):
            checked_weights(model, tmp_path, nonfinite)


def test_a_tensor_stored_under_its_own_name_wins_over_its_tied_twin(tmp_path: Path) -> None:
    model = _Tied()
    tensors = _model_tensors(model)
    tensors["head.weight"] = tensors["head.weight"] + 1.0  # differs from embed.weight
    pairs = checked_weights(model, tmp_path, tensors)
    assert torch.equal(pairs[0][1], tensors["embed.weight"])
    assert torch.equal(pairs[1][1], tensors["head.weight"])


def test_missing_tensors_are_counted_and_the_first_three_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        checked_weights(_Tied(), tmp_path / "m.safetensors", {})
    assert str(caught.value) == (
        f"{tmp_path / 'm.safetensors'}: 4 model tensor(s) missing, e.g. "
        f"['embed.weight', 'head.weight', 'scale.weight'] (incomplete file). {WAYS_OUT}"
    )


def test_checked_weights_with_an_integer_buffer(tmp_path: Path) -> None:
    model = torch.nn.Module()
    model.register_buffer("count", torch.tensor([3, 4]))
    [(target, stored)] = checked_weights(model, tmp_path, {"count": torch.tensor([5, 6])})
    assert stored.tolist() == [5, 6] and target.tolist() == [3, 4]


# --- optimizer --------------------------------------------------------------------------------


def _save_optimizer(folder: Path, optimizer: torch.optim.Optimizer) -> None:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = (
                    value.item() if isinstance(value, torch.Tensor) else value
                )
    save_file(tensors, str(folder / "optimizer.safetensors"))
    (folder / "optimizer.json").write_text(
        json.dumps({"scalars": scalars, "param_groups": state["param_groups"]}), encoding="utf-8"
    )


def _stepped_adam() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_checked_optimizer(tmp_path: Path) -> None:
    model, optimizer = _stepped_adam()
    assert checked_optimizer(optimizer, tmp_path) is None  # not saved
    _save_optimizer(tmp_path, optimizer)
    state = checked_optimizer(optimizer, tmp_path)
    assert state is not None
    assert sorted(state["state"]) == [0, 1]
    assert state["state"][0]["exp_avg"].shape == model.weight.shape
    assert state["param_groups"][0]["lr"] == 0.1


def test_checked_optimizer_needs_both_files(tmp_path: Path) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    (tmp_path / "optimizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"optimizer.safetensors: the file is missing"):
        checked_optimizer(optimizer, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _save_optimizer(other, optimizer)
    (other / "optimizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"optimizer.json: the file is missing"):
        checked_optimizer(optimizer, other)


def _rewrite_json(folder: Path, change: object) -> None:
    path = folder / "optimizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data), encoding="utf-8")


def test_checked_optimizer_rejects_a_malformed_json(tmp_path: Path) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data.pop("scalars"))
    with pytest.raises(
        CheckpointError, match=r"optimizer.json: malformed \(KeyError\('scalars'\)\)"
    ):
        checked_optimizer(optimizer, tmp_path)
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["scalars"].update({"x": {"step": 1}}))
    with pytest.raises(CheckpointError, match=r"optimizer.json: malformed \(ValueError"):
        checked_optimizer(optimizer, tmp_path)
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data.update({"scalars": []}))
    with pytest.raises(CheckpointError, match=r"optimizer.json: malformed \(AttributeError"):
        checked_optimizer(optimizer, tmp_path)
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["scalars"].update({"0": 5}))
    with pytest.raises(CheckpointError, match=r"optimizer.json: malformed \(TypeError"):
        checked_optimizer(optimizer, tmp_path)


def test_checked_optimizer_rejects_another_optimizers_state(tmp_path: Path) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["param_groups"].append({"params": [9]}))
    with pytest.raises(
        CheckpointError, match=r"optimizer.safetensors: parameter groups differ from the optimizer"
    ):
        checked_optimizer(optimizer, tmp_path)
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["param_groups"][0]["params"].pop())
    with pytest.raises(CheckpointError, match=r"parameter groups differ"):
        checked_optimizer(optimizer, tmp_path)
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["param_groups"][0].pop("params"))
    with pytest.raises(CheckpointError, match=r"parameter groups differ"):
        checked_optimizer(optimizer, tmp_path)


@pytest.mark.parametrize("index", [2, -1])
def test_checked_optimizer_rejects_state_for_a_parameter_it_lacks(
    tmp_path: Path, index: int
) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    _rewrite_json(tmp_path, lambda data: data["scalars"].update({str(index): {"step": 1}}))
    with pytest.raises(
        CheckpointError, match=rf"optimizer.safetensors: state for parameter {index} of 2\."
    ):
        checked_optimizer(optimizer, tmp_path)


def test_checked_optimizer_rejects_a_misshapen_moment(tmp_path: Path) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "optimizer.safetensors"))
    tensors["1.exp_avg_sq"] = torch.zeros(4)
    save_file(tensors, str(tmp_path / "optimizer.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"optimizer.safetensors: 1.exp_avg_sq has the wrong shape"
    ):
        checked_optimizer(optimizer, tmp_path)


def test_checked_optimizer_does_not_shape_check_scalars(tmp_path: Path) -> None:
    _, optimizer = _stepped_adam()
    _save_optimizer(tmp_path, optimizer)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "optimizer.safetensors"))
    tensors["1.extra"] = torch.tensor(7.0)  # a 0-d tensor (like Adam's step)
    save_file(tensors, str(tmp_path / "optimizer.safetensors"))
    state = checked_optimizer(optimizer, tmp_path)
    assert state is not None and float(state["state"][1]["extra"]) == 7.0


# --- generators and trainer state -------------------------------------------------------------


def test_checked_generators(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(5)
    save_file({"sampling": generator.get_state()}, str(tmp_path / "rng.safetensors"))
    states = checked_generators(tmp_path, {"sampling": torch.Generator()})
    assert torch.equal(states["sampling"], generator.get_state())
    assert list(checked_generators(tmp_path, {})) == ["sampling"]
    with pytest.raises(CheckpointError, match=r"rng.safetensors: no state for the generator 'x'"):
        checked_generators(tmp_path, {"sampling": torch.Generator(), "x": torch.Generator()})
    save_file({"sampling": torch.zeros(3, dtype=torch.uint8)}, str(tmp_path / "rng.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"rng.safetensors: invalid state of generator 'sampling' \("
    ):
        checked_generators(tmp_path, {"sampling": torch.Generator()})
    with pytest.raises(CheckpointError, match=r"rng.safetensors: the file is missing"):
        checked_generators(tmp_path / "none", {})


def _trainer_json(folder: Path, state: object) -> None:
    (folder / "trainer.json").write_text(json.dumps(state), encoding="utf-8")


def test_checked_trainer_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    state = {"step": 7, "numpy_rng": rng.bit_generator.state}
    _trainer_json(tmp_path, state)
    assert checked_trainer_state(tmp_path, np.random.default_rng(0)) == state
    for bad in ([1], {"step": "7"}, {"step": 7.0}, {}):
        _trainer_json(tmp_path, bad)
        with pytest.raises(CheckpointError, match=r"trainer.json: no integer 'step'\."):
            checked_trainer_state(tmp_path, rng)
    _trainer_json(tmp_path, {"step": 7})
    with pytest.raises(
        CheckpointError, match=r"trainer.json: invalid numpy generator state \(KeyError"
    ):
        checked_trainer_state(tmp_path, rng)
    _trainer_json(tmp_path, {"step": 7, "numpy_rng": {"bit_generator": "MT19937", "state": 1}})
    with pytest.raises(
        CheckpointError, match=r"invalid numpy generator state \((ValueError|TypeError)"
    ):
        checked_trainer_state(tmp_path, rng)
    _trainer_json(tmp_path, {"step": 7, "numpy_rng": 5})
    with pytest.raises(CheckpointError, match=r"invalid numpy generator state \(TypeError"):
        checked_trainer_state(tmp_path, rng)
    with pytest.raises(CheckpointError, match=r"the file is missing"):
        checked_trainer_state(tmp_path / "none", rng)


def test_the_probe_does_not_touch_the_trainers_generator(tmp_path: Path) -> None:
    saved = np.random.default_rng(3)
    _trainer_json(tmp_path, {"step": 1, "numpy_rng": saved.bit_generator.state})
    live = np.random.default_rng(99)
    before = live.bit_generator.state
    checked_trainer_state(tmp_path, live)
    assert live.bit_generator.state == before
