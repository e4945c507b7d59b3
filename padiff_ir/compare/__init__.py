"""Comparison of matched tensors: metrics, verdicts, localisation of the first divergence."""

from __future__ import annotations

from padiff_ir.compare.match_result import Culprit, MatchResult, ModuleResult, PairResult
from padiff_ir.compare.options import MatchOptions
from padiff_ir.metrics import COMPARE_MODES, TensorMetrics, Tolerance, compare_arrays

__all__ = [
    "COMPARE_MODES",
    "Culprit",
    "MatchOptions",
    "MatchResult",
    "ModuleResult",
    "PairResult",
    "TensorMetrics",
    "Tolerance",
    "compare_arrays",
]
