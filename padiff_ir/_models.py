"""Resolve model specifications given on the command line or in benchmarks.

A specification is one of:

* ``path/to/model.onnx`` — an ONNX file;
* ``zoo:NAME[:SIDE[:SIZE]]`` — a model of the built-in zoo (SIDE ``torch`` or ``paddle``,
  SIZE ``tiny`` or ``base``), e.g. ``zoo:vitpose:paddle``;
* ``package.module:attribute`` — an importable model object, or a zero-argument callable
  returning one (a class or a factory function).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from padiff_ir.errors import ModelTypeError

__all__ = ["load_model_spec", "parse_input_shapes"]


def load_model_spec(spec: str) -> tuple[Any, dict[str, Any] | None]:
    """The model a specification names, and the zoo's example inputs when it comes from the zoo.

    Examples:
        >>> load_model_spec("x.onnx")
        ('x.onnx', None)
    """
    if spec.endswith(".onnx"):
        return spec, None
    if spec.startswith("zoo:"):
        from padiff_ir.zoo import get_pair

        parts = spec.split(":")[1:]
        name = parts[0]
        side = parts[1] if len(parts) > 1 else "torch"
        size = parts[2] if len(parts) > 2 else "tiny"
        if side not in ("torch", "paddle"):
            raise ModelTypeError(f"zoo side must be 'torch' or 'paddle', got {side!r} in {spec!r}")
        pair = get_pair(name, size)
        return (pair.torch_model if side == "torch" else pair.paddle_model), dict(pair.inputs)
    if ":" not in spec:
        raise ModelTypeError(
            f"cannot read the model specification {spec!r}: use a path ending in .onnx, "
            "zoo:NAME[:torch|paddle[:SIZE]], or package.module:factory"
        )
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelTypeError(f"cannot read the model specification {spec!r}: use "
                             "package.module:factory (both parts)")
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:  # modules in the current folder are found, as with ``python -m``
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelTypeError(f"cannot import {module_name!r} for model {spec!r}: {err}") from err
    finally:
        if added:
            sys.path.remove(cwd)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as err:
            raise ModelTypeError(f"{module_name!r} has no attribute {attribute!r}") from err
    if callable(target) and not _is_model(target):
        try:
            target = target()
        except Exception as err:
            raise ModelTypeError(f"calling {spec} to build the model failed: "
                                 f"{type(err).__name__}: {err}") from err
    if not _is_model(target):
        raise ModelTypeError(f"{spec} gives a {type(target).__name__}, not a torch.nn.Module or "
                             "a paddle.nn.Layer: name a model class or a function returning one")
    return target, None


def _is_model(obj: Any) -> bool:
    from padiff_ir.exporters import detect_framework

    try:
        detect_framework(obj)
    except ModelTypeError:
        return False
    return not isinstance(obj, (str, os.PathLike))


def parse_input_shapes(specs: list[str], dtype: str = "float32", seed: int = 0) -> dict[str, Any]:
    """Random inputs from ``NAME=D0,D1,...[:DTYPE]`` specifications.

    Examples:
        >>> arrays = parse_input_shapes(["x=2,3", "ids=2,4:int64"])
        >>> {k: (v.shape, str(v.dtype)) for k, v in arrays.items()}
        {'x': ((2, 3), 'float32'), 'ids': ((2, 4), 'int64')}
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    inputs: dict[str, Any] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not name:
            raise ModelTypeError(f"input shape {spec!r} must look like NAME=D0,D1,...[:DTYPE]")
        dims, _, kind = rest.partition(":")
        kind = kind or dtype
        try:
            shape = tuple(int(d) for d in dims.split(",") if d)
        except ValueError as err:
            raise ModelTypeError(
                f"input shape {spec!r} has a dimension that is no integer"
            ) from err
        if any(d < 0 for d in shape):
            raise ModelTypeError(f"input shape {spec!r} has a negative dimension")
        try:
            numpy_dtype = np.dtype(kind)
        except TypeError as err:
            raise ModelTypeError(f"input shape {spec!r}: {kind!r} is no dtype (use float32, "
                                 "float64, int64...)") from err
        if numpy_dtype.kind in "iub":
            inputs[name] = rng.integers(0, 2, size=shape).astype(numpy_dtype)
        else:
            inputs[name] = rng.standard_normal(shape).astype(numpy_dtype)
    return inputs
