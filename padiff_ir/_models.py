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
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import InputError, ModelTypeError, OptionError

__all__ = [
    "InputSpec",
    "load_model_spec",
    "onnx_input_specs",
    "parse_input_shapes",
    "parse_input_specs",
    "parse_value_range",
    "random_inputs",
    "resolve_onnx_inputs",
]


def load_model_spec(spec: str) -> tuple[Any, dict[str, Any] | None]:
    """The model a specification names, and the zoo's example inputs when it comes from the zoo.

    Examples:
        >>> load_model_spec("x.onnx")
        ('x.onnx', None)
    """
    if spec.endswith(".onnx"):
        return spec, None
    if spec.startswith("zoo:"):
        from padiff_ir.zoo import PAIR_SIDES, get_pair

        parts = spec.split(":")[1:]
        name = parts[0]
        side = parts[1] if len(parts) > 1 else "torch"
        size = parts[2] if len(parts) > 2 else "tiny"
        if side not in PAIR_SIDES:
            raise ModelTypeError(f"zoo side must be 'torch' or 'paddle', got {side!r} in {spec!r}")
        pair = get_pair(name, size)
        return pair.model_of(side), dict(pair.inputs)
    if ":" not in spec:
        raise ModelTypeError(
            f"cannot read the model specification {spec!r}: use a path ending in .onnx, "
            "zoo:NAME[:torch|paddle[:SIZE]], or package.module:factory"
        )
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelTypeError(
            f"cannot read the model specification {spec!r}: use package.module:factory (both parts)"
        )
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
            reraise_interruption(err)
            raise ModelTypeError(
                f"calling {spec} to build the model failed: {type(err).__name__}: {err}"
            ) from err
    if not _is_model(target):
        raise ModelTypeError(
            f"{spec} gives a {type(target).__name__}, not a torch.nn.Module or "
            "a paddle.nn.Layer: name a model class or a function returning one"
        )
    return target, None


def _is_model(obj: Any) -> bool:
    from padiff_ir.exporters import detect_framework

    try:
        detect_framework(obj)
    except ModelTypeError:
        return False
    return not isinstance(obj, (str, os.PathLike))


