"""Index an ONNX graph once, then cut runnable models out of it.

The runner needs three things from a graph, many times over and for models with hundreds of MB
of weights:

* who produces each tensor and what each node reads (outer-scope names read by the bodies of
  ``If``/``Loop``/``Scan`` nodes included), to find the nodes needed to compute some tensors
  from others (:meth:`GraphIndex.ancestors`);
* the type of every tensor, from ONNX shape inference run on a *light* copy of the model whose
  large initializers are replaced by typed graph inputs (:meth:`GraphIndex.infer_types`): fast,
  and free of the 2 GB protobuf limit;
* a model made of some of the nodes, some tensors fed as graph inputs and some exposed as graph
  outputs, carrying only the initializers those nodes read (:meth:`GraphIndex.build`).

The index keeps references into the caller's model and never modifies it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from padiff_ir._shared_weights import external_stub

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["GraphIndex"]

logger = logging.getLogger(__name__)

_LIGHT_INITIALIZER_ELEMENTS = 1024  # larger initializers become typed inputs for inference
_UNUSED_SUFFIX = "__padiff_ir_unused"


def _subgraphs(node: onnx.NodeProto) -> Iterable[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs


def _outer_scope_names(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph body reads from its enclosing scopes."""
    defined = {v.name for v in graph.input}
    defined.update(t.name for t in graph.initializer)
    defined.update(t.values.name for t in graph.sparse_initializer)
    used: set[str] = set()
    for node in graph.node:
        used.update(name for name in node.input if name)
        for body in _subgraphs(node):
            used.update(_outer_scope_names(body))
        defined.update(node.output)
    return used - defined


def elem_type(type_proto: onnx.TypeProto | None) -> int:
    """The tensor element type of ``type_proto``, ``0`` when unknown or not a tensor."""
    if type_proto is None or type_proto.WhichOneof("value") != "tensor_type":
        return 0
    return type_proto.tensor_type.elem_type


def static_shape(type_proto: onnx.TypeProto | None) -> tuple[int, ...] | None:
    """The shape of a tensor type when every dimension is a number, else ``None``."""
    if (
        type_proto is None
        or elem_type(type_proto) == 0
        or not type_proto.tensor_type.HasField("shape")
    ):
        return None
    dims = type_proto.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


