"""Terminal summary of a :class:`~padiff_ir.compare.result.MatchResult`, as wide as the terminal.

The verdict, each culprit with its explanation (attribute and parameter differences, the note it
carries), the module tree of A with each module's status (culprit marked), then the worst pairs.
The width is the terminal's (``COLUMNS`` first, 100 when unknown, never below 60): prose is
wrapped to it and the tables' name columns take the room the number columns leave.
"""

from __future__ import annotations

import math
import shutil
import textwrap
from typing import TYPE_CHECKING

from padiff_ir._paths import leaf, owner, within
from padiff_ir.compare.result import ModuleStatus
from padiff_ir.metrics import TensorMetrics

if TYPE_CHECKING:
    from padiff_ir.compare.result import Culprit, MatchResult, ModuleResult, PairResult

__all__ = ["render_summary", "terminal_width"]

WIDTH = 100  # when the terminal's width is unknown
MIN_WIDTH = 60
_STATUS = {
    ModuleStatus.OK: "ok",
    ModuleStatus.CULPRIT: "CULPRIT",
    ModuleStatus.INHERITED: "inherited",
    ModuleStatus.CONTAINS_CULPRIT: "contains culprit",
    ModuleStatus.UNMEASURED: "?",
    ModuleStatus.ACCUMULATED: "accumulated",
}


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS`` first; 100 when unknown; at least 60)."""
    return max(MIN_WIDTH, shutil.get_terminal_size(fallback=(WIDTH, 24)).columns)


def _wrap(text: str, width: int, indent: str = "", more: str = "      ") -> list[str]:
    """``text`` wrapped to ``width`` (first line ``indent``, the others ``indent + more``);
    a token longer than a line (a long path) is kept whole."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent + more,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent]


def _metric(m: TensorMetrics | None) -> str:
    return _num(m.max_abs) if m is not None else "-"


