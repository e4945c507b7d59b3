"""Tests of lint: each invariant, broken on purpose, names the op or tensor at fault."""

from __future__ import annotations

import networkx as nx
import pytest
from onnx import helper

from padiff_ir.errors import IRError, PadiffError
from padiff_ir.ir import Graph, OpNode, TensorInfo, lint
from tests.ir._graphs import make_graph, value


def _graph() -> Graph:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid"),
        helper.make_node("Add", ["a", "b"], ["y"], name="add"),
    ]
    return make_graph(nodes, [value("x", [2])], [value("y", [2])])


def test_valid_graph() -> None:
    lint(_graph())


def test_known_tensor_without_producer_and_omitted_inputs_are_fine() -> None:
    graph = _graph()
    graph.tensors["alias"] = TensorInfo("alias")
    graph.replace_ops(
        [], [OpNode("clip", "Clip", inputs=("y", "", "alias"), outputs=("z",), index=3)]
    )
    lint(graph)


def test_unknown_input() -> None:
    graph = _graph()
    graph.ops["add"].inputs = ("a", "ghost")
    graph.tensors["ghost"] = TensorInfo("ghost")
    graph.replace_ops([])
    del graph.tensors["ghost"]
    with pytest.raises(IRError, match="op 'add' .*reads tensor 'ghost'"):
        lint(graph)


def test_tensor_made_twice() -> None:
    graph = _graph()
    graph.replace_ops([], [OpNode("twin", "Relu", inputs=("x",), outputs=("a",), index=5)])
    with pytest.raises(IRError, match="tensor 'a' is made by two ops"):
        lint(graph)


def test_stale_producers_and_consumers() -> None:
    graph = _graph()
    graph.ops["add"].inputs = ("x", "b")  # edited without Graph.replace_ops
    with pytest.raises(IRError, match="tensor '(a|x)' lists consumers"):
        lint(graph)


def test_networkx_edges_must_match() -> None:
    graph = _graph()
    graph.nx = nx.MultiDiGraph(graph.nx)
    graph.nx.add_edge("relu", "add", key="b")
    with pytest.raises(IRError, match="edge 'relu' -> 'add' carrying 'b'"):
        lint(graph)


def test_cycle() -> None:
    graph = _graph()
    graph.ops["relu"].inputs = ("y",)
    graph.replace_ops([])
    with pytest.raises(IRError, match="cycle"):
        lint(graph)


def test_indices_must_be_topological() -> None:
    graph = _graph()
    graph.ops["relu"].index = 10
    graph.replace_ops([])
    with pytest.raises(IRError, match="op 'sigmoid' \\(index 1\\) reads 'a' made by op 'relu'"):
        lint(graph)


def test_missing_graph_output() -> None:
    graph = _graph()
    graph.outputs = ("y", "nowhere")
    with pytest.raises(IRError, match="graph output 'nowhere'"):
        lint(graph)


def test_unknown_kind() -> None:
    graph = _graph()
    graph.ops["add"].kind = "weights"
    with pytest.raises(IRError, match="op 'add' \\(Add\\) has kind 'weights'"):
        lint(graph)


def test_error_type() -> None:
    assert issubclass(IRError, PadiffError)
