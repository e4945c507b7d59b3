"""Tell which framework a model object belongs to, without importing frameworks needlessly."""

from __future__ import annotations

import os
import sys
from typing import Any

from padiff_ir.errors import ModelTypeError

__all__ = ["detect_framework"]


def _is_instance(obj: Any, module: str, qualname: str) -> bool:
    """isinstance check that imports nothing: only true if ``module`` is already imported."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls: Any = mod
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            return False
    return isinstance(obj, cls)


def detect_framework(model: Any) -> str:
    """``"torch"``, ``"paddle"`` or ``"onnx"`` for a model object or an ``.onnx`` path.

    Raises:
        ModelTypeError: the object is none of those.

    Examples:
        >>> detect_framework("model.onnx")
        'onnx'
    """
    if isinstance(model, (str, os.PathLike)):
        if str(model).endswith(".onnx"):
            return "onnx"
        raise ModelTypeError(
            f"{os.fspath(model)!r} is not an .onnx file; pass a torch.nn.Module, "
            "a paddle.nn.Layer, an onnx.ModelProto or a path to an .onnx file"
        )
    if _is_instance(model, "torch.nn", "Module"):
        return "torch"
    if _is_instance(model, "paddle.nn", "Layer"):
        return "paddle"
    if _is_instance(model, "onnx", "ModelProto"):
        return "onnx"
    wrapped = getattr(model, "model", None)
    if wrapped is not None and wrapped is not model and type(model).__name__ == "PadiffModel":
        return detect_framework(wrapped)
    raise ModelTypeError(
        f"cannot tell the framework of {type(model).__module__}.{type(model).__qualname__}: "
        "pass a torch.nn.Module, a paddle.nn.Layer, an onnx.ModelProto or a path to an .onnx file"
    )
