"""Where two models meet: the one matching of a pair, layer maps and copying weights.

:func:`pair_models` gives the :class:`~padiff_ir.matching.Matching` of two torch/paddle models
that every entry point uses (``match``, ``auto_layer_map``, ``assign_weight``, ``auto_diff``):
:func:`padiff_ir.matching.match_graphs` on their ONNX graphs when both export, on eager traces
otherwise. :class:`LayerMap` holds the user's corrections; :func:`assign_weight` copies weights
through the parameter pairs.
"""

from __future__ import annotations

from padiff_ir.pairing.assign import (
    AssignReport,
    CopiedWeight,
    SkippedWeight,
    assign_weight,
    auto_layer_map,
)
from padiff_ir.pairing.graphs import complete_from_traces, pair_graphs, pair_models
from padiff_ir.pairing.layer_map import LayerMap, named_modules
from padiff_ir.pairing.model_graphs import model_graph, static_graph

__all__ = [
    "AssignReport",
    "CopiedWeight",
    "LayerMap",
    "SkippedWeight",
    "assign_weight",
    "auto_layer_map",
    "complete_from_traces",
    "model_graph",
    "named_modules",
    "pair_graphs",
    "pair_models",
    "static_graph",
]
