"""Both models' floating inputs rounded the same way.

A float32 input fed to a float16 model takes float16's values; fed as is to a float32 model
on the other side, the two models would not see the same numbers (the native path's input
check then says that the data pipelines disagree, and no layer runs). Where the two models
compute in different dtypes, every floating input is rounded through both dtypes first, so
each side holds the same values, in its own model's dtype (a bfloat16 model's in ``ml_dtypes``'
bfloat16, :mod:`padiff_ir.frameworks.half`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from padiff_ir.frameworks._base import Framework
from padiff_ir.frameworks.half import held_in, is_floating, widened
from padiff_ir.frameworks.inputs import normalize_inputs
from padiff_ir.hints import DType, Inputs, Model

__all__ = ["Rounding", "input_rounding", "rounded", "rounded_inputs"]

#: ``(framework, dtype)`` pairs that every floating input is rounded through, on both sides.
Rounding = tuple[tuple[Framework, Any], ...]


def input_rounding(ops_a: Framework, model_a: Model, ops_b: Framework, model_b: Model) -> Rounding:
    """The dtypes both sides' floating inputs are rounded through: none when the two models
    compute in one dtype (or one has no floating parameter), else both."""
    dtype_a, dtype_b = ops_a.first_float(model_a)[0], ops_b.first_float(model_b)[0]
    if dtype_a is None or dtype_b is None:
        return ()
    if ops_a.dtype_label(dtype_a) == ops_b.dtype_label(dtype_b):
        return ()
    return ((ops_a, dtype_a), (ops_b, dtype_b))


def rounded(array: np.ndarray, rounding: Rounding) -> np.ndarray:
    """``array`` rounded through every dtype of ``rounding`` (unchanged when not floating)."""
    if not is_floating(array.dtype):
        return array
    array = widened(array)
    for framework, dtype in rounding:
        array = framework.to_numpy(framework.as_input(array, dtype, None))
    return array


def rounded_inputs(
    raw_a: Inputs, ops_a: Framework, model_a: Model, raw_b: Inputs, ops_b: Framework, model_b: Model
) -> tuple[Any, Any]:
    """Each side's inputs (as numpy, a dict or a list as given), floating ones rounded through
    both models' dtypes and held in their own model's (as the native path feeds them);
    ``raw_a``/``raw_b`` unchanged when every floating input already has the dtype the two
    models compute in."""
    rounding = input_rounding(ops_a, model_a, ops_b, model_b)
    dtype_a, dtype_b = ops_a.first_float(model_a)[0], ops_b.first_float(model_b)[0]
    if not rounding and not (
        _other_floats(raw_a, ops_a, dtype_a) or _other_floats(raw_b, ops_b, dtype_b)
    ):
        return raw_a, raw_b
    return (
        _in_dtype(raw_a, ops_a, dtype_a, rounding),
        _in_dtype(raw_b, ops_b, dtype_b, rounding),
    )


def _other_floats(raw: Inputs, ops: Framework, dtype: DType) -> bool:
    """Whether a floating input of ``raw`` has another dtype than ``dtype`` (None: no)."""
    if dtype is None:
        return False
    label = ops.dtype_label(dtype)
    return any(is_floating(a.dtype) and a.dtype.name != label for a in normalize_inputs(raw).arrays)


def _in_dtype(raw: Inputs, ops: Framework, dtype: DType, rounding: Rounding) -> Any:
    given = normalize_inputs(raw)
    arrays = [
        held_in(
            ops.to_numpy(ops.as_input(rounded(a, rounding), dtype, None)), ops.dtype_label(dtype)
        )
        if dtype is not None and is_floating(a.dtype)
        else a
        for a in given.arrays
    ]
    if given.keyword or isinstance(raw, Mapping):
        return {n: a for n, a in zip(given.names, arrays) if n is not None}
    return arrays
