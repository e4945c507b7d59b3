"""Tests of the gemm_to_matmul_add pass."""

from __future__ import annotations

import numpy as np
from onnx import helper

from padiff_ir.ir import Graph, lint
from padiff_ir.ir.passes import gemm_to_matmul_add, identity_alias
from tests.ir._graphs import initializer, make_graph, snapshot, value

W = np.ones((4, 3), np.float32)  # torch layout [out, in]
B = np.zeros(4, np.float32)


def _gemm(bias: bool = True, **attrs: object) -> Graph:
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    nodes = [
        helper.make_node("Relu", ["x0"], ["x"], name="relu"),
        helper.make_node("Gemm", inputs, ["y"], name="fc", **attrs),
        helper.make_node("Sigmoid", ["y"], ["z"], name="sigmoid"),
    ]
    graph = make_graph(
        nodes,
        [value("x0", [2, 3])],
        [value("z", [2, 4])],
        [initializer("w", W), initializer("b", B)],
    )
    graph.ops["fc"].module_path, graph.ops["fc"].module_class = "head.fc", "Linear"
    return graph


def test_gemm_with_transposed_weight() -> None:
    graph = _gemm(transB=1)
    before = snapshot(graph)
    result = gemm_to_matmul_add(graph)
    lint(result.graph)
    out = result.graph
    assert result.modified
    assert snapshot(graph) == before
    ops = list(out)
    assert [op.op_type for op in ops] == ["Relu", "MatMul", "Add", "Sigmoid"]
    assert [op.index for op in ops] == [0, 1, 2, 3]
    matmul, add = ops[1], ops[2]
    assert matmul.inputs == ("x", "w")
    assert add.inputs == (matmul.outputs[0], "b")
    assert add.outputs == ("y",)  # readers of the Gemm output are unchanged
    assert matmul.meta == {"fused_from": ["fc"], "weight_transposed": True}
    assert add.meta == {"fused_from": ["fc"]}
    assert {(op.module_path, op.module_class) for op in (matmul, add)} == {("head.fc", "Linear")}
    assert out.tensors[matmul.outputs[0]].shape == (2, 4)


def test_gemm_without_bias_is_a_matmul() -> None:
    out = gemm_to_matmul_add(_gemm(bias=False, transB=1)).graph
    lint(out)
    assert [op.op_type for op in out] == ["Relu", "MatMul", "Sigmoid"]
    assert out.producer("y").meta["weight_transposed"] is True


def test_gemm_without_trans_b() -> None:
    graph = make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")],
        [value("x", [2, 4])],
        [value("y", [2, 3])],
        [initializer("w", W), initializer("b", np.zeros(3, np.float32))],
    )
    out = gemm_to_matmul_add(graph).graph
    lint(out)
    assert out.producer(out.producer("y").inputs[0]).meta["weight_transposed"] is False


def test_gemm_with_scaling_is_kept() -> None:
    for attrs in ({"alpha": 0.5, "transB": 1}, {"beta": 2.0, "transB": 1}, {"transA": 1}):
        result = gemm_to_matmul_add(_gemm(**attrs))
        assert not result.modified, attrs
        assert result.graph.ops["fc"].op_type == "Gemm"


def _transposed_weight(extra_reader: bool = False, constant_node: bool = False) -> Graph:
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["m"], name="mm"),
        helper.make_node("Add", ["m", "b"], ["y"], name="add"),
    ]
    outputs = [value("y", [2, 5, 4])]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["wt"], ["r"], name="reader"))
        outputs.append(value("r", [3, 4]))
    initializers = [initializer("b", B)]
    if constant_node:
        nodes.insert(
            0,
            helper.make_node(
                "Constant",
                [],
                ["w"],
                name="const",
                value=helper.make_tensor("w", 1, W.shape, W.ravel()),
            ),
        )
    else:
        initializers.append(initializer("w", W))
    return make_graph(nodes, [value("x", [2, 5, 3])], outputs, initializers)


def test_transpose_of_weight_is_folded() -> None:
    out = gemm_to_matmul_add(_transposed_weight()).graph
    lint(out)
    assert "t" not in out.ops
    assert out.ops["mm"].inputs == ("x", "w")
    assert out.ops["mm"].meta == {"weight_transposed": True, "fused_from": ["t", "mm"]}


def test_transpose_of_constant_node_is_folded() -> None:
    out = gemm_to_matmul_add(_transposed_weight(constant_node=True)).graph
    lint(out)
    assert "t" not in out.ops
    assert out.ops["mm"].inputs == ("x", "w")


def test_transpose_read_elsewhere_is_kept_for_that_reader() -> None:
    out = gemm_to_matmul_add(_transposed_weight(extra_reader=True)).graph
    lint(out)
    assert out.ops["mm"].inputs == ("x", "w")
    assert out.ops["reader"].inputs == ("wt",)
    assert "t" in out.ops


def test_transpose_of_activation_is_kept() -> None:
    nodes = [
        helper.make_node("Transpose", ["a"], ["at"], name="t", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "at"], ["y"], name="mm"),
    ]
    graph = make_graph(nodes, [value("x", [2, 3]), value("a", [4, 3])], [value("y", [2, 4])])
    assert not gemm_to_matmul_add(graph).modified


def test_torch_export(torch_rich: Graph) -> None:
    before = snapshot(torch_rich)
    out = gemm_to_matmul_add(identity_alias(torch_rich).graph).graph
    lint(out)
    assert snapshot(torch_rich) == before
    types = [op.op_type for op in out]
    assert "Gemm" not in types and "Transpose" not in types
    matmuls = [op for op in out if op.op_type == "MatMul"]
    assert len(matmuls) == 2  # the 2-D (Gemm) and the 3-D (Transpose, MatMul) Linear
    assert all(op.meta["weight_transposed"] for op in matmuls)
    assert {out.tensors[op.inputs[1]].shape for op in matmuls} == {(16, 256), (8, 8)}
    for op in matmuls:  # each MatMul is followed by the bias Add
        (reader,) = out.consumers(op.outputs[0])
        assert reader.op_type == "Add"


def test_paddle_export_is_already_canonical(paddle_twin: Graph) -> None:
    graph = identity_alias(paddle_twin).graph
    result = gemm_to_matmul_add(graph)
    assert not result.modified
    assert snapshot(result.graph) == snapshot(graph)
