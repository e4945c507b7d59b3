"""Helpers of the IR tests: hand-built ONNX graphs, snapshots, parameter conversion."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from padiff_ir.exporters import ExportedGraph
from padiff_ir.exporters._graph import PARAMETERS_KEY
from padiff_ir.ir import Graph, build_graph

if TYPE_CHECKING:
    from collections.abc import Sequence

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def value(
    name: str, shape: Sequence[int | str | None] | None = None, elem_type: int = FLOAT
) -> onnx.ValueInfoProto:
    """A graph input or output declaration."""
    return helper.make_tensor_value_info(name, elem_type, shape)


def initializer(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def make_graph(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    parameters: dict[str, str] | None = None,
) -> Graph:
    """The IR of a hand-built ONNX graph; ``parameters`` marks initializers as parameters."""
    model = helper.make_model(
        helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers)),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    if parameters:
        helper.set_model_props(model, {PARAMETERS_KEY: json.dumps(parameters)})
    return build_graph(ExportedGraph.from_model(model))


def snapshot(graph: Graph) -> tuple:
    """Everything a pass could change, to check that it left its input alone."""
    ops = sorted(
        (
            op.name,
            op.op_type,
            op.inputs,
            op.outputs,
            op.index,
            op.kind,
            repr(op.meta),
            repr(op.attributes),
        )
        for op in graph.ops.values()
    )
    tensors = sorted(
        (t.name, t.producer, tuple(t.consumers), t.is_output) for t in graph.tensors.values()
    )
    return (ops, tensors, graph.inputs, graph.outputs, dict(graph.aliases), repr(graph.meta))


def data_op_types(graph: Graph) -> list[str]:
    return sorted(op.op_type for op in graph.data_ops())


def constants_to_initializers(model: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    """What the paddle exporter does: parameter ``Constant`` nodes become initializers."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    kept = []
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] in names:
            tensor = numpy_helper.to_array(node.attribute[0].t)
            model.graph.initializer.append(numpy_helper.from_array(tensor, node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    helper.set_model_props(model, {PARAMETERS_KEY: json.dumps(names)})
    return model
