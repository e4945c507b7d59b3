"""Culprits and their explanations: which modules differ by themselves, and how.

:func:`.own_error.measure_modules` gives every module pair its own and inherited error and a
status; here each module that fails is explained (the op attributes, the parameters and the op
structure that differ, from :mod:`.explain`) and the modules whose status is ``culprit`` become
:class:`~padiff_ir.compare.match_result.Culprit` entries with a sentence saying what differs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from padiff_ir.compare.culprits.explain import (
    attribute_diffs,
    op_structure_diffs,
    op_type_diffs,
    param_diffs,
)
from padiff_ir.compare.culprits.own_error import EagerMeasure, ModuleInputs, measure_modules
from padiff_ir.compare.match_result import Culprit, ModuleResult, ModuleStatus, PairResult
from padiff_ir.compare.weights import initializers
from padiff_ir.exporters import ExportedGraph
from padiff_ir.ir import Graph
from padiff_ir.matching.types import Matching

__all__ = [
    "ACCUMULATED_NOTE",
    "culprit_of",
    "explain_culprit",
    "localize",
    "rounding_accumulated",
]

logger = logging.getLogger(__name__)

#: Statuses whose modules are explained even when their own outputs pass.
_EXPLAINED = (ModuleStatus.CULPRIT, ModuleStatus.INHERITED, ModuleStatus.CONTAINS_CULPRIT)


def explain_culprit(
    culprit: ModuleResult,
    attributes: list[str],
    structure: list[str],
    params: list[str],
    settings: Sequence[str] = (),
    ops: Sequence[str] = (),
) -> str:
    """One sentence: the module (the call, for a layer called several times), its own vs
    inherited error, and what differs in it: the modules' settings, its ops (``Relu vs Elu``),
    op attributes, parameters, the op counts."""
    own = culprit.own.max_abs if culprit.own is not None else float("nan")
    inherited = culprit.inputs.max_abs if culprit.inputs is not None else 0.0
    parts = [
        f"{culprit.a or '<root>'} ({culprit.class_a}) differs by itself: own error "
        f"{own:.3g} with inputs differing by {inherited:.3g}"
    ]
    if settings:
        parts.append("settings differ: " + "; ".join(settings))
    if ops:
        parts.append("different op: " + "; ".join(ops))
    if attributes:
        parts.append("attributes differ: " + "; ".join(attributes))
    if params:
        parts.append("; ".join(params))
    if structure and not attributes and not settings and not ops:
        parts.append("its ops differ: " + "; ".join(structure))
    return ". ".join(parts)


def culprit_of(
    module: ModuleResult,
    attributes: Sequence[str] = (),
    structure: Sequence[str] = (),
    params: Sequence[str] = (),
    settings: Sequence[str] = (),
    ops: Sequence[str] = (),
    *,
    inherited_error: float | None = None,
) -> Culprit:
    """The culprit that ``module`` is, with what differs in it and its explanation;
    ``inherited_error`` defaults to the error of the module's inputs."""
    if inherited_error is None:
        inherited_error = module.inputs.max_abs if module.inputs is not None else 0.0
    return Culprit(
        module_a=module.a,
        module_b=module.b,
        class_a=module.class_a,
        class_b=module.class_b,
        own_error=module.own.max_abs if module.own is not None else float("nan"),
        inherited_error=inherited_error,
        output_error=module.output.max_abs if module.output is not None else 0.0,
        attribute_diffs=tuple(attributes),
        param_diffs=tuple(params),
        setting_diffs=tuple(settings),
        explanation=explain_culprit(
            module, list(attributes), list(structure), list(params), settings, ops
        ),
    )


def localize(
    matching: Matching,
    graph_a: Graph,
    graph_b: Graph,
    ctx: ModuleInputs,
    exported_a: ExportedGraph,
    exported_b: ExportedGraph,
    eager: EagerMeasure | None = None,
) -> tuple[list[ModuleResult], list[Culprit]]:
    """Every module pair measured and, where it fails, explained; and the culprits, in A's
    data-flow order."""
    modules = measure_modules(matching, graph_a, graph_b, ctx, eager)
    pairs_by_a = {p.site_a: p for p in matching.module_pairs}
    failing = any(m.output is not None and not m.output.ok for m in modules)
    params_a = initializers(exported_a) if failing else {}
    params_b = initializers(exported_b) if failing else {}
    culprits = []
    explained = []
    for module in modules:
        pair = pairs_by_a[module.a]
        if module.status not in _EXPLAINED and not (
            module.output is not None and not module.output.ok
        ):
            explained.append(module)
            continue
        attrs = attribute_diffs(pair, matching, graph_a, graph_b)
        params = param_diffs(
            pair, matching, params_a, params_b, atol=ctx.tolerance.atol, rtol=ctx.tolerance.rtol
        )
        module = replace(module, attribute_diffs=tuple(attrs), param_diffs=tuple(params))
        explained.append(module)
        if module.status == ModuleStatus.CULPRIT:
            structure = op_structure_diffs(
                pair, graph_a, graph_b, direct=True
            ) or op_structure_diffs(pair, graph_a, graph_b)
            ops = op_type_diffs(pair, matching, graph_a, graph_b)
            settings = [  # without the label: the culprit line names the modules
                text.split(": ", 1)[-1] for text in (eager.settings(pair) if eager else [])
            ]
            culprits.append(culprit_of(module, attrs, structure, params, settings, ops))
    logger.debug("localize: %d modules, %d culprits", len(explained), len(culprits))
    return explained, culprits


#: The note of a result whose outputs drift apart with no culprit (:func:`rounding_accumulated`).
ACCUMULATED_NOTE = (
    "the outputs drift apart but no module differs by itself beyond tolerance: "
    "rounding error accumulated over the graph, no single culprit"
)


def rounding_accumulated(
    outputs: Sequence[PairResult],
    modules: Sequence[ModuleResult],
    culprits: Sequence[Culprit],
    faults: Sequence[object] = (),
) -> bool:
    """Whether outputs that differ while no module differs by itself are rounding accumulated
    over the graph: an output pair (of the graphs or the eager runs) fails by its values, not
    its shape; modules were measured for their own error and none is a culprit; and no
    exporter fault leaves the graphs unable to judge."""
    failing = [p for p in outputs if not p.ok]
    shape_only = all(p.metrics.reason.startswith("shape") for p in failing)
    measured = any(m.own is not None for m in modules)
    return bool(failing) and not shape_only and measured and not culprits and not faults
