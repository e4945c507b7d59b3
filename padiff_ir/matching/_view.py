"""One side of a matching: which tensors are activations, and what each activation op does.

The two exporters agree on what a model computes, not on how they spell it, so matching looks at
a simplified view of each canonical graph, built once in a few linear sweeps:

* **activations**: a tensor is an activation when its value depends on a graph input through a
  value operand. Operands that only give a shape, axes or a dtype (``Reshape``'s target,
  ``Slice``'s bounds, ``CastLike``'s model, ``Shape``'s input...: :data:`META_SLOTS`) do not
  count, so torch's scale ``1 / sqrt(CastLike(Shape(q)[-1], q))`` is a constant, not an
  activation. Only ops making activations (*activation ops*) are matched; the rest is context.
* **parameter sources**: a non-activation operand of an activation op is traced back through
  the ops computing it to the parameters it comes from (``Slice(pos_embed)``, the LSTM's gate
  reordering ``Concat(Slice(weight_ih))``, ``Expand(cls_token)``).
* **families**: ``Reshape``/``Flatten``/``Squeeze``/``Unsqueeze`` are one ``reshape`` family,
  ``GlobalAveragePool`` and a spatial ``ReduceMean`` one ``global_avg_pool``, ``Gather`` of a
  constant index and ``Slice`` one ``select``; an elementwise op with one activation and a
  constant scalar is a ``scale`` (``Mul``, ``Div``) or a ``shift`` (``Add``, ``Sub``) by a known
  amount, or an ``identity`` when that amount is neutral (paddle's ``scale`` op adds ``0``).
* **kinds**: ``transparent`` ops only move values (the ``reshape``, ``transpose``, ``identity``
  and ``cast`` families); ``scalar`` ops apply a constant scalar; ``normal`` ops the rest.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir._paths import within_any
from padiff_ir.matching._consteval import ConstantFolder

if TYPE_CHECKING:
    from collections.abc import Iterable

    from padiff_ir.ir.graph import Graph, OpNode

__all__ = [
    "COMMUTATIVE",
    "META_SLOTS",
    "TRANSPARENT_FAMILIES",
    "SideView",
    "compatible_shapes",
    "numel",
]

logger = logging.getLogger(__name__)

_REDUCE_OPS = (
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
)

#: Input slots that give a shape, axes, bounds or a dtype, never a value.
META_SLOTS: dict[str, frozenset[int]] = {
    "Reshape": frozenset({1}),
    "Expand": frozenset({1}),
    "Tile": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Squeeze": frozenset({1}),
    "Unsqueeze": frozenset({1}),
    "Pad": frozenset({1, 2, 3}),
    "CastLike": frozenset({1}),
    "ConstantOfShape": frozenset({0}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "Split": frozenset({1}),
    "TopK": frozenset({1}),
    "OneHot": frozenset({1, 2}),
    "Range": frozenset({0, 1, 2}),
    "Shape": frozenset({0}),
    "Size": frozenset({0}),
    "Dropout": frozenset({1, 2}),
    "Trilu": frozenset({1}),
    "CumSum": frozenset({1}),
    **{op: frozenset({1}) for op in _REDUCE_OPS},
}

#: Families of ops that only move or copy values.
TRANSPARENT_FAMILIES = frozenset({"reshape", "transpose", "identity", "cast"})

#: Families whose activation operands may come in any order.
COMMUTATIVE = frozenset({"Add", "Mul", "Sum", "Max", "Min", "Mean", "And", "Or", "Xor", "Equal"})

_RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
#: Op types :meth:`SideView._classify` leaves as they are.
_PLAIN = frozenset(
    {
        "MatMul",
        "Softmax",
        "LayerNormalization",
        "BatchNormalization",
        "Relu",
        "Gelu",
        "Erf",
        "Tanh",
        "Sigmoid",
        "Conv",
        "ConvTranspose",
        "Concat",
        "MaxPool",
        "AveragePool",
        "Sqrt",
        "Exp",
        "Log",
        "Pow",
        "Where",
        "LSTM",
    }
)
_SCALAR_BINARY = frozenset({"Add", "Sub", "Mul", "Div"})
_MAX_SOURCE_WALK = 256


def numel(shape: tuple[Any, ...] | None) -> int | None:
    """Number of elements of a static shape; ``None`` when a dimension is unknown."""
    if shape is None:
        return None
    dims = [d for d in shape if isinstance(d, int)]
    return math.prod(dims) if len(dims) == len(shape) else None


def compatible_shapes(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    """Same rank and no two known dimensions that differ (unknown ones match anything)."""
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    return all(not (isinstance(x, int) and isinstance(y, int)) or x == y for x, y in zip(a, b))


@dataclass
class OpFacts:
    """What matching needs to know of one activation op.

    Attributes:
        family: see the module docstring.
        kind: ``transparent``, ``scalar`` or ``normal``.
        act_slots: input slots reading activations, in order.
        const_slots: value slots reading non-activations (parameters, constants), in order.
        sources: slot -> parameter tensor names it is computed from (operand order).
        scalar: the amount of a ``scale``/``shift`` op, when known.
        select: normalised ``(axis, start, stop, step)`` of a ``select`` op, when known.
    """

    family: str
    kind: str
    act_slots: tuple[int, ...]
    const_slots: tuple[int, ...]
    sources: dict[int, tuple[str, ...]] = field(default_factory=dict)
    scalar: float | None = None
    select: tuple[int, ...] | None = None


class SideView:
    """Activation ops of one canonical graph, with their facts, order and consumers.

    Attributes:
        graph: the canonical graph.
        order: activation op names in topological order.
        rank: op name -> position in ``order``.
        facts: op name -> :class:`OpFacts`.
        act: names of the activation tensors.
        consumers: activation tensor -> ``(op name, act ordinal)`` of the activation ops reading
            it (the ordinal is the operand's position among the op's activation operands).
        ignored: ops excluded from matching (in modules the layer map ignores).
    """

    def __init__(self, graph: Graph, ignored_modules: Iterable[str] = ()) -> None:
        self.graph = graph
        self.folder = ConstantFolder(graph)
        prefixes = tuple(m for m in ignored_modules)
        self.act: set[str] = {t for t in graph.inputs}
        self.order: list[str] = []
        self.facts: dict[str, OpFacts] = {}
        self.consumers: dict[str, list[tuple[str, int]]] = {}
        self.ignored: set[str] = set()
        self._sources: dict[str, tuple[str, ...]] = {}
        act = self.act
        self._producer: dict[str, str] = {}
        self._outputs: dict[str, tuple[str, ...]] = {}
        for op in graph.topological_order():
            if op.kind != "data":
                continue  # shape arithmetic and constants never carry activations
            meta = META_SLOTS.get(op.op_type)
            for i, t in enumerate(op.inputs):
                if t in act and (meta is None or i not in meta):
                    break
            else:
                continue
            outputs = tuple(t for t in op.outputs if t)
            act.update(outputs)
            self._outputs[op.name] = outputs
            self._producer.update(dict.fromkeys(outputs, op.name))
            self.order.append(op.name)
            if prefixes and within_any(op.module_path, prefixes):
                self.ignored.add(op.name)
        self.rank = {name: i for i, name in enumerate(self.order)}
        self._inputs: dict[str, tuple[str, ...]] = {}
        consumers = self.consumers
        for name in self.order:
            op = graph.ops[name]
            facts = self._facts(op)
            self.facts[name] = facts
            inputs = tuple(op.inputs[slot] for slot in facts.act_slots)
            self._inputs[name] = inputs
            for ordinal, tensor in enumerate(inputs):
                readers = consumers.get(tensor)
                if readers is None:
                    consumers[tensor] = [(name, ordinal)]
                else:
                    readers.append((name, ordinal))

    # -- queries ---------------------------------------------------------------------------
    def op(self, name: str) -> OpNode:
        return self.graph.ops[name]

    def shape(self, tensor: str) -> tuple[Any, ...] | None:
        info = self.graph.tensors.get(tensor)
        return None if info is None else info.shape

    def producer(self, tensor: str) -> str | None:
        """The activation op making ``tensor`` (``None`` for inputs and constants)."""
        return self._producer.get(tensor)

    def act_inputs(self, name: str) -> tuple[str, ...]:
        """The op's activation operands, in slot order."""
        return self._inputs[name]

    def act_outputs(self, name: str) -> tuple[str, ...]:
        """The op's outputs (all activations: an op reading one makes only activations)."""
        return self._outputs[name]

    def param_sources(self, tensor: str) -> tuple[str, ...]:
        """Parameter tensors ``tensor`` is computed from, in operand order (itself if one)."""
        cached = self._sources.get(tensor)
        if cached is not None:
            return cached
        found: list[str] = []
        stack, seen = [tensor], set[str]()
        while stack and len(seen) < _MAX_SOURCE_WALK:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            info = self.graph.tensors.get(name)
            if info is None:
                continue
            if info.param_name is not None:
                found.append(name)
                continue
            producer = self.graph.producer(name)
            if producer is None:
                continue
            meta = META_SLOTS.get(producer.op_type, frozenset())
            stack.extend(
                reversed(
                    [
                        t
                        for i, t in enumerate(producer.inputs)
                        if t and i not in meta and t not in self.act
                    ]
                )
            )
        result = tuple(dict.fromkeys(found))
        self._sources[tensor] = result
        return result

    # -- facts -----------------------------------------------------------------------------
    def _facts(self, op: OpNode) -> OpFacts:
        meta = META_SLOTS.get(op.op_type, ())
        act, act_slots, const_slots = self.act, [], []
        sources = {}
        for i, t in enumerate(op.inputs):
            if not t or i in meta:
                continue
            if t in act:
                act_slots.append(i)
                continue
            const_slots.append(i)
            found = self.param_sources(t)
            if found:
                sources[i] = found
        facts = OpFacts(
            family=op.op_type,
            kind="normal",
            act_slots=tuple(act_slots),
            const_slots=tuple(const_slots),
            sources=sources,
        )
        if op.op_type not in _PLAIN:
            self._classify(op, facts)
        return facts

    def _classify(self, op: OpNode, facts: OpFacts) -> None:
        kind = op.op_type
        if kind in _RESHAPES:
            facts.family, facts.kind = "reshape", "transparent"
        elif kind == "Transpose":
            facts.family, facts.kind = "transpose", "transparent"
        elif kind in ("Identity", "Dropout"):
            facts.family, facts.kind = "identity", "transparent"
        elif kind in ("Cast", "CastLike"):
            facts.family, facts.kind = "cast", "transparent"
        elif kind in ("Gather", "Slice") and facts.act_slots[:1] == (0,) and not facts.sources:
            facts.family = "select"
            facts.select = self._select(op)
        elif kind in ("GlobalAveragePool", "GlobalMaxPool") or kind in ("ReduceMean", "ReduceMax"):
            if self._is_global_pool(op):
                facts.family = (
                    "global_avg_pool" if "Av" in kind or "Mean" in kind else "global_max_pool"
                )
        elif (
            kind in _SCALAR_BINARY
            and len(facts.act_slots) == 1
            and len(facts.const_slots) == 1
            and not facts.sources
        ):
            self._scalar(op, facts)

    def _scalar(self, op: OpNode, facts: OpFacts) -> None:
        slot = facts.const_slots[0]
        operand = op.inputs[slot]
        size = numel(self.shape(operand))
        value = self.folder.value(operand)
        if value is not None:
            size = value.size
        if size is not None and size > 1:
            return  # a tensor operand: an ordinary binary op
        act_first = facts.act_slots[0] == 0
        facts.kind = "scalar"
        if value is None or value.size != 1 or not np.issubdtype(value.dtype, np.number):
            return
        c = float(value.reshape(()))
        if op.op_type == "Mul" or (op.op_type == "Div" and act_first and c != 0):
            facts.family, facts.scalar = "scale", c if op.op_type == "Mul" else 1.0 / c
        elif op.op_type == "Add" or (op.op_type == "Sub" and act_first):
            facts.family, facts.scalar = "shift", c if op.op_type == "Add" else -c
        else:
            return
        neutral = 1.0 if facts.family == "scale" else 0.0
        if facts.scalar == neutral:
            facts.family, facts.kind = "identity", "transparent"

    def _is_global_pool(self, op: OpNode) -> bool:
        if op.op_type.startswith("Global"):
            return True
        shape = self.shape(op.inputs[0])
        if shape is None or len(shape) < 3 or not int(op.attributes.get("keepdims", 1)):
            return False
        axes: Any = op.attributes.get("axes")
        if axes is None and len(op.inputs) > 1 and op.inputs[1]:
            axes = self.folder.value(op.inputs[1])
        if axes is None:
            return False
        rank = len(shape)
        return sorted(int(a) % rank for a in np.ravel(axes)) == list(range(2, rank))

    def _select(self, op: OpNode) -> tuple[int, ...] | None:
        """``(axis, start, stop, step, squeezed)`` of a one-axis ``Gather``/``Slice``."""
        shape = self.shape(op.inputs[0])
        if shape is None:
            return None
        rank = len(shape)
        if op.op_type == "Gather":
            index = self.folder.value(op.inputs[1]) if len(op.inputs) > 1 else None
            if index is None or index.size != 1:
                return None
            axis = int(op.attributes.get("axis", 0)) % rank
            start = _normal_index(int(index.reshape(())), shape[axis])
            return None if start is None else (axis, start, start + 1, 1, index.ndim == 0)
        values = [self.folder.value(t) if t else None for t in op.inputs[1:5]]
        if len(values) < 2 or values[0] is None or values[1] is None:
            return None
        starts, stops = np.ravel(values[0]), np.ravel(values[1])
        if starts.size != 1:
            return None
        axes = np.ravel(values[2]) if len(values) > 2 and values[2] is not None else np.zeros(1)
        steps = np.ravel(values[3]) if len(values) > 3 and values[3] is not None else np.ones(1)
        axis = int(axes[0]) % rank
        start = _normal_index(int(starts[0]), shape[axis])
        stop = _normal_stop(int(stops[0]), shape[axis])
        if start is None or stop is None:
            return None
        return (axis, start, stop, int(steps[0]), 0)


def _normal_index(index: int, dim: Any) -> int | None:
    if index >= 0:
        return index
    return index + dim if isinstance(dim, int) else None


def _normal_stop(stop: int, dim: Any) -> int | None:
    if isinstance(dim, int):
        if stop < 0:
            stop += dim
        return max(0, min(stop, dim))
    return stop if 0 <= stop < 2**62 else None
