"""Which failing op-level tensor pairs count in the verdict.

The verdict comes from the outputs and the module pairs. Inside a module, the two sides may
compute the same thing in another order or layout: one side's attention scores already
multiplied by the scale, a LayerNorm run channels-last on one side and channels-first on the
other. The matching may still pair such intermediate tensors (same op family, same element
count), and their values then differ although nothing is wrong. A failing op-level pair whose
innermost measured module pair agrees is therefore *not comparable*: kept out of the verdict
and shown as such, unless a layout transform of the matching relates its two sides (then the
comparison is meant, and its failure counts). Any failing output or module pair keeps the
verdict "diverged".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from padiff_ir._paths import within
from padiff_ir.compare.match_result import ModuleResult, PairResult
from padiff_ir.matching.types import Matching

__all__ = ["judged_by_modules", "module_failures"]


def _innermost(pair: PairResult, modules: Sequence[ModuleResult]) -> ModuleResult | None:
    """The deepest measured module pair holding both sides of ``pair``."""
    holding = [
        m
        for m in modules
        if m.output is not None and within(pair.module_a, m.a) and within(pair.module_b, m.b)
    ]
    return max(holding, key=lambda m: (m.depth, len(m.a)), default=None)


def judged_by_modules(
    pairs: Sequence[PairResult], modules: Sequence[ModuleResult], matching: Matching
) -> list[PairResult]:
    """``pairs`` with each failing pair inside an agreeing module pair marked not comparable
    (its sides related by no layout transform of ``matching``)."""
    related = {(t.a, t.b) for t in matching.tensor_pairs if t.layout}
    judged = []
    for pair in pairs:
        scope = None if pair.ok or (pair.a, pair.b) in related else _innermost(pair, modules)
        if scope is not None and scope.output is not None and scope.output.ok:
            note = (
                f"not comparable: differs inside {scope.a or '<root>'} <-> {scope.b or '<root>'} "
                "whose outputs agree (the two sides compute this step in another order or "
                "layout); the module's outputs are compared"
            )
            pair = replace(pair, not_comparable=note)
        judged.append(pair)
    return judged


def module_failures(modules: Sequence[ModuleResult]) -> list[ModuleResult]:
    """The module pairs whose outputs differ (each makes the verdict "diverged")."""
    return [m for m in modules if m.output is not None and not m.output.ok]
