"""Versions and opsets a result was produced with."""

from __future__ import annotations

import platform
import sys
from typing import Any

from padiff_ir.ir.graph import Graph

__all__ = ["environment"]


def environment(graph_a: Graph | None = None, graph_b: Graph | None = None) -> dict[str, Any]:
    """Framework versions (of those imported), Python, and the two graphs' opsets."""
    import numpy
    import onnx
    import onnxruntime

    import padiff_ir

    versions = {"padiff_ir": padiff_ir.__version__, "python": platform.python_version(),
                "numpy": numpy.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
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
