"""Evaluate small constant subgraphs, so that constant operands can be compared across graphs.

Exporters compute the scalars of a model differently: torch's ``scaled_dot_product_attention``
builds its scale as ``1 / sqrt(sqrt(CastLike(Shape(q)[-1])))`` in the graph, paddle writes a
``Constant``. Matching ``Mul(x, c)`` on one side with ``Mul(x, c')`` on the other needs ``c`` and
``c'``: this module folds ``Constant`` ops, static ``Shape``/``Size`` (from the shapes in the
IR) and a few elementwise and indexing ops over them with numpy. Initializer values are not in
the IR, so a constant that depends on one stays unknown (``None``), as does anything over
:data:`MAX_ELEMENTS` elements or any op outside :data:`FOLDABLE`.

Evaluation is memoised per tensor and iterative (no recursion limit on long chains).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from padiff_ir.ir.graph import Graph, OpNode

__all__ = ["ConstantFolder", "MAX_ELEMENTS"]

logger = logging.getLogger(__name__)

#: Larger constants are not folded (they are weights or masks, not scalars).
MAX_ELEMENTS = 4096

_INT64_MAX = np.iinfo(np.int64).max


def _attr_value(op: OpNode) -> np.ndarray | None:
    attrs = op.attributes
    for key in ("value", "value_ints", "value_floats", "value_int", "value_float"):
        if key in attrs:
            try:
                value = np.asarray(attrs[key])
            except (TypeError, ValueError):
                return None
            if key == "value_float" or key == "value_floats":
                value = value.astype(np.float32)
            if key == "value_int" or key == "value_ints":
                value = value.astype(np.int64)
            return value
    return None


def _shape(graph: Graph, op: OpNode, _: list[np.ndarray]) -> np.ndarray | None:
    info = graph.tensors.get(op.inputs[0])
    if info is None or info.shape is None or not all(isinstance(d, int) for d in info.shape):
        return None
    dims = np.asarray(info.shape, dtype=np.int64)
    if op.op_type == "Size":
        return np.asarray(int(np.prod(dims)), dtype=np.int64)
    start = int(op.attributes.get("start", 0))
    end = op.attributes.get("end")
    return dims[start : None if end is None else int(end)]


def _gather(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    return np.take(args[0], args[1], axis=int(op.attributes.get("axis", 0)))


def _slice(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    data, starts, ends = args[0], args[1], args[2]
    axes = args[3] if len(args) > 3 else np.arange(len(starts))
    steps = args[4] if len(args) > 4 else np.ones(len(starts), dtype=np.int64)
    index: list[slice] = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        end = None if abs(int(end)) >= _INT64_MAX - 1 else int(end)
        index[int(axis)] = slice(int(start), end, int(step))
    return data[tuple(index)]


def _concat(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(args, axis=int(op.attributes.get("axis", 0)))


def _cast(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray | None:
    from onnx import helper

    if op.op_type == "CastLike":
        info = graph.tensors.get(op.inputs[1])
        return None if info is None or info.dtype is None else args[0].astype(info.dtype)
    return args[0].astype(helper.tensor_dtype_to_np_dtype(int(op.attributes["to"])))


def _unsqueeze(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    axes = args[1] if len(args) > 1 else op.attributes.get("axes", [])
    out = args[0]
    for axis in sorted(int(a) % (out.ndim + len(axes)) for a in np.ravel(axes)):
        out = np.expand_dims(out, axis)
    return out


def _squeeze(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    axes = args[1] if len(args) > 1 else op.attributes.get("axes")
    if axes is None:
        return np.squeeze(args[0])
    return np.squeeze(args[0], axis=tuple(int(a) for a in np.ravel(axes)))


def _reshape(graph: Graph, op: OpNode, args: list[np.ndarray]) -> np.ndarray:
    target = [int(d) for d in np.ravel(args[1])]
    target = [args[0].shape[i] if d == 0 else d for i, d in enumerate(target)]
    return args[0].reshape(target)


def _binary(fn: Callable[[Any, Any], Any]) -> Callable[[Graph, OpNode, list[np.ndarray]], Any]:
    return lambda graph, op, args: fn(args[0], args[1])


def _unary(fn: Callable[[Any], Any]) -> Callable[[Graph, OpNode, list[np.ndarray]], Any]:
    return lambda graph, op, args: fn(args[0])


#: Op type -> numpy implementation ``(graph, op, input values) -> value``.
FOLDABLE: dict[str, Callable[[Graph, OpNode, list[np.ndarray]], np.ndarray | None]] = {
    "Shape": _shape,
    "Size": _shape,
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Cast": _cast,
    "CastLike": _cast,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Identity": _unary(lambda x: x),
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(
        lambda a, b: a // b if np.issubdtype(np.result_type(a, b), np.integer) else np.divide(a, b)
    ),
    "Pow": _binary(np.power),
    "Max": _binary(np.maximum),
    "Min": _binary(np.minimum),
}

#: Inputs that only give a dtype or a shape (their value is not needed to fold the op).
_META_ONLY = {"Shape": (0,), "Size": (0,), "CastLike": (1,)}


class ConstantFolder:
    """Memoised values of the constant tensors of one graph (``None`` when unknown)."""

    __slots__ = ("_cache", "graph")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._cache: dict[str, np.ndarray | None] = {}

    def value(self, tensor: str) -> np.ndarray | None:
        """The value of ``tensor``, or ``None`` when it is not a small foldable constant."""
        if tensor in self._cache:
            return self._cache[tensor]
        stack = [tensor]
        while stack:
            name = stack[-1]
            if name in self._cache:
                stack.pop()
                continue
            op = self.graph.producer(name)
            if op is None or (op.op_type != "Constant" and op.op_type not in FOLDABLE):
                self._cache[name] = None
                stack.pop()
                continue
            meta = _META_ONLY.get(op.op_type, ())
            pending = [
                t for i, t in enumerate(op.inputs) if t and i not in meta and t not in self._cache
            ]
            if pending:
                if len(stack) > 10_000:  # a pathological chain: give up on this one
                    self._cache[name] = None
                    stack.pop()
                    continue
                stack.extend(pending)
                continue
            stack.pop()
            self._fold(op)
            self._cache.setdefault(name, None)
        return self._cache[tensor]

    def _fold(self, op: OpNode) -> None:
        if op.op_type == "Constant":
            values: list[np.ndarray | None] = [_attr_value(op)]
        else:
            meta = _META_ONLY.get(op.op_type, ())
            args = [
                None if i in meta or not t else self._cache.get(t) for i, t in enumerate(op.inputs)
            ]
            while args and args[-1] is None and not op.inputs[len(args) - 1]:
                args.pop()  # trailing omitted optional inputs
            if any(a is None for i, a in enumerate(args) if i not in meta):
                values = [None]
            else:
                try:
                    with np.errstate(all="ignore"):
                        result = FOLDABLE[op.op_type](self.graph, op, args)  # type: ignore[arg-type]
                    values = [None if result is None else np.asarray(result)]
                except Exception as err:  # an op we fold wrongly: leave the value unknown
                    logger.debug("cannot fold %s (%s): %s", op.name, op.op_type, err)
                    values = [None]
        value = values[0]
        if value is not None and value.size > MAX_ELEMENTS:
            value = None
        for out in op.outputs:
            if out:
                self._cache[out] = value
