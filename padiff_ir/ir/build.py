"""Build the graph IR from an exported ONNX model (with shape inference)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir._onnx_values import onnx_array
from padiff_ir.errors import ExportError
from padiff_ir.ir.graph import Graph, OpNode, TensorInfo

if TYPE_CHECKING:
    import onnx

    from padiff_ir.exporters import ExportedGraph

__all__ = ["build_graph"]

logger = logging.getLogger(__name__)


def _attribute_value(attr: onnx.AttributeProto) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    if attr.type == attr.TENSOR:
        return onnx_array(value)
    if attr.type == attr.GRAPH:
        return f"<subgraph {value.name}>"
    return value


def _value_info(
    vi: onnx.ValueInfoProto,
) -> tuple[tuple[int | str | None, ...] | None, str | None]:
    from onnx import helper

    ttype = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        return None, None
    dtype = None
    if ttype.elem_type:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name
    if not ttype.HasField("shape"):
        return None, dtype
    dims: list[int | str | None] = []
    for d in ttype.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims), dtype


_SMALL_INITIALIZER = 4096  # bytes: larger initializers are weights, not shape constants


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without the data of its large initializers (declared as inputs instead).

    Shape inference copies the whole model; for a ViT-B that is 350 MB of weights it does not
    need: only small constants (reshape targets) take part in shape arithmetic.
    """
    import onnx
    from onnx import helper

    skeleton = onnx.ModelProto()
    if not model.graph.initializer:
        skeleton.CopyFrom(model)
    else:
        graph = model.graph
        light = onnx.GraphProto()
        light.name = graph.name
        light.node.extend(graph.node)
        light.input.extend(graph.input)
        light.output.extend(graph.output)
        light.value_info.extend(graph.value_info)
        declared = {vi.name for vi in graph.input}
        for init in graph.initializer:
            external = init.data_location == init.EXTERNAL  # a weight read from elsewhere
            if external or len(init.raw_data) + 4 * len(init.float_data) > _SMALL_INITIALIZER:
                if init.name not in declared:
                    light.input.append(
                        helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                    )
            else:
                light.initializer.append(init)
        skeleton.ir_version = model.ir_version
        skeleton.opset_import.extend(model.opset_import)
        skeleton.functions.extend(model.functions)
        skeleton.graph.CopyFrom(light)
    return skeleton


#: Ops whose ``strides``/``kernel_shape``/``dilations`` ONNX divides by in shape inference and
#: at run time (a zero there is an integer division by zero: SIGFPE, the process killed).
_WINDOWED = frozenset({"AveragePool", "MaxPool", "LpPool", "Conv", "ConvTranspose", "MaxUnpool"})


def check_windows(exported: ExportedGraph) -> None:
    """Raise :class:`ExportError` for a windowed op with a zero stride, kernel or dilation.

    paddle2onnx writes an ``AdaptiveAvgPool2D`` that upsamples (a 7x7 output from a 2x2
    input) as an ``AveragePool`` with stride 0: ONNX shape inference, and onnxruntime, then
    divide by zero, which kills the process instead of raising. The op cannot run; the export
    is refused by name, and the callers compare the models on their eager runs instead.
    """
    for node in exported.model.graph.node:
        if node.op_type not in _WINDOWED:
            continue
        for attribute in node.attribute:
            if attribute.name in ("strides", "kernel_shape", "dilations") and 0 in attribute.ints:
                module = exported.node_modules.get(node.name, "")
                cls = exported.node_classes.get(node.name, "")
                raise ExportError(
                    f"the {exported.framework} export wrote {node.op_type} {node.name!r} of "
                    f"module {module!r} ({cls}) with {attribute.name} {list(attribute.ints)}: "
                    "ONNX cannot run a window of size or step 0 (an adaptive pool whose "
                    "output is larger than its input exports so); use inputs large enough "
                    "for the pool not to upsample, or compare the models on their eager "
                    "runs (padiff_ir.auto_diff)",
                    framework=exported.framework,
                    location=module,
                )


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(_skeleton(model), data_prop=True)
    except Exception as err:  # shape inference is best effort: the IR works without shapes
        logger.warning("ONNX shape inference failed (%s); shapes stay unknown", err)
        return model


def build_graph(exported: ExportedGraph, *, infer_shapes: bool = True) -> Graph:
    """Turn an :class:`ExportedGraph` into a :class:`Graph`.

    Every node becomes an :class:`OpNode` with its attributes, module path and class; every
    value a :class:`TensorInfo` with shape and dtype (from ONNX shape inference when
    ``infer_shapes``) and, for initializers, the framework's parameter name.

    Examples:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> from padiff_ir.exporters import ExportedGraph
        >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
        >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
        >>> node = helper.make_node("Relu", ["x"], ["y"], name="relu")
        >>> model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
        >>> graph = build_graph(ExportedGraph.from_model(model))
        >>> graph.ops["relu"].op_type, graph.tensors["y"].shape
        ('Relu', (2, 3))
    """
    from onnx import helper

    check_windows(exported)
    model = exported.model
    inferred = _infer_shapes(model).graph if infer_shapes else model.graph
    g = model.graph
    tensors: dict[str, TensorInfo] = {}

    def info(name: str) -> TensorInfo:
        if name not in tensors:
            tensors[name] = TensorInfo(name)
        return tensors[name]

    for vi in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
        shape, dtype = _value_info(vi)
        t = info(vi.name)
        t.shape = shape if shape is not None else t.shape
        t.dtype = dtype or t.dtype
    for init in g.initializer:
        t = info(init.name)
        t.is_initializer = True
        t.shape = tuple(int(d) for d in init.dims)
        t.dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).name
        t.param_name = exported.parameters.get(init.name)
    initializer_names = {init.name for init in g.initializer}
    inputs = [vi.name for vi in g.input if vi.name not in initializer_names]
    for name in inputs:
        info(name).is_input = True
    outputs = [vi.name for vi in g.output]
    for name in outputs:
        info(name).is_output = True

    ops: list[OpNode] = []
    used_names: set[str] = set()
    for index, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{index}"
        if name in used_names:
            name = f"{name}__{index}"
        used_names.add(name)
        for out in node.output:
            if out:
                info(out)
        for inp in node.input:
            if inp:
                info(inp)
        ops.append(
            OpNode(
                name=name,
                op_type=node.op_type,
                domain=node.domain,
                attributes={a.name: _attribute_value(a) for a in node.attribute},
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                module_path=exported.node_modules.get(node.name, ""),
                module_class=exported.node_classes.get(node.name, ""),
                index=index,
                meta=(
                    {"call": exported.node_calls[node.name]}
                    if node.name in exported.node_calls
                    else {}
                ),
                kind="const" if node.op_type == "Constant" else "data",
            )
        )
    return Graph(
        ops,
        tensors,
        inputs,
        outputs,
        framework=exported.framework,
        modules=exported.modules,
        meta={
            "model_class": exported.model_class,
            "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        },
    )
