"""What every check of a pair reuses: both graphs exported, built, matched and opened once.

:func:`prepare_pair` runs the stages that depend on the models and the input *signature* only
(export, IR, matching, copying weights with ``assign_weights``) and opens a
:class:`~padiff_ir.runtime.Runner` per graph; :func:`padiff_ir.compare.check.check_inputs`
then runs both graphs on some inputs and compares them. ``match`` prepares once and checks
once; :class:`padiff_ir.compare.comparison.Comparison` prepares once and checks every batch.

Only the tensors a check reads are recorded from the graphs (:func:`recorded_tensors`): those
of a tensor pair, the inputs and outputs of every module pair (own errors and the export check
rerun modules from them) and the graph outputs.
"""

from __future__ import annotations

import collections
import difflib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from padiff_ir.compare import kept
from padiff_ir.compare.options import MatchOptions
from padiff_ir.compare.stages import Stage, StageTimer
from padiff_ir.errors import ExportError, OptionError
from padiff_ir.exporters import ExportedGraph, export_pair
from padiff_ir.frameworks.inputs import normalize_inputs
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.ir.views import graph_view
from padiff_ir.matching.types import Matching
from padiff_ir.pairing.served import graph_feeds
from padiff_ir.runtime import Runner

__all__ = ["PreparedPair", "input_signature", "prepare_pair", "recorded_tensors"]

logger = logging.getLogger(__name__)


def input_signature(raw: Any) -> tuple[tuple[str | None, str, tuple[int, ...]], ...]:
    """Names, dtypes and shapes of some inputs: what an export depends on."""
    inputs = normalize_inputs(raw)
    return tuple((n, a.dtype.str, tuple(a.shape)) for n, a in zip(inputs.names, inputs.arrays))


def recorded_tensors(matching: Matching, exported: ExportedGraph, side: str) -> tuple[str, ...]:
    """The tensors of side ``side``'s graph that a check reads."""
    names: dict[str, None] = {}
    for pair in matching.tensor_pairs:
        names.update(dict.fromkeys(pair.a if side == "a" else pair.b))
    for module in matching.module_pairs:
        inputs = module.inputs_a if side == "a" else module.inputs_b
        outputs = module.outputs_a if side == "a" else module.outputs_b
        names.update(dict.fromkeys([*inputs, *outputs]))
    names.update(dict.fromkeys(exported.output_names))
    return tuple(names)