@dataclass(frozen=True)
class InputSpec:
    """An input to generate: its name, shape and dtype.

    Attributes:
        name: the input's name.
        shape: its dimensions; a string is a dynamic dimension (its symbolic name, or ``"?"``).
        dtype: a numpy dtype name, or ``None`` when not given (``--input-shape x=2,3``).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str | None = None


def parse_input_specs(specs: list[str]) -> list[InputSpec]:
    """Input specifications from ``NAME=D0,D1,...[:DTYPE]`` strings.

    Examples:
        >>> [(s.name, s.shape, s.dtype) for s in parse_input_specs(["x=2,3", "ids=2,4:int64"])]
        [('x', (2, 3), None), ('ids', (2, 4), 'int64')]
    """
    import numpy as np

    parsed: list[InputSpec] = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not name:
            raise ModelTypeError(f"input shape {spec!r} must look like NAME=D0,D1,...[:DTYPE]")
        dims, _, kind = rest.partition(":")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d)
        except ValueError as err:
            raise ModelTypeError(
                f"input shape {spec!r} has a dimension that is no integer"
            ) from err
        if any(d < 0 for d in shape):
            raise ModelTypeError(f"input shape {spec!r} has a negative dimension")
        if kind:
            try:
                np.dtype(kind)
            except TypeError as err:
                raise ModelTypeError(
                    f"input shape {spec!r}: {kind!r} is no dtype (use float32, float64, int64...)"
                ) from err
        parsed.append(InputSpec(name, shape, kind or None))
    return parsed


def onnx_input_specs(path: str) -> list[InputSpec]:
    """The graph inputs an ONNX file declares (initializers excluded), in order.

    Raises:
        ModelTypeError: the file does not exist or is no ONNX model.
    """
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    if not os.path.isfile(path):
        raise ModelTypeError(f"ONNX file {path!r} does not exist")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:
        raise ModelTypeError(f"{path!r} is not a readable ONNX model: {err}") from err
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.shape.dim
        )
        try:
            dtype = str(tensor_dtype_to_np_dtype(tensor.elem_type))
        except (KeyError, ValueError):
            dtype = None
        specs.append(InputSpec(value.name, shape, dtype))
    return specs


def resolve_onnx_inputs(path: str, given: list[InputSpec]) -> list[InputSpec]:
    """The inputs of the ONNX file at ``path``: each from ``given`` when named there (its dtype
    from the file unless given), else as the file declares it.

    Raises:
        InputError: ``given`` names an input the file does not have (the file's inputs listed),
            or an input left to the file has a dynamic dimension (the input and dim named).
    """
    declared = onnx_input_specs(path)
    by_name = {spec.name: spec for spec in declared}
    listed = ", ".join(f"{s.name} {_shape_text(s.shape)}" for s in declared) or "none"
    for spec in given:
        if spec.name not in by_name:
            raise InputError(
                f"--input-shape {spec.name}: {path} has no input {spec.name!r}; "
                f"its inputs are: {listed}"
            )
    chosen = {spec.name: spec for spec in given}
    resolved = []
    for spec in declared:
        if spec.name in chosen:
            own = chosen[spec.name]
            resolved.append(InputSpec(spec.name, own.shape, own.dtype or spec.dtype))
            continue
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, str):
                raise InputError(
                    f"input {spec.name!r} of {path} has a dynamic dimension {axis} ({dim!r}, "
                    f"shape {_shape_text(spec.shape)}): give its shape with --input-shape "
                    f"{spec.name}=D0,D1,... or pass --inputs inputs.npz"
                )
        resolved.append(spec)
    return resolved


def _shape_text(shape: tuple[int | str, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def parse_value_range(text: str) -> tuple[float, float]:
    """``LOW,HIGH`` as two finite numbers with ``LOW < HIGH``.

    Examples:
        >>> parse_value_range("-1,1")
        (-1.0, 1.0)
    """
    low_text, sep, high_text = text.partition(",")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not sep or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise OptionError(
            f"--input-range {text!r}: give two finite numbers LOW,HIGH with "
            "LOW < HIGH, e.g. --input-range=-1,1 (ints are drawn in [LOW, HIGH))",
            option="--input-range",
        )
    return low, high


def random_inputs(
    specs: list[InputSpec],
    *,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Random arrays for ``specs``, drawn from a private generator seeded with ``seed``.

    Without ``value_range`` floats are standard normal and ints 0 or 1; with ``(low, high)``
    floats are uniform in [low, high) and ints drawn in [low, high). ``dtype`` is the dtype of
    a spec without one.

    Raises:
        OptionError: ``value_range`` holds no integer for an integer input.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    inputs: dict[str, Any] = {}
    for spec in specs:
        numpy_dtype = np.dtype(spec.dtype or dtype)
        shape = tuple(int(d) for d in spec.shape)
        if numpy_dtype.kind in "iub":
            low, high = (
                (0, 2)
                if value_range is None
                else (math.ceil(value_range[0]), math.ceil(value_range[1]))
            )
            if value_range is not None and low >= high:
                raise OptionError(
                    f"--input-range {value_range[0]:g},{value_range[1]:g} holds no "
                    f"integer for the {numpy_dtype} input {spec.name!r}; widen it",
                    option="--input-range",
                )
            inputs[spec.name] = rng.integers(low, high, size=shape).astype(numpy_dtype)
        elif value_range is None:
            inputs[spec.name] = rng.standard_normal(shape).astype(numpy_dtype)
        else:
            inputs[spec.name] = rng.uniform(*value_range, size=shape).astype(numpy_dtype)
    return inputs


def parse_input_shapes(
    specs: list[str],
    dtype: str = "float32",
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Random inputs from ``NAME=D0,D1,...[:DTYPE]`` specifications.

    Examples:
        >>> arrays = parse_input_shapes(["x=2,3", "ids=2,4:int64"])
        >>> {k: (v.shape, str(v.dtype)) for k, v in arrays.items()}
        {'x': ((2, 3), 'float32'), 'ids': ((2, 4), 'int64')}
    """
    return random_inputs(parse_input_specs(specs), seed=seed, value_range=value_range, dtype=dtype)
