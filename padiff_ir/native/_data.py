"""Model inputs of the two sides: conversion to each framework, and the data-pipeline check.

``inputs`` is one set for both models (numpy arrays or tensors of either framework) or a
per-framework pair such as the seed's ``({'x': paddle_tensor}, {'x': torch_tensor})``, matched
to the models by tensor type (:func:`padiff_ir.frameworks.split_inputs`). Each side's tensors are
used as given when they already belong to its framework; anything else is converted (floating
values cast to the model's parameter dtype). Before any layer runs, the two sides' values are
compared (PaDiff's ``check_dataloader``): when two data pipelines disagree, that is reported
first, not a layer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import AutoDiffError
from padiff_ir.frameworks import Framework, framework_of_type, to_numpy
from padiff_ir.frameworks.rounding import Rounding, rounded
from padiff_ir.hints import Inputs, Model, Tensor
from padiff_ir.metrics import Tolerance, compare_arrays
from padiff_ir.native._slots import failed_metrics
from padiff_ir.native.diff_result import InputDiff

__all__ = ["FedInputs", "compare_inputs", "feed", "run_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FedInputs:
    """One model's call arguments and the values compared with the other side's.

    Attributes:
        args / kwargs: what the model is called with.
        values: ``(name, array)`` per tensor input, names ``#i`` for positions.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    values: tuple[tuple[str, np.ndarray], ...]

    def call(self, model: Model) -> Any:
        return model(*self.args, **self.kwargs)


def _is_array_like(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return True
    return framework_of_type(value) is not None and hasattr(value, "shape")


def _rounded(value: Tensor | np.ndarray, ops: Framework, name: str, rounding: Rounding) -> Any:
    """``value`` rounded through every dtype of ``rounding`` (unchanged when not floating)."""
    array = ops.to_numpy(value) if ops.is_tensor(value) else to_numpy(value, what=name)
    if not np.issubdtype(array.dtype, np.floating):
        return value
    return rounded(array, rounding)


def feed(
    inputs: Inputs, ops: Framework, model: Model, *, grad_inputs: bool, rounding: Rounding = ()
) -> FedInputs:
    """Turn one side's inputs into call arguments for ``model`` (see the module docstring).

    ``grad_inputs``: floating inputs become gradient-carrying leaves (sharing memory with the
    given tensors), so a model without parameters still has a backward pass. ``rounding``:
    floating inputs are rounded through these dtypes first (:func:`input_rounding`).
    """
    dtype, device = ops.first_float(model)
    values: list[tuple[str, np.ndarray]] = []

    def convert(name: str, value: object) -> Any:
        if not _is_array_like(value):
            return value
        if rounding:
            value = _rounded(value, ops, name, rounding)
        tensor = ops.as_input(
            value if ops.is_tensor(value) else to_numpy(value, what=name), dtype, device
        )
        values.append((name, ops.to_numpy(tensor)))
        if grad_inputs and ops.is_floating(tensor):
            tensor = ops.grad_leaf(tensor)
        return tensor

    if isinstance(inputs, Mapping):
        return FedInputs((), {k: convert(k, v) for k, v in inputs.items()}, tuple(values))
    if isinstance(inputs, (list, tuple)):
        args = tuple(convert(f"#{i}", v) for i, v in enumerate(inputs))
        return FedInputs(args, {}, tuple(values))
    return FedInputs((convert("#0", inputs),), {}, tuple(values))


def compare_inputs(fed_a: FedInputs, fed_b: FedInputs, tolerance: Tolerance) -> list[InputDiff]:
    """A's input values vs B's, by name (by position for positional inputs)."""
    values_b = dict(fed_b.values)
    results = []
    for name, array_a in fed_a.values:
        array_b = values_b.pop(name, None)
        if array_b is None:
            metrics = failed_metrics(
                f"model B gets no input {name!r}", shape_a=tuple(array_a.shape)
            )
        else:
            metrics = compare_arrays(array_a, array_b, tolerance)
        results.append(InputDiff(name, metrics))
    for name, array_b in values_b.items():
        results.append(
            InputDiff(
                name,
                failed_metrics(f"model A gets no input {name!r}", shape_b=tuple(array_b.shape)),
            )
        )
    return results


def run_model(fed: FedInputs, model: Model, side: str, framework: str) -> Any:
    """``model`` called on its fed inputs; a failure raised as an AutoDiffError naming the side."""
    try:
        return fed.call(model)
    except Exception as err:
        reraise_interruption(err)
        raise AutoDiffError(
            f"running model {side} ({framework} {type(model).__name__}) failed: "
            f"{type(err).__name__}: {err}"
        ) from err
