"""Tests of running passes, and of what canonicalisation is for: torch and paddle agree."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from onnx import helper

import padiff_ir.ir as ir
from padiff_ir.errors import IRError
from padiff_ir.ir import DEFAULT_PASSES, Graph, PassResult, canonicalize, lint, run_passes
from padiff_ir.ir.passes import (
    conv_bias_split,
    gemm_to_matmul_add,
    identity_alias,
    mark_shape_subgraphs,
)
from tests.ir._graphs import data_op_types, make_graph, snapshot, value


def _small() -> Graph:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["y"], name="id"),
    ]
    return make_graph(nodes, [value("x", [2])], [value("y", [2])])


def test_public_names() -> None:
    for name in (
        "DEFAULT_PASSES",
        "PassResult",
        "canonicalize",
        "lint",
        "run_passes",
        "Graph",
        "OpNode",
        "TensorInfo",
        "build_graph",
    ):
        assert name in ir.__all__
        assert hasattr(ir, name)


def test_default_passes_order() -> None:
    expected = (identity_alias, gemm_to_matmul_add, conv_bias_split, mark_shape_subgraphs)
    assert expected == DEFAULT_PASSES


def test_pass_result_is_frozen() -> None:
    result = PassResult(_small(), False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.modified = True  # type: ignore[misc]


def test_run_passes_leaves_input_alone() -> None:
    graph = _small()
    before = snapshot(graph)
    out = run_passes(graph, lint=True)
    assert snapshot(graph) == before
    assert list(out.ops) == ["relu"]


def test_failing_pass_is_named_with_the_passes_before_it() -> None:
    def explode(graph: Graph) -> PassResult:
        raise KeyError("boom")

    with pytest.raises(IRError) as caught:
        run_passes(_small(), (identity_alias, gemm_to_matmul_add, explode))
    message = str(caught.value)
    assert "pass 'explode' failed" in message
    assert "after identity_alias, gemm_to_matmul_add" in message
    assert isinstance(caught.value.__cause__, KeyError)

    with pytest.raises(IRError, match="'explode' failed .* as the first pass"):
        run_passes(_small(), (explode,))


def test_broken_graph_is_caught_with_lint() -> None:
    def break_graph(graph: Graph) -> PassResult:
        result = graph.copy()
        result.outputs = ("missing",)
        return PassResult(result, True)

    run_passes(_small(), (break_graph,))  # without lint nothing is checked
    with pytest.raises(IRError, match="pass 'break_graph'.*graph output 'missing'") as caught:
        run_passes(_small(), (identity_alias, break_graph), lint=True)
    assert isinstance(caught.value.__cause__, IRError)


def test_canonicalize_torch_export(torch_rich: Graph) -> None:
    before = snapshot(torch_rich)
    out = run_passes(torch_rich, lint=True)
    assert snapshot(torch_rich) == before
    assert snapshot(canonicalize(torch_rich)) == snapshot(out)


def _linear_and_conv_shapes(graph: Graph) -> Counter:
    """Data ops with what the matching relies on: weight layout and bias ownership."""
    return Counter((op.op_type, op.meta.get("bias_of") is not None) for op in graph.data_ops())


@pytest.mark.parametrize("paddle_graph", ["paddle_twin", "paddle_twin_params"])
def test_torch_and_paddle_agree(
    torch_twin: Graph, paddle_graph: str, request: pytest.FixtureRequest
) -> None:
    paddle = request.getfixturevalue(paddle_graph)
    assert data_op_types(torch_twin) != data_op_types(paddle)  # they differ as exported
    torch_out = run_passes(torch_twin, lint=True)
    paddle_out = run_passes(paddle, lint=True)
    expected = sorted(
        ["Conv", "Add", "Relu", "Reshape", "MatMul", "Add", "Reshape", "MatMul", "Add", "Add"]
    )
    assert data_op_types(torch_out) == expected
    assert data_op_types(paddle_out) == expected
    assert _linear_and_conv_shapes(torch_out) == _linear_and_conv_shapes(paddle_out)
    # torch weights are [out, in] and read transposed, paddle's [in, out]
    for graph, transposed in ((torch_out, True), (paddle_out, False)):
        matmuls = [op for op in graph.data_ops() if op.op_type == "MatMul"]
        assert [op.meta.get("weight_transposed", False) for op in matmuls] == [transposed] * 2
    lint(torch_out)
    lint(paddle_out)


def test_paddle_parameters_stay_data_sources(paddle_twin_params: Graph) -> None:
    out = canonicalize(paddle_twin_params)
    params = {name for name, info in out.tensors.items() if info.is_param}
    assert len(params) == 6
    (conv,) = [op for op in out.data_ops() if op.op_type == "Conv"]
    assert out.params_of(conv) == ["conv.weight"]
    (bias_add,) = out.consumers(conv.outputs[0])
    assert out.params_of(bias_add) == ["conv.bias"]
