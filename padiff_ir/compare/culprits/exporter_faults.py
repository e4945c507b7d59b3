"""Exporter faults are findings about the exporter, not about the models.

Where a side's exported graph departs from its own model's eager run at a module (the
innermost such module, found by :func:`~.fidelity.export_fidelity`), the exporter changed what
the model computes: paddle2onnx, for one, writes a garbage ``alpha`` for a ``LeakyReLU``. The
graphs cannot judge that module, nor what its garbage flows into; so:

* the module is measured on the eager runs instead (:mod:`.eager_modules`: B's module fed A's
  recorded inputs), and a culprit there is what that measure finds, not what the graphs do
  (a real difference the export hides, such as a dropout mode the exporter drops, is found);
* the verdict comes from the eager outputs and the culprits left (a real bug elsewhere is still
  found: each module's own error is measured on A's values);
* the result names the exporter and, where it can be read, the op attribute it got wrong next
  to the model's setting it stands for (:func:`padiff_ir.pairing.settings.op_setting`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from padiff_ir.compare.culprits import culprit_of
from padiff_ir.compare.culprits.eager_modules import EagerModules
from padiff_ir.compare.match_result import (
    Culprit,
    Departure,
    ExporterFault,
    ExportFidelity,
    MatchResult,
    ModuleResult,
    ModuleStatus,
    PairResult,
)
from padiff_ir.exporters import ExportedGraph, exporter_name
from padiff_ir.frameworks import get_framework
from padiff_ir.hints import Module
from padiff_ir.matching.types import Matching, ModulePair
from padiff_ir.pairing.settings import differ, fmt, op_setting

__all__ = ["exporter_faults", "fault_verdict", "judged_eagerly", "with_exporter_faults"]

logger = logging.getLogger(__name__)

_LABELS = {"a": "A", "b": "B"}


def _pair_at(matching: Matching, side: str, site: str) -> ModulePair | None:
    return next(
        (p for p in matching.module_pairs if (p.site_a if side == "a" else p.site_b) == site),
        None,
    )


def _wrong_attribute(
    exported: ExportedGraph, path: str, module: Module, framework: str
) -> tuple[str, str, str, str, str] | None:
    """``(op, attribute, written, setting, expected)`` for an op of module ``path`` whose
    attribute disagrees with the module's setting it carries."""
    from onnx import helper

    for node in exported.model.graph.node:
        if exported.node_modules.get(node.name) != path:
            continue
        for attribute in node.attribute:
            found = op_setting(node.op_type, attribute.name, module, framework)
            if found is None:
                continue
            written = helper.get_attribute_value(attribute)
            if differ(written, found[1]):
                shown = f"{written:.3g}" if isinstance(written, float) else fmt(written)
                return node.op_type, attribute.name, shown, found[0], fmt(found[1])
    return None


def _fault(
    side: str, report: Departure, pair: ModulePair, source: tuple[ExportedGraph, Any, str]
) -> ExporterFault:
    exported, model, framework = source
    path = pair.a if side == "a" else pair.b
    module = dict(get_framework(framework).named_modules(model)).get(path)
    wrong = _wrong_attribute(exported, path, module, framework) if module is not None else None
    exporter = exporter_name(framework)
    site = report.module
    where = f"{site or '<root>'} ({report.module_class})"
    if wrong is not None:
        op, attribute, written, setting, value = wrong
        expected = f"{setting} {value}"
        text = f"{exporter} wrote {op} {attribute}={written}; the model's {setting} is {value}"
    else:
        op = attribute = written = expected = ""
        text = f"{exporter} changed what {where} computes"
    explanation = (
        f"{text}: model {_LABELS[side]}'s graph departs from its eager run at {where} "
        f"(max abs {report.module_max_abs:.3g}); an exporter fault, "
        "not a model difference: that module was judged on the eager runs"
    )
    return ExporterFault(
        side=_LABELS[side],
        exporter=exporter,
        module=site,
        module_class=report.module_class,
        max_abs=report.module_max_abs,
        op=op,
        attribute=attribute,
        written=written,
        expected=expected,
        explanation=explanation,
    )


def exporter_faults(
    fidelity: Mapping[str, ExportFidelity],
    matching: Matching,
    sources: Mapping[str, tuple[ExportedGraph, Any, str]],
) -> list[ExporterFault]:
    """One fault per module where a side's graph departs from its model's eager run.

    Args:
        fidelity: per side (``"a"``, ``"b"``), the export check's report.
        matching: the module pairs (the report names a call site of one side).
        sources: per side, ``(exported graph, model, framework)``.
    """
    faults = []
    for side, report in fidelity.items():
        if side not in sources or sources[side][2] == "onnx":
            continue
        for departure in report.departures:
            pair = _pair_at(matching, side, departure.module)
            if pair is not None:
                faults.append(_fault(side, departure, pair, sources[side]))
    for fault in faults:
        logger.info("match: %s", fault.explanation)
    return faults


def _faulty_sites(faults: Sequence[ExporterFault], matching: Matching) -> set[str]:
    """A's call sites of the module pairs where an exporter fault lies."""
    sites = set()
    for fault in faults:
        pair = _pair_at(matching, fault.side.lower(), fault.module)
        if pair is not None:
            sites.add(pair.site_a)
    return sites


def judged_eagerly(
    faults: Sequence[ExporterFault],
    matching: Matching,
    modules: list[ModuleResult],
    culprits: list[Culprit],
    measure: EagerModules | None,
) -> tuple[list[ModuleResult], list[Culprit]]:
    """The module results and culprits with each faulty module judged on the eager runs: its
    result measured eagerly (B's module fed A's inputs for its own error), a culprit the
    graphs found there replaced by what the eager measure finds, in data-flow order."""
    sites = _faulty_sites(faults, matching)
    if not sites or measure is None:
        return modules, culprits
    pairs = {p.site_a: p for p in matching.module_pairs}
    judged, found = [], [c for c in culprits if c.module_a not in sites]
    for result in modules:
        if result.a in sites:
            result = measure.measure(pairs[result.a], result.depth)
            if result.status is ModuleStatus.CULPRIT:
                settings = [text.split(": ", 1)[-1] for text in measure.settings(pairs[result.a])]
                found.append(culprit_of(result, settings=settings))
        judged.append(result)
    order = {m.a: index for index, m in enumerate(judged)}
    return judged, sorted(found, key=lambda c: order.get(c.module_a, len(order)))


def fault_verdict(
    eager_outputs: Sequence[PairResult], pairs: Sequence[PairResult], culprits: Sequence[Culprit]
) -> tuple[bool, PairResult | None]:
    """The verdict where an exporter fault leaves the graphs unable to judge past it: the
    eager outputs agree and no culprit is left. With it the first divergence: the first
    failing pair of a culprit, else the first failing eager output."""
    failing = [p for p in eager_outputs if not p.ok]
    ok = not failing and not culprits
    if ok:
        return True, None
    sites = {c.module_a for c in culprits}
    first = next((p for p in pairs if not p.ok and p.module_a in sites), None)
    return False, first or (failing[0] if failing else None)


def with_exporter_faults(result: MatchResult, faults: list[ExporterFault]) -> MatchResult:
    """``result`` judged where an exporter fault leaves the graphs unable to: the verdict and
    first divergence of :func:`fault_verdict`, no accumulated rounding."""
    if not faults:
        return result
    result.exporter_faults = faults
    result.ok, result.first_divergence = fault_verdict(
        result.eager_outputs, result.pairs, result.culprits
    )
    result.accumulated = False
    return result
