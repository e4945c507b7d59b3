"""``padiff_ir.match``: export, match, run and compare two models node by node.

Stages (each timed in ``MatchResult.timings``):

1. **export** both models with attribution (an ONNX file is used as it is);
2. **ir**: graph IR and canonicalising passes;
3. **match**: tensor pairs, module pairs (the layer_map), parameter pairs;
4. **assign** (with ``assign_weights=True``): A's weights copied into B through the
   parameter map, into B's model and its exported graph alike;
5. **run** both graphs in onnxruntime with every intermediate exposed;
6. **compare** every matched tensor pair and the outputs;
7. **localise**: each module's own error (B's module fed A's inputs), culprits, explanations.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from padiff_ir._inputs import normalize_inputs, split_inputs
from padiff_ir.compare.eager import EagerRun, module_output_metrics, run_eager
from padiff_ir.compare.environment import environment
from padiff_ir.compare.explain import attribute_diffs, op_structure_diffs, param_diffs
from padiff_ir.compare.localize import (
    ModuleInputs,
    is_inside,
    measure_modules,
    worst,
)
from padiff_ir.compare.result import Culprit, MatchResult, ModuleResult, PairResult
from padiff_ir.compare.values import pair_values
from padiff_ir.errors import ExecutionError, InputError, MatchError
from padiff_ir.exporters import ExportedGraph, detect_framework, export
from padiff_ir.exporters._export import StartedExport, check_signature, start_export
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.ir.views import graph_view
from padiff_ir.matching.types import Matching
from padiff_ir.metrics import Tolerance, compare_arrays

__all__ = ["match"]

logger = logging.getLogger(__name__)


_STAGE_MESSAGES = {
    "eager": "running both models eagerly",
    "export": "exporting both models to ONNX",
    "ir": "building the graph IR",
    "match": "matching the graphs",
    "assign": "copying A's weights into B",
    "run": "running both graphs with every intermediate",
    "compare": "comparing matched tensors",
    "localize": "measuring each diverging module's own error",
    "fidelity": "checking the exports against the eager runs",
}


class _Timer:
    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(_STAGE_MESSAGES.get(name, name) + " ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _eager_side(model: Any, framework: str, raw_inputs: Any, label: str,
                memory_budget: int | None) -> EagerRun | None:
    if framework == "onnx":
        return None
    inputs = normalize_inputs(raw_inputs)
    check_signature(model, inputs)
    try:
        return run_eager(model, framework, inputs, memory_budget=memory_budget)
    except InputError as err:
        raise InputError(f"model {label} ({framework}) does not run on the inputs: {err}") from err


def _export_pair(model_a: Any, framework_a: str, raw_a: Any, model_b: Any, framework_b: str,
                 raw_b: Any, opset: int | None) -> tuple[ExportedGraph, ExportedGraph]:
    """Both exports; a paddle side's conversion runs in its child process meanwhile."""
    sides = [(model_a, framework_a, raw_a), (model_b, framework_b, raw_b)]
    # start paddle exports first: their conversion overlaps the other side's export
    order = sorted(range(2), key=lambda i: sides[i][1] != "paddle")
    started: dict[int, StartedExport] = {}
    try:
        for i in order:
            model, framework, raw = sides[i]
            started[i] = (StartedExport(done=export(model)) if framework == "onnx" else
                          start_export(model, raw, opset=opset, check=False))
        return started[0].result(), started[1].result()
    finally:
        for export_ in started.values():
            export_.close()


def _feeds(exported: ExportedGraph, raw_inputs: Any, label: str) -> dict[str, np.ndarray]:
    inputs = normalize_inputs(raw_inputs)
    names = exported.input_names
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
    return {n: feeds[n] for n in names}


