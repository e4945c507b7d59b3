"""Comparison of matched tensors: metrics, verdicts, localisation of the first divergence."""

from __future__ import annotations

from padiff_ir.compare.metrics import COMPARE_MODES, TensorMetrics, Tolerance, compare_arrays
from padiff_ir.compare.result import Culprit, MatchResult, ModuleResult, PairResult

__all__ = [
    "COMPARE_MODES",
    "Culprit",
    "MatchResult",
    "ModuleResult",
    "PairResult",
    "TensorMetrics",
    "Tolerance",
    "compare_arrays",
]
