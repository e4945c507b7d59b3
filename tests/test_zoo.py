"""Tests of the paired model zoo (:mod:`padiff_ir.zoo`)."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import paddle
import pytest
import torch

import padiff_ir.zoo
from padiff_ir.errors import WeightAssignError
from padiff_ir.zoo import (
    ZOO,
    ModelPair,
    UnknownModelError,
    copy_torch_to_paddle,
    get_pair,
    list_pairs,
    paddle_models,
    torch_models,
)
from padiff_ir.zoo.configs import MlpConfig

NAMES = list_pairs()
SAME_NAMES = tuple(name for name in NAMES if ZOO[name].same_names)
EXPORTABLE = tuple(name for name in NAMES if ZOO[name].paddle_exports)
TOLERANCE = 1e-5


def _as_list(outputs: object) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def run_torch(pair: ModelPair) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = pair.torch_model(*(torch.from_numpy(v) for v in pair.inputs.values()))
    return [t.numpy() for t in _as_list(outputs)]


def run_paddle(pair: ModelPair, layer: paddle.nn.Layer | None = None) -> list[np.ndarray]:
    layer = pair.paddle_model if layer is None else layer
    with paddle.no_grad():
        outputs = layer(*(paddle.to_tensor(v) for v in pair.inputs.values()))
    return [t.numpy() for t in _as_list(outputs)]


def torch_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {
        name: tensor.detach().numpy().copy()
        for name, tensor in model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }


def paddle_state(model: paddle.nn.Layer) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in model.state_dict().items()}


def paddle_rng_state() -> list[tuple]:
    return [state.__getstate__() for state in paddle.get_rng_state("cpu") + paddle.get_rng_state()]


def test_registry() -> None:
    assert NAMES == ("mlp", "cnn", "vit", "vitpose", "bert", "llama")
    assert set(NAMES) - set(SAME_NAMES) == set(NAMES) - set(EXPORTABLE) == {"llama"}
    for name, entry in ZOO.items():
        assert entry.name == name
        assert entry.description
        assert entry.sizes == ("tiny", "base")


def test_importing_the_zoo_imports_no_framework() -> None:
    code = (
        "import sys, padiff_ir.zoo, padiff_ir.zoo.configs; "
        "assert 'torch' not in sys.modules and 'paddle' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'paddle'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docstring_examples() -> None:
    result = doctest.testmod(padiff_ir.zoo, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("name", NAMES)
def test_torch_and_paddle_agree(name: str) -> None:
    pair = get_pair(name, "tiny")
    torch_outputs, paddle_outputs = run_torch(pair), run_paddle(pair)
    assert len(torch_outputs) == len(paddle_outputs)
    for torch_output, paddle_output in zip(torch_outputs, paddle_outputs, strict=True):
        assert torch_output.dtype == paddle_output.dtype == np.float32
        assert torch_output.shape == paddle_output.shape
        assert np.isfinite(torch_output).all()
        assert np.abs(torch_output - paddle_output).max() <= TOLERANCE


@pytest.mark.parametrize("name", SAME_NAMES)  # llama's own tests: tests/zoo/test_llama.py
def test_parameters_coincide(name: str) -> None:
    pair = get_pair(name, "tiny")
    torch_parameters = dict(pair.torch_model.named_parameters())
    paddle_parameters = {
        key: p for key, p in pair.paddle_model.named_parameters() if not p.stop_gradient
    }
    assert torch_parameters.keys() == paddle_parameters.keys()
    assert sum(p.numel() for p in torch_parameters.values()) == sum(
        int(p.numel()) for p in paddle_parameters.values()
    )
    torch_total = sum(a.size for a in torch_state(pair.torch_model).values())
    assert torch_total == sum(a.size for a in paddle_state(pair.paddle_model).values())


@pytest.mark.parametrize("name", NAMES)
def test_inputs_follow_specs(name: str) -> None:
    pair = get_pair(name, "tiny")
    assert tuple(pair.inputs) == tuple(spec_name for spec_name, _, _ in pair.input_specs)
    for spec_name, shape, dtype in pair.input_specs:
        assert pair.inputs[spec_name].shape == shape
        assert pair.inputs[spec_name].dtype == np.dtype(dtype)


@pytest.mark.parametrize("name", NAMES)
def test_models_are_in_eval_mode(name: str) -> None:
    pair = get_pair(name, "tiny")
    assert not any(module.training for module in pair.torch_model.modules())
    assert not any(layer.training for layer in pair.paddle_model.sublayers(include_self=True))


def all_weights(pair: ModelPair) -> dict[str, np.ndarray]:
    torch_weights = {f"torch {k}": v for k, v in torch_state(pair.torch_model).items()}
    paddle_weights = {f"paddle {k}": v for k, v in paddle_state(pair.paddle_model).items()}
    return torch_weights | paddle_weights


def same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", NAMES)
def test_get_pair_is_deterministic(name: str) -> None:
    first, second, other = get_pair(name, seed=7), get_pair(name, seed=7), get_pair(name, seed=8)
    assert same_arrays(all_weights(first), all_weights(second))
    assert same_arrays(first.inputs, second.inputs)
    assert not same_arrays(all_weights(first), all_weights(other))
    assert not same_arrays(first.inputs, other.inputs)


def test_get_pair_leaves_global_rng_state_alone() -> None:
    torch_before, paddle_before = torch.get_rng_state(), paddle_rng_state()
    numpy_before = np.random.get_state()
    for name in NAMES:
        get_pair(name, seed=3)
    assert torch.equal(torch.get_rng_state(), torch_before)
    assert paddle_rng_state() == paddle_before
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0]
    assert np.array_equal(numpy_after[1], numpy_before[1])
    assert numpy_after[2:] == numpy_before[2:]


def test_copy_transposes_linear_weights_and_renames_batch_norm_statistics() -> None:
    pair = get_pair("cnn")
    torch_weights, paddle_weights = torch_state(pair.torch_model), paddle_state(pair.paddle_model)
    np.testing.assert_array_equal(paddle_weights["fc.weight"], torch_weights["fc.weight"].T)
    np.testing.assert_array_equal(paddle_weights["conv1.weight"], torch_weights["conv1.weight"])
    np.testing.assert_array_equal(paddle_weights["bn1._mean"], torch_weights["bn1.running_mean"])
    np.testing.assert_array_equal(paddle_weights["bn2._variance"], torch_weights["bn2.running_var"])
    assert not np.allclose(torch_weights["bn1.running_var"], 1.0)


def test_copy_rejects_a_shape_mismatch_and_copies_nothing() -> None:
    torch_model = torch_models.Mlp(MlpConfig(hidden=32))
    paddle_model = paddle_models.Mlp(MlpConfig(hidden=16))
    before = paddle_state(paddle_model)
    with pytest.raises(WeightAssignError, match=r"'fc1\.weight' has shape \[16, 16\]") as info:
        copy_torch_to_paddle(torch_model, paddle_model)
    assert "'fc2.weight'" in str(info.value)
    assert "'fc3.bias'" not in str(info.value)
    after = paddle_state(paddle_model)
    assert all(np.array_equal(before[key], after[key]) for key in before)


class _RenamedMlp(paddle.nn.Layer):
    """The paddle MLP with ``fc3`` called ``classifier``: no source for its parameters."""

    def __init__(self, config: MlpConfig) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(config.in_features, config.hidden)
        self.fc2 = paddle.nn.Linear(config.hidden, config.hidden)
        self.classifier = paddle.nn.Linear(config.hidden, config.out_features)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.classifier(self.fc2(self.fc1(x)))


def test_copy_rejects_a_paddle_parameter_without_source() -> None:
    config = MlpConfig()
    with pytest.raises(WeightAssignError) as info:
        copy_torch_to_paddle(torch_models.Mlp(config), _RenamedMlp(config))
    message = str(info.value)
    assert "paddle 'classifier.weight' [32, 10] has no torch tensor of that name" in message
    assert "'classifier.bias'" in message
    assert "torch 'fc3.weight' [10, 32] has no paddle tensor" in message
    assert "'fc1.weight'" not in message


def test_unknown_names_and_sizes() -> None:
    with pytest.raises(UnknownModelError, match="no model 'resnet'.*'vitpose'"):
        get_pair("resnet")
    with pytest.raises(UnknownModelError, match="no size 'huge'.*'tiny', 'base'"):
        get_pair("mlp", "huge")


@pytest.mark.parametrize("name", EXPORTABLE)
def test_paddle_models_convert_to_static(name: str) -> None:
    pair = get_pair(name)
    specs = [paddle.static.InputSpec(list(shape), dtype, n) for n, shape, dtype in pair.input_specs]
    static = paddle.jit.to_static(pair.paddle_model, input_spec=specs, full_graph=True)
    for expected, actual in zip(run_torch(pair), run_paddle(pair, static), strict=True):
        assert np.abs(expected - actual).max() <= TOLERANCE


def test_vitpose_base() -> None:
    pair = get_pair("vitpose", "base")
    parameters = sum(p.numel() for p in pair.torch_model.parameters())
    assert 86e6 <= parameters <= 91e6
    assert pair.input_specs == (("x", (1, 3, 256, 192), "float32"),)
    (torch_output,) = run_torch(pair)
    (paddle_output,) = run_paddle(pair)
    assert torch_output.shape == paddle_output.shape == (1, 17, 64, 48)
    assert np.abs(torch_output - paddle_output).max() <= 1e-4
