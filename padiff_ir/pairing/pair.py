"""One object per model pair: prepared once (exports, graphs, matching, layouts, runners),
checked many times.

A :class:`ModelPair` is what every entry point holds of two models: ``match`` and
:class:`~padiff_ir.compare.Comparison` check it on inputs (:mod:`padiff_ir.compare.check`),
:func:`~padiff_ir.pairing.graphs.pair_models` (so ``auto_layer_map``, ``assign_weight`` and
``auto_diff``) takes its matching. :func:`prepare` runs the stages of :data:`PREPARATION` in
order, as the IR runs its passes:

1. **export** both models (:func:`~padiff_ir.exporters.export_pair`; a graph served by the
   export cache is verified before it is used: by one graph run now, :mod:`.served`, or against
   the eager run of the first check, :mod:`padiff_ir.compare.verify`);
2. **kept**: the pair a previous ``match`` kept for the same models serves (:mod:`.kept`);
3. **ir**: graph IR, canonicalised, once per export fingerprint (the one cache's ``graphs``);
4. **match**: :func:`~padiff_ir.pairing.graphs.pair_graphs` completed from the eager traces,
   module pairs nested consistently, parameter layouts settled on the models, and the matching
   remembered for the pair (:mod:`.memo`);
5. **assign** (with ``assign_weights``): A's weights into B's model and B's graph;
6. **open**: a :class:`~padiff_ir.runtime.Runner` per graph, the pair kept for a later call
   when it may be.

What a pair keeps between calls lives in the one cache (:mod:`.cache`).

Example:
    >>> [stage.name for stage in PREPARATION]
    ['export', 'kept', 'ir', 'match', 'assign', 'open']
    >>> [stage.name for stage in MATCHING]
    ['export', 'ir', 'match']
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import ExportError, InputError, OptionError
from padiff_ir.exporters import ExportedGraph, export_pair
from padiff_ir.frameworks import framework_of, normalize_inputs
from padiff_ir.hints import Inputs
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.ir.views import graph_view
from padiff_ir.matching.types import Matching
from padiff_ir.pairing import kept
from padiff_ir.pairing.cache import pair_cache
from padiff_ir.pairing.containment import consistent_module_pairs
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.pairing.served import Sides, graph_feeds, verified_pair
from padiff_ir.pairing.stages import Stage, StageTimer
from padiff_ir.runtime import DEFAULT_PROVIDERS, Runner

__all__ = [
    "MATCHING",
    "PREPARATION",
    "ModelPair",
    "PairSettings",
    "PairStage",
    "input_signature",
    "matching_of",
    "prepare",
    "recorded_tensors",
]

logger = logging.getLogger(__name__)

#: One side of a pair: the model (or an ONNX file), its framework and its raw inputs.
Side = tuple[Any, str, Any]
#: Copies A's weights into B's exported graph through the matching; the number copied.
GraphAssigner = Callable[[Matching, ExportedGraph, ExportedGraph], int]


def input_signature(raw: Inputs) -> tuple[tuple[str | None, str, tuple[int, ...]], ...]:
    """Names, dtypes and shapes of some inputs: what an export depends on.

    Example:
        >>> input_signature({"x": np.zeros((2, 3), np.float32)})
        (('x', '<f4', (2, 3)),)
    """
    inputs = normalize_inputs(raw)
    return tuple((n, a.dtype.str, tuple(a.shape)) for n, a in zip(inputs.names, inputs.arrays))


def recorded_tensors(matching: Matching, exported: ExportedGraph, side: str) -> tuple[str, ...]:
    """The tensors of side ``side``'s graph that a check reads: those of a tensor pair, the
    inputs and outputs of every module pair (own errors and the export check rerun modules from
    them) and the graph outputs."""
    names: dict[str, None] = {}
    for pair in matching.tensor_pairs:
        names.update(dict.fromkeys(pair.a if side == "a" else pair.b))
    for module in matching.module_pairs:
        inputs = module.inputs_a if side == "a" else module.inputs_b
        outputs = module.outputs_a if side == "a" else module.outputs_b
        names.update(dict.fromkeys([*inputs, *outputs]))
    names.update(dict.fromkeys(exported.output_names))
    return tuple(names)


@dataclass(frozen=True)
class PairSettings:
    """How a pair is prepared.

    Attributes:
        layer_map: a resolved :class:`~padiff_ir.pairing.layer_map.LayerMap` (path entries).
        opset: the ONNX opset to export with (None: the exporter's default).
        providers: onnxruntime execution providers of the runners.
        assign_weights: copy A's weights into B (its model and, through ``assign_graph``, its
            exported graph) after matching.
        assign_graph: how A's weights go into B's exported graph.
        reuse: serve the pair a previous call kept for the same models, and keep this one
            (:mod:`.kept`); the runners then keep their sessions.
        keep_sessions: the runners keep their sessions from one check to the next.
        fresh: per side, export the model whatever the export cache holds.
        verify_served: a graph served by the export cache is verified now, by one graph run
            against one eager forward (:mod:`.served`); False: the caller verifies it against
            the eager run of its first check (``match``, :mod:`padiff_ir.compare.verify`).
        runners: open a runner per graph (False: the matching is what is wanted).
        live: the graphs read the models' weights in place (:mod:`padiff_ir.exporters._live`).
        remember: remember the matching for the pair (:mod:`.memo`).
        trace_unexported: when a model cannot be exported, match on the models' eager traces
            (``stats["export_failed"]`` says why) instead of raising.
        tolerance_names: tensors of A's graph the caller gives tolerances for (checked
            before any weight is copied).
    """

    layer_map: LayerMap | None = None
    opset: int | None = None
    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    assign_weights: bool = False
    assign_graph: GraphAssigner | None = field(default=None, compare=False)
    reuse: bool = False
    keep_sessions: bool = False
    fresh: Sides = (False, False)
    verify_served: bool = False
    runners: bool = True
    live: bool = True
    remember: bool = True
    trace_unexported: bool = False
    tolerance_names: frozenset[str] = frozenset()


@dataclass
class ModelPair:
    """Two models exported, built into IR, matched, with a runner per graph (close when done).

    Attributes:
        models / frameworks: A's and B's model objects (or ONNX files) and frameworks.
        exported_a / exported_b, graph_a / graph_b: the exports and their canonical IR.
        matching: tensor, module and parameter pairs (their layouts settled).
        runner_a / runner_b: onnxruntime runners, their sessions opened once and reused (None
            for a pair prepared for its matching only).
        tensors_a / tensors_b: the tensors each check records from each graph.
        signature: the inputs' names, dtypes and shapes the graphs were exported for.
        notes: remarks from preparing (weights copied).
        views: compact graph views for the report (made once, shared by every result).
        cached: per side, whether its graph was served by fingerprint (the export cache or
            the kept pair of an earlier call) rather than exported from the model now: such
            a graph is verified against the model's eager run (:mod:`.served`).
    """

    models: tuple[Any, Any]
    frameworks: tuple[str, str]
    exported_a: ExportedGraph
    exported_b: ExportedGraph
    graph_a: Graph
    graph_b: Graph
    matching: Matching
    runner_a: Runner = field(default=None)  # type: ignore[assignment]
    runner_b: Runner = field(default=None)  # type: ignore[assignment]
    tensors_a: tuple[str, ...] = ()
    tensors_b: tuple[str, ...] = ()
    signature: tuple[Any, Any] = ((), ())
    notes: list[str] = field(default_factory=list)
    views: dict[str, Any] = field(default_factory=dict)
    cached: Sides = (False, False)

    def feeds(
        self, raw_a: Inputs, raw_b: Inputs
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Both graphs' feeds for per-side inputs."""
        return graph_feeds(self.exported_a, raw_a, "A"), graph_feeds(self.exported_b, raw_b, "B")

    def close(self) -> None:
        """Release both runners' onnxruntime sessions."""
        for runner in (self.runner_a, self.runner_b):
            if runner is not None:
                runner.close()

    def release(self) -> None:
        """Close the sessions unless the pair is kept for a later call (:mod:`.kept`)."""
        if not kept.is_kept(self):
            self.close()