def _tree_lines(result: MatchResult, width: int, max_lines: int = 40) -> list[str]:
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

    room = width - 1 - 17 - 10 - 10  # status, output, own
    class_width = min(18, max(8, room // 3))
    name_width = room - class_width
    lines = [
        f"{'module (A)':<{name_width}}{'class':<{class_width}}{'status':<17}{'output':>10}"
        f"{'own':>10}"
    ]
    hidden = 0
    for m in modules:
        if not shown(m):
            hidden += 1
            continue
        name = leaf(m.a) if m.a else "<root>"
        label = "  " * m.depth + name
        marker = ">> " if m.status == ModuleStatus.CULPRIT else "   "
        lines.append(
            f"{marker}{_cut(label, name_width - 4):<{name_width - 3}}"
            f"{_cut(m.class_a, class_width - 1):<{class_width}}"
            f"{_STATUS.get(m.status, m.status):<17}{_metric(m.output):>10}"
            f"{_metric(m.own):>10}"
        )
    if len(lines) > max_lines:
        hidden += len(lines) - max_lines
        lines = lines[:max_lines]
    if hidden:
        lines.append(f"   ... {hidden} more modules (all in result.modules)")
    return lines


_PAIR_COLUMNS = (("op", 15), ("max abs", 10), ("max rel", 10), ("cosine", 9), ("out tol", 9))
_STATUS_WIDTH = 6  # "  FAIL"
_DROPPED_FIRST = ("max rel", "out tol")  # left out, in this order, on a narrow terminal


def _pair_table(pairs: list[PairResult], width: int) -> list[str]:
    """The worst pairs as a table fitting ``width``: the module column takes the room left."""
    columns = list(_PAIR_COLUMNS)
    for name in _DROPPED_FIRST:
        if width - 1 - _STATUS_WIDTH - sum(w for _, w in columns) >= 20:
            break
        columns = [c for c in columns if c[0] != name]
    where_width = width - 1 - _STATUS_WIDTH - sum(w for _, w in columns)
    title = "worst pairs: module (A)" if where_width > 23 else "worst pairs"
    header = f"{_cut(title, where_width - 1):<{where_width}}" + "".join(
        f"{name:<{w}}" if name == "op" else f"{name:>{w}}" for name, w in columns
    )
    rows = [header]
    for p in pairs:
        cells = {
            "op": f"{_cut(p.op_a, 14):<15}",
            "max abs": f"{_num(p.metrics.max_abs):>10}",
            "max rel": f"{_num(p.metrics.max_rel):>10}",
            "cosine": f"{p.metrics.cosine:>9.5f}",
            "out tol": f"{p.metrics.out_of_tolerance:>9.1%}",
        }
        rows.append(
            f"{_cut(p.module_a or '<root>', where_width - 1):<{where_width}}"
            + "".join(cells[name] for name, _ in columns)
            + f"  {'n/c' if p.not_comparable else 'ok' if p.ok else 'FAIL'}"
        )
    return rows


def _culprit_lines(c: Culprit, width: int) -> list[str]:
    """A culprit and, under it, its explanation: the note it carries, then its attribute and
    parameter differences (each not already said by the note)."""
    lines = _wrap(
        f"culprit: {c.module_a or '<root>'} ({c.class_a}) <-> {c.module_b or '<root>'} "
        f"({c.class_b}): own error {_num(c.own_error)}, inherited "
        f"{_num(c.inherited_error)}",
        width,
    )
    if c.explanation:
        lines.extend(_wrap(c.explanation, width, indent="    ", more="  "))
    for kind, details in (
        ("setting", c.setting_diffs),
        ("attribute", c.attribute_diffs),
        ("parameter", c.param_diffs),
    ):
        for detail in details:
            if detail not in c.explanation:
                lines.extend(_wrap(f"{kind}: {detail}", width, indent="    ", more="  "))
    return lines


def render_summary(result: MatchResult, *, worst: int = 10, width: int | None = None) -> str:
    """The text of ``str(result)``, ``width`` columns wide (default: the terminal's width,
    see :func:`terminal_width`)."""
    width = max(MIN_WIDTH, width) if width is not None else terminal_width()
    a, b = result.model_a, result.model_b
    verdict = "ALIGNED" if result.ok else "DIVERGED"
    tol = result.tolerance
    lines = [  # the verdict line stays whole: ``padiff-ir -q`` prints it alone
        f"padiff-ir: {verdict}: {a.get('framework', '?')} {a.get('class', '')} (A) vs "
        f"{b.get('framework', '?')} {b.get('class', '')} (B)",
        *_wrap(
            f"tolerance: {tol.mode} atol={tol.atol:g} rtol={tol.rtol:g}; {len(result.pairs)} "
            f"tensor pairs, {len(result.layer_map)} module pairs, "
            f"{sum(1 for u in result.unmatched if u.kind != 'module')} unmatched ops",
            width,
        ),
    ]
    if result.fallback:
        fb = result.fallback
        lines.extend(
            _wrap(
                f"compared natively, module by module: model {fb.get('side', '?')} "
                f"({fb.get('framework', '?')} {fb.get('class', '')}) did not export to ONNX: "
                f"{fb.get('reason', '')}",
                width,
            )
        )
    for p in result.outputs:
        lines.extend(
            _wrap(
                f"output #{p.index}: max abs {_num(p.metrics.max_abs)}, cosine "
                f"{p.metrics.cosine:.6f} -> {'ok' if p.ok else 'FAIL'}"
                + (f" ({p.metrics.reason})" if p.metrics.reason else ""),
                width,
            )
        )
    for p in result.eager_outputs:
        if not p.ok:
            lines.extend(
                _wrap(
                    f"eager output #{p.index}: max abs {_num(p.metrics.max_abs)} -> "
                    "FAIL (the models differ when run by their frameworks)",
                    width,
                )
            )
    first = result.first_divergence
    if first is not None:
        lines.extend(
            _wrap(
                f"first divergence: {first.module_a or '<root>'} {first.op_a} "
                f"(tensor {', '.join(first.a)} vs {', '.join(first.b)}): "
                f"{first.metrics.reason or 'differs'}",
                width,
            )
        )
    for c in result.culprits:
        lines.extend(_culprit_lines(c, width))
    if result.accumulated:
        lines.extend(
            _wrap(
                "no culprit: each module's own error is within tolerance; the "
                "difference is rounding accumulated over the graph (raise atol/rtol "
                "or compare in float64)",
                width,
                more="    ",
            )
        )
    for note in result.notes:
        lines.extend(_wrap(f"note: {note}", width))
    tree = _tree_lines(result, width)
    if tree and not result.ok:
        lines.append("")
        lines.extend(tree)
    skipped = sum(1 for p in result.pairs if p.not_comparable)
    if skipped:
        lines.extend(
            _wrap(
                f"note: {skipped} tensor pair(s) inside modules whose parameters are laid out "
                "differently are not comparable (n/c) and left out of the verdict; those "
                "modules' outputs are compared",
                width,
            )
        )
    ranked = sorted(
        result.pairs,
        key=lambda p: (
            p.ok,
            bool(p.not_comparable),
            -(p.metrics.max_abs if math.isfinite(p.metrics.max_abs) else 1e300),
        ),
    )[:worst]
    if ranked:
        lines.append("")
        lines.extend(_pair_table(ranked, width))
    if result.timings:
        total = sum(result.timings.values())
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        lines.append("")
        lines.append(_cut(f"time {total:.1f}s: {stages}", width))  # one line: easy to drop
    return "\n".join(lines)
