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
    from padiff_ir.matching.layer_map import LayerMap

__all__ = [
    # matching
    "match_graphs",
    "LayerMap",
    "Values",
    # results
    "Matching",
    "ModulePair",
    "ParamPair",
    "TensorPair",
    "Unmatched",
]


def __getattr__(name: str) -> Any:
    if name == "LayerMap":  # imported on first use: the layer map module is optional here
        from padiff_ir.matching.layer_map import LayerMap

        return LayerMap
    raise AttributeError(f"module 'padiff_ir.matching' has no attribute {name!r}")