@dataclass
class _Preparing:
    """A pair as its stages make it."""

    side_a: Side
    side_b: Side
    inputs: Any
    settings: PairSettings
    exported: tuple[ExportedGraph, ExportedGraph] | None = None
    signature: tuple[Any, Any] = ((), ())
    graphs: tuple[Graph, Graph] | None = None
    matching: Matching | None = None
    notes: list[str] = field(default_factory=list)
    key: tuple[Any, ...] | None = None
    export_failed: str = ""
    done: ModelPair | None = None

    @property
    def models(self) -> bool:
        """Both sides are framework models (not ONNX files)."""
        return "onnx" not in (self.side_a[1], self.side_b[1])


def _always(settings: PairSettings) -> bool:
    return True


@dataclass(frozen=True)
class PairStage:
    """One stage of :data:`PREPARATION`: ``run`` fills in its part of the pair (or sets
    ``done`` to end the preparation early), timed as ``timed``, for the settings ``applies``
    says it runs with."""

    name: str
    timed: Stage | None
    run: Callable[[_Preparing], None]
    applies: Callable[[PairSettings], bool] = _always


def _unexported(state: _Preparing, err: Exception) -> None:
    """A model could not be exported (or its export built): with ``trace_unexported`` the
    pair is matched on the eager traces and the matching says why; else ``err`` is raised."""
    reraise_interruption(err)
    if not (state.settings.trace_unexported and state.models):
        raise err
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    state.export_failed = f"{type(err).__name__}: {reason}"
    level = logging.INFO if isinstance(err, (ExportError, InputError)) else logging.WARNING
    logger.log(level, "matching on eager traces, the export failed: %s", state.export_failed)
    state.exported = None