def _resolve_layer_map(layer_map: Any, model_a: Any, model_b: Any) -> Any:
    if layer_map is None:
        return None
    if isinstance(layer_map, Mapping):
        from padiff_ir.matching.layer_map import LayerMap

        resolved = LayerMap()
        for a, b in layer_map.items():
            resolved.pin(a, b)
        layer_map = resolved
    if hasattr(layer_map, "is_resolved") and not layer_map.is_resolved():
        if isinstance(model_a, (str, bytes)) or isinstance(model_b, (str, bytes)):
            raise MatchError("a layer_map of module objects needs both models as objects")
        layer_map = layer_map.resolve(model_a, model_b)
    return layer_map


def _initializers(exported: ExportedGraph) -> dict[str, np.ndarray]:
    """Framework parameter name -> value, from the exported graph's initializers."""
    from onnx import numpy_helper

    out = {}
    for tensor in exported.model.graph.initializer:
        name = exported.parameters.get(tensor.name)
        if name is not None:
            out[name] = numpy_helper.to_array(tensor)
    return out


def _assign_into_graph(matching: Matching, exported_a: ExportedGraph,
                       exported_b: ExportedGraph) -> int:
    """Copy A's parameter values into B's ONNX initializers through the parameter map."""
    from onnx import numpy_helper

    from padiff_ir.matching.transforms import apply_transform

    params_a = _initializers(exported_a)
    by_param_b = {exported_b.parameters[t.name]: t for t in exported_b.model.graph.initializer
                  if t.name in exported_b.parameters}
    copied = 0
    for pair in matching.param_pairs:
        if any(n not in params_a for n in pair.a) or any(n not in by_param_b for n in pair.b):
            continue
        targets = [by_param_b[n] for n in pair.b]
        values = apply_transform(pair.transform, [params_a[n] for n in pair.a],
                                 target_shapes=[list(t.dims) for t in targets])
        for tensor, value in zip(targets, values):
            dtype = numpy_helper.to_array(tensor).dtype
            tensor.CopyFrom(numpy_helper.from_array(value.astype(dtype), tensor.name))
            copied += 1
    return copied


def _order_key(graph: Graph, names: Sequence[str]) -> int:
    indices = [graph.ops[p.name].index for p in (graph.producer(n) for n in names) if p]
    return min(indices) if indices else -1


def _compare_pairs(matching: Matching, graph_a: Graph, store_a: Mapping[str, Any],
                   store_b: Mapping[str, Any], tolerance: Tolerance,
                   overrides: Mapping[str, Tolerance]) -> list[PairResult]:
    results = []
    ordered = sorted(matching.tensor_pairs, key=lambda p: _order_key(graph_a, p.a))
    for index, pair in enumerate(ordered):
        value_a, value_b = pair_values(pair, store_a, store_b)
        if value_a is None or value_b is None:
            continue
        tol = next((overrides[n] for n in pair.a if n in overrides), tolerance)
        results.append(PairResult(
            index=index, a=pair.a, b=pair.b, module_a=pair.module_a, module_b=pair.module_b,
            op_a=pair.op_a, op_b=pair.op_b, metrics=compare_arrays(value_a, value_b, tol),
            confidence=pair.confidence, evidence=pair.evidence,
        ))
    return results


def _compare_outputs(exported_a: ExportedGraph, exported_b: ExportedGraph,
                     store_a: Mapping[str, Any], store_b: Mapping[str, Any],
                     tolerance: Tolerance) -> list[PairResult]:
    if len(exported_a.output_names) != len(exported_b.output_names):
        raise MatchError(
            f"model A has {len(exported_a.output_names)} outputs {list(exported_a.output_names)} "
            f"and model B {len(exported_b.output_names)} {list(exported_b.output_names)}: compare "
            "models with the same outputs (wrap one so that both return the same tensors)"
        )
    results = []
    for index, (name_a, name_b) in enumerate(zip(exported_a.output_names,
                                                 exported_b.output_names)):
        results.append(PairResult(
            index=index, a=(name_a,), b=(name_b,), module_a="", module_b="", op_a="output",
            op_b="output", metrics=compare_arrays(store_a[name_a], store_b[name_b], tolerance),
            evidence=("output-position",),
        ))
    return results