@dataclass
class GraphIndex:
    """Producers, readers, initializers and declared inputs of one ONNX graph.

    Attributes:
        model: the indexed model (not modified).
        nodes: the top-level nodes, in the graph's (topological) order.
        node_inputs: per node, the non-empty names it reads, outer-scope reads of bodies included.
        producer: tensor name -> index of the node producing it.
        initializers: name -> initializer (dense and sparse).
        inputs: declared graph inputs that are not initializers, in order.
        outputs: graph output names, in order.
    """

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]
    node_inputs: list[tuple[str, ...]]
    producer: dict[str, int]
    initializers: dict[str, onnx.TensorProto | onnx.SparseTensorProto]
    inputs: dict[str, onnx.ValueInfoProto]
    outputs: tuple[str, ...]

    @classmethod
    def from_model(cls, model: onnx.ModelProto) -> GraphIndex:
        graph = model.graph
        initializers: dict[str, onnx.TensorProto | onnx.SparseTensorProto] = {
            t.name: t for t in graph.initializer
        }
        initializers.update((t.values.name, t) for t in graph.sparse_initializer)
        nodes = list(graph.node)
        node_inputs: list[tuple[str, ...]] = []
        producer: dict[str, int] = {}
        for index, node in enumerate(nodes):
            names = dict.fromkeys(name for name in node.input if name)
            for body in _subgraphs(node):
                names.update(dict.fromkeys(sorted(_outer_scope_names(body))))
            node_inputs.append(tuple(names))
            for name in node.output:
                if name:
                    producer[name] = index
        return cls(
            model=model,
            nodes=nodes,
            node_inputs=node_inputs,
            producer=producer,
            initializers=initializers,
            inputs={v.name: v for v in graph.input if v.name not in initializers},
            outputs=tuple(v.name for v in graph.output),
        )

    def node_outputs(self) -> list[str]:
        """Every non-empty node output, in node order."""
        return [name for node in self.nodes for name in node.output if name]

    def ancestors(
        self, outputs: Iterable[str], stop: Iterable[str] = ()
    ) -> tuple[list[int], list[str]]:
        """Nodes needed to compute ``outputs`` when the tensors in ``stop`` are given.

        Returns the node indices in graph order and the names reached that nobody produces
        (graph inputs or unknown names not in ``stop``), which must be fed.
        """
        stop = set(stop)
        needed: set[int] = set()
        unresolved: list[str] = []
        seen: set[str] = set()
        pending = list(outputs)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in stop or name in self.initializers:
                continue
            index = self.producer.get(name)
            if index is None:
                unresolved.append(name)
            elif index not in needed:
                needed.add(index)
                pending.extend(self.node_inputs[index])
        return sorted(needed), sorted(unresolved)

    # -- types -----------------------------------------------------------------------------

    def infer_types(
        self, input_types: Mapping[str, tuple[int, Sequence[int]]] | None = None
    ) -> dict[str, onnx.TypeProto]:
        """Types of the graph's tensors by ONNX shape inference (best effort).

        Args:
            input_types: graph input name -> (element type, concrete shape) to infer with instead
                of the declared input types, which gives concrete shapes downstream.
        """
        import onnx

        light = self._light_model(input_types or {})
        try:
            inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
        except Exception as err:  # inference is an optimisation: ORT infers types by itself
            logger.debug("ONNX shape inference failed, tensor types unknown: %s", err)
            inferred = light
        types: dict[str, onnx.TypeProto] = {}
        for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            if value.HasField("type"):
                types[value.name] = value.type
        return types

    def _light_model(self, input_types: Mapping[str, tuple[int, Sequence[int]]]) -> onnx.ModelProto:
        import onnx
        from onnx import helper

        model, graph = self.model, self.model.graph
        light = onnx.ModelProto(ir_version=max(model.ir_version, 4))
        light.opset_import.extend(model.opset_import)
        light.functions.extend(model.functions)
        light.graph.name = graph.name
        light.graph.node.extend(graph.node)
        light.graph.value_info.extend(graph.value_info)
        light.graph.output.extend(graph.output)
        for name, value in self.inputs.items():
            if name in input_types:
                element, shape = input_types[name]
                light.graph.input.append(helper.make_tensor_value_info(name, element, shape))
            else:
                light.graph.input.append(value)
        for tensor in graph.initializer:
            external = tensor.data_location == tensor.EXTERNAL  # no data here: its type only
            if math.prod(tensor.dims) <= _LIGHT_INITIALIZER_ELEMENTS and not external:
                light.graph.initializer.append(tensor)
            else:
                light.graph.input.append(
                    helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
                )
        light.graph.sparse_initializer.extend(graph.sparse_initializer)
        return light

    # -- cutting models --------------------------------------------------------------------

    def build(
        self,
        node_indices: Sequence[int],
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        *,
        shared: Container[str] = (),
    ) -> onnx.ModelProto:
        """A model of the nodes ``node_indices`` reading ``inputs`` and exposing ``outputs``.

        Only the initializers the nodes read (and that are not fed) are copied; those named in
        ``shared`` are not copied but declared as external data (name, type, dims), for the
        session to read from the arrays it is given (see ``_session.create_session``).
        A node output that is also fed is renamed, so the fed value is the one its readers see.
        """
        import onnx

        model = self.model
        built = onnx.ModelProto(
            ir_version=max(model.ir_version, 4),
            producer_name="padiff_ir.runtime",
        )
        built.opset_import.extend(model.opset_import)
        built.functions.extend(model.functions)
        graph = built.graph
        graph.name = model.graph.name or "graph"
        fed = {value.name for value in inputs}
        read: set[str] = set()
        for index in node_indices:
            node = self.nodes[index]
            if fed.intersection(node.output):
                clone = onnx.NodeProto()
                clone.CopyFrom(node)
                for position, name in enumerate(clone.output):
                    if name in fed:
                        clone.output[position] = name + _UNUSED_SUFFIX
                node = clone
            graph.node.append(node)
            read.update(self.node_inputs[index])
        needed = read - fed
        for tensor in model.graph.initializer:
            if tensor.name not in needed:
                continue
            if tensor.name in shared:
                graph.initializer.append(external_stub(tensor))
            else:
                graph.initializer.append(tensor)
        graph.sparse_initializer.extend(
            t for t in model.graph.sparse_initializer if t.values.name in needed
        )
        graph.input.extend(inputs)
        graph.output.extend(outputs)
        return built


def output_value_info(name: str, type_proto: onnx.TypeProto | None) -> onnx.ValueInfoProto:
    """A graph output for ``name``: element type only (no shape, so nothing to contradict),
    the full type for non-tensor values, or no type at all when unknown (ORT infers it)."""
    import onnx
    from onnx import helper

    if elem_type(type_proto):
        return helper.make_tensor_value_info(name, elem_type(type_proto), None)
    if type_proto is not None and type_proto.WhichOneof("value") not in (None, "tensor_type"):
        value = onnx.ValueInfoProto(name=name)
        value.type.CopyFrom(type_proto)
        return value
    return helper.make_empty_tensor_value_info(name)


def input_value_info(name: str, dtype: np.dtype, rank: int) -> onnx.ValueInfoProto:
    """A graph input of ``dtype`` and ``rank`` with free dimensions."""
    from onnx import helper

    element = helper.np_dtype_to_tensor_dtype(dtype)
    return helper.make_tensor_value_info(name, element, [None] * rank)
