"""A graph served by fingerprint is verified before it is used, never trusted.

The export cache finds a model's graph by a fingerprint of what ``forward`` reads
(:mod:`padiff_ir.exporters._cache`); a fingerprint cannot see every change (a function held in
a closure, a ``functools.partial``'s arguments, a class attribute changed at run time, a helper
fixed in another file). Every user of an export verifies a served graph (``cached``) against
its model and, when it departs, :func:`drops <drop_served>` the entry and exports the model
afresh:

* ``match`` and ``Comparison`` on their export check (:mod:`padiff_ir.compare.verify`);
* :func:`~padiff_ir.pairing.graphs.pair_models` (``auto_layer_map``, ``assign_weight``,
  ``auto_diff``), where no eager run exists yet, by the cheap check here: the served graph
  run once on the inputs against one eager forward of the model (:func:`reproduces`). This
  check cannot tell an exporter fault from a stale graph, so a model with one is exported
  again here; what its entry knows of its faults is kept for the entry of the new export.

Also the one mapping of user inputs to a graph's feeds (:func:`graph_feeds`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.exporters import ExportedGraph, export_cache, export_pair
from padiff_ir.frameworks import (
    flatten_tensors,
    framework_of,
    model_arguments,
    normalize_inputs,
    preserved_state,
)
from padiff_ir.hints import Inputs, Model
from padiff_ir.metrics import Tolerance, compare_arrays
from padiff_ir.runtime import Runner

__all__ = ["Sides", "drop_served", "eager_outputs", "graph_feeds", "reproduces", "verified_pair"]

logger = logging.getLogger(__name__)

#: One flag per side (A, B).
Sides = tuple[bool, bool]


def graph_feeds(exported: ExportedGraph, raw_inputs: Inputs, label: str) -> dict[str, np.ndarray]:
    """The feeds of ``exported`` for a model's inputs (by name, else in order).

    Raises:
        InputError: the inputs do not fit the graph's inputs (``label`` names the model).
    """
    inputs = normalize_inputs(raw_inputs)
    names = exported.input_names
    shapes = _declared_shapes(exported)
    if inputs.keyword and all(n in names for n in inputs.names):
        feeds = dict(zip(inputs.names, inputs.arrays))
    elif len(inputs) == len(names):
        feeds = dict(zip(names, inputs.arrays))
    else:
        raise InputError(
            f"model {label} takes {len(names)} inputs {list(names)}, got {len(inputs)} "
            f"({inputs.describe()})"
        )
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InputError(f"model {label} needs inputs {missing}; got {inputs.describe()}")
    return {n: _to_declared_shape(feeds[n], shapes.get(n)) for n in names}


def _declared_shapes(exported: ExportedGraph) -> dict[str, tuple[int, ...]]:
    """Graph input -> its shape, for the inputs whose every dimension is fixed."""
    shapes = {}
    for value in exported.model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _to_declared_shape(array: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """A 0-d input that an exporter declared as ``[1]`` (or the reverse) fed as declared."""
    if shape is None or array.shape == shape or array.size != int(np.prod(shape, dtype=np.int64)):
        return array
    if array.ndim <= 1 and len(shape) <= 1:
        return array.reshape(shape)
    return array


def eager_outputs(model: Model, inputs: Inputs) -> list[np.ndarray]:
    """One eager forward of ``model`` in eval mode without gradients, its outputs flattened
    (the model's mode flags and random state restored)."""
    fw = framework_of(model)
    with preserved_state(model), fw.no_grad():
        args, kwargs = model_arguments(fw, model, inputs)
        result = fw.run(model, args, kwargs)
    return [fw.to_numpy(t) for t in flatten_tensors(result, fw)]


def reproduces(
    exported: ExportedGraph, model: Model, inputs: Inputs, tolerance: Tolerance | None = None
) -> bool:
    """Whether ``exported`` run once on ``inputs`` gives ``model``'s eager outputs (a graph
    that cannot be run on them, or gives other outputs, does not)."""
    tolerance = tolerance or Tolerance()
    runner = Runner(exported)
    try:
        outputs = runner.infer(graph_feeds(exported, inputs, type(model).__name__))
        graph = [outputs[name] for name in exported.output_names]
    except (InputError, ExecutionError, KeyError) as err:
        logger.debug("the served graph of %s does not run: %s", type(model).__name__, err)
        return False
    finally:
        runner.close()
    eager = eager_outputs(model, inputs)
    return len(graph) == len(eager) and all(
        compare_arrays(g, e, tolerance).ok for g, e in zip(graph, eager)
    )


def drop_served(exported: Sequence[ExportedGraph], sides: Sides) -> None:
    """Forget the cache entries that served the flagged sides (memory and disk)."""
    for graph, flagged in zip(exported, sides):
        if flagged and graph.fingerprint:
            export_cache.drop(graph.fingerprint)


def _departing(exports: Sequence[ExportedGraph], sides: Sequence[tuple[Any, Any]]) -> Sides:
    flags = []
    for graph, (model, inputs) in zip(exports, sides):
        try:
            flags.append(graph.cached and not reproduces(graph, model, inputs))
        except Exception as err:  # not verified (the model fails eagerly): export it afresh,
            reraise_interruption(err)  # which says what is wrong
            logger.debug("the served graph of %s not verified: %s", type(model).__name__, err)
            flags.append(bool(graph.cached))
    return flags[0], flags[1]


def verified_pair(
    model_a: Model, inputs_a: Inputs, model_b: Model, inputs_b: Inputs
) -> tuple[ExportedGraph, ExportedGraph]:
    """Both models exported (:func:`~padiff_ir.exporters.export_pair`), a served graph that
    does not reproduce its model exported again from the model.

    Raises:
        what :func:`~padiff_ir.exporters.export_pair` raises.
    """
    exports = export_pair(model_a, inputs_a, model_b, inputs_b, check=False)
    stale = _departing(exports, ((model_a, inputs_a), (model_b, inputs_b)))
    if not any(stale):
        return exports
    logger.info(
        "the cached graph of %s does not reproduce its model: exporting it again",
        " and ".join(label for label, flag in zip("AB", stale) if flag),
    )
    known = [_known_faults(graph) if flag else frozenset() for graph, flag in zip(exports, stale)]
    drop_served(exports, stale)
    fresh = export_pair(model_a, inputs_a, model_b, inputs_b, check=False, fresh=stale)
    for graph, faults in zip(fresh, known):  # this check cannot localise: keep what was known
        if faults and graph.fingerprint:
            export_cache.note_faults(graph.fingerprint, faults)
    return fresh


def _known_faults(graph: ExportedGraph) -> frozenset[str]:
    return export_cache.known_faults(graph.fingerprint) if graph.fingerprint else frozenset()
