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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from padiff_ir._paths import split_call_site
from padiff_ir._result import Verdict
from padiff_ir.errors import ReportError
from padiff_ir.matching.layouts import describe_layout
from padiff_ir.report.graph_index import graph_index, module_graphs

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
    "match_view",
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
def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # "nan" / "inf" strings as TensorMetrics.to_dict writes them
    except (TypeError, ValueError):
        return None


def format_error(value: Any) -> str:
    """An error value for people: ``7.78e-03``, ``0``, ``inf``, ``-`` when absent.

    Examples:
        >>> format_error(0.0077848), format_error(0.0), format_error("inf"), format_error(None)
        ('7.78e-03', '0', 'inf', '-')
    """
    number = _float(value)
    if number is None or math.isnan(number):
        return "-" if number is None else "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return "0" if number == 0 else f"{number:.2e}"


def _where(module: str) -> str:
    return module or "<root>"


def _model_label(model: Mapping[str, Any], side: str) -> str:
    framework = model.get("framework") or "?"
    cls = model.get("class") or "model"
    return f"{framework} {cls} ({side})"


# -- match results ------------------------------------------------------------------------------
def _culprit_views(data: Mapping[str, Any]) -> tuple[CulpritView, ...]:
    views = []
    for c in data.get("culprits", ()):
        views.append(
            CulpritView(
                title=f"{_where(c.get('module_a', ''))} ↔ {_where(c.get('module_b', ''))}",
                classes=f"{c.get('class_a', '')} ↔ {c.get('class_b', '')}",
                own_error=format_error(c.get("own_error")),
                inherited_error=format_error(c.get("inherited_error")),
                output_error=format_error(c.get("output_error")),
                attribute_diffs=tuple(c.get("attribute_diffs", ())),
                param_diffs=tuple(c.get("param_diffs", ())),
                explanation=c.get("explanation", ""),
                target=split_call_site(c.get("module_a", ""))[0],
                target_b=split_call_site(c.get("module_b", ""))[0],
            )
        )
    return tuple(views)


def _tolerance_text(tolerance: Mapping[str, Any]) -> str:
    return (
        f"{tolerance.get('mode', 'strict')} atol={tolerance.get('atol', '?')} "
        f"rtol={tolerance.get('rtol', '?')}"
    )


def environment_facts(data: Mapping[str, Any]) -> tuple[Fact, ...]:
    """Versions, opsets, tolerances and timings of a result, as summary facts."""
    env = data.get("environment") or {}
    facts = [Fact("tolerance", _tolerance_text(data.get("tolerance") or {}))]
    for key, tol in (data.get("overrides") or {}).items():
        facts.append(Fact(f"tolerance for {key}", _tolerance_text(tol)))
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


def _layout_text(chosen: Mapping[str, Any]) -> str:
    """A discovered layout in words: ``fused_order(order=[1, 0])``, ``offset 1.0``."""
    if "layout" in chosen:
        return describe_layout(chosen["layout"])
    return f"offset {chosen.get('offset')}"


def _export_facts(data: Mapping[str, Any]) -> list[Fact]:
    """Per side, whether its export reproduces its eager run, whether the cached export was
    stale, and each exporter fault."""
    facts = []
    for side, report in sorted((data.get("export_fidelity") or {}).items()):
        if not report.get("checked"):
            continue
        text = f"export reproduces the eager run (max abs {format_error(report.get('max_abs'))})"
        if not report.get("ok"):
            text = f"export departs from the eager run by {format_error(report.get('max_abs'))}" + (
                f", first in {_where(report['module'])} ({report.get('module_class', '')})"
                if "module" in report
                else ""
            )
        facts.append(Fact(f"export {side.upper()}", text, "ok" if report.get("ok") else "fail"))
    for side in data.get("stale_exports", ()):
        facts.append(Fact(f"cache {side}", "the cached export was stale: exported again", "warn"))
    for fault in data.get("exporter_faults", ()):
        facts.append(
            Fact(f"exporter fault {fault.get('side', '')}", fault.get("explanation", ""), "warn")
        )
    return facts


