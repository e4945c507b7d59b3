"""What every pass shares: :class:`PassResult` and helpers to inspect and edit a graph copy.

A pass is a pure function ``graph -> PassResult``: it copies the graph (:meth:`Graph.copy`),
edits the copy in one batch (:meth:`Graph.replace_ops` refreshes producers and consumers once,
whatever the number of ops touched) and never mutates its input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.ir.graph import Graph, OpNode

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping

__all__ = [
    "DEFAULT_DOMAINS",
    "Pass",
    "PassResult",
    "constant_value",
    "is_constant",
    "onnx_dtype_name",
    "origins",
    "renumber",
    "unique_name",
]

logger = logging.getLogger(__name__)

#: Domains of the standard ONNX ops (``""`` and its long spelling).
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class PassResult:
    """What a pass returns.

    Attributes:
        graph: the new graph (a copy: the pass's input is left untouched).
        modified: whether the pass changed anything.
    """

    graph: Graph
    modified: bool


#: A pass: a pure function from a graph to a :class:`PassResult`.
Pass = Callable[[Graph], PassResult]


def is_constant(graph: Graph, tensor: str) -> bool:
    """Whether ``tensor`` is an initializer or the output of a ``Constant`` op."""
    info = graph.tensors.get(tensor)
    if info is None:
        return False
    if info.is_initializer:
        return True
    producer = graph.producer(tensor)
    return producer is not None and producer.op_type == "Constant"


def constant_value(graph: Graph, tensor: str) -> np.ndarray | None:
    """The value of ``tensor`` when a ``Constant`` op makes it, else ``None``.

    Initializer values are not part of the IR, so they give ``None`` too.
    """
    producer = graph.producer(tensor)
    if producer is None or producer.op_type != "Constant":
        return None
    attrs = producer.attributes
    value: Any
    for key in ("value", "value_ints", "value_floats", "value_int", "value_float"):
        if key in attrs:
            value = attrs[key]
            break
    else:
        return None
    try:
        return np.asarray(value)
    except (TypeError, ValueError):  # a sparse tensor or a string: not a number we can use
        return None


def onnx_dtype_name(elem_type: int) -> str | None:
    """The numpy dtype name (as :class:`TensorInfo` stores it) of an ONNX element type."""
    from onnx import helper

    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(int(elem_type))).name)
    except (KeyError, TypeError, ValueError):
        return None


def origins(op: OpNode) -> list[str]:
    """Names of the original ops ``op`` stands for (its ``meta["fused_from"]``, else itself)."""
    return list(op.meta.get("fused_from", [op.name]))


def unique_name(taken: Container[str], base: str) -> str:
    """``base``, or ``base`` with the first free numeric suffix when ``taken`` holds it."""
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def renumber(ops: Iterable[OpNode], after: Mapping[str, int]) -> None:
    """Give ``ops`` the indices ``0..n-1`` in topological order.

    Each op keeps its place by its current ``index``; ops sharing an index (an op split in two)
    are ordered by ``after[op.name]`` (``0`` when absent), which must list a producer before
    its readers.
    """
    ordered = sorted(ops, key=lambda op: (op.index, after.get(op.name, 0)))
    for index, op in enumerate(ordered):
        op.index = index
