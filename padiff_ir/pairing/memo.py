"""The matching of each pair of models, remembered for the other entry points.

Kept on the pair's entry of the one cache (:mod:`padiff_ir.pairing.cache`: weakly, a
remembered matching never keeps a model alive), for the same two model objects while
their module trees and parameter shapes, the layer map and the export choice are unchanged; a
matching made with inputs is given for the same inputs' shapes, or when no inputs are given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from padiff_ir.frameworks import framework_of
from padiff_ir.hints import Inputs, Model
from padiff_ir.matching.types import Matching
from padiff_ir.pairing.cache import RememberedMatching, pair_cache
from padiff_ir.pairing.layer_map import LayerMap

__all__ = ["lookup", "remember"]


def _structure(model: Model) -> tuple[Any, ...]:
    fw = framework_of(model)
    return (
        tuple((p, type(m).__name__) for p, m in fw.named_modules(model)),
        tuple((n, fw.shape(t)) for n, t in fw.named_tensors(model).items()),
    )


def _input_signature(inputs: Inputs) -> tuple[Any, ...]:
    def describe(value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple((k, describe(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return tuple(describe(v) for v in value)
        shape = getattr(value, "shape", None)
        return (
            (tuple(int(d) for d in shape), str(getattr(value, "dtype", "")))
            if shape is not None
            else repr(value)
        )

    return (describe(inputs),)


def _map_signature(layer_map: LayerMap | None) -> str:
    if layer_map is None:
        return ""
    to_dict = getattr(layer_map, "to_dict", None)
    if to_dict is None:
        return repr(layer_map)
    data = {k: v for k, v in to_dict().items() if k != "version" and v}
    return json.dumps(data, sort_keys=True, default=str) if data else ""


def lookup(
    model_a: Model, model_b: Model, layer_map: LayerMap | None, inputs: Inputs, export: bool
) -> Matching | None:
    """The matching remembered for these models when it fits the call; else None."""
    pair = pair_cache.entry(model_a, model_b)
    entry = pair.matching if pair is not None else None
    if entry is None:
        return None
    if entry.layer_map != _map_signature(layer_map) or entry.export != export:
        return None
    if entry.structure != (_structure(model_a), _structure(model_b)):
        return None
    if inputs is None:
        return entry.matching  # a matching made with inputs beats one made without
    if entry.inputs is not None and entry.inputs == _input_signature(inputs):
        return entry.matching
    return None


def remember(
    model_a: Model,
    model_b: Model,
    layer_map: LayerMap | None,
    inputs: Inputs,
    matching: Matching,
    *,
    export: bool = True,
) -> None:
    """Keep ``matching`` as the one of these models (what :func:`padiff_ir.match` made on the
    exported graphs), for the other entry points to reuse."""
    pair = pair_cache.entry(model_a, model_b, create=True)
    if pair is None:  # models that take no weak reference: nothing is remembered
        return
    pair.matching = RememberedMatching(
        matching=matching,
        layer_map=_map_signature(layer_map),
        structure=(_structure(model_a), _structure(model_b)),
        inputs=_input_signature(inputs) if inputs is not None else None,
        export=export,
    )