def _match_summary(data: Mapping[str, Any]) -> SummaryView:
    ok = bool(data.get("ok"))
    model_a, model_b = data.get("model_a") or {}, data.get("model_b") or {}
    pairs = data.get("pairs", [])
    failing = sum(1 for p in pairs if not (p.get("metrics") or {}).get("ok", True))
    facts = [
        Fact("models", f"{_model_label(model_a, 'A')} vs {_model_label(model_b, 'B')}"),
        Fact("tolerance", _tolerance_text(data.get("tolerance") or {})),
        Fact(
            "tensor pairs", f"{len(pairs)} compared, {failing} failing", "fail" if failing else "ok"
        ),
        Fact("module pairs", str(len(data.get("layer_map", ())))),
        Fact("unmatched", str(len(data.get("unmatched", ())))),
    ]
    for output in data.get("outputs", ()):
        metrics = output.get("metrics") or {}
        good = bool(metrics.get("ok"))
        facts.append(
            Fact(
                f"output #{output.get('index', 0)}",
                f"max abs {format_error(metrics.get('max_abs'))}, cosine "
                f"{_float(metrics.get('cosine')) or 0:.6f}"
                + ("" if good else f" ({metrics.get('reason', '')})"),
                "ok" if good else "fail",
            )
        )
    for output in data.get("eager_outputs", ()):
        metrics = output.get("metrics") or {}
        facts.append(
            Fact(
                f"eager output #{output.get('index', 0)}",
                f"max abs {format_error(metrics.get('max_abs'))}",
                "ok" if metrics.get("ok") else "fail",
            )
        )
    facts.extend(_export_facts(data))
    for kind, chosen in (data.get("layouts") or {}).items():
        facts.append(Fact("parameter layout", f"{kind}: {_layout_text(chosen)}"))
    fallback = data.get("fallback") or {}
    if fallback:
        facts.append(
            Fact(
                "native fallback",
                f"model {fallback.get('side', '?')} ({fallback.get('framework', '')} "
                f"{fallback.get('class', '')}) could not be exported, so the models were compared "
                f"module by module as they ran (the graphs show module outputs in run order): "
                f"{fallback.get('reason', '')}",
                "warn",
            )
        )
    first = data.get("first_divergence")
    first_facts: tuple[Fact, ...] = ()
    if first:
        metrics = first.get("metrics") or {}
        first_facts = (
            Fact(
                "module",
                f"{_where(first.get('module_a', ''))} ↔ {_where(first.get('module_b', ''))}",
            ),
            Fact("op", f"{first.get('op_a', '')} ↔ {first.get('op_b', '')}"),
            Fact("tensors", f"{', '.join(first.get('a', ()))} ↔ {', '.join(first.get('b', ()))}"),
            Fact("max abs", format_error(metrics.get("max_abs")), "fail"),
            Fact("reason", str(metrics.get("reason", ""))),
        )
    culprits = _culprit_views(data)
    if culprits:
        note = ""
    elif data.get("accumulated"):
        note = (
            "No culprit: no module differs by itself beyond tolerance; the difference is "
            "rounding accumulated over the graph."
        )
    elif ok:
        note = "No culprit: the models agree."
    else:
        note = "No culprit found (module own errors were not measured or none fails)."
    verdict = Verdict.of(ok)
    return SummaryView(
        ok=ok,
        verdict=verdict,
        headline=f"{verdict.upper()}: {_model_label(model_a, 'A')} vs {_model_label(model_b, 'B')}",
        facts=tuple(facts),
        first_divergence=first_facts,
        first_divergence_target=_where(first.get("module_a", "")) if first else None,
        culprits=culprits,
        culprit_note=note,
        notes=tuple(data.get("notes", ())),
    )


def match_view(data: Mapping[str, Any], title: str | None = None) -> ReportView:
    """The report's view of a match result dictionary (``MatchResult.to_dict()``)."""
    payload = dict(data)
    if not (data.get("graphs") or {}).get("a") and not (data.get("graphs") or {}).get("b"):
        payload["graphs"] = module_graphs(data)  # a native fallback has no op graph
    payload["index"] = graph_index(payload)
    summary = _match_summary(data)
    model_a = (data.get("model_a") or {}).get("class") or "A"
    model_b = (data.get("model_b") or {}).get("class") or "B"
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


def build_view(data: Mapping[str, Any], *, title: str | None = None) -> ReportView:
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
