"""padiff-ir: tell whether a torch model and a paddle model compute the same thing, and where not.

Both models are exported to ONNX with every node attributed to the module it came from, turned
into a framework-neutral graph IR, matched and run node by node.

Importing ``padiff_ir`` imports neither torch nor paddle; each framework is imported when first
needed.

Examples:
    Export a model, see which module each ONNX node came from::

        >>> import torch
        >>> import padiff_ir
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> exported = padiff_ir.export(model, torch.zeros(2, 4))
        >>> sorted(set(exported.node_modules.values()))
        ['0', '1']
        >>> graph = padiff_ir.canonicalize(padiff_ir.build_graph(exported))
        >>> [op.op_type for op in graph.data_ops()]
        ['MatMul', 'Add', 'Relu']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    # export
    "ExportedGraph",
    "export",
    # graph IR
    "Graph",
    "build_graph",
    "canonicalize",
    # runtime
    "ActivationStore",
    "run_all",
    # errors
    "ExecutionError",
    "ExportError",
    "IRError",
    "InputError",
    "MatchError",
    "ModelTypeError",
    "PadiffError",
    "WeightAssignError",
]

_LAZY = {
    "ExportedGraph": "padiff_ir.exporters",
    "export": "padiff_ir.exporters",
    "Graph": "padiff_ir.ir",
    "build_graph": "padiff_ir.ir",
    "canonicalize": "padiff_ir.ir",
    "ActivationStore": "padiff_ir.runtime",
    "run_all": "padiff_ir.runtime",
}

from padiff_ir.errors import (  # noqa: E402
    ExecutionError,
    ExportError,
    InputError,
    IRError,
    MatchError,
    ModelTypeError,
    PadiffError,
    WeightAssignError,
)

if TYPE_CHECKING:
    from padiff_ir.exporters import ExportedGraph, export
    from padiff_ir.ir import Graph, build_graph, canonicalize
    from padiff_ir.runtime import ActivationStore, run_all


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'padiff_ir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
