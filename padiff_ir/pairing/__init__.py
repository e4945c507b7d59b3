"""Where two models meet: one object per model pair, the one cache, layer maps, copying weights.

A :class:`ModelPair` is a pair prepared once (:func:`prepare`: the stages of
:data:`PREPARATION`, exports, graphs, matching, layouts, runners) and checked many times.
:func:`pair_models` gives the :class:`~padiff_ir.matching.Matching` of two torch/paddle models
that every entry point uses (``match``, ``auto_layer_map``, ``assign_weight``, ``auto_diff``),
through the same stages: :func:`padiff_ir.matching.match_graphs` on their ONNX graphs when both
export, on eager traces otherwise. What is kept between calls lives in the one cache
(:data:`pair_cache`, emptied by :func:`padiff_ir.clear`). :class:`LayerMap` holds the user's
corrections; :func:`assign_weight` copies weights through the parameter pairs.
"""

from __future__ import annotations

from padiff_ir.pairing.assign import (
    AssignReport,
    CopiedWeight,
    SkippedWeight,
    assign_weight,
    auto_layer_map,
)
from padiff_ir.pairing.cache import PairCache, pair_cache
from padiff_ir.pairing.graphs import complete_from_traces, pair_graphs, pair_models
from padiff_ir.pairing.layer_map import LayerMap, named_modules
from padiff_ir.pairing.model_graphs import model_graph, static_graph
from padiff_ir.pairing.pair import PREPARATION, ModelPair, PairSettings, prepare

__all__ = [
    "PREPARATION",
    "AssignReport",
    "CopiedWeight",
    "LayerMap",
    "ModelPair",
    "PairCache",
    "PairSettings",
    "SkippedWeight",
    "assign_weight",
    "auto_layer_map",
    "complete_from_traces",
    "model_graph",
    "named_modules",
    "pair_graphs",
    "pair_cache",
    "pair_models",
    "prepare",
    "static_graph",
]
