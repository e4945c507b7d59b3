"""Build the graph IR from a eager trace (:class:`padiff_ir.frameworks.trace.Trace`).

A model that cannot go through ONNX (or one compared in training mode) is matched on its eager
run instead: every innermost module call becomes the ONNX ops its class computes, so the
matcher sees the same vocabulary as in an export, and the computation between calls (found in
the autograd graph) becomes one op per autograd node.

* ``Linear``: ``MatMul(x, weight)`` with ``meta["weight_transposed"]`` (torch stores
  ``[out, in]``, paddle ``[in, out]``) and the bias ``Add``, as the canonical passes leave a
  ``Gemm``; convolutions ``Conv``/``ConvTranspose`` (``group`` read from the shapes) and the
  bias ``Add`` marked ``bias_of``; norms ``BatchNormalization`` (scale, bias, mean, variance),
  ``LayerNormalization``, ``GroupNormalization``; ``Embedding`` a ``Gather``; activations,
  pooling, dropout, flatten and identity their ONNX op.
* a module of any other class holding one 2-D ``weight`` (and a bias) that maps ``[..., in]``
  to ``[..., out]`` (an LLM's output head): a projection like ``Linear``, its layout read from
  the weight's shape (in a module tree without a run, its framework's ``Linear`` layout);
* a module of any other class: one ``Module`` op reading its inputs and its parameters in name
  order, ``meta["module_family"]`` its class family;
* a module listed in ``opaque`` (multi-head attention, recurrent layers, layers with a
  registered weight transform, black boxes): one ``Module`` op for the whole subtree, with
  ``meta["module_unit"]`` its family, reading every parameter inside it.

Each op carries its module path, class and ``meta["call"]``, the module's call index.
Containers make no op: their outputs are made by the ops inside them. Parameters are
initializer tensors named by their parameter name, so the matching's parameter pairs name the
model's parameters directly.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from padiff_ir._paths import leaf, strictly_within
from padiff_ir.frameworks.registry import FRAMEWORKS
from padiff_ir.ir.families import module_family
from padiff_ir.ir.graph import Graph, OpNode, TensorInfo

if TYPE_CHECKING:
    from padiff_ir.frameworks.trace import Trace, TracedCall, TracedOp

__all__ = ["graph_from_trace"]

logger = logging.getLogger(__name__)

#: Parameter-free families and their ONNX op.
_SIMPLE: Mapping[str, str] = {
    "relu": "Relu",
    "relu6": "Clip",
    "gelu": "Gelu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
    "logsoftmax": "LogSoftmax",
    "silu": "Silu",
    "hardswish": "HardSwish",
    "hardsigmoid": "HardSigmoid",
    "leakyrelu": "LeakyRelu",
    "elu": "Elu",
    "selu": "Selu",
    "softplus": "Softplus",
    "mish": "Mish",
    "dropout": "Dropout",
    "identity": "Identity",
    "flatten": "Flatten",
    "maxpool1d": "MaxPool",
    "maxpool2d": "MaxPool",
    "maxpool3d": "MaxPool",
    "avgpool1d": "AveragePool",
    "avgpool2d": "AveragePool",
    "avgpool3d": "AveragePool",
    "upsample": "Resize",
    "pixelshuffle": "DepthToSpace",
}
_ADAPTIVE_AVG = frozenset({"adaptiveavgpool1d", "adaptiveavgpool2d", "adaptiveavgpool3d"})
_NORMS: Mapping[str, str] = {
    "batchnorm": "BatchNormalization",
    "layernorm": "LayerNormalization",
    "groupnorm": "GroupNormalization",
    "instancenorm": "InstanceNormalization",
}
_NORM_ROLES = ("weight", "bias", "running_mean", "running_var")
_ROLE_ALIASES = {"_mean": "running_mean", "_variance": "running_var", "scale": "weight"}


class _Builder:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.ops: list[tuple[int, OpNode]] = []
        self.extra: dict[str, TensorInfo] = {}
        self.units: set[str] = set()

    def shape(self, tensor: str) -> tuple[Any, ...] | None:
        info = self.trace.tensors.get(tensor) or self.trace.parameters.get(tensor)
        return None if info is None else info.shape

    def own(self, path: str) -> dict[str, str]:
        """Role (last name component, aliases resolved) -> parameter name, held by ``path``."""
        roles: dict[str, str] = {}
        for name in self.trace.owners.get(path, ()):
            if name not in self.trace.parameters:
                continue
            role = self.trace.roles.get(name) or _ROLE_ALIASES.get(leaf(name), leaf(name))
            roles.setdefault(role, name)
        return roles

    def ordered(self, own: dict[str, str]) -> tuple[str, ...]:
        """A module's parameters in an order both frameworks agree on: known roles first, then
        by shape (names differ between ports)."""

        def key(item: tuple[str, str]) -> tuple[Any, ...]:
            role, name = item
            known = self.trace.roles.get(name)
            return (known is None, known or "", self.shape(name) or (), role)

        return tuple(name for _, name in sorted(own.items(), key=key))

    def subtree_params(self, path: str) -> list[str]:
        return sorted(n for n in self.trace.parameters if strictly_within(n, path))

    def add(
        self,
        seq: int,
        call: TracedCall,
        suffix: str,
        op_type: str,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        **meta: Any,
    ) -> str:
        name = f"{call.path or '<root>'}#{call.call}{suffix}"
        attributes = meta.pop("attributes", {})
        op = OpNode(
            name,
            op_type,
            attributes=attributes,
            inputs=inputs,
            outputs=outputs,
            module_path=call.path,
            module_class=call.class_name,
            meta={"call": call.call, **meta},
        )
        self.ops.append((seq, op))
        return name

    def temp(self, name: str, shape: tuple[Any, ...] | None) -> str:
        self.extra[name] = TensorInfo(name, shape=shape, dtype="float32")
        return name

    # -- one innermost call --------------------------------------------------------------
    def leaf(self, call: TracedCall, opaque: str | None) -> None:
        base = self.trace.base_layers.get(call.path, call.class_name)  # a Linear's subclass: linear
        family = module_family(base, self.trace.framework)
        acts, outs, seq = call.inputs, call.outputs, call.done
        if not outs:
            return
        if opaque is not None:
            self.units.add(call.path)
            self.add(
                seq,
                call,
                "",
                "Module",
                acts + tuple(self.subtree_params(call.path)),
                outs,
                module_unit=opaque,
                module_family=family,
            )
            return
        own = self.own(call.path)
        if family == "linear" and "weight" in own and acts:
            self.linear(call, own, seq)
        elif (
            family.startswith(("conv", "convtranspose"))
            and "weight" in own
            and acts
            and len(self.shape(own["weight"]) or ()) != 2  # GPT-2's Conv1D is a projection
        ):
            self.conv(call, family, own, seq)
        elif family in _NORMS and acts:
            self.norm(call, family, own, seq)
        elif family == "embedding" and "weight" in own and acts:
            self.add(seq, call, "", "Gather", (own["weight"], acts[0]), outs[:1])
        elif family in _SIMPLE and acts and not own:
            self.add(seq, call, "", _SIMPLE[family], acts[:1], outs[:1])
        elif family in _ADAPTIVE_AVG and acts and not own:
            spatial = (self.shape(outs[0]) or ())[2:]
            global_pool = bool(spatial) and all(d == 1 for d in spatial)
            self.add(
                seq,
                call,
                "",
                "GlobalAveragePool" if global_pool else "AdaptiveAveragePool",
                acts[:1],
                outs[:1],
            )
        elif (layout := self.projection(call, own)) is not None:
            self.linear(call, own, seq, transposed=layout)
        else:
            self.add(seq, call, "", "Module", acts + self.ordered(own), outs, module_family=family)

    def norm(self, call: TracedCall, family: str, own: dict[str, str], seq: int) -> None:
        """The norm's op, then the activation it applies itself (paddle's
        ``BatchNorm(act="relu")``: ``BatchNormalization`` then ``Relu``, as its export)."""
        output = call.outputs[0]
        params = tuple(own[r] for r in _NORM_ROLES if r in own)
        activation = _SIMPLE.get(self.trace.activations.get(call.path, ""))
        raw = self.temp(f"{output}/norm", self.shape(output)) if activation else output
        self.add(seq, call, "", _NORMS[family], (call.inputs[0], *params), (raw,))
        if activation:
            self.add(seq, call, "/act", activation, (raw,), (output,))

    def projection(self, call: TracedCall, own: dict[str, str]) -> bool | None:
        """Whether a layer of another class is a projection by its shapes (an LLM's output
        head holding one ``[in, out]`` or ``[out, in]`` weight): ``weight_transposed``, or
        ``None`` when it is not one (or a square weight leaves the layout open)."""
        if set(own) - {"weight", "bias"} or "weight" not in own or not call.inputs:
            return None
        weight = self.shape(own["weight"]) or ()
        x, y = self.shape(call.inputs[0]) or (), self.shape(call.outputs[0]) or ()
        if len(weight) != 2 or weight[0] == weight[1]:
            return None
        if not x and not y:  # a module tree without a run: the framework's Linear layout
            return FRAMEWORKS[self.trace.framework].linear_weight_transposed
        if not x or not y or x[:-1] != y[:-1]:
            return None
        if "bias" in own and (self.shape(own["bias"]) or ()) != (y[-1],):
            return None
        if tuple(weight) == (x[-1], y[-1]):
            return False
        return True if tuple(weight) == (y[-1], x[-1]) else None

    def linear(
        self, call: TracedCall, own: dict[str, str], seq: int, transposed: bool | None = None
    ) -> None:
        output = call.outputs[0]
        bias = own.get("bias")
        raw = self.temp(f"{output}/matmul", self.shape(output)) if bias else output
        if transposed is None:
            transposed = FRAMEWORKS[self.trace.framework].linear_weight_transposed
        self.add(
            seq,
            call,
            "/matmul",
            "MatMul",
            (call.inputs[0], own["weight"]),
            (raw,),
            weight_transposed=transposed,
        )
        if bias:
            self.add(seq, call, "/bias", "Add", (raw, bias), (output,))

    def conv(self, call: TracedCall, family: str, own: dict[str, str], seq: int) -> None:
        output = call.outputs[0]
        weight, bias = own["weight"], own.get("bias")
        transpose = family.startswith("convtranspose")
        w_shape = self.shape(weight) or ()
        channels = (self.shape(output) if transpose else self.shape(call.inputs[0])) or ()
        group = 1
        if len(channels) > 1 and len(w_shape) > 1 and w_shape[1]:
            group = max(1, int(channels[1]) // int(w_shape[1]))
        raw = self.temp(f"{output}/conv", self.shape(output)) if bias else output
        conv = self.add(
            seq,
            call,
            "/conv",
            "ConvTranspose" if transpose else "Conv",
            (call.inputs[0], weight),
            (raw,),
            attributes={"group": group},
        )
        if bias:
            self.add(seq, call, "/bias", "Add", (raw, bias), (output,), bias_of=conv)


def graph_from_trace(trace: Trace, opaque: Mapping[str, str] | None = None) -> Graph:
    """The graph IR of one traced run (see the module docstring).

    Args:
        trace: the run, from :func:`padiff_ir.frameworks.trace_model`.
        opaque: module path -> unit family of the modules to keep whole.

    Examples:
        >>> import torch
        >>> from padiff_ir.frameworks import trace_model
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> graph = graph_from_trace(trace_model(model, torch.zeros(2, 4)))
        >>> [(op.op_type, op.module_path) for op in graph.topological_order()]
        [('MatMul', '0'), ('Add', '0'), ('Relu', '1')]
    """
    opaque = dict(opaque or {})
    builder = _Builder(trace)
    calls = trace.calls
    hidden: set[int] = set()  # calls inside an opaque call
    unit_of: dict[int, str] = {}
    for call in calls:
        parent = call.parent
        if parent is not None and (parent in hidden or parent in unit_of):
            hidden.add(call.index)
        elif call.path in opaque:
            unit_of[call.index] = opaque[call.path]
    for call in calls:
        if call.index in hidden:
            continue
        if call.index in unit_of:
            builder.leaf(call, unit_of[call.index])
        elif not call.children:
            builder.leaf(call, None)
    for op in _merged_layouts(trace):
        if op.call is not None and (op.call in hidden or op.call in unit_of):
            continue
        owner = calls[op.call] if op.call is not None else None
        path = owner.path if owner is not None else ""
        node = OpNode(
            op.name,
            op.kind,
            inputs=op.inputs,
            outputs=(op.output,),
            module_path=path,
            module_class=owner.class_name if owner is not None else "",
            meta={"call": owner.call if owner is not None else 0, "autograd": list(op.nodes)},
        )
        if not op.nodes:  # made up by the caller (a static graph's join), not seen in a run
            node.meta["synthetic"] = True
        builder.ops.append((op.seq, node))
    return _assemble(trace, builder)


_LAYOUT = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"})


def _merged_layouts(trace: Trace) -> list[TracedOp]:
    """The trace's ops with each chain of layout ops through unnamed tensors made one op.

    Between autograd nodes the frameworks keep no shapes, and they split layout changes
    differently (torch ``view`` + ``transpose``, paddle ``flatten`` + ``transpose``); one op
    from the first named tensor to the next has shapes at both ends on both sides.
    """
    ops = list(trace.ops)
    readers: dict[str, int] = {}
    for op in ops:
        for tensor in op.inputs:
            readers[tensor] = readers.get(tensor, 0) + 1
    made = {op.output: i for i, op in enumerate(ops)}
    dropped: set[int] = set()
    for i, op in enumerate(ops):
        if op.kind not in _LAYOUT or len(op.inputs) != 1:
            continue
        source = op.inputs[0]
        j = made.get(source)
        info = trace.tensors.get(source)
        if (
            j is None
            or j in dropped
            or ops[j].kind not in _LAYOUT
            or len(ops[j].inputs) != 1
            or readers.get(source, 0) != 1
            or (info is not None and info.shape is not None)
        ):
            continue
        inner = ops[j]
        kind = "Transpose" if "Transpose" in (op.kind, inner.kind) else "Reshape"
        ops[i] = replace(op, kind=kind, inputs=inner.inputs, nodes=(*inner.nodes, *op.nodes))
        dropped.add(j)
    return [op for i, op in enumerate(ops) if i not in dropped]


def _assemble(trace: Trace, builder: _Builder) -> Graph:
    tensors: dict[str, TensorInfo] = {}
    for name, info in trace.tensors.items():
        tensors[name] = TensorInfo(name, shape=info.shape, dtype=info.dtype or None)
    for name, info in trace.parameters.items():
        tensors[name] = TensorInfo(
            name, shape=info.shape, dtype=info.dtype, param_name=name, is_initializer=True
        )
    tensors.update(builder.extra)
    ordered = _topological([op for _, op in sorted(builder.ops, key=lambda x: x[0])])
    produced: set[str] = set(trace.inputs) | set(trace.parameters)
    ops = []
    for index, op in enumerate(ordered):
        outputs = tuple(t for t in op.outputs if t not in produced)
        if not outputs:
            continue  # a unit returning its own input: nothing new
        produced.update(outputs)
        op.outputs = outputs
        op.index = index
        ops.append(op)
        for tensor in (*op.inputs, *outputs):
            if tensor and tensor not in tensors:
                tensors[tensor] = TensorInfo(tensor)
    for name in trace.inputs:
        tensors[name].is_input = True
    for name in trace.outputs:
        if name in tensors:
            tensors[name].is_output = True
    units = builder.units
    modules = {
        path: cls
        for path, cls in trace.modules.items()  # a unit's insides are its own
        if not any(strictly_within(path, u) for u in units) or path == ""
    }
    graph = Graph(
        ops,
        tensors,
        trace.inputs,
        trace.outputs,
        framework=trace.framework,
        modules=modules,
        meta={"source": "trace", "base_layers": dict(trace.base_layers)},
    )
    logger.debug(
        "graph of a %s trace: %d calls, %d ops", trace.framework, len(trace.calls), len(ops)
    )
    return graph


def _topological(ops: list[OpNode]) -> list[OpNode]:
    """``ops`` in a topological order, the given order breaking ties."""
    producer = {t: i for i, op in enumerate(ops) for t in op.outputs}
    waiting = [0] * len(ops)
    readers: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        for t in set(op.inputs):
            j = producer.get(t)
            if j is not None and j != i:
                waiting[i] += 1
                readers.setdefault(j, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(ops[i])
        for k in readers.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) != len(ops):  # a cycle (should not happen): keep the recorded order
        logger.warning("the traced graph has a cycle; keeping the recorded order")
        return ops
    return order
