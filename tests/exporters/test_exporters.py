"""Exporters on small real models: attribution, state preservation, errors, round trips."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import paddle
import pytest
import torch

from padiff_ir.errors import ExportError, InputError, ModelTypeError
from padiff_ir.exporters import MODULE_PATH_KEY, ExportedGraph, detect_framework, export
from tests.exporters.models import (
    PaddleNet,
    PaddleUnconvertible,
    TorchDataDependent,
    TorchNet,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 8)).astype(np.float32)
Y = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)


def _ort_outputs(exported: ExportedGraph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(
        exported.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


@pytest.fixture(scope="module")
def torch_net():
    torch.manual_seed(0)
    return TorchNet()


@pytest.fixture(scope="module")
def paddle_net():
    paddle.seed(0)
    return PaddleNet()


@pytest.fixture(scope="module")
def torch_exported(torch_net):
    return export(torch_net, {"x": X, "y": Y})


@pytest.fixture(scope="module")
def paddle_exported(paddle_net):
    return export(paddle_net, {"x": X, "y": Y})


def test_detect_framework(torch_net, paddle_net):
    assert detect_framework(torch_net) == "torch"
    assert detect_framework(paddle_net) == "paddle"
    assert detect_framework("a.onnx") == "onnx"
    with pytest.raises(ModelTypeError, match="cannot tell the framework of builtins.int"):
        detect_framework(3)


@pytest.mark.parametrize("side", ["torch", "paddle"])
def test_attribution_names_attribute_paths(side, torch_exported, paddle_exported):
    exported = torch_exported if side == "torch" else paddle_exported
    paths = set(exported.node_modules.values())
    # fc is called twice in each block; both calls belong to blocks.N.fc
    assert {"blocks.0.fc", "blocks.0.ln", "blocks.1.fc", "blocks.1.ln", "conv", "bn"} <= paths
    assert all(p in exported.modules for p in paths), paths - set(exported.modules)
    by_type: dict[str, set[str]] = {}
    for node in exported.model.graph.node:
        by_type.setdefault(node.op_type, set()).add(exported.node_modules[node.name])
    assert by_type["LayerNormalization"] == {"blocks.0.ln", "blocks.1.ln"}
    assert by_type["Conv"] == {"conv"}
    assert by_type["BatchNormalization"] == {"bn"}
    matmul_like = by_type.get("MatMul", set()) | by_type.get("Gemm", set())
    assert matmul_like == {"blocks.0.fc", "blocks.1.fc"}
    assert exported.node_classes[
        next(n.name for n in exported.model.graph.node if n.op_type == "Conv")
    ] in {"Conv2d", "Conv2D"}


@pytest.mark.parametrize("side", ["torch", "paddle"])
def test_parameters_named_like_the_framework(
    side, torch_exported, paddle_exported, torch_net, paddle_net
):
    exported = torch_exported if side == "torch" else paddle_exported
    net = torch_net if side == "torch" else paddle_net
    names = set(exported.parameters.values())
    expected = {name for name, _ in net.named_parameters()}
    assert expected <= names
    assert "bn.running_mean" in names or "bn._mean" in names


def test_onnx_reproduces_eager(torch_net, paddle_net, torch_exported, paddle_exported):
    torch_net.eval()
    with torch.no_grad():
        expected = [t.numpy() for t in torch_net(torch.from_numpy(X), torch.from_numpy(Y))]
    torch_net.train()
    for got, want in zip(_ort_outputs(torch_exported, {"x": X, "y": Y}), expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    paddle_net.eval()
    expected = [t.numpy() for t in paddle_net(paddle.to_tensor(X), paddle.to_tensor(Y))]
    paddle_net.train()
    for got, want in zip(_ort_outputs(paddle_exported, {"x": X, "y": Y}), expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_torch_state_unchanged(no_temp_leftovers):
    torch.manual_seed(1)
    net = TorchNet()
    net.train()
    net.blocks[1].eval()
    flags = [m.training for m in net.modules()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    export(net, (X, Y))
    assert [m.training for m in net.modules()] == flags
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_paddle_state_unchanged(no_temp_leftovers):
    paddle.seed(1)
    net = PaddleNet()
    net.train()
    net.blocks[1].eval()
    flags = [net.training] + [layer.training for layer in net.sublayers()]
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    rng = paddle.get_rng_state()
    export(net, [paddle.to_tensor(X), paddle.to_tensor(Y)])
    assert [net.training] + [layer.training for layer in net.sublayers()] == flags
    after_export = paddle.rand([4]).numpy()
    paddle.set_rng_state(rng)
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), after_export)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key], err_msg=key)
    # still an eager layer that runs
    net.eval()
    out = net(paddle.to_tensor(X), paddle.to_tensor(Y))
    assert tuple(out[0].shape) == (2, 8)


@pytest.mark.parametrize("side", ["torch", "paddle"])
def test_file_round_trip_keeps_attribution(side, torch_exported, paddle_exported, tmp_path):
    exported = torch_exported if side == "torch" else paddle_exported
    path = tmp_path / "model.onnx"
    exported.save(str(path))
    loaded = export(str(path))
    assert loaded.framework == side
    assert loaded.node_modules == exported.node_modules
    assert loaded.node_classes == exported.node_classes
    assert loaded.parameters == exported.parameters
    assert loaded.modules == exported.modules
    node = loaded.model.graph.node[0]
    assert any(p.key == MODULE_PATH_KEY for p in node.metadata_props)
    reloaded = export(onnx.load(str(path)))
    assert reloaded.node_modules == exported.node_modules


def test_wrong_input_shape_is_an_input_error(no_temp_leftovers):
    net = TorchNet()
    with pytest.raises(InputError, match=r"TorchNet fails on the given inputs \(x=float32\[2, 5\]"):
        export(net, {"x": np.zeros((2, 5), np.float32), "y": Y})
    with pytest.raises(InputError, match="PaddleNet fails on the given inputs"):
        export(PaddleNet(), {"x": X, "y": np.zeros((1, 3, 8), np.float32)})


def test_wrong_input_name_and_count(no_temp_leftovers):
    with pytest.raises(InputError, match="has no argument 'z'"):
        export(TorchNet(), {"x": X, "z": Y})
    with pytest.raises(InputError, match="has no argument 'z'"):
        export(PaddleNet(), {"x": X, "z": Y})


def test_wrong_dtype_is_an_input_error():
    with pytest.raises(InputError, match="int64"):
        export(TorchNet(), {"x": X.astype(np.int64), "y": Y})


def test_not_a_model():
    with pytest.raises(ModelTypeError, match="pass a torch.nn.Module"):
        export(object(), X)
    with pytest.raises(ModelTypeError, match="does not exist"):
        export("/nonexistent/model.onnx")
    with pytest.raises(InputError, match="needs example inputs"):
        export(TorchNet())


def test_data_dependent_torch_model_names_native_path(no_temp_leftovers):
    with pytest.raises(ExportError, match="auto_diff") as info:
        export(TorchDataDependent(), np.ones(3, np.float32))
    assert "data-dependent" in str(info.value)
    assert info.value.framework == "torch"


def test_paddle2onnx_crash_is_an_export_error(no_temp_leftovers):
    net = PaddleUnconvertible()
    weight = net.fc.weight.numpy().copy()
    with pytest.raises(
        ExportError, match="paddle2onnx crashed converting PaddleUnconvertible"
    ) as info:
        export(net, np.ones((2, 3), np.float32))
    assert "auto_diff" in str(info.value)
    np.testing.assert_array_equal(net.fc.weight.numpy(), weight)


def test_paddle_attribution_independent_of_earlier_traces(paddle_net, paddle_exported):
    # paddle numbers struct names with a process-wide counter; a second export of the same
    # model, after other traces, must attribute exactly as the first did.
    export(PaddleUnconvertible().fc, np.ones((2, 3), np.float32))
    again = export(paddle_net, {"x": X, "y": Y})
    assert again.node_modules == paddle_exported.node_modules
