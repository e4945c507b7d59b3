"""graph_from_trace on real torch and paddle models: the ONNX vocabulary, layers kept whole,
valid IR, and graphs the matcher pairs like exports."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from padiff_ir.frameworks import trace_model
from padiff_ir.ir import canonicalize, lint
from padiff_ir.ir.trace_graph import graph_from_trace
from padiff_ir.matching import match_graphs
from padiff_ir.pairing.model_graphs import model_graph, static_graph, unit_paths
from padiff_ir.zoo import get_pair


def _ops(graph):
    return [(op.op_type, op.module_path) for op in graph.topological_order()]


def test_layers_become_their_onnx_ops():
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, groups=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(64, 2),
    )
    graph = graph_from_trace(trace_model(torch_model, np.zeros((1, 3, 6, 6), np.float32)))
    lint(graph)
    assert _ops(graph) == [
        ("Conv", "0"),
        ("Add", "0"),
        ("BatchNormalization", "1"),
        ("Relu", "2"),
        ("Flatten", "3"),
        ("Dropout", "4"),
        ("MatMul", "5"),
        ("Add", "5"),
    ]
    conv, bias = graph.topological_order()[:2]
    assert bias.meta["bias_of"] == conv.name and conv.attributes == {"group": 1}
    batch_norm = graph.topological_order()[2]
    assert batch_norm.inputs[1:] == ("1.weight", "1.bias", "1.running_mean", "1.running_var")
    matmul = graph.topological_order()[6]
    assert matmul.meta["weight_transposed"] is True
    assert graph.tensors["5.weight"].shape == (2, 64) and graph.tensors["5.weight"].is_param
    paddle_graph = graph_from_trace(
        trace_model(paddle.nn.Linear(4, 2), np.zeros((1, 4), np.float32))
    )
    assert _ops(paddle_graph) == [("MatMul", ""), ("Add", "")]
    assert paddle_graph.topological_order()[0].meta["weight_transposed"] is False


def test_a_norm_applying_its_own_activation_becomes_the_norm_and_the_activation():
    """paddle's legacy ``BatchNorm(act="relu")`` returns the ReLU of its norm, as its export
    shows (``BatchNormalization`` then ``Relu``): its trace must say so, or torch's
    BatchNorm (before its ReLU module) pairs with it as one computation (DenseNet)."""
    model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.BatchNorm(4, act="relu"))
    graph = graph_from_trace(trace_model(model, np.zeros((1, 3, 4, 4), np.float32)))
    lint(graph)
    assert _ops(graph)[-2:] == [("BatchNormalization", "1"), ("Relu", "1")]
    norm, relu = graph.topological_order()[-2:]
    assert relu.inputs == norm.outputs and relu.outputs == tuple(graph.outputs)
    plain = paddle.nn.Sequential(paddle.nn.BatchNorm(4))
    assert _ops(graph_from_trace(trace_model(plain, np.zeros((1, 4, 2, 2), np.float32)))) == [
        ("BatchNormalization", "0")
    ]


def test_attention_is_kept_whole():
    model = torch.nn.Sequential(torch.nn.MultiheadAttention(8, 2, batch_first=True))

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = model[0]

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    wrapper = Wrapper()
    trace = trace_model(wrapper, np.zeros((2, 3, 8), np.float32))
    assert unit_paths(trace.modules, "torch") == {"attn": "multiheadattention"}
    graph = graph_from_trace(trace, unit_paths(trace.modules, "torch"))
    lint(graph)
    [unit] = [op for op in graph.ops.values() if op.meta.get("module_unit")]
    assert unit.module_path == "attn" and unit.op_type == "Module"
    assert {t for t in unit.inputs if graph.tensors[t].is_param} == {
        "attn.in_proj_weight",
        "attn.in_proj_bias",
        "attn.out_proj.weight",
        "attn.out_proj.bias",
    }
    assert "attn.out_proj" not in graph.modules  # the unit's insides are its own


@pytest.mark.parametrize("name", ["cnn", "vit", "bert"])
def test_zoo_traces_are_valid_and_pair_like_exports(name):
    pair = get_pair(name, "tiny")
    graphs = [model_graph(m, dict(pair.inputs)) for m in (pair.torch_model, pair.paddle_model)]
    for graph in graphs:
        lint(graph)
        lint(canonicalize(graph))
        assert graph.meta["source"] == "trace"
    matching = match_graphs(*graphs)
    pairs = matching.module_map()
    assert all(a == b for a, b in pairs.items())
    names = {n for n, _ in pair.torch_model.named_modules()}
    parametric = {
        n
        for n, m in pair.torch_model.named_modules()
        if n and any(True for _ in m.parameters(recurse=False))
    }
    assert parametric <= set(pairs) <= names
    assert len(matching.param_pairs) == len(pair.paddle_model.state_dict())  # every tensor


def test_static_graph_orders_layers_by_definition():
    pair = get_pair("mlp", "tiny")
    graph = static_graph(pair.paddle_model)
    lint(graph)
    assert graph.meta["source"] == "static"
    assert [m for _, m in _ops(graph)] == ["fc1", "fc1", "act1", "fc2", "fc2", "act2", "fc3", "fc3"]
