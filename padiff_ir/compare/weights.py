"""A's weights copied into B's exported graph through the parameter map (``assign_weights``).

The models themselves get A's weights from :func:`padiff_ir.pairing.assign.assign_weight`;
the exported ONNX graph of B holds its own copy of the parameters as initializers, so the same
values are written there too (through the same transforms), or the graphs would still differ.
"""

from __future__ import annotations

import logging

import numpy as np

from padiff_ir._onnx_values import onnx_array, onnx_tensor
from padiff_ir.exporters import ExportedGraph
from padiff_ir.matching.types import Matching

__all__ = ["assign_into_graph", "initializers"]

logger = logging.getLogger(__name__)


def initializers(exported: ExportedGraph) -> dict[str, np.ndarray]:
    """Framework parameter name -> value, from the exported graph's initializers (a live
    export's weights as its model holds them now: views, not to be written)."""
    from padiff_ir._shared_weights import current_arrays

    live = current_arrays(exported.weights) if exported.weights else {}
    out = {}
    for tensor in exported.model.graph.initializer:
        name = exported.parameters.get(tensor.name)
        if name is None:
            continue
        if tensor.name in live:
            value = live[tensor.name].view()
            value.flags.writeable = False  # the model's own memory: never written from here
        else:
            value = onnx_array(tensor)
        out[name] = value
    return out


def assign_into_graph(
    matching: Matching, exported_a: ExportedGraph, exported_b: ExportedGraph
) -> int:
    """Copy A's parameter values into B's ONNX initializers through the parameter map.

    Returns the number of initializers of B written; parameter pairs with a side missing from
    the graphs (folded away by an exporter) are skipped. The weights a live export of B reads
    from B's model are not written: the model took A's values already.
    """
    params_a = initializers(exported_a)
    by_param_b = {
        exported_b.parameters[t.name]: t
        for t in exported_b.model.graph.initializer
        if t.name in exported_b.parameters
    }
    copied = 0
    for pair in matching.param_pairs:
        if any(n not in params_a for n in pair.a) or any(n not in by_param_b for n in pair.b):
            continue
        targets = [by_param_b[n] for n in pair.b]
        values = pair.transform.apply(
            [params_a[n] for n in pair.a],
            target_shapes=[list(t.dims) for t in targets],
        )
        for tensor, value in zip(targets, values):
            copied += 1
            if tensor.name in exported_b.weights:
                continue  # read from B's model, which took A's weights (assign_weight)
            tensor.CopyFrom(onnx_tensor(value, tensor.name, tensor.data_type))
    logger.debug("assign_weights: %d initializers of B written from A", copied)
    return copied
