"""Exporters: a torch module, a paddle layer or an ONNX file to an attributed ONNX graph.

:func:`export` detects the framework from the object and returns an :class:`ExportedGraph` whose
every node names the module it came from (stored in the ONNX file itself). Exports are cached
(:data:`export_cache`): a model exported before with the same structure, code and input
signature gets the cached graph with its current weights.
"""

from __future__ import annotations

from padiff_ir.exporters._cache import ExportCache, export_cache, stale_parameters
from padiff_ir.exporters._export import (
    FRAMEWORK_LOCK,
    export,
    export_pair,
    exporter_name,
    load_onnx,
)
from padiff_ir.exporters._graph import (
    FRAMEWORK_KEY,
    MODULE_CLASS_KEY,
    MODULE_PATH_KEY,
    MODULES_KEY,
    PARAMETERS_KEY,
    ExportedGraph,
)
from padiff_ir.frameworks.detect import detect_framework

__all__ = [
    "FRAMEWORK_KEY",
    "FRAMEWORK_LOCK",
    "MODULES_KEY",
    "MODULE_CLASS_KEY",
    "MODULE_PATH_KEY",
    "PARAMETERS_KEY",
    "ExportCache",
    "ExportedGraph",
    "detect_framework",
    "export_cache",
    "export",
    "export_pair",
    "exporter_name",
    "load_onnx",
    "stale_parameters",
]
