"""Matching: pair the tensors, modules and parameters of two graphs of the same model.

:func:`match_graphs` takes two graphs (a torch export and a paddle export, say) and returns a
:class:`Matching`: tensor pairs (1:1, or N:M groups for fused vs split layers), module pairs (the
layer map, with black boxes where internals differ), parameter pairs with the transform between
layouts, and what stayed unmatched with the reason. It reads no names: structure, op families,
parameter shapes and roles, and graph order decide (see :mod:`padiff_ir.matching._match`).

Example:
    >>> from padiff_ir.matching import match_graphs
    >>> callable(match_graphs)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from padiff_ir.matching._match import Values, match_graphs
from padiff_ir.matching.types import Matching, ModulePair, ParamPair, TensorPair, Unmatched

if TYPE_CHECKING:
    from padiff_ir.matching.assign import AssignReport, assign_weight, auto_layer_map
    from padiff_ir.matching.compat import PadiffModel, create_model, unwrap_model
    from padiff_ir.matching.layer_map import LayerMap
    from padiff_ir.matching.native import match_modules
    from padiff_ir.matching.transforms import (
        apply_transform,
        register_transform,
        register_weight_transform,
    )

__all__ = [
    # matching
    "match_graphs",
    "match_modules",
    "LayerMap",
    "Values",
    # weights
    "AssignReport",
    "assign_weight",
    "auto_layer_map",
    "apply_transform",
    "register_transform",
    "register_weight_transform",
    # PaDiff compatibility
    "PadiffModel",
    "create_model",
    "unwrap_model",
    # results
    "Matching",
    "ModulePair",
    "ParamPair",
    "TensorPair",
    "Unmatched",
]


# Imported on first use: these modules import this package's types themselves.
_LAZY = {
    "LayerMap": "padiff_ir.matching.layer_map",
    "match_modules": "padiff_ir.matching.native",
    "AssignReport": "padiff_ir.matching.assign",
    "assign_weight": "padiff_ir.matching.assign",
    "auto_layer_map": "padiff_ir.matching.assign",
    "apply_transform": "padiff_ir.matching.transforms",
    "register_transform": "padiff_ir.matching.transforms",
    "register_weight_transform": "padiff_ir.matching.transforms",
    "PadiffModel": "padiff_ir.matching.compat",
    "create_model": "padiff_ir.matching.compat",
    "unwrap_model": "padiff_ir.matching.compat",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'padiff_ir.matching' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
