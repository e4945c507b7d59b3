"""Tests of the Graph helpers the passes lean on: copy, replace_ops, the lazy networkx view."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from padiff_ir.ir import Graph, OpNode, TensorInfo, lint


def _every_field_set() -> Graph:
    op = OpNode(
        "conv",
        "Conv",
        domain="ai.onnx",
        attributes={"pads": [1, 1], "group": 1, "value": np.ones(2), "mode": "x"},
        inputs=("x", "w"),
        outputs=("y",),
        module_path="stem",
        module_class="Conv2d",
        index=3,
        kind="data",
        meta={"fused_from": ["a", "b"], "deep": {"k": [1]}},
    )
    tensors = {
        "x": TensorInfo("x", (1, "n"), "float32", is_input=True),
        "w": TensorInfo("w", (4, 3), "float32", param_name="stem.weight", is_initializer=True),
        "y": TensorInfo("y", None, None, is_output=True),
    }
    return Graph(
        [op],
        tensors,
        ["x"],
        ["y"],
        framework="torch",
        modules={"stem": "Conv2d"},
        aliases={"z": "y"},
        meta={"opset": {"ai.onnx": 17}},
    )


def _as_dict(obj: object) -> dict:
    return {f.name: repr(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def test_copy_passes_on_every_field() -> None:
    graph = _every_field_set()
    copied = graph.copy()
    for name, op in graph.ops.items():
        assert _as_dict(copied.ops[name]) == _as_dict(op)
    for name, info in graph.tensors.items():
        assert _as_dict(copied.tensors[name]) == _as_dict(info)
    for slot in ("inputs", "outputs", "framework", "modules", "aliases", "meta"):
        assert repr(getattr(copied, slot)) == repr(getattr(graph, slot))
    assert sorted(copied.nx.edges(keys=True)) == sorted(graph.nx.edges(keys=True))


def test_copy_is_deep() -> None:
    graph = _every_field_set()
    copied = graph.copy()
    op = copied.ops["conv"]
    op.attributes["pads"].append(9)
    op.attributes["value"][0] = 5
    op.meta["fused_from"].append("c")
    op.meta["deep"]["k"].append(2)
    copied.tensors["x"].consumers.append("other")
    copied.meta["opset"]["ai.onnx"] = 1
    copied.aliases["q"] = "x"
    original = graph.ops["conv"]
    assert original.attributes["pads"] == [1, 1]
    assert original.attributes["value"][0] == 1
    assert original.meta == {"fused_from": ["a", "b"], "deep": {"k": [1]}}
    assert graph.tensors["x"].consumers == ["conv"]
    assert graph.meta == {"opset": {"ai.onnx": 17}}
    assert graph.aliases == {"z": "y"}


def test_replace_ops_renames_in_one_batch() -> None:
    ops = [
        OpNode("a", "Relu", inputs=("x",), outputs=("p",), index=0),
        OpNode("b", "Relu", inputs=("x",), outputs=("q",), index=1),
        OpNode("c", "Add", inputs=("p", "q"), outputs=("y",), index=2),
    ]
    graph = Graph(ops, {n: TensorInfo(n) for n in "xpqy"}, ["x"], ["y", "q"])
    graph.replace_ops(
        ["b"], [OpNode("d", "Neg", inputs=("x",), outputs=("r",), index=1)], rename={"q": "r"}
    )
    lint(graph)
    assert graph.ops["c"].inputs == ("p", "r")
    assert graph.outputs == ("y", "r")
    assert graph.tensors["r"].is_output
    assert graph.tensors["r"].consumers == ["c"]
    assert graph.tensors["q"].consumers == []


def test_networkx_view_follows_edits() -> None:
    ops = [
        OpNode("a", "Relu", inputs=("x",), outputs=("p",), index=0),
        OpNode("b", "Relu", inputs=("p", "p"), outputs=("y",), index=1),
    ]
    graph = Graph(ops, {n: TensorInfo(n) for n in "xpy"}, ["x"], ["y"])
    assert list(graph.nx.edges(keys=True)) == [("a", "b", "p")]
    assert graph.tensors["p"].consumers == ["b"]
    graph.replace_ops(["b"], [OpNode("c", "Neg", inputs=("p",), outputs=("y",), index=1)])
    assert list(graph.nx.edges(keys=True)) == [("a", "c", "p")]
    assert list(graph.nx.nodes) == ["a", "c"]


def test_replace_ops_refuses_duplicates() -> None:
    graph = _every_field_set()
    with pytest.raises(ValueError, match="'conv' already exists"):
        graph.replace_ops([], [OpNode("conv", "Relu")])
