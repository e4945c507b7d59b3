"""PaDiff-style model wrappers: ``create_model(model).auto_layer_map("base")``.

PaDiff's workflow wraps each model, marks the reference one ``"base"`` and the one being
aligned ``"raw"``, then calls ``assign_weight(raw, base)`` and ``auto_diff(...)``. Here the
wrapper only records that role; every function of padiff-ir that takes a model also takes a
:class:`PadiffModel` and unwraps it with :func:`unwrap_model`.

Example:
    >>> import torch
    >>> wrapped = create_model(torch.nn.Linear(2, 3))
    >>> wrapped.auto_layer_map("base") is wrapped, wrapped.role
    (True, 'base')
    >>> type(unwrap_model(wrapped)).__name__
    'Linear'
"""

from __future__ import annotations

import logging
from typing import Any

from padiff_ir.errors import InputError, ModelTypeError
from padiff_ir.hints import Model

__all__ = ["PadiffModel", "create_model", "unwrap_model"]

logger = logging.getLogger(__name__)

_ROLES = ("base", "raw")


class PadiffModel:
    """A torch module or paddle layer with the role it plays in a comparison.

    Attributes:
        model: the wrapped model.
        framework: ``"torch"`` or ``"paddle"``.
        role: ``"base"`` (the reference), ``"raw"`` (the model being aligned) or ``None``.
    """

    __slots__ = ("framework", "model", "role")

    def __init__(self, model: Model) -> None:
        from padiff_ir.frameworks.detect import detect_framework

        model = unwrap_model(model)
        framework = detect_framework(model)
        if framework not in ("torch", "paddle"):
            raise ModelTypeError(
                f"create_model wants a torch.nn.Module or a paddle.nn.Layer, got {framework} "
                f"model {type(model).__qualname__}"
            )
        self.model = model
        self.framework = framework
        self.role: str | None = None

    def auto_layer_map(self, role: str) -> PadiffModel:
        """Mark this model as the reference (``"base"``) or the one being aligned (``"raw"``).

        The layer map itself is built when two models meet (:func:`assign_weight`,
        the matching); the role is recorded for reports.
        """
        if role not in _ROLES:
            raise InputError(f"role must be 'base' or 'raw', got {role!r}")
        self.role = role
        return self

    def __call__(self, *args: object, **kwargs: object) -> Any:
        return self.model(*args, **kwargs)

    def __repr__(self) -> str:
        role = f", role={self.role!r}" if self.role else ""
        return f"PadiffModel({self.framework} {type(self.model).__name__}{role})"


def create_model(model: Model) -> PadiffModel:
    """Wrap a torch module or paddle layer (a wrapper is returned as it is).

    Raises:
        ModelTypeError: ``model`` is neither.
    """
    if isinstance(model, PadiffModel):
        return model
    return PadiffModel(model)


def unwrap_model(obj: Model) -> Any:
    """The model inside a :class:`PadiffModel`, or ``obj`` itself."""
    while isinstance(obj, PadiffModel):
        obj = obj.model
    return obj
