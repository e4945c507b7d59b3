"""Tell which framework an object belongs to, without importing frameworks needlessly.

:func:`detect_framework` names the framework of a model (or ``"onnx"``) and refuses anything
else. The ``framework_of_*`` functions read the framework an arbitrary object *shows* by the
modules its type comes from, and answer ``None`` when it shows none or both: a tensor, module or
optimizer by its type; a container by its first items; a function by what it is bound to, closes
over or names (``torch.mean``). They import nothing, so an object of a framework not yet
imported shows nothing.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping
from typing import Any

from padiff_ir.errors import ModelTypeError
from padiff_ir.frameworks.registry import FRAMEWORKS
from padiff_ir.hints import Model

__all__ = ["detect_framework", "framework_of_callable", "framework_of_type", "framework_of_value"]

_BASES = ("Module", "Layer", "Optimizer")  # torch.nn.Module, paddle.nn.Layer, both optimizers


def _is_instance(obj: object, module: str, qualname: str) -> bool:
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


def detect_framework(model: Model) -> str:
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
    for spec in FRAMEWORKS.values():
        if _is_instance(model, *spec.model_class):
            return spec.name
    if _is_instance(model, "onnx", "ModelProto"):
        return "onnx"
    wrapped = getattr(model, "model", None)
    if wrapped is not None and wrapped is not model and type(model).__name__ == "PadiffModel":
        return detect_framework(wrapped)
    raise ModelTypeError(
        f"cannot tell the framework of {type(model).__module__}.{type(model).__qualname__}: "
        "pass a torch.nn.Module, a paddle.nn.Layer, an onnx.ModelProto or a path to an .onnx file"
    )


def framework_of_type(value: object) -> str | None:
    """``"torch"`` or ``"paddle"`` when the type of ``value`` is defined in that package.

    Examples:
        >>> import numpy as np
        >>> framework_of_type(np.zeros(2)) is None
        True
    """
    root = type(value).__module__.split(".")[0]
    return root if root in FRAMEWORKS else None


def framework_of_value(value: object) -> str | None:
    """``"torch"`` or ``"paddle"`` when ``value`` shows exactly one of them, else ``None``.

    A tensor, module, optimizer or framework module shows its framework; a mapping or sequence
    what its items show (the first eight, two levels deep); any other callable what
    :func:`framework_of_callable` finds.

    Examples:
        >>> import numpy as np
        >>> framework_of_value(np.zeros(2)) is None
        True
        >>> framework_of_value([1, "a", {"k": None}]) is None
        True
    """
    return _one(_shown_by_value(value))


def framework_of_callable(fn: object) -> str | None:
    """``"torch"`` or ``"paddle"`` when a function shows exactly one of them, else ``None``.

    A function shows what it is bound to (a loss module, an optimizer), what its closure holds
    (a target tensor) and the framework objects its code names among its globals
    (``torch.mean``).

    Examples:
        >>> framework_of_callable(len) is None
        True
        >>> framework_of_callable(lambda x: x.sum()) is None
        True
    """
    return _one(_shown_by_callable(fn))


def _one(found: set[str]) -> str | None:
    return found.pop() if len(found) == 1 else None


def _shown_by_value(value: object, depth: int = 0) -> set[str]:
    kind = framework_of_type(value)
    if kind is not None:
        return {kind}
    if isinstance(value, types.ModuleType):
        root = value.__name__.split(".")[0]
        return {root} if root in FRAMEWORKS else set()
    if depth >= 2:
        return set()
    if isinstance(value, Mapping):
        return set().union(*(_shown_by_value(v, depth + 1) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_shown_by_value(v, depth + 1) for v in value[:8]))
    for base in type(value).__mro__:  # a torch.nn.Module / paddle.nn.Layer subclass
        root = base.__module__.split(".")[0]
        if root in FRAMEWORKS and base.__name__ in _BASES:
            return {root}
    if callable(value) and depth < 2:
        return _shown_by_callable(value, depth + 1)
    return set()


def _shown_by_callable(fn: object, depth: int = 0) -> set[str]:
    found: set[str] = set()
    bound = getattr(fn, "__self__", None)
    if bound is not None and not isinstance(bound, types.ModuleType):
        found |= _shown_by_value(bound, depth)
    if isinstance(fn, types.FunctionType):
        for cell in fn.__closure__ or ():
            try:
                found |= _shown_by_value(cell.cell_contents, depth)
            except ValueError:  # an empty cell
                continue
        for name in fn.__code__.co_names:
            if name in fn.__globals__:
                value = fn.__globals__[name]
                if isinstance(value, types.ModuleType) or framework_of_type(value) is not None:
                    found |= _shown_by_value(value, depth + 1)
    return found
