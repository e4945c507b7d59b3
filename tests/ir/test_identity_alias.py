"""Tests of the identity_alias pass."""

from __future__ import annotations

from onnx import TensorProto, helper

from padiff_ir.ir import Graph, lint
from padiff_ir.ir.passes import identity_alias
from tests.ir._graphs import INT64, make_graph, snapshot, value


def _chain() -> Graph:
    """x -> Relu -> Identity -> Identity -> Sigmoid -> Identity -> y (a graph output)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["r1"], name="id1"),
        helper.make_node("Identity", ["r1"], ["r2"], name="id2"),
        helper.make_node("Sigmoid", ["r2"], ["s"], name="sigmoid"),
        helper.make_node("Add", ["r1", "s"], ["a"], name="add"),
        helper.make_node("Identity", ["a"], ["y"], name="id_out"),
    ]
    return make_graph(nodes, [value("x", [2, 3])], [value("y", [2, 3])])


def test_removes_identity_chains_and_records_aliases() -> None:
    graph = _chain()
    before = snapshot(graph)
    result = identity_alias(graph)
    lint(result.graph)
    out = result.graph
    assert result.modified
    assert sorted(out.ops) == ["add", "relu", "sigmoid"]
    assert out.ops["sigmoid"].inputs == ("r",)
    assert out.ops["add"].inputs == ("r", "s")
    assert out.aliases == {"r1": "r", "r2": "r", "y": "a"}
    assert out.resolve("r2") == "r"
    assert snapshot(graph) == before  # the input graph is untouched


def test_graph_output_made_by_identity_is_rewired() -> None:
    out = identity_alias(_chain()).graph
    assert out.outputs == ("a",)
    assert out.meta["output_aliases"] == {"y": "a"}
    assert out.tensors["a"].is_output
    assert not out.tensors["y"].is_output
    assert out.tensors["y"].producer is None  # kept as a known tensor, for the alias


def test_output_aliases_compose_over_runs() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["b"], name="relu"),
        helper.make_node("Identity", ["b"], ["a"], name="id"),
    ]
    graph = make_graph(nodes, [value("x", [2])], [value("a", [2])])
    graph.meta["output_aliases"] = {"y": "a"}  # an earlier run renamed output y to a
    out = identity_alias(graph).graph
    assert out.outputs == ("b",)
    assert out.meta["output_aliases"] == {"y": "b"}  # keyed by the exporter's name only


def test_identity_of_graph_input_as_output() -> None:
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="id")]
    result = identity_alias(make_graph(nodes, [value("x", [2])], [value("y", [2])]))
    lint(result.graph)
    assert len(result.graph) == 0
    assert result.graph.outputs == ("x",)
    assert result.graph.meta["output_aliases"] == {"y": "x"}


def test_no_op_casts_are_removed_and_real_casts_kept() -> None:
    nodes = [
        helper.make_node("Cast", ["x"], ["same"], name="noop", to=TensorProto.FLOAT),
        helper.make_node("Cast", ["same"], ["ints"], name="to_int", to=INT64),
        helper.make_node("CastLike", ["x", "x"], ["like"], name="noop_like"),
        helper.make_node("CastLike", ["x", "ints"], ["like_int"], name="like_int"),
        helper.make_node("Add", ["like", "same"], ["y"], name="add"),
    ]
    graph = make_graph(
        nodes,
        [value("x", [2])],
        [value("y", [2]), value("ints", [2], INT64), value("like_int", [2], INT64)],
    )
    out = identity_alias(graph).graph
    lint(out)
    assert sorted(out.ops) == ["add", "like_int", "to_int"]
    assert out.ops["to_int"].inputs == ("x",)
    assert out.ops["add"].inputs == ("x", "x")
    assert out.aliases == {"same": "x", "like": "x"}


def test_cast_of_unknown_dtype_is_kept() -> None:
    graph = make_graph(
        [helper.make_node("Cast", ["x"], ["y"], name="cast", to=INT64)],
        [value("x", [2], INT64)],
        [value("y", [2], INT64)],
    )
    graph.tensors["x"].dtype = None
    result = identity_alias(graph)
    assert not result.modified
    assert "cast" in result.graph.ops


def test_unmodified_graph() -> None:
    graph = make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], [value("x", [2])], [value("y", [2])]
    )
    result = identity_alias(graph)
    assert not result.modified
    assert result.graph is not graph
    assert snapshot(result.graph) == snapshot(graph)


def test_paddle_export(paddle_twin: Graph) -> None:
    assert any(op.op_type == "Identity" for op in paddle_twin.ops.values())
    result = identity_alias(paddle_twin)
    lint(result.graph)
    out = result.graph
    assert not [op for op in out.ops.values() if op.op_type == "Identity"]
    # paddle's graph output comes out of an Identity: its name survives as an alias
    (original,) = paddle_twin.outputs
    assert out.meta["output_aliases"][original] == out.outputs[0]
    assert out.resolve(original) == out.outputs[0]
    assert out.producer(out.outputs[0]).op_type == "Add"
    # the bias Reshape now reads its shape Constant directly (no auto.cast Identity between)
    reshape = next(
        op
        for op in out.ops.values()
        if op.op_type == "Reshape" and out.producer(op.inputs[0]).op_type == "Constant"
    )
    assert out.producer(reshape.inputs[1]).op_type == "Constant"


def test_torch_export(torch_rich: Graph) -> None:
    result = identity_alias(torch_rich)
    lint(result.graph)
    assert not [op for op in result.graph.ops.values() if op.op_type == "Identity"]