def _export(state: _Preparing) -> None:
    try:
        _export_both(state)
    except Exception as err:  # any failure to export: the eager traces may serve all the same
        _unexported(state, err)


def _export_both(state: _Preparing) -> None:
    (model_a, framework_a, raw_a), (model_b, _, raw_b) = state.side_a, state.side_b
    settings = state.settings
    if settings.verify_served:  # a served graph that does not reproduce its model is redone
        state.exported = verified_pair(model_a, raw_a, model_b, raw_b)
    else:
        # the graphs read the models' weights in place (no copy); not B's when B's graph
        # alone takes A's weights (A is a file: B's model is left as it is)
        live = settings.live and not (settings.assign_weights and framework_a == "onnx")
        state.exported = export_pair(
            model_a,
            raw_a,
            model_b,
            raw_b,
            opset=settings.opset,
            check=False,
            live=live,
            fresh=settings.fresh,
        )
    state.signature = (input_signature(raw_a), input_signature(raw_b))


def _serve_kept(state: _Preparing) -> None:
    if not state.settings.reuse or state.exported is None:
        return
    exported_a, exported_b = state.exported
    state.key = kept.key_of(exported_a, exported_b, state.signature, state.settings)
    # a kept pair serves only exports the cache served: a model exported now has its graph
    if exported_a.cached and exported_b.cached:
        reused = kept.lookup(state.side_a[0], state.side_b[0], state.key)
        if reused is not None:
            _check_tolerance_names(state.settings.tolerance_names, reused.graph_a, exported_a)
            reused.cached = (True, True)
            state.done = reused


def canonical_graph(exported: ExportedGraph, side: str = "") -> Graph:
    """``canonicalize(build_graph(exported))``, made once per export fingerprint (the one
    cache's ``graphs``; a graph exported now, not served by the cache, is built again and
    replaces the one kept); an export that cannot run raises :class:`ExportError` naming its
    ``side``."""
    key = exported.fingerprint
    graph = pair_cache.graphs.get(key) if key and exported.cached else None
    if graph is None:
        try:
            built = build_graph(exported)
        except ExportError as err:
            err.side = err.side or side
            raise
        graph = canonicalize(built)
        if key:
            pair_cache.graphs.put(key, graph)
    return graph


def _build(state: _Preparing) -> None:
    if state.exported is None:  # matched on the eager traces
        return
    exported_a, exported_b = state.exported
    try:
        state.graphs = (canonical_graph(exported_a, "A"), canonical_graph(exported_b, "B"))
    except Exception as err:
        _unexported(state, err)
        return
    _check_tolerance_names(state.settings.tolerance_names, state.graphs[0], exported_a)


