"""A graph IR as compact JSON for the report: data ops, their edges and the module tree.

A :class:`~padiff_ir.compare.MatchResult` knows tensor pairs and module pairs but no edges; the
report draws the two graphs from what :func:`graph_view` stores beside the result. The view is
data about the IR, so it lives with the IR (floor 3) and uses nothing above it: the comparison
stores it and the report (:mod:`padiff_ir.report`) reads it. Only data ops
are kept (shape arithmetic and constants are not drawn); an edge joins two data ops when one
reads a tensor the other makes. Everything is plain JSON (strings, numbers, lists), small enough
for a graph of thousands of ops: attributes are shown as short strings, tensors as a summary
(``<float32[768]>``), and for a torch export only the innermost line of the user's own code.

The view (``graph_view(graph)``)::

    {"framework": "torch", "model_class": "VitPose", "name": "main_graph",
     "opset": {"ai.onnx": 18}, "inputs": [["x", [1, 3, 256, 192], "float32"]],
     "outputs": ["conv2d_1"],
     "nodes": [{"id": "node_add_1", "op": "Add", "module": "backbone", "class": "...",
                "out": ["add_1"], "shape": [1, 192, 64], "dtype": "float32",
                "attrs": {"axis": "-1"}, "source": "torch_models.py:119 in forward: ...",
                "onnx": ["node_Gemm_3"]}, ...],  # ONNX nodes it stands for, [] for none
     "edges": [[0, 1], ...],          # indices into "nodes", producer first
     "modules": {"": "VitPose", "backbone": "VitPoseBackbone", ...}}

Keys without a value (no attributes, no source line, ``onnx`` equal to ``[id]``) are left out.
``onnx`` names the nodes of the ONNX file an op stands for (an op made by a canonicalising pass,
such as the ``MatMul`` of a split ``Gemm``, stands for the ``Gemm``); it is checked against the
file when ``exported`` is given.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from padiff_ir.exporters import ExportedGraph
    from padiff_ir.ir import Graph, OpNode

__all__ = ["graph_view", "source_line"]

logger = logging.getLogger(__name__)

#: ONNX node metadata where the torch dynamo exporter records the Python stack of each node.
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"
#: ``op.meta`` keys read as the source of an op when a pass or exporter recorded one.
_META_SOURCE_KEYS = ("source", "stack_trace")

_MAX_TEXT = 160  # characters of an attribute value or source line kept
_MAX_LIST = 16  # elements of a list attribute shown before eliding
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[^\n]+)\n(?P<code>[^\n]*)'
)
_LIBRARY_PARTS = ("site-packages", "dist-packages", "/torch/", "/paddle/", "<frozen")


def _short(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _attribute_text(value: Any) -> str:
    """An attribute value as a short string (tensors summarised, long lists elided)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # a numpy array
        size = int(getattr(value, "size", 0))
        if size <= _MAX_LIST and len(shape) <= 1:
            return _short(f"{value.tolist()}")
        return f"<{dtype}{list(shape)}>"
    if isinstance(value, (list, tuple)):
        items = [_attribute_text(v) for v in value[:_MAX_LIST]]
        more = f", … {len(value) - _MAX_LIST} more" if len(value) > _MAX_LIST else ""
        return _short("[" + ", ".join(items) + more + "]")
    if isinstance(value, float):
        return f"{value:.6g}"
    return _short(str(value))


def source_line(stack_trace: str) -> str:
    """The innermost frame of the user's own code in a Python stack trace, on one line.

    Frames of installed libraries (torch, paddle, anything in site-packages) are skipped; when
    every frame is a library's, the innermost one is used.

    Examples:
        >>> trace = ('File "/src/model.py", line 86, in forward\\n    q = self.qkv(x)\\n'
        ...          '  File "/venv/site-packages/torch/nn/modules/linear.py", line 134, '
        ...          'in forward\\n    return F.linear(input, self.weight, self.bias)')
        >>> source_line(trace)
        '/src/model.py:86 in forward: q = self.qkv(x)'
        >>> source_line("")
        ''
    """
    frames = list(_FRAME.finditer(stack_trace or ""))
    if not frames:
        return _short(stack_trace.strip().splitlines()[-1]) if stack_trace.strip() else ""
    own = [f for f in frames if not any(p in f["file"] for p in _LIBRARY_PARTS)]
    frame = (own or frames)[-1]
    return _short(
        f"{frame['file']}:{frame['line']} in {frame['func'].strip()}: {frame['code'].strip()}",
        2 * _MAX_TEXT,
    )


