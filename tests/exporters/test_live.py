"""Live exports: graphs whose weights onnxruntime reads from the models' own memory."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.exporters import export
from padiff_ir.exporters._export import export_pair
from padiff_ir.runtime import Runner
from tests.exporters.models import PaddleNet, TorchNet


class TorchMLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 64)
        self.fc2 = torch.nn.Linear(64, 16)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _inputs():
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((2, 8)).astype(np.float32),
        rng.standard_normal((1, 3, 6, 6)).astype(np.float32),
    )


def _data_pointer(tensor) -> int:
    if isinstance(tensor, torch.Tensor):
        return tensor.data_ptr()
    return np.from_dlpack(tensor.detach()).ctypes.data


def _live_pair(cache):
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model, paddle_model = TorchNet().eval(), PaddleNet()
    paddle_model.eval()
    inputs = _inputs()
    exported = export_pair(torch_model, inputs, paddle_model, inputs, live=True)
    return (torch_model, paddle_model), exported, inputs


def test_live_exports_hold_no_weights_and_read_the_models_memory(cache):
    models, exported, _ = _live_pair(cache)
    for model, graph in zip(models, exported):
        tensors = dict(model.named_parameters())
        assert graph.weights, "every float parameter should be read in place"
        for initializer in graph.model.graph.initializer:
            if initializer.name not in graph.weights:
                continue
            assert initializer.data_location == onnx.TensorProto.EXTERNAL
            assert not initializer.raw_data and not initializer.float_data
            name = graph.parameters[initializer.name]
            if name in tensors:  # a parameter (buffers are read in place too)
                view = graph.weights[initializer.name]
                assert view.ctypes.data == _data_pointer(tensors[name]), name


def test_a_live_export_runs_like_the_full_one(cache):
    models, exported, inputs = _live_pair(cache)
    for model, live in zip(models, exported):
        full = export(model, inputs)
        assert not full.weights
        feeds = dict(zip(live.input_names, inputs))
        with Runner(live) as live_runner, Runner(full) as full_runner:
            got = live_runner.infer(feeds)
            want = full_runner.infer(feeds)
            with live_runner.run_all(feeds) as store_live, full_runner.run_all(feeds) as store:
                assert sorted(store_live) == sorted(store)
                for name in store:
                    np.testing.assert_array_equal(store_live[name], store[name])
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_kept_sessions_see_an_optimizer_step_made_in_place(cache):
    """Sessions kept across checks read the weights at each run: no pre-packed stale copy."""
    torch.manual_seed(0)
    model = TorchMLP()
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    (live, _) = export_pair(model, x, model, x, live=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with Runner(live, keep_sessions=True) as runner:
        for _ in range(3):
            with runner.run_all({live.input_names[0]: x}) as store:
                out = store[live.output_names[0]]
            with torch.no_grad():
                eager = model(torch.from_numpy(x)).numpy()
            np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-5)
            optimizer.zero_grad()
            model(torch.from_numpy(x)).pow(2).sum().backward()
            optimizer.step()  # in place: the same memory, new values


def test_a_replaced_parameter_rebuilds_the_sessions(cache):
    torch.manual_seed(0)
    model = TorchMLP()
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    (live, _) = export_pair(model, x, model, x, live=True)
    with Runner(live, keep_sessions=True) as runner:
        feeds = {live.input_names[0]: x}
        runner.infer(feeds)
        model.fc2.weight = torch.nn.Parameter(torch.randn(16, 64))  # other memory
        got = runner.infer(feeds)[live.output_names[0]]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_saving_a_live_export_writes_its_weights(cache, tmp_path):
    _, exported, inputs = _live_pair(cache)
    for live in exported:
        path = tmp_path / f"{live.framework}.onnx"
        live.save(str(path))
        saved = onnx.load(str(path))
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in saved.graph.initializer)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = dict(zip(live.input_names, inputs))
        got = session.run(None, feeds)
        with Runner(live) as runner:
            want = list(runner.infer(feeds).values())
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_a_comparison_follows_training_without_preparing_again(cache):
    """Checks between optimizer steps compare the models as they are, from one preparation."""
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model = TorchMLP()
    paddle_model = paddle.nn.Sequential(
        paddle.nn.Linear(64, 64), paddle.nn.ReLU(), paddle.nn.Linear(64, 16)
    )
    padiff_ir.assign_weight(paddle_model, torch_model)
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.1)
    with padiff_ir.Comparison(torch_model, paddle_model, x) as comparison:
        prepared = comparison.prepared
        assert comparison.check(x).ok
        optimizer.zero_grad()
        torch_model(torch.from_numpy(x)).pow(2).sum().backward()
        optimizer.step()  # A changes, B does not: the next check must see it
        result = comparison.check(x)
        assert not result.ok
        assert result.export_fidelity["a"].ok, "A's graph reads A's new weights"
        assert comparison.prepared is prepared, "nothing was exported or matched again"


@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_match_reads_the_weights_in_place_on_a_later_call(cache, framework):
    """A later match writes no weights into a graph: its export is the cached skeleton."""
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model, paddle_model = TorchNet().eval(), PaddleNet()
    paddle_model.eval()
    padiff_ir.assign_weight(paddle_model, torch_model)
    inputs = _inputs()
    assert padiff_ir.match(torch_model, paddle_model, inputs).ok
    model = torch_model if framework == "torch" else paddle_model
    with torch.no_grad():
        if framework == "torch":
            model.blocks[1].fc.weight.mul_(1.5)
        else:
            weight = model.blocks[1].fc.weight
            weight.set_value(weight.numpy() * 1.5)
    result = padiff_ir.match(torch_model, paddle_model, inputs)
    assert not result.ok
    # fc is called twice in a block: both calls are culprits
    assert {c.module_a.split("#")[0] for c in result.culprits} == {"blocks.1.fc"}