def _check_tolerance_names(names: frozenset[str], graph: Graph, exported: ExportedGraph) -> None:
    """Every tensor named in ``tolerances`` is one of A's graph.

    Raises:
        OptionError: naming the unknown names and the nearest names of A.
    """
    known = set(graph.tensors) | set(exported.output_names) | set(graph.aliases)
    unknown = sorted(name for name in names if name not in known)
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


def _remembered_traces(
    traces: Callable[[], tuple[Graph, Graph]],
    exported: tuple[ExportedGraph, ExportedGraph],
    layer_map: LayerMap | None,
) -> Callable[[], tuple[Graph, Graph]]:
    """``traces`` made once per pair of model structures (the one cache's ``traces``: the eager
    trace of a large model takes seconds; a later check of the same models reuses it). Reused
    only for exports the cache served: a model exported now is traced now (its fingerprint
    may have missed a change)."""
    exported_a, exported_b = exported
    if not (exported_a.fingerprint and exported_b.fingerprint):
        return traces
    reuse = exported_a.cached and exported_b.cached
    pins = json.dumps(layer_map.to_dict(), sort_keys=True, default=str) if layer_map else ""
    key = (exported_a.fingerprint, exported_b.fingerprint, pins)

    def make() -> tuple[Graph, Graph]:
        graphs = pair_cache.traces.get(key) if reuse else None
        if graphs is None:
            graphs = traces()
        pair_cache.traces.put(key, graphs)
        return graphs

    return make


def _match(state: _Preparing) -> None:
    from padiff_ir.pairing.graphs import pair_graphs, settle_layouts
    from padiff_ir.pairing.memo import remember
    from padiff_ir.pairing.model_graphs import trace_graphs

    (model_a, _, raw_a), (model_b, _, raw_b) = state.side_a, state.side_b
    layer_map = state.settings.layer_map
    if not state.models:  # an ONNX file: its graph alone
        assert state.graphs is not None
        state.matching = pair_graphs(*state.graphs, layer_map=layer_map)
        return
    traces = trace_graphs(model_a, raw_a, model_b, raw_b, layer_map)
    if state.graphs is None:  # the models could not be exported: their eager traces
        matching = _traced_matching(traces(), layer_map)
    else:
        assert state.exported is not None
        traces = _remembered_traces(traces, state.exported, layer_map)
        matching = pair_graphs(*state.graphs, layer_map=layer_map, traces=traces)
    classes_a = {p: type(m).__name__ for p, m in framework_of(model_a).named_modules(model_a)}
    matching = consistent_module_pairs(matching, classes_a)
    matching = settle_layouts(matching, model_a, raw_a, model_b, raw_b, layer_map)
    if state.settings.remember:
        remember(model_a, model_b, layer_map, state.inputs, matching)
    state.matching = matching


def _traced_matching(traced: tuple[Graph, Graph], layer_map: LayerMap | None) -> Matching:
    """:func:`~padiff_ir.matching.match_graphs` on both models' eager-trace graphs."""
    from padiff_ir.matching import match_graphs
    from padiff_ir.pairing.call_sites import split_call_sites
    from padiff_ir.pairing.model_graphs import unit_ignores

    traced_a, traced_b = traced
    matching = match_graphs(
        traced_a, traced_b, layer_map=unit_ignores(layer_map, traced_a, traced_b)
    )
    return split_call_sites(matching, traced_a, traced_b)


def _assign(state: _Preparing) -> None:
    settings = state.settings
    assert state.matching is not None and state.exported is not None
    (model_a, _, _), (model_b, framework_b, _) = state.side_a, state.side_b
    if state.models:
        from padiff_ir.pairing.assign import assign_weight

        assign_weight(model_b, model_a, matching=state.matching)
    elif framework_b != "onnx":
        state.notes.append(
            "assign_weights: A is an ONNX file, so only B's exported graph "
            "took A's weights, not B's model object"
        )
    if settings.assign_graph is not None:
        copied = settings.assign_graph(state.matching, *state.exported)
        state.notes.append(f"assign_weights: {copied} parameters of A copied into B")


