"""Does each exported graph compute what its eager model computes? If not, where not.

The graphs can only show differences that survive the export. Each side's graph outputs are
compared with the model's eager outputs; when they differ, the innermost module whose exported
graph, rerun from the module's eager inputs, does not give its eager outputs is where the
exporter changed the computation (error accumulated upstream does not count). There the two
models are compared eagerly instead: a difference the graphs hide becomes a culprit
(:func:`hidden_divergences`), and :func:`fidelity_notes` tells the user what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from padiff_ir.compare.eager import EagerRun, module_output_metrics
from padiff_ir.compare.localize import is_inside, worst
from padiff_ir.compare.result import Culprit
from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.exporters import ExportedGraph
from padiff_ir.matching.types import Matching
from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays

__all__ = ["export_fidelity", "fidelity_notes", "hidden_divergences"]

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
) -> dict[str, Any]:
    """Whether side ``side``'s exported graph reproduces the model's eager outputs.

    Returns ``{"checked": False}`` without an eager run (an ONNX file), else ``{"checked",
    "ok", "max_abs"}`` plus, when not ok and found, the innermost ``module`` (with its
    ``module_class`` and ``module_max_abs``) where the exporter changed the computation.
    """
    if eager is None:
        return {"checked": False}
    outputs = [
        compare_arrays(store[name], value, tolerance)
        for name, value in zip(exported.output_names, eager.outputs)
        if name in store
    ]
    total = worst(outputs)
    report: dict[str, Any] = {
        "checked": True,
        "ok": total is None or total.ok,
        "max_abs": total.max_abs if total is not None else 0.0,
    }
    if report["ok"]:
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
    if innermost:
        path, cls, metrics = innermost[0]
        report.update(module=path, module_class=cls, module_max_abs=metrics.max_abs)
    return report


def hidden_divergences(
    fidelity: Mapping[str, Any],
    matching: Matching,
    eager_a: EagerRun | None,
    eager_b: EagerRun | None,
    tolerance: Tolerance,
) -> list[Culprit]:
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
        pair = next(
            (p for p in matching.module_pairs if (p.site_a if side == "a" else p.site_b) == path),
            None,
        )
        if pair is None:
            continue
        outputs_a = eager_a.module_outputs(pair.a, pair.call_a)
        outputs_b = eager_b.module_outputs(pair.b, pair.call_b)
        if not outputs_a or len(outputs_a) != len(outputs_b):
            continue
        metrics = worst([compare_arrays(x, y, tolerance) for x, y in zip(outputs_a, outputs_b)])
        if metrics is None or metrics.ok:
            continue
        culprits.append(
            Culprit(
                module_a=pair.site_a,
                module_b=pair.site_b,
                class_a=pair.class_a,
                class_b=pair.class_b,
                own_error=metrics.max_abs,
                inherited_error=float("nan"),
                output_error=metrics.max_abs,
                explanation=(
                    f"{pair.site_a or '<root>'} ({pair.class_a}) vs {pair.site_b or '<root>'} "
                    f"({pair.class_b}) differ when run eagerly (max abs "
                    f"{metrics.max_abs:.3g}), but the exported graph of "
                    f"{side.upper()} computes something else there (the exporter dropped "
                    "or changed an attribute): check this layer's configuration"
                ),
            )
        )
    return culprits


def fidelity_notes(fidelity: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One remark for the user per side whose exported graph departs from its eager run."""
    notes = []
    for side, report in fidelity.items():
        if not report.get("checked") or report["ok"]:
            continue
        where = report.get("module")
        head = (
            f"the exported graph of {side.upper()} does not reproduce its eager outputs "
            f"(max abs {report['max_abs']:.3g})"
        )
        if where is not None:
            notes.append(
                f"{head}: at module {where!r} ({report.get('module_class', '')}) "
                "the exporter changed what the model computes, so the graphs "
                "cannot show that part; the eager runs were compared there instead"
            )
        else:
            notes.append(
                f"{head}, but no module of it computes differently from its eager "
                "run: rounding differences between the framework and onnxruntime "
                "accumulated"
            )
    return notes
