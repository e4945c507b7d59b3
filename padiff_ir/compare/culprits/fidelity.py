"""Does each exported graph compute what its eager model computes? If not, where not.

The graphs can only show differences that survive the export. Each side's graph outputs are
compared with the model's eager outputs; when they differ, the innermost module whose exported
graph, rerun from the module's eager inputs, does not give its eager outputs is where the
exporter changed the computation (error accumulated upstream does not count). There the
module is judged on the eager runs instead (:mod:`.exporter_faults`): a difference the graphs
hide becomes a culprit, an exporter's fault does not; :func:`fidelity_notes` tells the user
what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from padiff_ir.compare.culprits.own_error import is_inside, worst
from padiff_ir.compare.eager import EagerRun, module_output_metrics
from padiff_ir.compare.match_result import Departure, ExportFidelity
from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.exporters import ExportedGraph
from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays

__all__ = ["export_fidelity", "fidelity_notes"]

logger = logging.getLogger(__name__)


def _export_own_error(
    eager: EagerRun,
    runner: Any,
    path: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    tolerance: Tolerance,
    call: int | None = None,
) -> TensorMetrics | None:
    """The exported module (its ``call``) rerun from its eager inputs, vs its eager outputs."""
    eager_in, eager_out = eager.module_inputs(path, call), eager.module_outputs(path, call)
    if not eager_in or len(eager_in) != len(inputs) or len(eager_out) != len(outputs):
        return None
    try:
        values = runner.run_subgraph(dict(zip(inputs, eager_in)), list(outputs))
    except (InputError, ExecutionError) as err:
        logger.debug("export check of %s not measured: %s", path, err)
        return None
    return worst([compare_arrays(values[n], e, tolerance) for n, e in zip(outputs, eager_out)])


def export_fidelity(
    side: str,
    eager: EagerRun | None,
    exported: ExportedGraph,
    store: Mapping[str, Any],
    runner: Any,
    module_pairs: Sequence[Any],
    tolerance: Tolerance,
) -> ExportFidelity:
    """Whether side ``side``'s exported graph reproduces the model's eager outputs.

    Not checked without an eager run (an ONNX file); when not ok, the innermost modules where
    the exporter changed the computation, in data-flow order (:class:`ExportFidelity`).
    """
    if eager is None:
        return ExportFidelity()
    outputs = [
        compare_arrays(store[name], value, tolerance)
        for name, value in zip(exported.output_names, eager.outputs)
        if name in store
    ]
    total = worst(outputs)
    report = ExportFidelity(
        checked=True,
        ok=total is None or total.ok,
        max_abs=total.max_abs if total is not None else 0.0,
    )
    if report.ok:
        return report
    failing = []
    for pair in module_pairs:
        path = pair.a if side == "a" else pair.b
        call = pair.call_a if side == "a" else pair.call_b
        names_in = pair.inputs_a if side == "a" else pair.inputs_b
        names_out = pair.outputs_a if side == "a" else pair.outputs_b
        metrics = module_output_metrics(eager, path, names_out, store, tolerance, call)
        if metrics is None or metrics.ok:
            continue
        own = _export_own_error(eager, runner, path, names_in, names_out, tolerance, call)
        if own is not None and not own.ok:
            site = pair.site_a if side == "a" else pair.site_b
            failing.append((site, pair.class_a if side == "a" else pair.class_b, own))
    innermost = [
        f for f in failing if not any(o[0] != f[0] and is_inside(o[0], f[0]) for o in failing)
    ]
    found = tuple(Departure(path, cls, metrics.max_abs) for path, cls, metrics in innermost)
    return replace(report, departures=found)


def fidelity_notes(fidelity: Mapping[str, ExportFidelity]) -> list[str]:
    """One remark for the user per side whose exported graph departs from its eager run."""
    notes = []
    for side, report in fidelity.items():
        if not report.departs:
            continue
        found = report.departures
        where = ("modules " if len(found) > 1 else "module ") + ", ".join(
            f"{d.module!r} ({d.module_class})" for d in found
        )
        head = (
            f"the exported graph of {side.upper()} does not reproduce its eager outputs "
            f"(max abs {report.max_abs:.3g})"
        )
        if found:
            notes.append(
                f"{head}: at {where} the exporter changed what the model "
                "computes, so the graphs cannot show that part; the eager runs were "
                "compared there instead"
            )
        else:
            notes.append(
                f"{head}, but no module of it computes differently from its eager "
                "run: rounding differences between the framework and onnxruntime "
                "accumulated"
            )
    return notes
