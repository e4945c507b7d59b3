"""Matching: pair the tensors, modules and parameters of two graphs of the same model.

:func:`match_graphs` takes two graphs (a torch export and a paddle export, say) and returns a
:class:`Matching`: tensor pairs (1:1, or N:M groups for fused vs split layers), module pairs (the
layer map, with black boxes where internals differ), parameter pairs with the transform between
layouts, and what stayed unmatched with the reason. It reads no names: structure, op families,
parameter shapes and roles, and graph order decide (see :mod:`padiff_ir.matching._match`).

Matching is pure: it reads graphs (exported ONNX graphs or eager traces, see
:func:`padiff_ir.ir.graph_from_trace`), never models. Where models meet (layer maps, copying
weights) is :mod:`padiff_ir.pairing`.

Example:
    >>> from padiff_ir.matching import match_graphs
    >>> callable(match_graphs)
    True
"""

from __future__ import annotations

from padiff_ir.matching._match import Values, match_graphs
from padiff_ir.matching.transforms import (
    ArrayFn,
    WeightTransformFn,
    apply_transform,
    register_transform,
    register_weight_transform,
)
from padiff_ir.matching.types import Matching, ModulePair, ParamPair, TensorPair, Unmatched

__all__ = [
    # matching
    "match_graphs",
    "Values",
    # layouts
    "apply_transform",
    "register_transform",
    "register_weight_transform",
    "ArrayFn",
    "WeightTransformFn",
    # results
    "Matching",
    "ModulePair",
    "ParamPair",
    "TensorPair",
    "Unmatched",
]
