"""Versions and opsets a result was produced with.

padiff-ir's own version comes from the installed package's metadata (never from importing
:mod:`padiff_ir`, which nothing inside the package may import).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from typing import Any

from padiff_ir.ir.graph import Graph

__all__ = ["UNKNOWN_VERSION", "environment", "padiff_ir_version"]

logger = logging.getLogger(__name__)

#: The version reported when padiff-ir runs from a source tree that was not installed.
UNKNOWN_VERSION = "0+unknown"


def padiff_ir_version() -> str:
    """The installed padiff-ir's version, or :data:`UNKNOWN_VERSION` when not installed."""
    try:
        return importlib.metadata.version("padiff-ir")
    except importlib.metadata.PackageNotFoundError:
        logger.debug("padiff-ir is not installed; its version is reported as %s", UNKNOWN_VERSION)
        return UNKNOWN_VERSION


def environment(graph_a: Graph | None = None, graph_b: Graph | None = None) -> dict[str, Any]:
    """Framework versions (of those imported), Python, and the two graphs' opsets."""
    import numpy
    import onnx
    import onnxruntime

    versions = {
        "padiff_ir": padiff_ir_version(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    for name in ("torch", "paddle", "paddle2onnx"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    env: dict[str, Any] = {"versions": versions}
    if graph_a is not None:
        env["opset_a"] = graph_a.meta.get("opset", {})
    if graph_b is not None:
        env["opset_b"] = graph_b.meta.get("opset", {})
    return env
