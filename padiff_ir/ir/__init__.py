"""Framework-neutral graph IR: ops and tensors on networkx, plus canonicalising passes."""

from __future__ import annotations

from padiff_ir.ir.build import build_graph
from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
from padiff_ir.ir.lint import lint
from padiff_ir.ir.passes import DEFAULT_PASSES, PassResult, canonicalize, run_passes
from padiff_ir.ir.trace_graph import graph_from_trace

__all__ = [
    # the IR
    "Graph",
    "OpNode",
    "TensorInfo",
    "build_graph",
    "graph_from_trace",
    # passes and invariants
    "DEFAULT_PASSES",
    "PassResult",
    "canonicalize",
    "lint",
    "run_passes",
]
