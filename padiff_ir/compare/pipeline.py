"""The ``match`` pipeline: export, match, run and compare two models node by node.

Stages (each timed in ``MatchResult.timings``, see :class:`~padiff_ir.compare.stages.Stage`):

0. **eager**: both framework models run once (their outputs, and each module's inputs and
   outputs, for the export-fidelity check);
1. **export** both models with attribution (an ONNX file is used as it is);
2. **ir**: graph IR and canonicalising passes;
3. **match**: tensor pairs, module pairs (the layer_map), parameter pairs;
4. **assign** (with ``assign_weights=True``): A's weights copied into B through the
   parameter map, into B's model and its exported graph alike (:mod:`.weights`);
5. **run** both graphs in onnxruntime with every intermediate exposed;
6. **compare** every matched tensor pair and the outputs (:mod:`.pairs`);
7. **localize**: each module's own error (B's module fed A's inputs), culprits, explanations
   (:mod:`.culprits`);
8. **fidelity**: does each exported graph reproduce its eager model? (:mod:`.fidelity`).

:func:`padiff_ir.match` is the public entry; it builds a
:class:`~padiff_ir.compare.options.MatchOptions` and calls :func:`match` here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from padiff_ir.compare.culprits import localise
from padiff_ir.compare.eager import EagerRun, run_eager
from padiff_ir.compare.eager_modules import eager_modules
from padiff_ir.compare.environment import environment
from padiff_ir.compare.fidelity import export_fidelity, fidelity_notes, hidden_divergences
from padiff_ir.compare.localize import ModuleInputs, worst
from padiff_ir.compare.options import MatchOptions
from padiff_ir.compare.pairs import compare_eager_outputs, compare_outputs, compare_pairs
from padiff_ir.compare.result import Culprit, MatchResult, ModuleResult, PairResult
from padiff_ir.compare.stages import Stage, StageTimer
from padiff_ir.compare.weights import assign_into_graph
from padiff_ir.errors import ExportError, InputError, MatchError, OptionError
from padiff_ir.exporters import ExportedGraph, detect_framework, export_pair
from padiff_ir.exporters._export import FRAMEWORK_LOCK, check_signature
from padiff_ir.frameworks.inputs import normalize_inputs, split_inputs
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.ir.views import graph_view

__all__ = ["match"]

logger = logging.getLogger(__name__)


def _eager_side(
    model: Any, framework: str, raw_inputs: Any, label: str, memory_budget: int | None
) -> EagerRun | None:
    if framework == "onnx":
        return None
    inputs = normalize_inputs(raw_inputs)
    check_signature(model, inputs)
    try:
        return run_eager(model, framework, inputs, memory_budget=memory_budget)
    except InputError as err:
        raise InputError(f"model {label} ({framework}) does not run on the inputs: {err}") from err


def _feeds(exported: ExportedGraph, raw_inputs: Any, label: str) -> dict[str, np.ndarray]:
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


def _resolve_layer_map(layer_map: Any, model_a: Any, model_b: Any, files: bool) -> Any:
    """``layer_map`` as a :class:`LayerMap` of paths (None stays None).

    Raises:
        OptionError: ``layer_map`` is neither a LayerMap nor a dict.
        MatchError: object entries with a model given as a file, or a bad pin.
    """
    from padiff_ir.pairing.layer_map import LayerMap

    layer_map = LayerMap.coerce(layer_map)
    if layer_map is None:
        return None
    if files and not layer_map.is_resolved:
        raise MatchError(
            "a layer_map of module objects needs both models as objects; with an "
            "ONNX file, pin module paths instead"
        )
    if not files:  # object entries become paths; every path is checked against the models
        layer_map = layer_map.resolve(model_a, model_b)
    return layer_map


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


def match(model_a: Any, model_b: Any, inputs: Any, options: MatchOptions) -> MatchResult:
    """Compare two models node by node; find the first divergence and its cause.

    See :func:`padiff_ir.match` for the arguments and the result; ``options`` holds its
    keyword arguments.
    """
    from padiff_ir.frameworks.wrapper import unwrap_model

    with FRAMEWORK_LOCK:  # one comparison at a time: the frameworks' global state is shared
        return _match(model_a, model_b, inputs, options, unwrap_model)


def _train_mode_notes(sides: tuple[tuple[str, Any, str], ...]) -> list[str]:
    notes = []
    for label, model, framework in sides:
        if framework != "onnx" and getattr(model, "training", False):
            notes.append(
                f"model {label} ({framework} {type(model).__name__}) is in train mode: "
                "match compares both models in eval mode (no dropout, normalisation "
                "by running statistics) and leaves the mode as it was; use "
                "padiff_ir.auto_diff to compare them training"
            )
    return notes


def _match(
    model_a: Any,
    model_b: Any,
    inputs: Any,
    options: MatchOptions,
    unwrap_model: Callable[[Any], Any],
) -> MatchResult:
    timer = StageTimer(options.progress)
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    framework_a, framework_b = detect_framework(model_a), detect_framework(model_b)
    # a bad layer map fails before the slow export
    files = "onnx" in (framework_a, framework_b)
    options = dataclasses.replace(
        options, layer_map=_resolve_layer_map(options.layer_map, model_a, model_b, files)
    )
    raw_a, raw_b = split_inputs(inputs, framework_a, framework_b)
    with contextlib.ExitStack() as eager_runs:
        with timer.stage(Stage.EAGER):
            eager_a = _eager_side(model_a, framework_a, raw_a, "A", options.memory_budget)
            if eager_a is not None:
                eager_runs.enter_context(eager_a)
            eager_b = _eager_side(model_b, framework_b, raw_b, "B", options.memory_budget)
            if eager_b is not None:
                eager_runs.enter_context(eager_b)

        def rerun_b() -> EagerRun | None:
            run = _eager_side(model_b, framework_b, raw_b, "B", options.memory_budget)
            if run is not None:
                eager_runs.enter_context(run)
            return run

        notes = _train_mode_notes((("A", model_a, framework_a), ("B", model_b, framework_b)))
        return _match_exported(
            (model_a, framework_a, raw_a, eager_a),
            (model_b, framework_b, raw_b, eager_b),
            rerun_b,
            options,
            timer,
            inputs,
            notes,
        )


_Side = tuple[Any, str, Any, "EagerRun | None"]  # model, framework, raw inputs, eager run


def _match_exported(
    side_a: _Side,
    side_b: _Side,
    rerun_b: Callable[[], EagerRun | None],
    options: MatchOptions,
    timer: StageTimer,
    inputs: Any,
    notes: list[str],
) -> MatchResult:
    from padiff_ir.pairing.graphs import pair_graphs, settle_layouts
    from padiff_ir.pairing.memo import remember
    from padiff_ir.pairing.model_graphs import trace_graphs
    from padiff_ir.runtime import Runner

    model_a, framework_a, raw_a, eager_a = side_a
    model_b, framework_b, raw_b, eager_b = side_b
    tolerance, overrides = options.tolerance, options.overrides
    failed: ExportError | None = None
    with timer.stage(Stage.EXPORT):
        try:
            exported_a, exported_b = export_pair(
                model_a, raw_a, model_b, raw_b, opset=options.opset, check=False
            )
        except ExportError as err:
            if "onnx" in (framework_a, framework_b):
                raise
            failed = err
    if failed is not None:  # match still answers: module by module, natively
        from padiff_ir.compare.native_match import fallback_of, match_natively

        side = failed.side or "B"
        fallback = fallback_of(model_a if side == "A" else model_b, side, failed)
        logger.warning("match: %s", fallback["reason"])
        return match_natively(model_a, model_b, inputs, options, timer, fallback, notes)
    feeds_a, feeds_b = _feeds(exported_a, raw_a, "A"), _feeds(exported_b, raw_b, "B")
    with timer.stage(Stage.IR):
        graph_a = canonicalize(build_graph(exported_a))
        graph_b = canonicalize(build_graph(exported_b))
    _check_tolerance_names(overrides, graph_a, exported_a)
    resolved = options.layer_map
    models = framework_a != "onnx" and framework_b != "onnx"
    with timer.stage(Stage.MATCH):
        # the matching every entry point gives for these models (padiff_ir.pairing)
        traces = trace_graphs(model_a, raw_a, model_b, raw_b, resolved) if models else None
        matching = pair_graphs(graph_a, graph_b, layer_map=resolved, traces=traces)
        if models:
            matching = settle_layouts(matching, model_a, raw_a, model_b, raw_b, resolved)
            remember(model_a, model_b, resolved, inputs, matching)
    if options.assign_weights:
        with timer.stage(Stage.ASSIGN):
            if framework_a != "onnx" and framework_b != "onnx":
                from padiff_ir.pairing.assign import assign_weight

                assign_weight(model_b, model_a, matching=matching)
                if eager_b is not None:  # B's eager run predates its new weights
                    eager_b.close()
                    eager_b = rerun_b()
            elif framework_b != "onnx":
                notes.append(
                    "assign_weights: A is an ONNX file, so only B's exported graph "
                    "took A's weights, not B's model object"
                )
            copied = assign_into_graph(matching, exported_a, exported_b)
            notes.append(f"assign_weights: {copied} parameters of A copied into B")
    providers = options.providers
    with (
        timer.stage(Stage.RUN),
        Runner(exported_a, providers=providers) as runner_a,
        Runner(exported_b, providers=providers) as runner_b,
    ):
        store_a = runner_a.run_all(feeds_a, memory_budget=options.memory_budget)
        store_b = runner_b.run_all(feeds_b, memory_budget=options.memory_budget)
        try:
            with timer.stage(Stage.COMPARE):
                outputs = compare_outputs(exported_a, exported_b, store_a, store_b, tolerance)
                pairs = compare_pairs(
                    matching, graph_a, store_a, store_b, tolerance, overrides, graph_b
                )
            modules: list[ModuleResult] = []
            culprits: list[Culprit] = []
            if options.localize:
                with timer.stage(Stage.LOCALIZE):
                    ctx = ModuleInputs(store_a, store_b, runner_b, tolerance)
                    eager = eager_modules(
                        eager_a,
                        eager_b,
                        (model_a, model_b),
                        (framework_a, framework_b),
                        tolerance,
                    )
                    modules, culprits = localise(
                        matching, graph_a, graph_b, ctx, exported_a, exported_b, eager
                    )
            with timer.stage(Stage.FIDELITY):
                fidelity = {
                    "a": export_fidelity(
                        "a",
                        eager_a,
                        exported_a,
                        store_a,
                        runner_a,
                        matching.module_pairs,
                        tolerance,
                    ),
                    "b": export_fidelity(
                        "b",
                        eager_b,
                        exported_b,
                        store_b,
                        runner_b,
                        matching.module_pairs,
                        tolerance,
                    ),
                }
                hidden = hidden_divergences(fidelity, matching, eager_a, eager_b, tolerance)
        finally:
            store_a.close()
            store_b.close()
    eager_outputs = compare_eager_outputs(
        eager_a, eager_b, tolerance, exported_a.output_keys, exported_b.output_keys
    )
    failing = [p for p in pairs if not p.ok]
    outputs_ok = all(p.ok for p in outputs) and all(p.ok for p in eager_outputs)
    ok = outputs_ok and not failing
    notes.extend(fidelity_notes(fidelity))
    culprits = culprits + [c for c in hidden if c.module_a not in {x.module_a for x in culprits}]
    nonfinite = [p for p in pairs if p.metrics.nan_a or p.metrics.inf_a]
    if nonfinite:
        first = nonfinite[0]
        notes.append(
            f"non-finite values appear in A at {first.module_a or '<root>'} "
            f"({first.op_a}, tensor {first.a[0]}) and after"
        )
    layout_only = all(
        p.metrics.reason.startswith("shape") for p in (*outputs, *eager_outputs) if not p.ok
    )
    accumulated = (
        not ok
        and not culprits
        and options.localize
        and outputs_ok is False
        and any(m.own is not None for m in modules)
        and not layout_only
    )
    if accumulated:
        notes.append(
            "the outputs drift apart but no module differs by itself beyond tolerance: "
            "rounding error accumulated over the graph, no single culprit"
        )
    total = worst([p.metrics for p in outputs])
    logger.debug(
        "match: %s, %d pairs, %d failing, outputs max abs %s",
        "aligned" if ok else "diverged",
        len(pairs),
        len(failing),
        f"{total.max_abs:.3g}" if total else "-",
    )
    first_divergence: PairResult | None = (
        failing[0]
        if failing
        else (None if outputs_ok else next(p for p in (*outputs, *eager_outputs) if not p.ok))
    )
    return MatchResult(
        ok=ok,
        tolerance=tolerance,
        outputs=outputs,
        pairs=pairs,
        modules=modules,
        first_divergence=first_divergence,
        culprits=culprits,
        accumulated=accumulated,
        layer_map=list(matching.module_pairs),
        unmatched=list(matching.unmatched),
        model_a={
            "framework": exported_a.framework,
            "class": exported_a.model_class,
            "nodes": len(exported_a.model.graph.node),
        },
        model_b={
            "framework": exported_b.framework,
            "class": exported_b.model_class,
            "nodes": len(exported_b.model.graph.node),
        },
        timings=dict(timer.timings),
        environment=environment(graph_a, graph_b),
        eager_outputs=eager_outputs,
        export_fidelity=fidelity,
        graphs={"a": graph_view(graph_a, exported_a), "b": graph_view(graph_b, exported_b)},
        overrides={
            k: {"atol": v.atol, "rtol": v.rtol, "mode": v.mode} for k, v in overrides.items()
        },
        notes=notes,
    )