def _export_own_error(eager: EagerRun, runner: Any, path: str, inputs: Sequence[str],
                      outputs: Sequence[str], tolerance: Tolerance) -> Any:
    """The exported module rerun from its eager inputs, vs its eager outputs."""
    eager_in, eager_out = eager.module_inputs(path), eager.module_outputs(path)
    if not eager_in or len(eager_in) != len(inputs) or len(eager_out) != len(outputs):
        return None
    try:
        values = runner.run_subgraph(dict(zip(inputs, eager_in)), list(outputs))
    except (InputError, ExecutionError) as err:
        logger.debug("export check of %s not measured: %s", path, err)
        return None
    return worst([compare_arrays(values[n], e, tolerance) for n, e in zip(outputs, eager_out)])


def _fidelity(side: str, eager: EagerRun | None, exported: ExportedGraph,
              store: Mapping[str, Any], runner: Any, module_pairs: Sequence[Any],
              tolerance: Tolerance) -> dict[str, Any]:
    """Does the exported graph reproduce the model's eager outputs? If not, where not.

    The place is the innermost module whose exported graph, rerun from the module's eager
    inputs, does not give its eager outputs: there the exporter changed the computation (error
    accumulated from upstream does not count).
    """
    if eager is None:
        return {"checked": False}
    outputs = [compare_arrays(store[name], value, tolerance)
               for name, value in zip(exported.output_names, eager.outputs) if name in store]
    total = worst(outputs)
    report: dict[str, Any] = {"checked": True, "ok": total is None or total.ok,
                              "max_abs": total.max_abs if total is not None else 0.0}
    if report["ok"]:
        return report
    failing = []
    for pair in module_pairs:
        path = pair.a if side == "a" else pair.b
        names_in = pair.inputs_a if side == "a" else pair.inputs_b
        names_out = pair.outputs_a if side == "a" else pair.outputs_b
        metrics = module_output_metrics(eager, path, names_out, store, tolerance)
        if metrics is None or metrics.ok:
            continue
        own = _export_own_error(eager, runner, path, names_in, names_out, tolerance)
        if own is not None and not own.ok:
            failing.append((path, pair.class_a if side == "a" else pair.class_b, own))
    innermost = [f for f in failing
                 if not any(o[0] != f[0] and is_inside(o[0], f[0]) for o in failing)]
    if innermost:
        path, cls, metrics = innermost[0]
        report.update(module=path, module_class=cls, module_max_abs=metrics.max_abs)
    return report


def _eager_outputs(eager_a: EagerRun | None, eager_b: EagerRun | None,
                   tolerance: Tolerance) -> list[PairResult]:
    """The two models' eager outputs compared, position by position."""
    if eager_a is None or eager_b is None:
        return []
    return [PairResult(index=i, a=(f"eager#{i}",), b=(f"eager#{i}",), module_a="", module_b="",
                       op_a="eager output", op_b="eager output",
                       metrics=compare_arrays(a, b, tolerance), evidence=("eager",))
            for i, (a, b) in enumerate(zip(eager_a.outputs, eager_b.outputs))]


