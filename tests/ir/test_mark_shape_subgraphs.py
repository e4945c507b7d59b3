"""Tests of the mark_shape_subgraphs pass."""

from __future__ import annotations

import numpy as np
from onnx import helper

from padiff_ir.ir import Graph, canonicalize, lint
from padiff_ir.ir.passes import mark_shape_subgraphs
from tests.ir._graphs import INT64, initializer, make_graph, snapshot, value


def _ints(name: str, values: list[int]) -> object:
    return helper.make_node(
        "Constant",
        [],
        [name],
        name=f"const_{name}",
        value=helper.make_tensor(name, INT64, [len(values)], values),
    )


def _torch_like_shapes() -> Graph:
    """``x.reshape(x.shape[0], -1)`` as torch writes it, plus a mask computed from shapes."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        _ints("zero", [0]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="gather"),
        _ints("minus_one", [-1]),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
        helper.make_node("CastLike", ["batch", "flat"], ["batch_f"], name="castlike"),
        helper.make_node("Squeeze", ["batch"], ["n"], name="squeeze"),
        helper.make_node("Range", ["start", "n", "step"], ["positions"], name="range"),
        helper.make_node("Equal", ["positions", "start"], ["first"], name="equal"),
        helper.make_node("Where", ["first", "start", "step"], ["mask"], name="where"),
        helper.make_node("Cast", ["mask"], ["mask_f"], name="cast", to=1),
        helper.make_node("Unsqueeze", ["mask_f", "one"], ["mask_col"], name="unsqueeze"),
        helper.make_node("Mul", ["flat", "mask_col"], ["y"], name="mul"),
        helper.make_node("Concat", ["zero", "minus_one"], ["consts"], name="const_concat", axis=0),
        helper.make_node("MatMul", ["flat", "w"], ["p"], name="matmul"),
        helper.make_node("Transpose", ["w"], ["wt"], name="param_transpose"),
    ]
    initializers = [
        initializer("start", np.array(0, np.int64)),
        initializer("step", np.array(1, np.int64)),
        initializer("one", np.array([1], np.int64)),
        initializer("w", np.ones((12, 2), np.float32)),
    ]
    return make_graph(
        nodes,
        [value("x", [2, 3, 4])],
        [
            value("y", None),
            value("consts", None),
            value("p", None),
            value("wt", None),
            value("batch_f", None),
        ],
        initializers,
        parameters={"w": "fc.weight"},
    )


def test_kinds() -> None:
    graph = _torch_like_shapes()
    before = snapshot(graph)
    result = mark_shape_subgraphs(graph)
    lint(result.graph)
    assert snapshot(graph) == before
    kinds = {op.name: op.kind for op in result.graph}
    shape_ops = {
        "shape",
        "gather",
        "concat",
        "castlike",
        "squeeze",
        "range",
        "equal",
        "where",
        "cast",
        "unsqueeze",
    }
    assert {name for name, kind in kinds.items() if kind == "shape"} == shape_ops
    assert {name for name, kind in kinds.items() if kind == "const"} == {
        "const_zero",
        "const_minus_one",
        "const_concat",
    }
    # a Reshape whose target is a shape subgraph carries data; so do ops reading parameters
    assert {name for name, kind in kinds.items() if kind == "data"} == {
        "reshape",
        "mul",
        "matmul",
        "param_transpose",
    }
    assert result.modified


def test_constant_arrays_are_const_but_parameters_are_data() -> None:
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], name="t")]
    inits = [initializer("w", np.ones((2, 3), np.float32))]
    outputs = [value("wt", None)]
    constant = make_graph(nodes, [], outputs, inits)
    parameter = make_graph(nodes, [], outputs, inits, parameters={"w": "fc.weight"})
    assert mark_shape_subgraphs(constant).graph.ops["t"].kind == "const"
    assert mark_shape_subgraphs(parameter).graph.ops["t"].kind == "data"


def test_random_ops_are_data() -> None:
    graph = make_graph(
        [helper.make_node("RandomNormal", [], ["r"], name="rand", shape=[2])],
        [],
        [value("r", None)],
    )
    result = mark_shape_subgraphs(graph)
    assert result.graph.ops["rand"].kind == "data"
    assert not result.modified


def test_torch_export_with_dynamic_batch(torch_rich: Graph) -> None:
    out = mark_shape_subgraphs(torch_rich).graph
    lint(out)
    shape_ops = [op for op in out if op.kind == "shape"]
    assert {"Shape", "Concat"} <= {op.op_type for op in shape_ops}
    # the flatten and the reshape to [batch, 2, 8] are data ops with shape-subgraph targets
    reshapes = [op for op in out if op.op_type == "Reshape" and op.kind == "data"]
    assert len(reshapes) == 2
    assert all(out.producer(op.inputs[1]).kind == "shape" for op in reshapes)
    assert sorted(op.op_type for op in canonicalize(torch_rich).data_ops()) == sorted(
        [
            "Conv",
            "Add",
            "Relu",
            "Reshape",
            "MatMul",
            "Add",
            "Reshape",
            "MatMul",
            "Add",
            "LayerNormalization",
            "Gelu",
        ]
    )


def test_paddle_export(paddle_twin: Graph) -> None:
    out = mark_shape_subgraphs(paddle_twin).graph
    lint(out)
    kinds = {op.op_type: op.kind for op in out if op.op_type in ("Shape", "Slice", "Constant")}
    assert kinds == {"Shape": "shape", "Slice": "shape", "Constant": "const"}
    flatten = next(
        op
        for op in out
        if op.op_type == "Reshape" and out.producer(op.inputs[1]).op_type == "Concat"
    )
    assert flatten.kind == "data"
    assert out.producer(flatten.inputs[1]).kind == "shape"