def _known(runner: Runner, names: tuple[str, ...]) -> tuple[str, ...]:
    """The names that are tensors of the runner's ONNX graph (the IR's passes add some)."""
    index = runner.index
    return tuple(
        n for n in names if n in index.producer or n in index.inputs or n in index.initializers
    )


def _open(state: _Preparing) -> None:
    assert state.exported is not None and state.graphs is not None
    assert state.matching is not None
    settings = state.settings
    (exported_a, exported_b), (graph_a, graph_b) = state.exported, state.graphs
    pair = ModelPair(
        models=(state.side_a[0], state.side_b[0]),
        frameworks=(state.side_a[1], state.side_b[1]),
        exported_a=exported_a,
        exported_b=exported_b,
        graph_a=graph_a,
        graph_b=graph_b,
        matching=state.matching,
        signature=state.signature,
        notes=state.notes,
        cached=(exported_a.cached, exported_b.cached),
    )
    if settings.runners:
        keep_sessions = settings.keep_sessions or state.key is not None
        pair.runner_a = Runner(
            exported_a, providers=settings.providers, keep_sessions=keep_sessions
        )
        pair.runner_b = Runner(
            exported_b, providers=settings.providers, keep_sessions=keep_sessions
        )
        pair.tensors_a = _known(pair.runner_a, recorded_tensors(state.matching, exported_a, "a"))
        pair.tensors_b = _known(pair.runner_b, recorded_tensors(state.matching, exported_b, "b"))
        pair.views = {"a": graph_view(graph_a, exported_a), "b": graph_view(graph_b, exported_b)}
        kept.keep(pair, state.key)
    state.done = pair


#: The stages of preparing a pair, in order (each fills in its part of the pair).
PREPARATION: tuple[PairStage, ...] = (
    PairStage("export", Stage.EXPORT, _export),
    PairStage("kept", None, _serve_kept),
    PairStage("ir", Stage.IR, _build),
    PairStage("match", Stage.MATCH, _match),
    PairStage("assign", Stage.ASSIGN, _assign, lambda settings: settings.assign_weights),
    PairStage("open", None, _open),
)


def _run(state: _Preparing, stages: tuple[PairStage, ...], timer: StageTimer | None) -> _Preparing:
    """``stages`` run in order on ``state`` (until one says the pair is done)."""
    timer = timer or StageTimer()
    for stage in stages:
        if not stage.applies(state.settings):
            continue
        with timer.stage(stage.timed) if stage.timed is not None else contextlib.nullcontext():
            stage.run(state)
        if state.done is not None:
            break
    return state


def prepare(
    side_a: Side,
    side_b: Side,
    inputs: Inputs,
    settings: PairSettings,
    timer: StageTimer | None = None,
) -> ModelPair:
    """Two models prepared once: the stages of :data:`PREPARATION` run in order.

    ``side_a`` / ``side_b`` are ``(model, framework, raw inputs)``; ``inputs`` is what the user
    passed (the matching is remembered for it, :mod:`.memo`). A pair that is kept
    (:func:`~.kept.is_kept`) is not closed: call :meth:`ModelPair.release`.

    Raises:
        ExportError: a model cannot be exported (``err.side`` names which); what the
            matching raises.
    """
    state = _run(_Preparing(side_a, side_b, inputs, settings), PREPARATION, timer)
    assert state.done is not None, "PREPARATION ends with 'open', which makes the pair"
    return state.done


#: The stages that give a pair's matching (:func:`matching_of`): no weights copied, no runner.
MATCHING: tuple[PairStage, ...] = tuple(
    s for s in PREPARATION if s.name in ("export", "ir", "match")
)


def matching_of(
    side_a: Side, side_b: Side, inputs: Inputs, settings: PairSettings, *, export: bool = True
) -> tuple[Matching, str]:
    """The matching of two models on inputs (the stages of :data:`MATCHING`; without
    ``export``, on their eager traces), and why the export failed when it was made on the
    eager traces after trying (else ``""``)."""
    stages = MATCHING if export else tuple(s for s in MATCHING if s.name != "export")
    state = _run(_Preparing(side_a, side_b, inputs, settings), stages, None)
    assert state.matching is not None
    return state.matching, state.export_failed
