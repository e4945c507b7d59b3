"""Check the invariants of the graph IR, naming the op or tensor at fault.

Passes rely on these invariants and tests run :func:`lint` after every pass:

* ops are stored under their own names and have a known ``kind``;
* every op input is ``""`` (an omitted optional input) or a tensor of ``graph.tensors``: made by
  an op, a graph input, an initializer, or a known tensor without producer (an alias left by
  :func:`~padiff_ir.ir.passes.identity_alias`);
* no tensor is made by two ops;
* each tensor's ``producer`` and ``consumers`` agree with the ops, and the edges of ``graph.nx``
  are exactly ``(producer, consumer, tensor)`` for every tensor an op reads;
* the op graph is acyclic and op indices give a topological order;
* every graph input and output is a tensor of the graph.
"""

from __future__ import annotations

import logging

import networkx as nx

from padiff_ir.errors import IRError
from padiff_ir.ir.graph import OP_KINDS, Graph

__all__ = ["lint"]

logger = logging.getLogger(__name__)


def _check_ops(graph: Graph) -> dict[str, str]:
    """Check names, kinds, outputs and inputs; return tensor -> the op that makes it."""
    made_by: dict[str, str] = {}
    for key, op in graph.ops.items():
        if key != op.name:
            raise IRError(
                f"op {op.name!r} is stored under the name {key!r}: store each op "
                f"under its own name (graph.ops[op.name] = op)"
            )
        if op.kind not in OP_KINDS:
            raise IRError(
                f"op {op.name!r} ({op.op_type}) has kind {op.kind!r}; use one of {OP_KINDS}"
            )
        for out in op.outputs:
            if not out:
                continue
            if out in made_by:
                raise IRError(
                    f"tensor {out!r} is made by two ops, {made_by[out]!r} and "
                    f"{op.name!r} ({op.op_type}): rename one of the outputs"
                )
            made_by[out] = op.name
    for op in graph.ops.values():
        for name in op.inputs:
            if name and name not in graph.tensors:
                raise IRError(
                    f"op {op.name!r} ({op.op_type}) reads tensor {name!r}, which is "
                    f"neither made by an op, a graph input, an initializer nor a known "
                    f"tensor: fix the op's inputs or add the tensor to graph.tensors"
                )
    return made_by


def _check_tensors(graph: Graph, made_by: dict[str, str]) -> None:
    """Check that producers and consumers agree with the ops."""
    readers: dict[str, set[str]] = {}
    for op in graph.ops.values():
        for name in op.inputs:
            if name:
                readers.setdefault(name, set()).add(op.name)
    for key, info in graph.tensors.items():
        if key != info.name:
            raise IRError(
                f"tensor {info.name!r} is stored under the name {key!r}: store each "
                f"tensor under its own name"
            )
        if info.producer != made_by.get(key):
            raise IRError(
                f"tensor {key!r} names {info.producer!r} as its producer but op "
                f"{made_by.get(key)!r} makes it: edit ops through Graph.replace_ops, "
                f"which refreshes producers and consumers"
            )
        if set(info.consumers) != readers.get(key, set()):
            raise IRError(
                f"tensor {key!r} lists consumers {sorted(info.consumers)} but ops "
                f"{sorted(readers.get(key, set()))} read it: edit ops through "
                f"Graph.replace_ops, which refreshes producers and consumers"
            )
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        for name in names:
            if name not in graph.tensors:
                raise IRError(
                    f"graph {kind} {name!r} is not a tensor of the graph: add it to "
                    f"graph.tensors or drop it from graph.{kind}s"
                )


def _check_order(graph: Graph) -> None:
    """Check the networkx edges, acyclicity and the topological order of the indices."""
    expected = set()
    for op in graph.ops.values():
        for name in op.inputs:
            producer = graph.tensors[name].producer if name else None
            if producer is not None:
                expected.add((producer, op.name, name))
    g = graph.nx
    if set(g.nodes) != set(graph.ops):
        extra = sorted(set(g.nodes) ^ set(graph.ops))[:5]
        raise IRError(f"graph.nx nodes and graph.ops differ (e.g. {extra}): rebuild the graph")
    edges = set(g.edges(keys=True))
    if edges != expected:
        producer, consumer, tensor = sorted(edges ^ expected)[0]
        raise IRError(
            f"graph.nx edge {producer!r} -> {consumer!r} carrying {tensor!r} does not "
            f"match the ops' producers and consumers: rebuild the graph"
        )
    if not nx.is_directed_acyclic_graph(g):
        cycle = [edge[0] for edge in nx.find_cycle(g)]
        raise IRError(
            f"the op graph has a cycle through ops {cycle}: an op reads a tensor made "
            f"after it, directly or not"
        )
    for producer, consumer, tensor in sorted(expected, key=lambda edge: graph.ops[edge[1]].index):
        if graph.ops[producer].index >= graph.ops[consumer].index:
            raise IRError(
                f"op {consumer!r} (index {graph.ops[consumer].index}) reads {tensor!r} made by "
                f"op {producer!r} (index {graph.ops[producer].index}): op indices must be a "
                f"topological order; give the ops new indices in graph order"
            )


def lint(graph: Graph) -> None:
    """Check ``graph``'s invariants (see the module docstring); return ``None`` when they hold.

    Raises:
        IRError: the first invariant broken, naming the op or tensor at fault.

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> relu = OpNode("relu", "Relu", inputs=("x",), outputs=("y",))
        >>> lint(Graph([relu], {n: TensorInfo(n) for n in "xy"}, ["x"], ["y"]))
        >>> bad = OpNode("relu", "Relu", inputs=("x",), outputs=("y",), kind="weights")
        >>> lint(Graph([bad], {n: TensorInfo(n) for n in "xy"}, ["x"], ["y"]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        padiff_ir.errors.IRError: op 'relu' (Relu) has kind 'weights'; use one of ...
    """
    made_by = _check_ops(graph)
    _check_tensors(graph, made_by)
    _check_order(graph)
    logger.debug("lint: %d ops and %d tensors are consistent", len(graph.ops), len(graph.tensors))
