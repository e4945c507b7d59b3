"""A result's graph view as a weight-less ONNX model, for Model Explorer to draw.

Model Explorer's ONNX adapter (``model-explorer-onnx``) reads a file without its weights
(it loads no external data) and names each node by its ONNX node name and each group by the
node's ``namespace`` metadata. The file written here is built from the graph view a result
stores (:func:`padiff_ir.ir.views.graph_view`), so it needs no model and no exported file:

* one node per data op of the view, named by the op's id (the ids the result's pairs use, so
  the node data and the A -> B mapping key on them directly), with the op's type and domain;
* its ``namespace`` is the op's module path (``backbone.blocks.1.attn`` ->
  ``backbone/blocks/1/attn``), so both sides fold into the same module hierarchy;
* the view's attributes (as text), module path, class and source line go into the node's
  metadata (shown as ``[metadata] epsilon`` ... in Model Explorer's side panel); the first
  output gets the view's shape and dtype;
* an edge of the view becomes an input of the consumer: the producer's first output (the view
  keeps which ops are joined, not through which output of a multi-output op).

Shape arithmetic and constants are not in the view and so not in the file, as in the HTML
report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

__all__ = ["view_model"]

logger = logging.getLogger(__name__)

_OPSET = 18


def namespace(module_path: str) -> str:
    """A module path as a Model Explorer namespace.

    Example:
        >>> namespace("backbone.blocks.1.attn"), namespace("")
        ('backbone/blocks/1/attn', '')
    """
    return "/".join(part for part in module_path.split(".") if part)


def _value_info(name: str, shape: Sequence[object] | None, dtype: object) -> onnx.ValueInfoProto:
    import numpy as np
    from onnx import TensorProto, helper

    try:
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(str(dtype)))
    except TypeError:  # no dtype, or one numpy lacks (bfloat16)
        elem = TensorProto.UNDEFINED
    dims = None if shape is None else [d if isinstance(d, (int, str)) else None for d in shape]
    return helper.make_tensor_value_info(name, elem, dims)


def view_model(view: dict[str, Any], graph_name: str) -> onnx.ModelProto:
    """The graph view ``view`` of one side as an ONNX model named ``graph_name`` (no weights).

    Example:
        >>> view = {"framework": "torch", "inputs": [["x", [2, 3], "float32"]],
        ...         "outputs": ["y"], "edges": [[0, 1]],
        ...         "nodes": [{"id": "relu", "op": "Relu", "module": "act", "out": ["h"],
        ...                    "shape": [2, 3], "dtype": "float32"},
        ...                   {"id": "sm", "op": "Softmax", "module": "head", "out": ["y"],
        ...                    "attrs": {"axis": "-1"}, "shape": [2, 3], "dtype": "float32"}]}
        >>> model = view_model(view, "A")
        >>> [(n.name, list(n.input), list(n.output)) for n in model.graph.node]
        [('relu', [], ['h']), ('sm', ['h'], ['y'])]
        >>> {p.key: p.value for p in model.graph.node[1].metadata_props}["namespace"]
        'head'
    """
    from onnx import helper

    nodes = view.get("nodes", [])
    inputs_of: dict[int, list[str]] = {i: [] for i in range(len(nodes))}
    for producer, consumer in view.get("edges", []):
        outputs = nodes[producer].get("out") or []
        if outputs and outputs[0] not in inputs_of[consumer]:
            inputs_of[consumer].append(outputs[0])
    onnx_nodes = []
    value_infos = []
    produced: set[str] = set()
    for i, node in enumerate(nodes):
        outputs = list(node.get("out") or [f"{node['id']}:out"])
        produced.update(outputs)
        proto = helper.make_node(
            node["op"], inputs_of[i], outputs, name=node["id"], domain=node.get("domain", "")
        )
        props = {"namespace": namespace(node.get("module", ""))}
        props.update({str(key): str(value) for key, value in node.get("attrs", {}).items()})
        for key in ("module", "class", "source"):
            if node.get(key):
                props[key] = str(node[key])
        for original in node.get("onnx", ()):
            props.setdefault("onnx node", original)
        helper.set_metadata_props(proto, props)
        onnx_nodes.append(proto)
        value_infos.append(_value_info(outputs[0], node.get("shape"), node.get("dtype")))
    graph_inputs = [
        _value_info(name, shape, dtype) for name, shape, dtype in view.get("inputs", [])
    ]
    out_infos = {info.name: info for info in value_infos}
    graph_outputs = [
        out_infos.get(name) or _value_info(name, None, None)
        for name in view.get("outputs", [])
        if name in produced
    ]
    graph = helper.make_graph(
        onnx_nodes,
        graph_name,
        graph_inputs,
        graph_outputs,
        value_info=[v for v in value_infos if v.name not in {o.name for o in graph_outputs}],
    )
    domains = {n.domain for n in onnx_nodes if n.domain not in ("", "ai.onnx")}
    opsets = [
        helper.make_opsetid("", _OPSET),
        *(helper.make_opsetid(d, 1) for d in sorted(domains)),
    ]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="padiff-ir")
    helper.set_model_props(
        model,
        {
            "framework": str(view.get("framework", "")),
            "model_class": str(view.get("model_class", "")),
        },
    )
    logger.debug("%s: %d nodes as ONNX for Model Explorer", graph_name, len(onnx_nodes))
    return model