@dataclass
class PreparedPair:
    """Two models exported, built into IR, matched, with a runner per graph (close when done).

    Attributes:
        models / frameworks: A's and B's model objects (or ONNX files) and frameworks.
        exported_a / exported_b, graph_a / graph_b: the exports and their canonical IR.
        matching: tensor, module and parameter pairs.
        runner_a / runner_b: onnxruntime runners, their sessions opened once and reused.
        tensors_a / tensors_b: the tensors each check records from each graph.
        signature: the inputs' names, dtypes and shapes the graphs were exported for.
        notes: remarks from preparing (weights copied).
        views: compact graph views for the report (made once, shared by every result).
        cached: per side, whether its graph was served by fingerprint (the export cache or
            the kept pair of an earlier call) rather than exported from the model now: such
            a graph is verified against the model's eager run (:mod:`.verify`).
    """

    models: tuple[Any, Any]
    frameworks: tuple[str, str]
    exported_a: ExportedGraph
    exported_b: ExportedGraph
    graph_a: Graph
    graph_b: Graph
    matching: Matching
    runner_a: Runner
    runner_b: Runner
    tensors_a: tuple[str, ...]
    tensors_b: tuple[str, ...]
    signature: tuple[Any, Any]
    notes: list[str] = field(default_factory=list)
    views: dict[str, Any] = field(default_factory=dict)
    cached: tuple[bool, bool] = (False, False)

    def feeds(self, raw_a: Any, raw_b: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Both graphs' feeds for per-side inputs."""
        return graph_feeds(self.exported_a, raw_a, "A"), graph_feeds(self.exported_b, raw_b, "B")

    def close(self) -> None:
        """Release both runners' onnxruntime sessions."""
        self.runner_a.close()
        self.runner_b.close()


def _check_tolerance_names(
    overrides: Mapping[str, Any], graph: Graph, exported: ExportedGraph
) -> None:
    """Every tensor named in ``tolerances`` is one of A's graph.

    Raises:
        OptionError: naming the unknown names and the nearest names of A.
    """
    known = set(graph.tensors) | set(exported.output_names) | set(graph.aliases)
    unknown = sorted(name for name in overrides if name not in known)
    if not unknown:
        return
    near = sorted(
        {
            close
            for name in unknown
            for close in difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        }
    )
    hint = (
        f"; near names: {', '.join(near)}"
        if near
        else f"; A's outputs are {', '.join(exported.output_names)}"
    )
    raise OptionError(
        f"tolerances names tensors model A does not have: {', '.join(unknown)}"
        f"{hint} (keys are tensor names of A's exported graph, as in "
        "result.pairs[i].a)",
        option="tolerances",
    )


#: Eager-trace graphs of recent pairs by the exports' fingerprints and the layer map: traces
#: depend on what the exports depend on (structure, code, input signature), not on weights.
_TRACES: collections.OrderedDict[tuple[str, str, str], tuple[Graph, Graph]] = (
    collections.OrderedDict()
)
_TRACES_KEPT = 4


def _remembered_traces(
    traces: Callable[[], tuple[Graph, Graph]],
    exported_a: ExportedGraph,
    exported_b: ExportedGraph,
    layer_map: Any,
) -> Callable[[], tuple[Graph, Graph]]:
    """``traces`` made once per pair of model structures (the eager trace of a large model
    takes seconds; a later check of the same models reuses it). Reused only for exports the
    cache served: a model exported now is traced now (its fingerprint may have missed a
    change)."""
    if not (exported_a.fingerprint and exported_b.fingerprint):
        return traces
    reuse = exported_a.cached and exported_b.cached
    pins = json.dumps(layer_map.to_dict(), sort_keys=True, default=str) if layer_map else ""
    key = (exported_a.fingerprint, exported_b.fingerprint, pins)

    def make() -> tuple[Graph, Graph]:
        graphs = _TRACES.get(key) if reuse else None
        if graphs is None:
            graphs = _TRACES[key] = traces()
            while len(_TRACES) > _TRACES_KEPT:
                _TRACES.popitem(last=False)
        _TRACES.move_to_end(key)
        return graphs

    return make


#: Canonical graphs of recent exports by fingerprint: the IR holds no weights, so an export
#: served from the cache (the same structure, code and input signature) has the same graph.
_GRAPHS: collections.OrderedDict[str, Graph] = collections.OrderedDict()
_GRAPHS_KEPT = 8


def _canonical_graph(exported: ExportedGraph, side: str = "") -> Graph:
    """``canonicalize(build_graph(exported))``, made once per export fingerprint (a graph
    exported now, not served by the cache, is built again and replaces the one kept); an export
    that cannot run raises :class:`ExportError` naming its ``side``."""
    key = exported.fingerprint
    graph = _GRAPHS.get(key) if key and exported.cached else None
    if graph is None:
        try:
            built = build_graph(exported)
        except ExportError as err:
            err.side = err.side or side
            raise
        graph = canonicalize(built)
        if key:
            _GRAPHS[key] = graph
            while len(_GRAPHS) > _GRAPHS_KEPT:
                _GRAPHS.popitem(last=False)
    elif key:
        _GRAPHS.move_to_end(key)
    return graph


def _known(runner: Runner, names: tuple[str, ...]) -> tuple[str, ...]:
    """The names that are tensors of the runner's ONNX graph (the IR's passes add some)."""
    index = runner.index
    return tuple(
        n for n in names if n in index.producer or n in index.inputs or n in index.initializers
    )


def prepare_pair(
    side_a: tuple[Any, str, Any],
    side_b: tuple[Any, str, Any],
    inputs: Any,
    options: MatchOptions,
    timer: StageTimer,
    *,
    keep_sessions: bool = False,
    reuse: bool = False,
    fresh: tuple[bool, bool] = (False, False),
) -> PreparedPair:
    """Export, build, match (and with ``assign_weights`` copy A's weights into B) once.

    ``side_a`` / ``side_b`` are ``(model, framework, raw inputs)``; ``inputs`` is what the user
    passed (the matching is remembered for it, see :mod:`padiff_ir.pairing.memo`). With
    ``keep_sessions`` the runners keep their sessions from one check to the next. With
    ``reuse`` the pair kept by the previous call for the same models is returned when it fits,
    and the pair prepared is kept for the next call when it may be (:mod:`.kept`; do not close
    a pair that :func:`~.kept.is_kept`). ``fresh``: per side, export the model whatever the
    export cache holds (a cached graph was found stale).
    """
    from padiff_ir.compare.weights import assign_into_graph
    from padiff_ir.pairing.graphs import pair_graphs, settle_layouts
    from padiff_ir.pairing.memo import remember
    from padiff_ir.pairing.model_graphs import trace_graphs

    model_a, framework_a, raw_a = side_a
    model_b, framework_b, raw_b = side_b
    with timer.stage(Stage.EXPORT):
        # the graphs read the models' weights in place (no copy); not B's when B's graph
        # alone takes A's weights (A is a file: B's model is left as it is)
        live = not (options.assign_weights and framework_a == "onnx")
        exported_a, exported_b = export_pair(
            model_a,
            raw_a,
            model_b,
            raw_b,
            opset=options.opset,
            check=False,
            live=live,
            fresh=fresh,
        )
    signature = (input_signature(raw_a), input_signature(raw_b))
    key = kept.key_of(exported_a, exported_b, signature, options) if reuse else None
    # a kept pair serves only exports the cache served: a model exported now has its graph
    reused = kept.lookup(model_a, model_b, key) if exported_a.cached and exported_b.cached else None
    if reused is not None:
        _check_tolerance_names(options.overrides, reused.graph_a, reused.exported_a)
        reused.cached = (True, True)
        return reused
    with timer.stage(Stage.IR):
        graph_a = _canonical_graph(exported_a, "A")
        graph_b = _canonical_graph(exported_b, "B")
    _check_tolerance_names(options.overrides, graph_a, exported_a)
    resolved = options.layer_map
    models = framework_a != "onnx" and framework_b != "onnx"
    with timer.stage(Stage.MATCH):
        # the matching every entry point gives for these models (padiff_ir.pairing)
        traces = trace_graphs(model_a, raw_a, model_b, raw_b, resolved) if models else None
        if traces is not None:
            traces = _remembered_traces(traces, exported_a, exported_b, resolved)
        matching = pair_graphs(graph_a, graph_b, layer_map=resolved, traces=traces)
        if models:
            matching = settle_layouts(matching, model_a, raw_a, model_b, raw_b, resolved)
            remember(model_a, model_b, resolved, inputs, matching)
    notes = []
    if options.assign_weights:
        with timer.stage(Stage.ASSIGN):
            if models:
                from padiff_ir.pairing.assign import assign_weight

                assign_weight(model_b, model_a, matching=matching)
            elif framework_b != "onnx":
                notes.append(
                    "assign_weights: A is an ONNX file, so only B's exported graph "
                    "took A's weights, not B's model object"
                )
            copied = assign_into_graph(matching, exported_a, exported_b)
            notes.append(f"assign_weights: {copied} parameters of A copied into B")
    keep_sessions = keep_sessions or key is not None
    runner_a = Runner(exported_a, providers=options.providers, keep_sessions=keep_sessions)
    runner_b = Runner(exported_b, providers=options.providers, keep_sessions=keep_sessions)
    prepared = PreparedPair(
        models=(model_a, model_b),
        frameworks=(framework_a, framework_b),
        exported_a=exported_a,
        exported_b=exported_b,
        graph_a=graph_a,
        graph_b=graph_b,
        matching=matching,
        runner_a=runner_a,
        runner_b=runner_b,
        tensors_a=_known(runner_a, recorded_tensors(matching, exported_a, "a")),
        tensors_b=_known(runner_b, recorded_tensors(matching, exported_b, "b")),
        signature=signature,
        notes=notes,
        views={"a": graph_view(graph_a, exported_a), "b": graph_view(graph_b, exported_b)},
        cached=(exported_a.cached, exported_b.cached),
    )
    if key is not None:
        kept.keep(prepared, key)
    return prepared
