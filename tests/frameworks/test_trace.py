"""Tracing eager runs of real torch and paddle models: calls, call indices, the data flow
between calls (found in the autograd graph), and the user's state left as it was."""

from __future__ import annotations

import random

import numpy as np
import paddle
import pytest
import torch

from padiff_ir.errors import InputError
from padiff_ir.frameworks import framework_of, trace_model


class TorchShared(torch.nn.Module):
    """One pooling layer called twice, a residual add, a parameter used functionally."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4, 4)
        self.scale = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        h = self.pool(self.pool(self.conv(x)))
        h = h.mean(dim=(2, 3))
        return self.fc(h) + h * self.scale


class PaddleShared(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1)
        self.pool = paddle.nn.MaxPool2D(2)
        self.fc = paddle.nn.Linear(4, 4)
        ones = paddle.nn.initializer.Constant(1.0)
        self.scale = self.create_parameter([4], default_initializer=ones)

    def forward(self, x):
        h = self.pool(self.pool(self.conv(x)))
        h = h.mean(axis=[2, 3])
        return self.fc(h) + h * self.scale


X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("make", [TorchShared, PaddleShared])
def test_calls_indices_and_data_flow(make):
    trace = trace_model(make(), {"x": X})
    calls = [(c.path, c.call) for c in trace.calls]
    assert calls == [("", 0), ("conv", 0), ("pool", 0), ("pool", 1), ("fc", 0)]
    pool0, pool1 = trace.calls[2], trace.calls[3]
    assert pool1.inputs == pool0.outputs  # the second call reads the first one's output
    assert trace.tensors[pool1.outputs[0]].shape == (2, 4, 2, 2)
    assert trace.calls[1].inputs == trace.inputs
    # the residual: an Add reading fc's output and the product with the parameter
    [add] = [op for op in trace.ops if op.output == trace.outputs[0]]
    assert add.kind == "Add" and trace.calls[4].outputs[0] in add.inputs
    [mul] = [op for op in trace.ops if op.output in add.inputs and op.kind == "Mul"]
    assert "scale" in mul.inputs
    assert all(op.call == 0 for op in trace.ops)  # computed in the model's own forward


@pytest.mark.parametrize("make", [TorchShared, PaddleShared])
def test_state_left_as_it_was(make):
    model = make()
    model.train()
    framework = framework_of(model)
    flags = [m.training for _, m in framework.named_modules(model)]
    x = torch.from_numpy(X) if framework.name == "torch" else paddle.to_tensor(X)
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    torch_rng = torch.get_rng_state()
    trace_model(model, x)
    assert [m.training for _, m in framework.named_modules(model)] == flags
    assert (random.random(), np.random.rand()) == expected
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert framework.requires_grad(x) is False  # the user's tensor is not made a leaf
    for _, module in framework.named_modules(model):
        if framework.name == "torch":
            assert not module._forward_hooks and not module._forward_pre_hooks
        else:
            assert not module._forward_pre_hooks and not module._forward_post_hooks


def test_roles_survive_renamed_storage():
    linear = torch.nn.Linear(2, 3)
    roles = framework_of(linear).roles(linear)
    assert roles == {"weight": "weight", "bias": "bias"}
    bn = paddle.nn.BatchNorm2D(4)
    assert framework_of(bn).roles(bn) == {
        "weight": "weight",
        "bias": "bias",
        "_mean": "running_mean",
        "_variance": "running_var",
    }


def test_a_model_failing_on_its_inputs_is_an_input_error():
    with pytest.raises(InputError, match="torch model TorchShared on the given inputs failed"):
        trace_model(TorchShared(), np.zeros((2, 5, 8, 8), np.float32))
    with pytest.raises(InputError, match="paddle model PaddleShared on the given inputs failed"):
        trace_model(PaddleShared(), np.zeros((2, 5, 8, 8), np.float32))
