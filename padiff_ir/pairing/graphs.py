"""The one matching of two models, which every entry point takes its layer map from.

:func:`pair_models` is how ``match``, ``auto_layer_map``, ``assign_weight`` and ``auto_diff``
learn which module of A is which layer of B and how each parameter maps: always
:func:`padiff_ir.matching.match_graphs`, on

* the **exported ONNX graphs** when inputs are given and both models export (a graph served
  by the export cache is verified against its model first: :mod:`padiff_ir.pairing.served`);
* **eager traces** otherwise (:func:`~padiff_ir.pairing.model_graphs.model_graph`): models
  whose ``forward`` cannot go through ``paddle.jit.save`` or the torch exporter are matched the
  same way;
* without inputs, the **module trees** (:func:`~padiff_ir.pairing.model_graphs.static_graph`).

Modules and parameters the exported graphs leave unpaired (a ``Dropout`` in eval mode has no
op in ONNX; an exporter may rewrite a ``Conv1D`` beyond recognition) are paired from the native
traces (:func:`complete_from_traces`), so a layer map made on ONNX graphs still names them.
Matchings are remembered per pair of models (:mod:`padiff_ir.pairing.memo`): ``assign_weight``
without inputs after ``auto_layer_map`` with inputs reuses that matching, and ``match`` leaves
its matching for the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from padiff_ir.errors import LayoutError
from padiff_ir.frameworks import framework_of, split_inputs, unwrap_model
from padiff_ir.frameworks.rounding import rounded_inputs
from padiff_ir.hints import Inputs, Model
from padiff_ir.ir import Graph
from padiff_ir.matching import match_graphs
from padiff_ir.matching.types import Matching, ModulePair
from padiff_ir.pairing.call_sites import split_call_sites
from padiff_ir.pairing.containment import consistent_module_pairs
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.pairing.layout_probes import apply_layouts, discover_layouts, open_layouts
from padiff_ir.pairing.memo import lookup, remember
from padiff_ir.pairing.model_graphs import (
    black_boxes,
    layer_sizes,
    static_graph,
    unit_ignores,
)

__all__ = ["complete_from_traces", "pair_graphs", "pair_models", "settle_layouts"]

logger = logging.getLogger(__name__)

_IGNORED = "ignored by the layer map"


def pair_graphs(
    graph_a: Graph,
    graph_b: Graph,
    *,
    layer_map: LayerMap | None = None,
    traces: Callable[[], tuple[Graph, Graph]] | None = None,
) -> Matching:
    """:func:`~padiff_ir.matching.match_graphs` on two exported graphs, completed from the
    models' eager traces (``traces`` makes their graphs, called only when something is left
    unpaired) for the modules and parameters the exported graphs could not pair."""
    matching = split_call_sites(
        match_graphs(graph_a, graph_b, layer_map=layer_map), graph_a, graph_b
    )
    if traces is None or not _incomplete(matching):
        return matching
    traced_a, traced_b = traces()
    return complete_from_traces(matching, match_graphs(traced_a, traced_b, layer_map=layer_map))


def _incomplete(matching: Matching) -> bool:
    return any(u.kind in ("module", "tensor") and u.reason != _IGNORED for u in matching.unmatched)


def complete_from_traces(matching: Matching, traced: Matching) -> Matching:
    """``matching`` plus what the eager traces pair among what it left alone.

    A module pair of ``traced`` joins when neither module is paired in ``matching`` (an
    exporter dropped it, as it drops a ``Dropout`` in eval mode, or changed its ops beyond
    recognition); a parameter pair joins when none of its tensors is paired. Their "unmatched"
    entries go. The added module pairs carry no tensor names (those of the traces are not the
    exported graphs'), and ``"eager-trace"`` in their evidence.
    """
    paired_a = {p.a for p in matching.module_pairs}
    paired_b = {p.b for p in matching.module_pairs}
    modules: list[ModulePair] = []
    for pair in traced.module_pairs:
        if pair.a in paired_a or pair.b in paired_b:
            continue
        modules.append(
            ModulePair(
                pair.a,
                pair.b,
                pair.class_a,
                pair.class_b,
                pair.confidence,
                (*pair.evidence, "eager-trace"),
                black_box=pair.black_box,
            )
        )
        paired_a.add(pair.a)
        paired_b.add(pair.b)
    names_a = {n for p in matching.param_pairs for n in p.a}
    names_b = {n for p in matching.param_pairs for n in p.b}
    params = [
        replace(p, evidence=(*p.evidence, "eager-trace"))
        for p in traced.param_pairs
        if not names_a.intersection(p.a) and not names_b.intersection(p.b)
    ]
    if not modules and not params:
        return matching
    gone = {("a", p.a) for p in modules} | {("b", p.b) for p in modules}
    gone |= {("a", n) for p in params for n in p.a} | {("b", n) for p in params for n in p.b}
    unmatched = [
        u
        for u in matching.unmatched
        if not (u.kind in ("module", "tensor") and (u.side, u.name) in gone)
    ]
    order = {p.a: i for i, p in enumerate(traced.module_pairs)}
    pairs = sorted([*matching.module_pairs, *modules], key=lambda p: order.get(p.a, len(order)))
    stats = {**matching.stats, "completed_from_traces": len(modules) + len(params)}
    return replace(
        matching,
        module_pairs=pairs,
        param_pairs=[*matching.param_pairs, *params],
        unmatched=unmatched,
        stats=stats,
    )


def pair_models(
    model_a: Model,
    model_b: Model,
    inputs: Inputs = None,
    *,
    layer_map: LayerMap | None = None,
    export: bool = True,
    reuse: bool = True,
) -> Matching:
    """The matching of two torch/paddle models (see the module docstring).

    Args:
        model_a / model_b: torch modules or paddle layers (or ``create_model`` wrappers).
        inputs: inputs for both (arrays or tensors; one, a sequence or a dict by argument
            name), or a pair of per-framework inputs such as ``({'x': paddle_tensor},
            {'x': torch_tensor})`` in either order; ``None`` matches the module trees.
        layer_map: a resolved :class:`~padiff_ir.pairing.layer_map.LayerMap` (path entries).
        export: try the ONNX graphs first (``False``: eager traces only).
        reuse: give the matching remembered for these models when it still fits (``False``:
            match anew, and remember nothing).

    Returns:
        the :class:`~padiff_ir.matching.Matching`; ``stats["graphs"]`` says which graphs it
        was made on (``onnx``, ``trace`` or ``static``) and, after a failed export, why.

    Raises:
        InputError: a model does not run on its inputs.
    """
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    found = lookup(model_a, model_b, layer_map, inputs, export) if reuse else None
    if found is not None:
        return found
    start = time.perf_counter()
    black_a, black_b = black_boxes(layer_map)
    notes: dict[str, Any] = {
        "framework_a": framework_of(model_a).name,
        "framework_b": framework_of(model_b).name,
    }
    if inputs is None:
        graphs = "static"
        static_a = static_graph(model_a, black_boxes=black_a, fused=layer_sizes(model_b))
        static_b = static_graph(model_b, black_boxes=black_b, fused=layer_sizes(model_a))
        matching = match_graphs(
            static_a, static_b, layer_map=unit_ignores(layer_map, static_a, static_b)
        )
        classes_a = {p: type(m).__name__ for p, m in framework_of(model_a).named_modules(model_a)}
        matching = consistent_module_pairs(matching, classes_a)
        matching = apply_layouts(matching, getattr(layer_map, "layouts", None) or {})
        probed = _probe_open_layouts(matching, model_a, model_b, layer_map)
        if probed is not None:
            graphs, matching = "trace", probed
            notes["probe_inputs"] = f"token ids {PROBE_TOKENS}"
    else:
        matching, failed = _paired_on_inputs(model_a, model_b, inputs, layer_map, export)
        graphs = "onnx" if export and not failed else "trace"
        if failed:
            notes["export_failed"] = failed
    matching = replace(
        matching,
        stats={
            **matching.stats,
            "graphs": graphs,
            **notes,
            "pairing_seconds": round(time.perf_counter() - start, 3),
        },
    )
    logger.debug(
        "paired %s and %s on %s graphs: %d module pairs, %d parameter pairs",
        type(model_a).__name__,
        type(model_b).__name__,
        graphs,
        len(matching.module_pairs),
        len(matching.param_pairs),
    )
    if reuse:
        remember(model_a, model_b, layer_map, inputs, matching, export=export)
    return matching


def settle_layouts(
    matching: Matching,
    model_a: Model,
    inputs_a: Inputs,
    model_b: Model,
    inputs_b: Inputs,
    layer_map: LayerMap | None = None,
) -> Matching:
    """The layer map's parameter layouts applied, the others found by probing the models
    (:func:`~padiff_ir.pairing.layout_probes.discover_layouts`).

    When probing cannot decide (no layout reproduces a module: a true difference inside it,
    such as a RoPE base; or several do), the matching keeps its plain layouts and says why in
    ``stats["layouts_unsettled"]``: the models can still be compared as they are, and
    :func:`~padiff_ir.pairing.assign.assign_weight` refuses to copy through it.
    """
    matching = apply_layouts(matching, getattr(layer_map, "layouts", None) or {})
    try:
        return discover_layouts(model_a, inputs_a, model_b, inputs_b, matching)
    except LayoutError as err:
        logger.warning("parameter layouts left unsettled: %s", str(err).splitlines()[0][:300])
        return replace(matching, stats={**matching.stats, "layouts_unsettled": str(err)})


PROBE_TOKENS = (2, 8)
"""Shape of the token ids generated to probe fused layouts when no inputs are given."""


def _probe_open_layouts(
    matching: Matching, model_a: Model, model_b: Model, layer_map: LayerMap | None
) -> Matching | None:
    """When fused parameter groups are left whose layout no layer map gave, the matching
    made on inputs generated from the models (token ids within both embeddings'
    vocabularies) and its layouts probed there, never guessed; ``None`` when nothing is open.

    Raises:
        LayoutError: layouts are open and no inputs can be made, or the models do not run on
            the ones made; the message says how to pass inputs.
    """
    kinds = open_layouts(matching)
    if not kinds:
        return None
    sizes = [framework_of(m).token_vocabulary(m) for m in (model_a, model_b)]
    vocab = [size for size in sizes if size is not None]
    what = "; ".join(sorted(kinds)[:3])
    advice = (
        "pass example inputs (assign_weight(target, source, inputs=...)), or a layer map with "
        "their layouts (auto_layer_map(model_a, model_b, inputs).save(path))"
    )
    if len(vocab) < 2:
        raise LayoutError(
            f"without inputs the layouts of {len(kinds)} kind(s) of fused parameter groups "
            f"({what}) cannot be probed, and the models have no embedding to make token ids "
            f"for: {advice}"
        )
    ids = np.random.default_rng(0).integers(0, min(vocab), size=PROBE_TOKENS, dtype=np.int64)
    try:
        probed = pair_models(model_a, model_b, ids, layer_map=layer_map, export=False, reuse=False)
    except Exception as err:  # the models do not run on the generated ids
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise LayoutError(
            f"the layouts of {len(kinds)} kind(s) of fused parameter groups ({what}) could not "
            f"be probed on generated token ids {PROBE_TOKENS} ({type(err).__name__}: {reason}): "
            f"{advice}"
        ) from err
    logger.info("probed %d kind(s) of fused layouts on generated token ids", len(kinds))
    return probed


def _paired_on_inputs(
    model_a: Model, model_b: Model, inputs: Inputs, layer_map: LayerMap | None, export: bool
) -> tuple[Matching, str]:
    """The pair's matching on ``inputs`` (:func:`~padiff_ir.pairing.pair.matching_of`: the
    exported graphs, a served one verified by one run, else the eager traces), and why the
    export failed if it did."""
    from padiff_ir.pairing.pair import PairSettings, matching_of

    fw_a, fw_b = framework_of(model_a), framework_of(model_b)
    inputs_a, inputs_b = split_inputs(inputs, fw_a.name, fw_b.name)
    inputs_a, inputs_b = rounded_inputs(  # both models see the same values
        inputs_a, fw_a, model_a, inputs_b, fw_b, model_b
    )
    settings = PairSettings(
        layer_map=layer_map,
        verify_served=True,
        runners=False,
        remember=False,
        trace_unexported=True,
    )
    side_a, side_b = (model_a, fw_a.name, inputs_a), (model_b, fw_b.name, inputs_b)
    return matching_of(side_a, side_b, inputs, settings, export=export)