def _hidden_divergences(fidelity: Mapping[str, Any], matching: Matching,
                        eager_a: EagerRun | None, eager_b: EagerRun | None,
                        store_a: Mapping[str, Any], store_b: Mapping[str, Any],
                        tolerance: Tolerance) -> list[Culprit]:
    """Culprits the graphs cannot show: where an export lost what the eager model computes.

    At the innermost module where a side's graph departs from its eager run, the two models
    are compared eagerly (A's eager module outputs vs B's); if they differ, that module is a
    culprit even though the graphs agree.
    """
    culprits = []
    for side, report in fidelity.items():
        path = report.get("module")
        if path is None or eager_a is None or eager_b is None:
            continue
        pair = next((p for p in matching.module_pairs
                     if (p.a if side == "a" else p.b) == path), None)
        if pair is None:
            continue
        outputs_a, outputs_b = eager_a.module_outputs(pair.a), eager_b.module_outputs(pair.b)
        if not outputs_a or len(outputs_a) != len(outputs_b):
            continue
        metrics = worst([compare_arrays(x, y, tolerance) for x, y in zip(outputs_a, outputs_b)])
        if metrics is None or metrics.ok:
            continue
        culprits.append(Culprit(
            module_a=pair.a, module_b=pair.b, class_a=pair.class_a, class_b=pair.class_b,
            own_error=metrics.max_abs, inherited_error=float("nan"),
            output_error=metrics.max_abs,
            explanation=(f"{pair.a or '<root>'} ({pair.class_a}) vs {pair.b or '<root>'} "
                         f"({pair.class_b}) differ when run eagerly (max abs "
                         f"{metrics.max_abs:.3g}), but the exported graph of "
                         f"{side.upper()} computes something else there (the exporter dropped "
                         "or changed an attribute): check this layer's configuration"),
        ))
    return culprits


def _explain(culprit: ModuleResult, result_lines: list[str], structure: list[str],
             params: list[str]) -> str:
    own = culprit.own.max_abs if culprit.own is not None else float("nan")
    inherited = culprit.inputs.max_abs if culprit.inputs is not None else 0.0
    parts = [f"{culprit.a or '<root>'} ({culprit.class_a}) differs by itself: own error "
             f"{own:.3g} with inputs differing by {inherited:.3g}"]
    if result_lines:
        parts.append("attributes differ: " + "; ".join(result_lines))
    if params:
        parts.append("; ".join(params))
    if structure and not result_lines:
        parts.append("its ops differ: " + "; ".join(structure))
    return ". ".join(parts)


def _localise(matching: Matching, graph_a: Graph, graph_b: Graph, ctx: ModuleInputs,
              exported_a: ExportedGraph, exported_b: ExportedGraph
              ) -> tuple[list[ModuleResult], list[Culprit]]:
    modules = measure_modules(matching, graph_a, graph_b, ctx)
    pairs_by_a = {p.a: p for p in matching.module_pairs}
    failing = any(m.output is not None and not m.output.ok for m in modules)
    params_a = _initializers(exported_a) if failing else {}
    params_b = _initializers(exported_b) if failing else {}
    culprits = []
    explained = []
    for module in modules:
        pair = pairs_by_a[module.a]
        if module.status not in ("culprit", "inherited", "contains-culprit") and \
                not (module.output is not None and not module.output.ok):
            explained.append(module)
            continue
        attrs = attribute_diffs(pair, matching, graph_a, graph_b)
        params = param_diffs(pair, matching, params_a, params_b, atol=ctx.tolerance.atol,
                             rtol=ctx.tolerance.rtol)
        module = replace(module, attribute_diffs=tuple(attrs), param_diffs=tuple(params))
        explained.append(module)
        if module.status == "culprit":
            structure = op_structure_diffs(pair, graph_a, graph_b, direct=True) or \
                op_structure_diffs(pair, graph_a, graph_b)
            culprits.append(Culprit(
                module_a=module.a, module_b=module.b, class_a=module.class_a,
                class_b=module.class_b,
                own_error=module.own.max_abs if module.own is not None else float("nan"),
                inherited_error=module.inputs.max_abs if module.inputs is not None else 0.0,
                output_error=module.output.max_abs if module.output is not None else 0.0,
                attribute_diffs=tuple(attrs), param_diffs=tuple(params),
                explanation=_explain(module, attrs, structure, params),
            ))
    return explained, culprits