def _stack_traces(exported: ExportedGraph | None) -> dict[str, str]:
    if exported is None:
        return {}
    traces = {}
    for node in exported.model.graph.node:
        for prop in node.metadata_props:
            if prop.key == STACK_TRACE_KEY and prop.value:
                traces[node.name] = prop.value
    return traces


def _origins(op: OpNode, onnx_names: set[str] | None = None) -> list[str]:
    """The ONNX nodes ``op`` stands for: ``meta["fused_from"]``, the conv of a split bias
    (``meta["bias_of"]``), else itself; only those in ``onnx_names`` when it is given."""
    names = [str(n) for n in op.meta.get("fused_from", ())]
    if not names and op.meta.get("bias_of"):
        names = [str(op.meta["bias_of"])]
    names = names or [op.name]
    if onnx_names is not None:
        names = [n for n in names if n in onnx_names]
    return names


def _op_source(op: OpNode, traces: dict[str, str]) -> str:
    for key in _META_SOURCE_KEYS:
        value = op.meta.get(key)
        if isinstance(value, str) and value:
            return source_line(value) if 'File "' in value else _short(value, 2 * _MAX_TEXT)
    for name in _origins(op):
        if name in traces:
            return source_line(traces[name])
    return ""


def _shape(shape: Any) -> list[Any] | None:
    return None if shape is None else [d if isinstance(d, (int, str)) else None for d in shape]


def graph_view(graph: Graph, exported: ExportedGraph | None = None) -> dict[str, Any]:
    """The data ops of ``graph``, their edges and its module tree, as compact JSON.

    ``exported`` (the :class:`~padiff_ir.exporters.ExportedGraph` the graph was built from) adds
    the ONNX graph's name and, for a torch export, each op's source line; both are optional.
    See the module docstring for the layout.

    Examples:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> from padiff_ir.exporters import ExportedGraph
        >>> from padiff_ir.ir import build_graph
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
        >>> nodes = [helper.make_node("Relu", ["x"], ["h"], name="relu"),
        ...          helper.make_node("Softmax", ["h"], ["y"], name="softmax", axis=-1)]
        >>> model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]))
        >>> view = graph_view(build_graph(ExportedGraph.from_model(model)))
        >>> [(n["id"], n["op"], n["shape"]) for n in view["nodes"]]
        [('relu', 'Relu', [2, 3]), ('softmax', 'Softmax', [2, 3])]
        >>> view["edges"], view["nodes"][1]["attrs"]
        ([[0, 1]], {'axis': '-1'})
    """
    traces = _stack_traces(exported)
    onnx_names = {node.name for node in exported.model.graph.node} if exported is not None else None
    ops = graph.data_ops()
    position = {op.name: i for i, op in enumerate(ops)}
    nodes = []
    edges: set[tuple[int, int]] = set()
    for i, op in enumerate(ops):
        outputs = [t for t in op.outputs if t]
        first = graph.tensors.get(outputs[0]) if outputs else None
        node: dict[str, Any] = {
            "id": op.name,
            "op": op.op_type,
            "module": op.module_path,
            "class": op.module_class,
            "out": outputs,
            "shape": _shape(first.shape) if first is not None else None,
            "dtype": first.dtype if first is not None else None,
        }
        if op.domain not in ("", "ai.onnx"):
            node["domain"] = op.domain
        if op.attributes:
            node["attrs"] = {str(k): _attribute_text(v) for k, v in op.attributes.items()}
        params = graph.params_of(op)
        if params:
            node["params"] = params
        source = _op_source(op, traces)
        if source:
            node["source"] = source
        origins = _origins(op, onnx_names)
        if origins != [op.name]:
            node["onnx"] = origins
        nodes.append(node)
        for tensor in op.inputs:
            producer = graph.tensors[tensor].producer if tensor in graph.tensors else None
            if producer in position and position[producer] != i:
                edges.add((position[producer], i))
    inputs = []
    for name in graph.inputs:
        info = graph.tensors.get(name)
        inputs.append([name, _shape(info.shape) if info else None, info.dtype if info else None])
    view = {
        "framework": graph.framework,
        "model_class": str(graph.meta.get("model_class", "")),
        "name": exported.model.graph.name if exported is not None else None,
        "opset": dict(graph.meta.get("opset", {})),
        "inputs": inputs,
        "outputs": list(graph.outputs),
        "nodes": nodes,
        "edges": [list(e) for e in sorted(edges)],
        "modules": dict(graph.modules),
    }
    logger.debug("graph view of %s: %d nodes, %d edges", graph.framework, len(nodes), len(edges))
    return view
