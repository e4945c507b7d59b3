"""View models of the HTML report, built from a result's JSON (``to_dict()``) alone.

:func:`build_view` turns the dictionary of a :class:`~padiff_ir.compare.MatchResult` (``kind``
``"match"``) or of an auto_diff ``DiffResult`` (``kind`` ``"auto_diff"``, see
:mod:`padiff_ir.report.training`) into a :class:`ReportView`: the summary the template renders
as HTML (verdict, first divergence, culprits, environment) and the ``payload`` the page's
script reads (the result itself plus indices: which pair each drawn node belongs to, which
module result each module path has). Nothing here runs a model or imports a framework.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsFloat, SupportsIndex

from padiff_ir._paths import split_call_site
from padiff_ir._result import Verdict
from padiff_ir.compare.facts import MatchFacts, NoCulprit, facts
from padiff_ir.compare.match_result import Culprit, MatchResult
from padiff_ir.errors import ReportError
from padiff_ir.metrics import Tolerance
from padiff_ir.pairing.noise_floor import times_noise
from padiff_ir.report.graph_index import graph_index, module_graphs
from padiff_ir.report.result_json import match_json

__all__ = [
    "CulpritView",
    "Fact",
    "ReportError",
    "ReportView",
    "SummaryView",
    "TabView",
    "build_view",
    "environment_facts",
    "format_error",
    "match_result",
    "match_view",
    "to_float",
    "tolerance_text",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fact:
    """One labelled value of the summary; ``status`` is ``"ok"``, ``"fail"`` or ``""``."""

    label: str
    value: str
    status: str = ""


@dataclass(frozen=True)
class CulpritView:
    """A module whose own computation differs, as the summary shows it.

    ``target`` is the module path of A the page reveals in the graph (``None`` for none),
    ``target_b`` its partner in B (the call's own module when A's layer is called several
    times: ``pool#2`` is ``pool`` in A's graph and ``pool2`` in B's).
    """

    title: str
    classes: str
    own_error: str
    inherited_error: str
    output_error: str
    attribute_diffs: tuple[str, ...] = ()
    param_diffs: tuple[str, ...] = ()
    explanation: str = ""
    target: str | None = None
    target_b: str | None = None


@dataclass(frozen=True)
class SummaryView:
    """The top of the report: verdict, where the models part and why.

    ``causes`` are sentences on settings that differ (auto_diff's configuration differences),
    listed under ``culprit_heading`` with the culprits.
    """

    ok: bool
    verdict: Verdict
    headline: str
    facts: tuple[Fact, ...] = ()
    first_divergence: tuple[Fact, ...] = ()
    first_divergence_target: str | None = None
    culprits: tuple[CulpritView, ...] = ()
    culprit_note: str = ""
    notes: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()
    culprit_heading: str = "Culprit"


@dataclass(frozen=True)
class TabView:
    """A section of the page below the summary, filled by the script."""

    id: str
    label: str


@dataclass(frozen=True)
class ReportView:
    """Everything the template needs: the summary as HTML, the rest as data for the script."""

    title: str
    kind: str
    summary: SummaryView
    environment: tuple[Fact, ...]
    tabs: tuple[TabView, ...]
    payload: dict[str, Any] = field(default_factory=dict)


# -- formatting ---------------------------------------------------------------------------------
def to_float(value: object) -> float | None:
    """``value`` as a float (``"nan"`` / ``"inf"`` text as TensorMetrics.to_dict writes them),
    or None when it is none (absent, or no number).

    Examples:
        >>> to_float(0.5), to_float("inf"), to_float(None), to_float("x"), to_float([1])
        (0.5, inf, None, None, None)
    """
    if not isinstance(value, (SupportsFloat, SupportsIndex, str, bytes)):
        return None  # what float() refuses with a TypeError
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_error(value: object) -> str:
    """An error value for people: ``7.78e-03``, ``0``, ``inf``, ``-`` when absent.

    Examples:
        >>> format_error(0.0077848), format_error(0.0), format_error("inf"), format_error(None)
        ('7.78e-03', '0', 'inf', '-')
    """
    number = to_float(value)
    if number is None or math.isnan(number):
        return "-" if number is None else "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return "0" if number == 0 else f"{number:.2e}"


def _where(module: str) -> str:
    return module or "<root>"


# -- match results ------------------------------------------------------------------------------
def _culprit_views(culprits: Sequence[Culprit]) -> tuple[CulpritView, ...]:
    return tuple(
        CulpritView(
            title=f"{_where(c.module_a)} ↔ {_where(c.module_b)}",
            classes=f"{c.class_a} ↔ {c.class_b}",
            own_error=format_error(c.own_error),
            inherited_error=format_error(c.inherited_error),
            output_error=format_error(c.output_error),
            attribute_diffs=c.attribute_diffs,
            param_diffs=c.param_diffs,
            explanation=c.explanation,
            target=split_call_site(c.module_a)[0],
            target_b=split_call_site(c.module_b)[0],
        )
        for c in culprits
    )


def tolerance_text(tolerance: Mapping[str, Any] | Tolerance, measured: bool = False) -> str:
    """The tolerance of a result in words; ``measured``: under ``tolerance="auto"``, where the
    fixed bounds only measure each pair.

    Example:
        >>> tolerance_text({"mode": "strict", "atol": 1e-05, "rtol": 1e-05}, measured=True)
        'auto, measured noise; fixed strict atol=1e-05 rtol=1e-05 per pair'
    """
    if isinstance(tolerance, Tolerance):
        text = f"{tolerance.mode} atol={tolerance.atol} rtol={tolerance.rtol}"
    else:
        text = (
            f"{tolerance.get('mode', 'strict')} atol={tolerance.get('atol', '?')} "
            f"rtol={tolerance.get('rtol', '?')}"
        )
    return f"auto, measured noise; fixed {text} per pair" if measured else text


def environment_facts(data: Mapping[str, Any]) -> tuple[Fact, ...]:
    """Versions, opsets, tolerances and timings of a result, as summary facts."""
    env = data.get("environment") or {}
    measured = bool(data.get("noise"))
    facts = [Fact("tolerance", tolerance_text(data.get("tolerance") or {}, measured))]
    for key, tol in (data.get("overrides") or {}).items():
        facts.append(Fact(f"tolerance for {key}", tolerance_text(tol)))
    for name, version in (env.get("versions") or {}).items():
        facts.append(Fact(str(name), str(version)))
    for side in ("a", "b"):
        opset = env.get(f"opset_{side}")
        if opset:
            text = ", ".join(f"{domain} {version}" for domain, version in opset.items())
            facts.append(Fact(f"opset {side.upper()}", text))
    for key, value in env.items():
        if key not in ("versions", "opset_a", "opset_b"):
            facts.append(Fact(str(key), str(value)))
    timings = data.get("timings") or {}
    if timings:
        total = sum(float(v) for v in timings.values())
        parts = ", ".join(f"{k} {float(v):.2f}s" for k, v in timings.items())
        facts.append(Fact("time", f"{total:.1f}s: {parts}"))
    return tuple(facts)


def _export_facts(found: MatchFacts) -> list[Fact]:
    """Per side, whether its export reproduces its eager run, whether the cached export was
    stale, and each exporter fault."""
    facts = []
    for side, report in found.exports:
        text = f"export reproduces the eager run (max abs {format_error(report.max_abs)})"
        if not report.ok:
            first = report.departures[0] if report.departures else None
            text = f"export departs from the eager run by {format_error(report.max_abs)}" + (
                f", first in {_where(first.module)} ({first.module_class})" if first else ""
            )
        facts.append(Fact(f"export {side.upper()}", text, "ok" if report.ok else "fail"))
    for side in found.stale_exports:
        facts.append(Fact(f"cache {side}", "the cached export was stale: exported again", "warn"))
    for fault in found.exporter_faults:
        facts.append(Fact(f"exporter fault {fault.side}", fault.explanation, "warn"))
    return facts


def _pairs_fact(found: MatchFacts) -> Fact:
    failing = found.failing_pairs
    if found.noise is None:
        text = f"{found.tensor_pairs} compared, {failing} failing"
        return Fact("tensor pairs", text, "fail" if failing else "ok")
    # tolerance="auto": the fixed bounds' count is a fact, the verdict is the noise's
    text = f"{found.tensor_pairs} compared, {failing} out of the fixed atol/rtol"
    return Fact("tensor pairs", text, "ok" if found.ok or not failing else "fail")


def _noise_facts(found: MatchFacts) -> list[Fact]:
    """With ``tolerance="auto"``: the verdict in units of measured noise, how it was measured."""
    noise = found.noise
    if noise is None:
        return []
    label = f"numerical noise ({noise.method}, {noise.dtype})"
    how = f"bound {noise.multiplier:g}x noise + dtype floor"
    sentence = noise.sentence or "not judged in units of noise (shapes or NaN differ)"
    return [Fact(label, f"{sentence}; {how}", "ok" if found.ok else "fail")]


def _output_facts(found: MatchFacts) -> list[Fact]:
    facts = []
    floors = found.noise.outputs if found.noise is not None else ()
    for output in found.outputs:
        metrics = output.metrics
        ok = metrics.ok
        words = (
            f"max abs {format_error(metrics.max_abs)}, cosine {to_float(metrics.cosine) or 0:.6f}"
        )
        if output.index < len(floors):  # tolerance="auto": judged against its noise
            floor = floors[output.index]
            ok = floor.ok and not metrics.reason.startswith(("shape", "non-finite"))
            words += f", {times_noise(floor.ratio, 'its noise')}"
        elif not metrics.ok:
            words += f" ({metrics.reason})"
        facts.append(Fact(f"output #{output.index}", words, "ok" if ok else "fail"))
    for output in found.eager_outputs:
        facts.append(
            Fact(
                f"eager output #{output.index}",
                f"max abs {format_error(output.metrics.max_abs)}",
                "ok" if output.metrics.ok else "fail",
            )
        )
    return facts


_NO_CULPRIT = {
    NoCulprit.ACCUMULATED: (
        "No culprit: no module differs by itself beyond tolerance; the difference is "
        "rounding accumulated over the graph."
    ),
    NoCulprit.AGREE: "No culprit: the models agree.",
    NoCulprit.UNMEASURED: "No culprit found (module own errors were not measured or none fails).",
}


def _match_summary(result: MatchResult) -> SummaryView:
    found = facts(result)
    summary = [
        Fact("models", found.models()),
        Fact("tolerance", tolerance_text(found.tolerance, found.noise is not None)),
        _pairs_fact(found),
        Fact("module pairs", str(found.module_pairs)),
        Fact("unmatched", str(found.unmatched)),
        *_noise_facts(found),
        *_output_facts(found),
        *_export_facts(found),
        *(Fact("parameter layout", f"{kind}: {text}") for kind, text in found.layouts),
    ]
    fb = found.fallback
    if fb is not None:
        summary.append(
            Fact(
                "native fallback",
                f"model {fb.side} ({fb.framework} {fb.class_name}) could not be exported, so "
                "the models were compared module by module as they ran (the graphs show "
                f"module outputs in run order): {fb.reason}",
                "warn",
            )
        )
    first = found.first_divergence
    first_facts: tuple[Fact, ...] = ()
    if first is not None:
        first_facts = (
            Fact("module", f"{_where(first.module_a)} ↔ {_where(first.module_b)}"),
            Fact("op", f"{first.op_a} ↔ {first.op_b}"),
            Fact("tensors", f"{', '.join(first.a)} ↔ {', '.join(first.b)}"),
            Fact("max abs", format_error(first.metrics.max_abs), "fail"),
            Fact("reason", first.metrics.reason),
        )
    return SummaryView(
        ok=found.ok,
        verdict=found.verdict,
        headline=f"{found.verdict.upper()}: {found.models()}",
        facts=tuple(summary),
        first_divergence=first_facts,
        first_divergence_target=_where(first.module_a) if first is not None else None,
        culprits=_culprit_views(found.culprits),
        culprit_note=_NO_CULPRIT[found.no_culprit] if found.no_culprit is not None else "",
        notes=found.notes,
    )


def match_result(data: Mapping[str, object]) -> MatchResult:
    """The match result a dictionary holds.

    Raises:
        ReportError: it is no match result's dictionary.
    """
    try:
        return MatchResult.from_dict(dict(data))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ReportError(
            f"the result dictionary is no MatchResult's to_dict() ({type(err).__name__}: "
            f"{err}); write it with result.to_json()"
        ) from err


def match_view(data: Mapping[str, object], title: str | None = None) -> ReportView:
    """The report's view of a match result dictionary (``MatchResult.to_dict()``)."""
    payload = dict(data)
    graphs = match_json(data).get("graphs") or {}
    if not graphs.get("a") and not graphs.get("b"):
        payload["graphs"] = module_graphs(data)  # a native fallback has no op graph
    payload["index"] = graph_index(payload)
    result = match_result(data)
    summary = _match_summary(result)
    model_a = result.model_a.class_name or "A"
    model_b = result.model_b.class_name or "B"
    tabs = (
        TabView("graphs", "Graphs"),
        TabView("pairs", "Tensor pairs"),
        TabView("layers", "Layer map"),
        TabView("unmatched", "Unmatched"),
        TabView("environment", "Environment"),
    )
    return ReportView(
        title=title or f"padiff-ir report: {model_a} vs {model_b} ({summary.verdict})",
        kind="match",
        summary=summary,
        environment=environment_facts(data),
        tabs=tabs,
        payload=payload,
    )


def build_view(data: Mapping[str, object], *, title: str | None = None) -> ReportView:
    """The report's view of a result dictionary (``MatchResult.to_dict()`` or a DiffResult's).

    Raises:
        ReportError: ``data`` is not a result dictionary the report knows.

    Examples:
        >>> view = build_view({"kind": "match", "ok": True, "tolerance": {"atol": 1e-5,
        ...                    "rtol": 1e-5, "mode": "strict"}})
        >>> str(view.summary.verdict), [t.id for t in view.tabs][:2]
        ('aligned', ['graphs', 'pairs'])
    """
    if not isinstance(data, Mapping):
        raise ReportError(f"a report needs a result dictionary, got {type(data).__name__}")
    kind = data.get("kind", "match")
    if kind == "match":
        if "ok" not in data:
            raise ReportError(
                "the result dictionary has no 'ok' key: is it a MatchResult's "
                "to_dict() (or a file written by result.to_json())?"
            )
        return match_view(data, title)
    if kind == "batches":
        from padiff_ir.report.batch_view import batches_view

        return batches_view(data, title)
    if kind == "auto_diff":
        from padiff_ir.report.training import diff_view

        return diff_view(data, title)
    raise ReportError(
        f"unknown result kind {kind!r}: the report renders 'match' results "
        "(MatchResult), 'batches' (BatchResults) and 'auto_diff' results (DiffResult)"
    )