def match(
    model_a: Any,
    model_b: Any,
    inputs: Any,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    compare_mode: str = "strict",
    layer_map: Any = None,
    assign_weights: bool = False,
    tolerances: Mapping[str, Mapping[str, Any]] | None = None,
    localize: bool = True,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    memory_budget: int | None = None,
    opset: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> MatchResult:
    """Compare two models node by node; find the first divergence and its cause.

    See :func:`padiff_ir.match` for the documentation; ``progress`` is called with a short
    message as each stage starts (the CLI prints them).
    """
    from padiff_ir.matching.compat import unwrap_model

    tolerance = Tolerance(atol=atol, rtol=rtol, mode=compare_mode)
    overrides = {name: Tolerance(**{"atol": atol, "rtol": rtol, "mode": compare_mode, **tol})
                 for name, tol in (tolerances or {}).items()}
    timer = _Timer(progress)
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    framework_a, framework_b = detect_framework(model_a), detect_framework(model_b)
    raw_a, raw_b = split_inputs(inputs, framework_a, framework_b)
    with contextlib.ExitStack() as eager_runs:
        with timer.stage("eager"):
            eager_a = _eager_side(model_a, framework_a, raw_a, "A", memory_budget)
            if eager_a is not None:
                eager_runs.enter_context(eager_a)
            eager_b = _eager_side(model_b, framework_b, raw_b, "B", memory_budget)
            if eager_b is not None:
                eager_runs.enter_context(eager_b)

        def rerun_b() -> EagerRun | None:
            run = _eager_side(model_b, framework_b, raw_b, "B", memory_budget)
            if run is not None:
                eager_runs.enter_context(run)
            return run

        return _match_exported(
            model_a, model_b, framework_a, framework_b, raw_a, raw_b, eager_a, eager_b,
            rerun_b, tolerance=tolerance, overrides=overrides, timer=timer,
            layer_map=layer_map, assign_weights=assign_weights, localize=localize,
            providers=providers, memory_budget=memory_budget, opset=opset)


def _match_exported(model_a: Any, model_b: Any, framework_a: str, framework_b: str, raw_a: Any,
                    raw_b: Any, eager_a: EagerRun | None, eager_b: EagerRun | None,
                    rerun_b: Any, *,
                    tolerance: Tolerance, overrides: Mapping[str, Tolerance], timer: _Timer,
                    layer_map: Any, assign_weights: bool, localize: bool,
                    providers: Sequence[str], memory_budget: int | None, opset: int | None
                    ) -> MatchResult:
    from padiff_ir.matching import match_graphs
    from padiff_ir.runtime import Runner

    with timer.stage("export"):
        exported_a, exported_b = _export_pair(model_a, framework_a, raw_a, model_b,
                                              framework_b, raw_b, opset)
    feeds_a, feeds_b = _feeds(exported_a, raw_a, "A"), _feeds(exported_b, raw_b, "B")
    with timer.stage("ir"):
        graph_a = canonicalize(build_graph(exported_a))
        graph_b = canonicalize(build_graph(exported_b))
    resolved = _resolve_layer_map(layer_map, model_a, model_b)
    with timer.stage("match"):
        matching = match_graphs(graph_a, graph_b, layer_map=resolved)
    notes: list[str] = []
    if assign_weights:
        with timer.stage("assign"):
            if framework_a != "onnx" and framework_b != "onnx":
                from padiff_ir.matching.assign import assign_weight

                assign_weight(model_b, model_a, matching=matching)
                if eager_b is not None:  # B's eager run predates its new weights
                    eager_b.close()
                    eager_b = rerun_b()
            elif framework_b != "onnx":
                notes.append("assign_weights: A is an ONNX file, so only B's exported graph "
                             "took A's weights, not B's model object")
            copied = _assign_into_graph(matching, exported_a, exported_b)
            notes.append(f"assign_weights: {copied} parameters of A copied into B")
    with timer.stage("run"), Runner(exported_a, providers=providers) as runner_a, \
            Runner(exported_b, providers=providers) as runner_b:
        store_a = runner_a.run_all(feeds_a, memory_budget=memory_budget)
        store_b = runner_b.run_all(feeds_b, memory_budget=memory_budget)
        try:
            with timer.stage("compare"):
                outputs = _compare_outputs(exported_a, exported_b, store_a, store_b, tolerance)
                pairs = _compare_pairs(matching, graph_a, store_a, store_b, tolerance, overrides)
            modules: list[ModuleResult] = []
            culprits: list[Culprit] = []
            if localize:
                with timer.stage("localize"):
                    ctx = ModuleInputs(store_a, store_b, runner_b, tolerance)
                    modules, culprits = _localise(matching, graph_a, graph_b, ctx,
                                                  exported_a, exported_b)
            with timer.stage("fidelity"):
                fidelity = {
                    "a": _fidelity("a", eager_a, exported_a, store_a, runner_a,
                                   matching.module_pairs, tolerance),
                    "b": _fidelity("b", eager_b, exported_b, store_b, runner_b,
                                   matching.module_pairs, tolerance),
                }
                hidden = _hidden_divergences(fidelity, matching, eager_a, eager_b, store_a,
                                             store_b, tolerance)
        finally:
            store_a.close()
            store_b.close()
    eager_outputs = _eager_outputs(eager_a, eager_b, tolerance)
    failing = [p for p in pairs if not p.ok]
    outputs_ok = all(p.ok for p in outputs) and all(p.ok for p in eager_outputs)
    ok = outputs_ok and not failing
    for side, report in fidelity.items():
        if report.get("checked") and not report["ok"]:
            where = report.get("module")
            head = (f"the exported graph of {side.upper()} does not reproduce its eager outputs "
                    f"(max abs {report['max_abs']:.3g})")
            if where is not None:
                notes.append(f"{head}: at module {where!r} ({report.get('module_class', '')}) "
                             "the exporter changed what the model computes, so the graphs "
                             "cannot show that part; the eager runs were compared there instead")
            else:
                notes.append(f"{head}, but no module of it computes differently from its eager "
                             "run: rounding differences between the framework and onnxruntime "
                             "accumulated")
    culprits = culprits + [c for c in hidden if c.module_a not in {x.module_a for x in culprits}]
    nonfinite = [p for p in pairs if p.metrics.nan_a or p.metrics.inf_a]
    if nonfinite:
        first = nonfinite[0]
        notes.append(f"non-finite values appear in A at {first.module_a or '<root>'} "
                     f"({first.op_a}, tensor {first.a[0]}) and after")
    accumulated = not ok and not culprits and localize and outputs_ok is False and any(
        m.own is not None for m in modules)
    if accumulated:
        notes.append("the outputs drift apart but no module differs by itself beyond tolerance: "
                     "rounding error accumulated over the graph, no single culprit")
    total = worst([p.metrics for p in outputs])
    logger.debug("match: %s, %d pairs, %d failing, outputs max abs %s",
                "aligned" if ok else "diverged", len(pairs), len(failing),
                f"{total.max_abs:.3g}" if total else "-")
    return MatchResult(
        ok=ok, tolerance=tolerance, outputs=outputs, pairs=pairs, modules=modules,
        first_divergence=failing[0] if failing else (
            None if outputs_ok else next(p for p in (*outputs, *eager_outputs) if not p.ok)),
        culprits=culprits, accumulated=accumulated, layer_map=list(matching.module_pairs),
        unmatched=list(matching.unmatched),
        model_a={"framework": exported_a.framework, "class": exported_a.model_class,
                 "nodes": len(exported_a.model.graph.node)},
        model_b={"framework": exported_b.framework, "class": exported_b.model_class,
                 "nodes": len(exported_b.model.graph.node)},
        timings=dict(timer.timings), environment=environment(graph_a, graph_b),
        eager_outputs=eager_outputs, export_fidelity=fidelity,
        graphs={"a": graph_view(graph_a, exported_a), "b": graph_view(graph_b, exported_b)},
        overrides={k: {"atol": v.atol, "rtol": v.rtol, "mode": v.mode}
                   for k, v in overrides.items()},
        notes=notes,
    )
