"""Tests of the conv_bias_split pass."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from padiff_ir.ir import Graph, lint
from padiff_ir.ir.passes import conv_bias_split, identity_alias
from tests.ir._graphs import INT64, initializer, make_graph, snapshot, value

W = np.ones((4, 3, 3, 3), np.float32)
B = np.zeros(4, np.float32)


@pytest.mark.parametrize("op_type", ["Conv", "ConvTranspose"])
def test_bias_inside_conv_is_split(op_type: str) -> None:
    weight = W if op_type == "Conv" else W.transpose(1, 0, 2, 3).copy()
    nodes = [
        helper.make_node(op_type, ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = make_graph(
        nodes,
        [value("x", [1, 3, 8, 8])],
        [value("y", [1, 4, 8, 8])],
        [initializer("w", weight), initializer("b", B)],
    )
    graph.ops["conv"].module_path = "stem"
    before = snapshot(graph)
    result = conv_bias_split(graph)
    lint(result.graph)
    out = result.graph
    assert result.modified
    assert snapshot(graph) == before
    conv, add, relu = list(out)
    assert (conv.op_type, add.op_type, relu.op_type) == (op_type, "Add", "Relu")
    assert conv.inputs == ("x", "w")
    assert add.inputs == (conv.outputs[0], "b")
    assert add.outputs == ("c",)
    assert add.meta == {"bias_of": "conv"}
    assert add.module_path == "stem"
    assert out.tensors[conv.outputs[0]].shape == (1, 4, 8, 8)


def _paddle_form(
    target: list[int],
    *,
    swap: bool = False,
    bias_is_input: bool = False,
    extra_reader: bool = False,
) -> Graph:
    add_inputs = ["r", "c"] if swap else ["c", "r"]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "Constant",
            [],
            ["shape"],
            name="shape_const",
            value=helper.make_tensor("shape", INT64, [len(target)], target),
        ),
        helper.make_node("Reshape", ["b", "shape"], ["r"], name="reshape"),
        helper.make_node("Add", add_inputs, ["y"], name="add"),
    ]
    outputs = [value("y", [1, 4, 8, 8])]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["r"], ["z"], name="reader"))
        outputs.append(value("z", None))
    inputs = [value("x", [1, 3, 8, 8])]
    initializers = [initializer("w", W)]
    if bias_is_input:
        inputs.append(value("b", [4]))
    else:
        initializers.append(initializer("b", B))
    return make_graph(nodes, inputs, outputs, initializers)


@pytest.mark.parametrize("target", [[1, 4, 1, 1], [4, 1, 1], [1, -1, 1, 1]])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("shape_known", [True, False])
def test_paddle_form_reads_bias_directly(target: list[int], swap: bool, shape_known: bool) -> None:
    graph = _paddle_form(target, swap=swap)
    if not shape_known:  # the pass then reads the target from the Constant
        graph.tensors["r"].shape = None
    result = conv_bias_split(graph)
    lint(result.graph)
    out = result.graph
    assert "reshape" not in out.ops
    assert out.ops["add"].inputs == ("c", "b")
    assert out.ops["add"].meta == {"bias_of": "conv"}


def test_reshape_read_elsewhere_is_kept() -> None:
    out = conv_bias_split(_paddle_form([1, 4, 1, 1], extra_reader=True)).graph
    lint(out)
    assert out.ops["add"].inputs == ("c", "b")
    assert out.ops["reader"].inputs == ("r",)


@pytest.mark.parametrize("target", [[1, 1, 4, 1], [4, 1, 1, 1], [1, 1, 1, 4]])
def test_reshape_off_the_channel_axis_is_kept(target: list[int]) -> None:
    graph = _paddle_form(target)
    graph.tensors["r"].shape = None  # let the pass read the Constant target
    assert not conv_bias_split(graph).modified


def test_bias_that_is_not_constant_is_kept() -> None:
    assert not conv_bias_split(_paddle_form([1, 4, 1, 1], bias_is_input=True)).modified


def test_torch_export(torch_rich: Graph) -> None:
    out = conv_bias_split(torch_rich).graph
    lint(out)
    (conv,) = [op for op in out if op.op_type == "Conv"]
    assert len(conv.inputs) == 2
    (add,) = out.consumers(conv.outputs[0])
    assert add.op_type == "Add" and add.meta["bias_of"] == conv.name
    assert add.inputs[1] == "conv.bias"


def test_paddle_export(paddle_twin: Graph) -> None:
    out = conv_bias_split(identity_alias(paddle_twin).graph).graph
    lint(out)
    (conv,) = [op for op in out if op.op_type == "Conv"]
    (add,) = out.consumers(conv.outputs[0])
    assert add.meta["bias_of"] == conv.name
    assert out.producer(add.inputs[1]).op_type == "Constant"  # the bias parameter itself
    assert out.tensors[add.inputs[1]].shape == (4,)
    assert not [op for op in out if op.op_type == "Reshape" and op.inputs[0] == add.inputs[1]]
