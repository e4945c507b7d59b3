"""ir.views.graph_view: the data ops of a real export, their edges and module tree, as JSON."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import padiff_ir.ir.views as graph_data
from padiff_ir.ir import build_graph, canonicalize
from padiff_ir.ir.views import graph_view, source_line
from tests.conftest import zoo_export


def test_docstring_examples_run():
    result = doctest.testmod(graph_data)
    assert result.failed == 0 and result.attempted >= 4


@pytest.fixture(scope="module", params=["torch", "paddle"])
def exported_and_view(request):
    exported = zoo_export("vit", request.param)
    graph = canonicalize(build_graph(exported))
    return exported, graph, graph_view(graph, exported)


def test_nodes_are_the_data_ops_in_order(exported_and_view):
    _, graph, view = exported_and_view
    assert [n["id"] for n in view["nodes"]] == [op.name for op in graph.data_ops()]
    assert len({n["id"] for n in view["nodes"]}) == len(view["nodes"])
    for node, op in zip(view["nodes"], graph.data_ops()):
        assert (node["op"], node["module"], node["class"]) == (
            op.op_type,
            op.module_path,
            op.module_class,
        )
        assert node["out"] == [t for t in op.outputs if t]


def test_edges_join_a_producer_to_a_later_reader(exported_and_view):
    _, graph, view = exported_and_view
    nodes = view["nodes"]
    assert view["edges"], "a ViT has data edges"
    for source, target in view["edges"]:
        assert source < target  # data ops are in topological order
        made = set(nodes[source]["out"])
        read = {t for t in graph.ops[nodes[target]["id"]].inputs}
        assert made & read


def test_module_tree_and_shapes(exported_and_view):
    _, graph, view = exported_and_view
    assert view["modules"] == graph.modules
    assert "blocks.0.attn" in view["modules"]
    assert all(n["module"] in view["modules"] or n["module"] == "" for n in view["nodes"])
    assert any(
        n["shape"] and all(isinstance(d, (int, str)) for d in n["shape"]) for n in view["nodes"]
    )


def test_view_is_plain_json(exported_and_view):
    _, _, view = exported_and_view
    assert json.loads(json.dumps(view)) == json.loads(json.dumps(view, default=str))
    for node in view["nodes"]:
        assert all(isinstance(v, str) for v in node.get("attrs", {}).values())


def test_torch_nodes_carry_the_users_source_line(exported_and_view):
    exported, _, view = exported_and_view
    sources = [n.get("source", "") for n in view["nodes"]]
    if exported.framework == "torch":
        assert view["name"] == "main_graph"
        assert sum(1 for s in sources if "torch_models.py" in s) > len(sources) / 2
        assert not any("site-packages" in s for s in sources if "torch_models.py" in s)
    else:
        assert not any(sources)


def test_fused_ops_name_their_onnx_nodes(exported_and_view):
    exported, _, view = exported_and_view
    onnx_names = {node.name for node in exported.model.graph.node}
    for node in view["nodes"]:
        for name in node.get("onnx", [node["id"]]):
            assert name in onnx_names, (node["id"], name)


def test_attribute_values_are_summarised():
    assert graph_data._attribute_text(np.zeros((64, 64), np.float32)) == "<float32[64, 64]>"
    assert graph_data._attribute_text(np.array([1, 2])) == "[1, 2]"
    assert graph_data._attribute_text(list(range(40))).endswith("… 24 more]")
    assert graph_data._attribute_text(1e-6) == "1e-06"
    assert len(graph_data._attribute_text("x" * 1000)) == graph_data._MAX_TEXT


def test_source_line_prefers_the_users_frame():
    trace = (
        'File "/m/model.py", line 10, in forward\n    y = self.fc(x)\n'
        '  File "/v/site-packages/torch/nn/modules/linear.py", line 1, in forward\n'
        "    return F.linear(x)"
    )
    assert source_line(trace) == "/m/model.py:10 in forward: y = self.fc(x)"
    only_library = trace.split("  File")[1]
    assert "linear.py:1" in source_line(" File" + only_library)
    assert source_line("no frames here") == "no frames here"
