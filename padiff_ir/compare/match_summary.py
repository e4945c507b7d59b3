"""Terminal summary of a :class:`~padiff_ir.compare.match_result.MatchResult`, as wide as the
terminal.

The verdict, each culprit with its explanation (attribute and parameter differences, the note it
carries), the module tree of A with each module's status (culprit marked), then the worst pairs.
The width is the terminal's (``COLUMNS`` first, 100 when unknown, never below 60): prose is
wrapped to it and the tables' name columns take the room the number columns leave. Rendered
with :mod:`padiff_ir._terminal` (rich): plain text unless ``color`` is asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from padiff_ir._paths import leaf, owner, within
from padiff_ir._terminal import (
    MIN_WIDTH,
    Cell,
    Column,
    line,
    render,
    table,
    terminal_width,
    wrapped,
)
from padiff_ir.compare.facts import MatchFacts, NoCulprit, facts
from padiff_ir.compare.match_result import ModuleStatus
from padiff_ir.metrics import TensorMetrics

if TYPE_CHECKING:
    from rich.console import RenderableType

    from padiff_ir.compare.match_result import Culprit, MatchResult, ModuleResult, PairResult

__all__ = ["render_summary", "terminal_width"]

_STATUS = {
    ModuleStatus.OK: ("ok", "green"),
    ModuleStatus.CULPRIT: ("CULPRIT", "bold red"),
    ModuleStatus.INHERITED: ("inherited", "yellow"),
    ModuleStatus.CONTAINS_CULPRIT: ("contains culprit", "red"),
    ModuleStatus.UNMEASURED: ("?", "dim"),
    ModuleStatus.ACCUMULATED: ("accumulated", "magenta"),
}
_VERDICT_STYLE = {"ALIGNED": "bold green", "DIVERGED": "bold red"}


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def _metric(m: TensorMetrics | None) -> str:
    return _num(m.max_abs) if m is not None else "-"


def _tree(result: MatchResult, width: int, max_rows: int = 39) -> list[RenderableType]:
    """The module tree of A (the path to each culprit unfolded), as a table ``width`` wide."""
    modules = sorted(result.modules, key=lambda m: m.a.split(".") if m.a else [])
    if not modules:
        return []
    interesting = {
        m.a for m in modules if m.status in (ModuleStatus.CULPRIT, ModuleStatus.CONTAINS_CULPRIT)
    }
    if not interesting and result.first_divergence is not None:
        interesting = {result.first_divergence.module_a}

    def on_path(path: str) -> bool:
        return any(within(t, path) for t in interesting)

    def shown(m: ModuleResult) -> bool:
        return m.depth <= 1 or on_path(owner(m.a)) or on_path(m.a)

    rows: list[list[Cell]] = []
    hidden = 0
    for m in modules:
        if not shown(m):
            hidden += 1
            continue
        name = leaf(m.a) if m.a else "<root>"
        culprit = m.status == ModuleStatus.CULPRIT
        label = (">> " if culprit else "   ") + "  " * m.depth + name
        status, style = _STATUS.get(m.status, (str(m.status), ""))
        rows.append(
            [
                (label, "bold red") if culprit else label,
                m.class_a,
                (status, style),
                _metric(m.output),
                _metric(m.own),
            ]
        )
    if len(rows) > max_rows:
        hidden += len(rows) - max_rows
        rows = rows[:max_rows]
    class_width = min(17, max(7, (width - 40) // 3))
    columns = (
        Column("module (A)", width=8, flexible=True),
        Column("class", width=class_width),
        Column("status", width=16),
        Column("output", width=8, justify="right"),
        Column("own", width=8, justify="right"),
    )
    parts: list[RenderableType] = [table(columns, rows, width - 1)]
    if hidden:
        parts.append(line(f"   ... {hidden} more modules (all in result.modules)"))
    return parts


_PAIR_COLUMNS = (
    Column("op", width=14),
    Column("max abs", width=9, justify="right"),
    Column("max rel", width=9, justify="right"),
    Column("cosine", width=8, justify="right"),
    Column("out tol", width=8, justify="right"),
    Column("", width=4, justify="right"),  # ok / FAIL / n/c
)
_PAIR_STATUS = {"n/c": ("n/c", "dim"), "ok": ("ok", "green"), "FAIL": ("FAIL", "bold red")}
_DROPPED_FIRST = ("max rel", "out tol")  # left out, in this order, on a narrow terminal


def _pair_table(pairs: list[PairResult], width: int) -> RenderableType:
    """The worst pairs as a table ``width`` wide: the module column takes the room left."""
    columns = list(_PAIR_COLUMNS)
    for name in _DROPPED_FIRST:
        if width - sum(c.width + 2 for c in columns) >= 20:
            break
        columns = [c for c in columns if c.header != name]
    room = width - sum(c.width + 2 for c in columns)
    title = "worst pairs: module (A)" if room > 23 else "worst pairs"
    rows = []
    for p in pairs:
        status = _PAIR_STATUS["n/c" if p.not_comparable else "ok" if p.ok else "FAIL"]
        cells: dict[str, Cell] = {
            "op": p.op_a,
            "max abs": _num(p.metrics.max_abs),
            "max rel": _num(p.metrics.max_rel),
            "cosine": f"{p.metrics.cosine:.5f}",
            "out tol": f"{p.metrics.out_of_tolerance:.1%}",
            "": status,
        }
        rows.append([p.module_a or "<root>", *(cells[c.header] for c in columns)])
    return table([Column(title, width=8, flexible=True), *columns], rows, width)


def _culprit_lines(c: Culprit, width: int) -> list[RenderableType]:
    """A culprit and, under it, its explanation: the note it carries, then its attribute and
    parameter differences (each not already said by the note)."""
    lines: list[RenderableType] = []
    lines.extend(
        wrapped(
            f"culprit: {c.module_a or '<root>'} ({c.class_a}) <-> {c.module_b or '<root>'} "
            f"({c.class_b}): own error {_num(c.own_error)}, inherited "
            f"{_num(c.inherited_error)}",
            width,
            style="red",
        )
    )
    if c.explanation:
        lines.extend(wrapped(c.explanation, width, indent="    ", more="  "))
    for kind, details in (
        ("setting", c.setting_diffs),
        ("attribute", c.attribute_diffs),
        ("parameter", c.param_diffs),
    ):
        for detail in details:
            if detail not in c.explanation:
                lines.extend(wrapped(f"{kind}: {detail}", width, indent="    ", more="  "))
    return lines


def _noise_lines(found: MatchFacts, width: int) -> list[RenderableType]:
    """The verdict in units of noise and how the noise was measured."""
    noise = found.noise
    assert noise is not None
    floors = ", ".join(
        f"#{i} {f.ratio:.2g}x (noise {f.noise:.2g})" for i, f in enumerate(noise.outputs)
    )
    return list(
        wrapped(
            f"noise: {noise.sentence}; outputs {floors}; measured by "
            f"{noise.method} ({noise.dtype}), bound {noise.multiplier:g}x noise + dtype floor",
            width,
            style="green" if found.ok else "red",
        )
    )


def render_summary(
    result: MatchResult, *, worst: int = 10, width: int | None = None, color: bool = False
) -> str:
    """The text of ``str(result)``, ``width`` columns wide (default: the terminal's width,
    see :func:`terminal_width`); ANSI colours with ``color``."""
    width = max(MIN_WIDTH, width) if width is not None else terminal_width()
    found = facts(result)
    parts = [*_head(found, width), *_findings(found, width)]
    tree = _tree(result, width)
    if tree and not result.ok:
        parts.append(line(""))
        parts.extend(tree)
    if found.not_comparable:
        parts.extend(
            wrapped(
                f"note: {found.not_comparable} tensor pair(s) are not comparable (n/c: laid out "
                "or computed in another order inside a module pair, as its parameters or its "
                "agreeing outputs show) and left out of the verdict; those modules' outputs "
                "are compared",
                width,
            )
        )
    ranked = sorted(
        result.pairs,
        key=lambda p: (
            p.ok,
            not p.not_comparable,  # failing, then not comparable, then agreeing
            -(p.metrics.max_abs if math.isfinite(p.metrics.max_abs) else 1e300),
        ),
    )[:worst]
    if ranked:
        parts.append(line(""))
        parts.append(_pair_table(ranked, width - 1))
    if result.timings:
        total = sum(result.timings.values())
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        parts.append(line(""))
        parts.extend(wrapped(f"time {total:.1f}s: {stages}", width, style="dim"))
    return render(parts, width, color=color)


def _head(found: MatchFacts, width: int) -> list[RenderableType]:
    """The verdict line, the tolerance and counts, the fallback and the outputs."""
    verdict = "ALIGNED" if found.ok else "DIVERGED"
    tol = found.tolerance
    fixed = f"{tol.mode} atol={tol.atol:g} rtol={tol.rtol:g}"
    if found.noise is not None:  # the fixed bounds still measure each pair
        fixed = f"auto, measured noise; fixed {fixed} per pair"
    parts: list[RenderableType] = [  # the verdict line stays whole: ``padiff-ir -q`` prints it
        line(
            f"padiff-ir: {verdict}: {found.models()}",
            spans=[(verdict, _VERDICT_STYLE[verdict])],
        ),
        *wrapped(
            f"tolerance: {fixed}; "
            f"{found.tensor_pairs} tensor pairs, {found.module_pairs} module pairs, "
            f"{found.unmatched_ops} unmatched ops",
            width,
        ),
    ]
    if found.noise is not None:  # tolerance="auto": the verdict in units of measured noise
        parts.extend(_noise_lines(found, width))
    fb = found.fallback
    if fb is not None:
        parts.extend(
            wrapped(
                f"compared natively, module by module: model {fb.side} ({fb.framework} "
                f"{fb.class_name}) did not export to ONNX: {fb.reason}",
                width,
                style="yellow",
            )
        )
    # past an exporter fault the graphs' outputs differ whatever the models do
    failed = "differs past an exporter fault" if found.exporter_faults else "FAIL"
    for p in found.outputs:
        ok = p.ok if found.noise is None else found.ok or p.ok  # auto: within measured noise
        parts.extend(
            wrapped(
                f"output #{p.index}: max abs {_num(p.metrics.max_abs)}, cosine "
                f"{p.metrics.cosine:.6f} -> {'ok' if ok else failed}"
                + (f" ({p.metrics.reason})" if p.metrics.reason and not ok else ""),
                width,
                style="" if p.ok else "red",
            )
        )
    for p in found.eager_outputs:
        if not p.ok:
            parts.extend(
                wrapped(
                    f"eager output #{p.index}: max abs {_num(p.metrics.max_abs)} -> "
                    "FAIL (the models differ when run by their frameworks)",
                    width,
                    style="red",
                )
            )
    return parts


def _findings(found: MatchFacts, width: int) -> list[RenderableType]:
    """Where the models part: the first divergence, the culprits, the exporter faults, why
    there is no culprit, the notes."""
    parts: list[RenderableType] = []
    first = found.first_divergence
    if first is not None:
        parts.extend(
            wrapped(
                f"first divergence: {first.module_a or '<root>'} {first.op_a} "
                f"(tensor {', '.join(first.a)} vs {', '.join(first.b)}): "
                f"{first.metrics.reason or 'differs'}",
                width,
            )
        )
    for c in found.culprits:
        parts.extend(_culprit_lines(c, width))
    for fault in found.exporter_faults:
        parts.extend(
            wrapped(
                f"exporter fault (model {fault.side}): {fault.explanation}", width, style="yellow"
            )
        )
    if found.no_culprit == NoCulprit.ACCUMULATED:
        parts.extend(
            wrapped(
                "no culprit: each module's own error is within tolerance; the "
                "difference is rounding accumulated over the graph (raise atol/rtol "
                "or compare in float64)",
                width,
                more="    ",
                style="magenta",
            )
        )
    for note in found.notes:
        parts.extend(wrapped(f"note: {note}", width))
    return parts
