"""One check of a prepared pair: run both graphs on some inputs, compare, localise, explain.

Stages (timed into ``MatchResult.timings``): **run** both graphs recording the tensors a check
reads (sessions opened once per :class:`~padiff_ir.pairing.pair.ModelPair`);
**compare** every matched tensor pair and the outputs (:mod:`.pairs`); **localize** each
failing module's own error, culprits, explanations (:mod:`.culprits`); **fidelity**: does each
exported graph reproduce its eager model (:mod:`.culprits.fidelity`)?

The eager runs given may hold the models' outputs only (a plain forward's cost); only when a
graph's outputs depart from its model's are both models rerun recording every module, to find
where the exporter changed the computation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from padiff_ir.compare.comparable import judged_by_modules, module_failures
from padiff_ir.compare.culprits import ACCUMULATED_NOTE, localize, rounding_accumulated
from padiff_ir.compare.culprits.eager_modules import eager_modules
from padiff_ir.compare.culprits.exporter_faults import (
    exporter_faults,
    judged_eagerly,
    with_exporter_faults,
)
from padiff_ir.compare.culprits.fidelity import export_fidelity, fidelity_notes
from padiff_ir.compare.culprits.own_error import ModuleInputs, worst
from padiff_ir.compare.eager import EagerRun
from padiff_ir.compare.laid_out_pairs import transposed_pairs
from padiff_ir.compare.match_result import (
    Culprit,
    ExporterFault,
    ExportFidelity,
    MatchResult,
    ModelInfo,
    ModuleResult,
    PairResult,
)
from padiff_ir.compare.options import MatchOptions
from padiff_ir.compare.pairs import compare_eager_outputs, compare_outputs, compare_pairs
from padiff_ir.compare.values import ComparedTensors
from padiff_ir.metrics import Tolerance
from padiff_ir.pairing.environment import environment
from padiff_ir.pairing.layout_probes import found_layouts
from padiff_ir.pairing.pair import ModelPair
from padiff_ir.pairing.stages import Stage, StageTimer
from padiff_ir.runtime import ActivationStore

__all__ = ["EagerPair", "check_inputs", "checker"]

logger = logging.getLogger(__name__)

EagerPair = tuple["EagerRun | None", "EagerRun | None"]


def _fidelity(
    prepared: ModelPair,
    eager: EagerPair,
    stores: tuple[Mapping[str, Any], Mapping[str, Any]],
    options: MatchOptions,
) -> dict[str, ExportFidelity]:
    pairs = prepared.matching.module_pairs
    return {
        "a": export_fidelity(
            "a",
            eager[0],
            prepared.exported_a,
            stores[0],
            prepared.runner_a,
            pairs,
            options.tolerance,
        ),
        "b": export_fidelity(
            "b",
            eager[1],
            prepared.exported_b,
            stores[1],
            prepared.runner_b,
            pairs,
            options.tolerance,
        ),
    }


class _EagerMeasure:
    """Main's eager module measure (:mod:`.culprits.eager_modules`) on runs recording every module,
    made only when a module the graphs cannot measure asks for it."""

    def __init__(
        self, prepared: ModelPair, by_module: Callable[[], EagerPair], tolerance: Any
    ) -> None:
        self._prepared = prepared
        self._by_module = by_module
        self._tolerance = tolerance
        self._measure: Any = None

    def _get(self) -> Any:
        if self._measure is None:
            from padiff_ir.compare.culprits.eager_modules import eager_modules

            run_a, run_b = self._by_module()
            self._measure = eager_modules(
                run_a, run_b, self._prepared.models, self._prepared.frameworks, self._tolerance
            )
        return self._measure

    def measure(self, pair: Any, depth: int, *, own_error: bool = True) -> ModuleResult:
        return self._get().measure(pair, depth, own_error=own_error)

    def settings(self, pair: Any) -> list[str]:
        return self._get().settings(pair)


def _run_both(
    prepared: ModelPair,
    feeds: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    options: MatchOptions,
) -> tuple[ActivationStore, ActivationStore]:
    budget = options.memory_budget
    store_a = prepared.runner_a.run_all(feeds[0], tensors=prepared.tensors_a, memory_budget=budget)
    try:
        store_b = prepared.runner_b.run_all(
            feeds[1], tensors=prepared.tensors_b, memory_budget=budget
        )
    except BaseException:
        store_a.close()
        raise
    return store_a, store_b


def check_inputs(
    prepared: ModelPair,
    feeds: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    eager: EagerPair,
    eager_by_module: Callable[[], EagerPair],
    options: MatchOptions,
    timer: StageTimer,
    notes: list[str],
) -> MatchResult:
    """Compare the two prepared graphs on ``feeds`` (and the models' ``eager`` runs).

    ``eager_by_module`` reruns both models recording every module, for the export check; it
    is called only when a graph's outputs depart from its model's and ``eager`` has outputs
    only. The caller closes the eager runs.
    """
    tolerance, overrides = options.tolerance, options.overrides
    matching, graph_a, graph_b = prepared.matching, prepared.graph_a, prepared.graph_b
    recorded: list[EagerPair] = []

    def by_module() -> EagerPair:  # the runs recording every module, made once
        if not recorded:
            recorded.append(eager_by_module())
        return recorded[0]

    exported_a, exported_b = prepared.exported_a, prepared.exported_b
    with timer.stage(Stage.RUN):
        store_a, store_b = _run_both(prepared, feeds, options)
    try:
        compared = ComparedTensors(store_a, store_b)
        with timer.stage(Stage.COMPARE):
            outputs = compare_outputs(exported_a, exported_b, store_a, store_b, tolerance, compared)
            pairs = compare_pairs(
                matching, graph_a, store_a, store_b, tolerance, overrides, graph_b, compared
            )
        modules: list[ModuleResult] = []
        culprits: list[Culprit] = []
        if options.localize:
            with timer.stage(Stage.LOCALIZE):
                modules, culprits = _localize(
                    prepared,
                    (store_a, store_b),
                    compared,
                    (outputs, pairs),
                    eager,
                    by_module,
                    options,
                )
        with timer.stage(Stage.FIDELITY):
            fidelity = _fidelity(prepared, eager, (store_a, store_b), options)
            outputs_only = any(run is not None and not run.by_module for run in eager)
            if recorded or (outputs_only and any(r.departs for r in fidelity.values())):
                eager = by_module()
                fidelity = _fidelity(prepared, eager, (store_a, store_b), options)
            faults, modules, culprits = _judge_faults(
                prepared, fidelity, eager, (modules, culprits), tolerance
            )
    finally:
        store_a.close()
        store_b.close()
    result = _result(
        prepared,
        outputs,
        pairs,
        modules,
        culprits,
        fidelity,
        eager,
        options,
        timer,
        notes,
        faults=faults,
    )
    return with_exporter_faults(result, faults)


def _localize(
    prepared: ModelPair,
    stores: tuple[ActivationStore, ActivationStore],
    compared: ComparedTensors,
    results: tuple[list[PairResult], list[PairResult]],
    eager: EagerPair,
    by_module: Callable[[], EagerPair],
    options: MatchOptions,
) -> tuple[list[ModuleResult], list[Culprit]]:
    """Every module pair's own error and the culprits (:func:`.culprits.localize`), modules
    no graph can measure measured on the eager runs."""
    tolerance, (outputs, pairs) = options.tolerance, results
    matching, exported_a, exported_b = prepared.matching, prepared.exported_a, prepared.exported_b
    ctx = ModuleInputs(
        stores[0],
        stores[1],
        prepared.runner_b,
        tolerance,
        compared,
        transposed_pairs(matching),
    )
    # modules no graph can measure are rerun eagerly only when something differs:
    # when the graphs and the models' outputs agree, no culprit hides there
    agree = (
        all(p.ok for p in outputs)
        and all(p.ok for p in pairs)
        and all(
            p.ok
            for p in compare_eager_outputs(
                eager[0],
                eager[1],
                tolerance,
                exported_a.output_keys,
                exported_b.output_keys,
            )
        )
    )
    measure = _EagerMeasure(prepared, by_module, tolerance) if all(eager) and not agree else None
    return localize(
        matching, prepared.graph_a, prepared.graph_b, ctx, exported_a, exported_b, measure
    )


def checker(
    raw: tuple[Any, Any],
    eager: EagerPair,
    eager_by_module: Callable[[], EagerPair],
    options: MatchOptions,
    timer: StageTimer,
    notes: list[str],
) -> Callable[[ModelPair], MatchResult]:
    """:func:`check_inputs` of any prepared pair on per-side inputs ``raw`` (``notes`` first,
    then the pair's own)."""

    def check(prepared: ModelPair) -> MatchResult:
        feeds = prepared.feeds(*raw)
        notes_of = [*notes, *prepared.notes]
        return check_inputs(prepared, feeds, eager, eager_by_module, options, timer, notes_of)

    return check


def _judge_faults(
    prepared: ModelPair,
    fidelity: dict[str, ExportFidelity],
    eager: EagerPair,
    found: tuple[list[ModuleResult], list[Culprit]],
    tolerance: Tolerance,
) -> tuple[list[ExporterFault], list[ModuleResult], list[Culprit]]:
    """The exporter faults the export check found, and the modules and culprits ``found``
    with each faulty module judged on the eager runs (:mod:`.culprits.exporter_faults`)."""
    faults = exporter_faults(fidelity, prepared.matching, _sources(prepared))
    if not faults:
        return faults, *found
    measure = eager_modules(eager[0], eager[1], prepared.models, prepared.frameworks, tolerance)
    return faults, *judged_eagerly(faults, prepared.matching, *found, measure)


def _sources(prepared: ModelPair) -> dict[str, tuple[Any, Any, str]]:
    """Per side, its exported graph, model and framework."""
    return {
        "a": (prepared.exported_a, prepared.models[0], prepared.frameworks[0]),
        "b": (prepared.exported_b, prepared.models[1], prepared.frameworks[1]),
    }


def _notes(
    notes: list[str], fidelity: dict[str, Any], pairs: list[PairResult], accumulated: bool
) -> list[str]:
    """``notes``, then what the export check, non-finite values and an error accumulated
    without a culprit add."""
    notes = [*notes, *fidelity_notes(fidelity)]
    nonfinite = [p for p in pairs if p.metrics.nan_a or p.metrics.inf_a]
    if nonfinite:
        first = nonfinite[0]
        notes.append(
            f"non-finite values appear in A at {first.module_a or '<root>'} "
            f"({first.op_a}, tensor {first.a[0]}) and after"
        )
    if accumulated:
        notes.append(ACCUMULATED_NOTE)
    return notes


def _failing_output(
    outputs: list[PairResult], eager_outputs: list[PairResult]
) -> PairResult | None:
    """The first output pair that differs, of the graphs' then of the eager runs'."""
    return next((p for p in (*outputs, *eager_outputs) if not p.ok), None)


def _result(
    prepared: ModelPair,
    outputs: list[PairResult],
    pairs: list[PairResult],
    modules: list[ModuleResult],
    culprits: list[Culprit],
    fidelity: dict[str, ExportFidelity],
    eager: EagerPair,
    options: MatchOptions,
    timer: StageTimer,
    notes: list[str],
    *,
    faults: list[ExporterFault],
) -> MatchResult:
    tolerance = options.tolerance
    exported_a, exported_b = prepared.exported_a, prepared.exported_b
    eager_outputs = compare_eager_outputs(
        eager[0], eager[1], tolerance, exported_a.output_keys, exported_b.output_keys
    )
    pairs = judged_by_modules(pairs, modules, prepared.matching)
    failing = [p for p in pairs if not p.ok]
    outputs_ok = all(p.ok for p in outputs) and all(p.ok for p in eager_outputs)
    ok = outputs_ok and not failing and not module_failures(modules)
    accumulated = rounding_accumulated((*outputs, *eager_outputs), modules, culprits, faults)
    notes = _notes(notes, fidelity, pairs, accumulated)
    total = worst([p.metrics for p in outputs])
    logger.debug(
        "match: %s, %d pairs, %d failing, outputs max abs %s",
        "aligned" if ok else "diverged",
        len(pairs),
        len(failing),
        f"{total.max_abs:.3g}" if total else "-",
    )
    first_divergence = failing[0] if failing else _failing_output(outputs, eager_outputs)
    return MatchResult(
        ok=ok,
        tolerance=tolerance,
        outputs=outputs,
        pairs=pairs,
        modules=modules,
        first_divergence=first_divergence,
        culprits=culprits,
        accumulated=accumulated,
        layer_map=list(prepared.matching.module_pairs),
        unmatched=list(prepared.matching.unmatched),
        model_a=ModelInfo(
            exported_a.framework, exported_a.model_class, len(exported_a.model.graph.node)
        ),
        model_b=ModelInfo(
            exported_b.framework, exported_b.model_class, len(exported_b.model.graph.node)
        ),
        timings=dict(timer.timings),
        environment=environment(prepared.graph_a, prepared.graph_b),
        eager_outputs=eager_outputs,
        export_fidelity=fidelity,
        graphs=prepared.views,
        layouts=found_layouts(prepared.matching),
        overrides=dict(options.overrides),
        notes=notes,
    )
