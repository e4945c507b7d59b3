"""Names for what every floor passes around but only ``frameworks/`` may import: models,
their modules, tensors, inputs and optimizers of torch or paddle.

padiff-ir imports torch and paddle in ``frameworks/``, ``exporters/`` and ``zoo/`` alone
(``import padiff_ir`` imports neither), so a signature elsewhere cannot name ``torch.nn.Module``
or ``paddle.Tensor``. These aliases say what a parameter holds; to a type checker they are
``Any`` (either framework's class fits), and the :class:`~padiff_ir.frameworks.Framework` of
the value is what reads it.

Example:
    >>> from padiff_ir.hints import Model
    >>> def classes(model_a: Model, model_b: Model) -> tuple[str, str]:
    ...     return type(model_a).__name__, type(model_b).__name__
    >>> classes(1, "x")
    ('int', 'str')
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = [
    "DType",
    "Device",
    "GradNode",
    "Inputs",
    "Model",
    "Module",
    "Optimizer",
    "Outputs",
    "Tensor",
]

Model: TypeAlias = Any
"""A model: a ``torch.nn.Module``, a ``paddle.nn.Layer`` or a ``create_model`` wrapper of one
(where a function says so, also the path of an ONNX file)."""

Module: TypeAlias = Any
"""A module of a model: a ``torch.nn.Module`` or a ``paddle.nn.Layer`` inside it."""

Tensor: TypeAlias = Any
"""A tensor of either framework (a ``torch.Tensor``, a ``paddle.Tensor``), a parameter, a
buffer or a gradient."""

Inputs: TypeAlias = Any
"""A model's inputs as a user gives them: numpy arrays or tensors, one, a sequence or a dict
by argument name, or a per-framework pair ``(inputs_a, inputs_b)``."""

Optimizer: TypeAlias = Any
"""An optimizer of either framework, or PaDiff's zero-argument step function."""

Outputs: TypeAlias = Any
"""What a model or module returns: a tensor, or tuples, lists and dicts of tensors and other
values, nested."""

GradNode: TypeAlias = Any
"""A node of either framework's autograd graph (``grad_fn`` and its ``next_functions``)."""

DType: TypeAlias = Any
"""A dtype of either framework (``torch.float32``, ``paddle.float32``)."""

Device: TypeAlias = Any
"""A device of either framework (``torch.device``, a paddle place)."""
