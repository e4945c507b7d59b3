"""Bring convolution biases to one form: ``Conv(x, W)`` then ``Add(conv output, b)``.

torch puts the bias inside the convolution, ``Conv(x, W, b)``; paddle2onnx adds it after,
``Conv(x, W) -> Add(Reshape(b, [1, C, 1, 1]))``. This pass rewrites both to one shape:

* ``Conv(x, W, b)`` becomes ``Conv(x, W)`` and a new ``Add`` reading the conv output and ``b``;
* in ``Add(Conv(x, W), Reshape(b, shape))`` with ``b`` a constant (an initializer or a
  ``Constant`` output) and ``shape`` putting its values on the channel axis, the ``Add`` reads
  ``b`` directly (conv output first) and the ``Reshape`` goes once nothing else reads it.

Either way the ``Add`` carries ``meta["bias_of"] = conv op name``. The ``Add`` of a 1-D bias to
an ``[N, C, ...]`` tensor no longer broadcasts as ONNX would: the IR is analysed, never run, and
``bias_of`` says how to read it. ``ConvTranspose`` is handled like ``Conv``. A new ``Add`` keeps
the module path and class of its conv; op indices are renumbered to stay a topological order.
"""

from __future__ import annotations

import logging
from typing import TypeGuard

from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
from padiff_ir.ir.passes._pass import (
    DEFAULT_DOMAINS,
    PassResult,
    constant_value,
    is_constant,
    renumber,
    unique_name,
)

__all__ = ["conv_bias_split"]

logger = logging.getLogger(__name__)

CONV_TYPES = ("Conv", "ConvTranspose")


def _is_conv(op: OpNode | None) -> TypeGuard[OpNode]:
    return op is not None and op.op_type in CONV_TYPES and op.domain in DEFAULT_DOMAINS


def _split_bias(graph: Graph, conv: OpNode, taken_ops: set[str]) -> OpNode:
    """Drop ``conv``'s bias input; return the ``Add`` that now adds it (new tensor into graph)."""
    bias, output = conv.inputs[2], conv.outputs[0]
    raw = unique_name(graph.tensors, f"{output}.conv")
    template = graph.tensors.get(output)
    graph.tensors[raw] = TensorInfo(
        raw, shape=template.shape if template else None, dtype=template.dtype if template else None
    )
    conv.inputs = conv.inputs[:2]
    conv.outputs = (raw, *conv.outputs[1:])
    name = unique_name(taken_ops, f"{conv.name}.bias_add")
    taken_ops.add(name)
    return OpNode(
        name,
        "Add",
        domain=conv.domain,
        inputs=(raw, bias),
        outputs=(output,),
        module_path=conv.module_path,
        module_class=conv.module_class,
        index=conv.index,
        kind=conv.kind,
        meta={"bias_of": conv.name},
    )


def _conv_rank(graph: Graph, conv: OpNode) -> int | None:
    """Rank of the conv output: from its shape, its weight's or its ``kernel_shape``."""
    for tensor in (conv.outputs[0], conv.inputs[1] if len(conv.inputs) > 1 else ""):
        info = graph.tensors.get(tensor)
        if info is not None and info.shape is not None:
            return len(info.shape)
    kernel = conv.attributes.get("kernel_shape")
    return len(kernel) + 2 if kernel is not None else None


def _reshape_target(graph: Graph, reshape: OpNode, channels: int | None) -> list[int] | None:
    """The shape ``reshape`` makes, from shape inference or its constant shape input."""
    info = graph.tensors.get(reshape.outputs[0])
    if info is not None and info.shape is not None:
        dims = [d for d in info.shape if isinstance(d, int)]
        if len(dims) == len(info.shape):
            return dims
    value = constant_value(graph, reshape.inputs[1]) if len(reshape.inputs) > 1 else None
    if value is None or value.ndim != 1:
        return None
    dims = [int(d) for d in value]
    if dims.count(-1) == 1 and channels is not None:
        dims = [channels if d == -1 else d for d in dims]
    return None if any(d <= 0 for d in dims) else dims


def _channel_bias(graph: Graph, reshape: OpNode | None, conv: OpNode) -> str | None:
    """The constant ``reshape`` spreads on ``conv``'s channel axis, or ``None``."""
    if (
        reshape is None
        or reshape.op_type != "Reshape"
        or reshape.domain not in DEFAULT_DOMAINS
        or not reshape.inputs
        or not is_constant(graph, reshape.inputs[0])
    ):
        return None
    bias = graph.tensors[reshape.inputs[0]]
    channels = None
    if bias.shape is not None:
        if len(bias.shape) != 1:
            return None
        channels = bias.shape[0] if isinstance(bias.shape[0], int) else None
    rank = _conv_rank(graph, conv)
    target = _reshape_target(graph, reshape, channels)
    if rank is None or target is None or not 2 <= len(target) <= rank:
        return None
    channel_axis = 1 - (rank - len(target))  # the target broadcasts from the right
    if channel_axis < 0 or any(d != 1 for i, d in enumerate(target) if i != channel_axis):
        return None
    if channels is not None and target[channel_axis] != channels:
        return None
    return bias.name


def conv_bias_split(graph: Graph) -> PassResult:
    """Split conv biases into a separate ``Add`` reading the bias itself (module docstring).

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> conv = OpNode("conv", "Conv", inputs=("x", "w", "b"), outputs=("y",))
        >>> tensors = {n: TensorInfo(n) for n in ("x", "y")}
        >>> tensors.update({n: TensorInfo(n, is_initializer=True) for n in ("w", "b")})
        >>> result = conv_bias_split(Graph([conv], tensors, ["x"], ["y"]))
        >>> [(op.op_type, op.inputs, op.outputs) for op in result.graph]
        [('Conv', ('x', 'w'), ('y.conv',)), ('Add', ('y.conv', 'b'), ('y',))]
        >>> result.graph.ops["conv.bias_add"].meta
        {'bias_of': 'conv'}
    """
    result = graph.copy()
    taken_ops = set(result.ops)
    added: list[OpNode] = []
    after: dict[str, int] = {}
    for op in result.topological_order():
        if _is_conv(op) and len(op.inputs) > 2 and op.inputs[2]:
            add = _split_bias(result, op, taken_ops)
            added.append(add)
            after[add.name] = 1

    rewired: dict[str, set[str]] = {}  # Reshape name -> the Adds that no longer read it
    for op in result.topological_order():
        if op.op_type != "Add" or op.domain not in DEFAULT_DOMAINS or len(op.inputs) != 2:
            continue
        for side in (0, 1):
            conv, reshape = result.producer(op.inputs[side]), result.producer(op.inputs[1 - side])
            # a conv split above no longer makes the tensor its stale producer entry names
            if reshape is None or not _is_conv(conv) or conv.outputs[0] != op.inputs[side]:
                continue
            bias = _channel_bias(result, reshape, conv)
            if bias is None:
                continue
            op.inputs = (op.inputs[side], bias)
            op.meta["bias_of"] = conv.name
            rewired.setdefault(reshape.name, set()).add(op.name)
            break

    removed = [
        name
        for name, adds in rewired.items()
        if result.ops[name].outputs[0] not in result.outputs
        and set(result.tensors[result.ops[name].outputs[0]].consumers) <= adds
    ]
    if not added and not rewired:
        return PassResult(result, False)
    if added:
        renumber([*result.ops.values(), *added], after)
    result.replace_ops(removed, added)
    logger.debug(
        "conv_bias_split: split %d conv biases, normalised %d bias adds",
        len(added),
        sum(len(adds) for adds in rewired.values()),
    )
    return PassResult(result, True)
