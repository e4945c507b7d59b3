"""Terminal summary of a :class:`~padiff_ir.compare.result.MatchResult`, readable at 100 columns.

The module tree of A with each module's status (culprit marked), then the worst pairs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from padiff_ir._paths import leaf, owner, within
from padiff_ir.compare.result import ModuleStatus
from padiff_ir.metrics import TensorMetrics

if TYPE_CHECKING:
    from padiff_ir.compare.result import MatchResult, ModuleResult, PairResult

__all__ = ["render_summary"]

WIDTH = 100
_STATUS = {ModuleStatus.OK: "ok", ModuleStatus.CULPRIT: "CULPRIT",
           ModuleStatus.INHERITED: "inherited", ModuleStatus.CONTAINS_CULPRIT: "contains culprit",
           ModuleStatus.UNMEASURED: "?", ModuleStatus.ACCUMULATED: "accumulated"}


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _metric(m: TensorMetrics | None) -> str:
    return _num(m.max_abs) if m is not None else "-"


def _tree_lines(result: MatchResult, max_lines: int = 40) -> list[str]:
    modules = sorted(result.modules, key=lambda m: (m.a.split(".") if m.a else []))
    if not modules:
        return []
    interesting = {m.a for m in modules
                   if m.status in (ModuleStatus.CULPRIT, ModuleStatus.CONTAINS_CULPRIT)}
    if not interesting and result.first_divergence is not None:
        interesting = {result.first_divergence.module_a}

    def on_path(path: str) -> bool:
        return any(within(t, path) for t in interesting)

    def shown(m: ModuleResult) -> bool:
        return m.depth <= 1 or on_path(owner(m.a)) or on_path(m.a)

    lines = [f"{'module (A)':<44}{'class':<18}{'status':<17}{'output':>10}{'own':>10}"]
    hidden = 0
    for m in modules:
        if not shown(m):
            hidden += 1
            continue
        name = leaf(m.a) if m.a else "<root>"
        label = "  " * m.depth + name
        marker = ">> " if m.status == ModuleStatus.CULPRIT else "   "
        lines.append(f"{marker}{_cut(label, 41):<41}{_cut(m.class_a, 17):<18}"
                     f"{_STATUS.get(m.status, m.status):<17}{_metric(m.output):>10}"
                     f"{_metric(m.own):>10}")
    if len(lines) > max_lines:
        hidden += len(lines) - max_lines
        lines = lines[:max_lines]
    if hidden:
        lines.append(f"   ... {hidden} more modules (all in result.modules)")
    return lines


def _pair_row(p: PairResult) -> str:
    where = p.module_a or "<root>"
    status = "ok" if p.ok else "FAIL"
    return (f"{_cut(where, 34):<35}{_cut(p.op_a, 14):<15}{_num(p.metrics.max_abs):>10}"
            f"{_num(p.metrics.max_rel):>10}{p.metrics.cosine:>9.5f}"
            f"{p.metrics.out_of_tolerance:>9.1%}  {status}")


def render_summary(result: MatchResult, *, worst: int = 10) -> str:
    """The text of ``str(result)``."""
    a, b = result.model_a, result.model_b
    verdict = "ALIGNED" if result.ok else "DIVERGED"
    tol = result.tolerance
    lines = [
        f"padiff-ir: {verdict}: {a.get('framework', '?')} {a.get('class', '')} (A) vs "
        f"{b.get('framework', '?')} {b.get('class', '')} (B)",
        f"tolerance: {tol.mode} atol={tol.atol:g} rtol={tol.rtol:g}; {len(result.pairs)} tensor "
        f"pairs, {len(result.layer_map)} module pairs, "
        f"{sum(1 for u in result.unmatched if u.kind != 'module')} unmatched ops",
    ]
    for p in result.outputs:
        lines.append(f"output #{p.index}: max abs {_num(p.metrics.max_abs)}, cosine "
                     f"{p.metrics.cosine:.6f} -> {'ok' if p.ok else 'FAIL'}"
                     + (f" ({p.metrics.reason})" if p.metrics.reason else ""))
    for p in result.eager_outputs:
        if not p.ok:
            lines.append(f"eager output #{p.index}: max abs {_num(p.metrics.max_abs)} -> FAIL "
                         "(the models differ when run by their frameworks)")
    first = result.first_divergence
    if first is not None:
        lines.append(_cut(f"first divergence: {first.module_a or '<root>'} {first.op_a} "
                          f"(tensor {', '.join(first.a)} vs {', '.join(first.b)}): "
                          f"{first.metrics.reason or 'differs'}", WIDTH))
    for c in result.culprits:
        lines.append(_cut(f"culprit: {c.module_a or '<root>'} ({c.class_a}) <-> "
                          f"{c.module_b or '<root>'} ({c.class_b}): own error "
                          f"{_num(c.own_error)}, inherited {_num(c.inherited_error)}", WIDTH))
        for detail in (*c.attribute_diffs, *c.param_diffs):
            lines.append(_cut(f"    {detail}", WIDTH))
    if result.accumulated:
        lines.append("no culprit: each module's own error is within tolerance; the difference "
                     "is rounding")
        lines.append("    accumulated over the graph (raise atol/rtol or compare in float64)")
    for note in result.notes:
        lines.append(_cut(f"note: {note}", WIDTH))
    tree = _tree_lines(result)
    if tree and not result.ok:
        lines.append("")
        lines.extend(tree)
    ranked = sorted(result.pairs, key=lambda p: (p.ok, -(p.metrics.max_abs
                                                          if math.isfinite(p.metrics.max_abs)
                                                          else 1e300)))[:worst]
    if ranked:
        lines.append("")
        lines.append(f"{'worst pairs: module (A)':<35}{'op':<15}{'max abs':>10}{'max rel':>10}"
                     f"{'cosine':>9}{'out tol':>9}")
        lines.extend(_pair_row(p) for p in ranked)
    if result.timings:
        total = sum(result.timings.values())
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        lines.append("")
        lines.append(_cut(f"time {total:.1f}s: {stages}", WIDTH))
    return "\n".join(lines)
