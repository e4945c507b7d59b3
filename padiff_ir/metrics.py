"""Elementwise comparison of two tensors: metrics and a verdict under a tolerance.

Compare modes (as in PaDiff):

* ``strict``: every element within ``atol + rtol * |b|`` (numpy's ``allclose``);
* ``mean``: the means within that tolerance of each other;
* ``abs_mean``: the means of absolute values within it.

A pair whose shapes differ is a divergence reported with both shapes (when the element counts
agree the values are still compared in flat order, so the report can say whether only the
layout differs). Shapes that differ only in dimensions of size 1 (``[2, 32]`` vs
``[2, 1, 32]``: one exporter squeezes later than the other) hold the same data and compare
as equal in shape. NaN and Inf are compared by position: the same non-finite value at the same
position on both sides agrees, a NaN or Inf where the other side has anything else fails the
pair (its reason says where); the other statistics are taken over the positions where both sides
are finite.

This module is on the ground floor of the package: it uses numpy only, so both the ONNX path
(:mod:`padiff_ir.compare`) and the native path (:mod:`padiff_ir.native`) compare with it.

Example:
    >>> import numpy as np
    >>> metrics = compare_arrays(np.zeros((2, 32)), np.zeros((2, 1, 32)))
    >>> bool(metrics), metrics.shape_b
    (True, (2, 1, 32))
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from padiff_ir.errors import OptionError

__all__ = ["COMPARE_MODES", "TensorMetrics", "Tolerance", "check_bound", "compare_arrays"]

logger = logging.getLogger(__name__)

COMPARE_MODES = ("strict", "mean", "abs_mean")
_HIST_EDGES = tuple(float(e) for e in range(-12, 3))  # log10 |a - b| bins: 1e-12 .. 1e2


@dataclass(frozen=True)
class Tolerance:
    """``atol``/``rtol`` and the compare mode for one pair (or the default for all)."""

    atol: float = 1e-5
    rtol: float = 1e-5
    mode: str = "strict"

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in COMPARE_MODES:
            raise OptionError(
                f"compare mode {self.mode!r} is not one of {COMPARE_MODES}: "
                "pass compare_mode='strict', 'mean' or 'abs_mean'",
                option="mode",
            )
        for name in ("atol", "rtol"):
            object.__setattr__(self, name, check_bound(name, getattr(self, name)))

    def bound(self, reference: np.ndarray | float) -> np.ndarray | float:
        return self.atol + self.rtol * np.abs(reference)


@dataclass(frozen=True)
class TensorMetrics:
    """How two tensors differ.

    Attributes:
        ok: the verdict under the tolerance.
        reason: why not ok (empty when ok).
        shape_a / shape_b, dtype_a / dtype_b: as compared.
        numel: elements compared.
        max_abs, max_rel, mean_abs: of ``|a - b|`` (relative to ``|b|``, guarded near zero).
        cosine: cosine similarity of the flattened tensors (1.0 for two zero tensors).
        out_of_tolerance: fraction of elements outside ``atol + rtol * |b|``.
        nan_a / nan_b / inf_a / inf_b: non-finite counts per side.
        mean_a / mean_b / abs_mean_a / abs_mean_b: the statistics the mean modes compare.
        error_histogram: counts of ``log10 |a - b|`` per bin of :data:`_HIST_EDGES`
            (first bin: exact or below 1e-12; last: 1e2 and above).
    """

    ok: bool
    reason: str = ""
    shape_a: tuple[int, ...] = ()
    shape_b: tuple[int, ...] = ()
    dtype_a: str = ""
    dtype_b: str = ""
    numel: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    mean_abs: float = 0.0
    cosine: float = 1.0
    out_of_tolerance: float = 0.0
    nan_a: int = 0
    nan_b: int = 0
    inf_a: int = 0
    inf_b: int = 0
    mean_a: float = 0.0
    mean_b: float = 0.0
    abs_mean_a: float = 0.0
    abs_mean_b: float = 0.0
    error_histogram: tuple[int, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():  # JSON has no NaN/Inf
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = repr(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorMetrics:
        data = dict(data)
        for key in ("shape_a", "shape_b", "error_histogram"):
            data[key] = tuple(data.get(key, ()))
        for key, value in data.items():
            if isinstance(value, str) and value in ("nan", "inf", "-inf"):
                data[key] = float(value)
        return cls(**data)


def check_bound(name: str, value: Any, option: str | None = None) -> float:
    """``value`` as a float when it is a tolerance bound (a finite real number >= 0).

    Raises:
        OptionError: naming ``name`` (its ``option``: ``option``, else ``name``), for a
            non-number, a bool, NaN, Inf or a negative value.
    """
    option = option or name
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise OptionError(
            f"{name} must be a number >= 0 (such as 1e-5), got {type(value).__name__} {value!r}",
            option=option,
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise OptionError(
            f"{name} must be finite and must be >= 0 (such as 1e-5), got {value}", option=option
        )
    return value


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def same_layout(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> bool:
    """Whether two shapes of one element count hold their elements in the same order: equal up
    to sizes of 1, or with leading axes merged (``[10, 32]`` vs ``[2, 5, 32]``: an exporter
    that flattens the batch for a matmul).

    Examples:
        >>> same_layout((10, 32), (2, 5, 32)), same_layout((2, 64, 32), (2, 4, 64, 8))
        (True, False)
    """
    a, b = _squeezed(shape_a), _squeezed(shape_b)
    return a == b or (bool(a) and bool(b) and a[-1] == b[-1])


def _histogram(abs_err: np.ndarray) -> tuple[int, ...]:
    """Counts of ``log10 |a - b|`` per bin of :data:`_HIST_EDGES` (no sort, no logarithm).

    The count at or above each decade edge, from the smallest up (comparisons in the
    array's dtype, stopping at the first empty edge); a bin's count is the difference of two.
    """
    finite = abs_err[np.isfinite(abs_err)] if not np.isfinite(abs_err).all() else abs_err
    bins = len(_HIST_EDGES)
    # bin 0: below 1e-11 (exact included); bin k: [1e(k-12), 1e(k-11)); last: 1e2 and above
    at_least = [int(finite.size)]
    for exponent in _HIST_EDGES[1:]:
        count = (
            int(np.count_nonzero(finite >= finite.dtype.type(10.0**exponent)))
            if at_least[-1]
            else 0
        )
        at_least.append(count)
    at_least.append(0)
    return tuple(at_least[k] - at_least[k + 1] for k in range(bins))


def _working_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """float32 when both sides are float32 (differences of close float32 numbers are exact);
    float64 otherwise."""
    if a.dtype == np.float32 and b.dtype == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    # einsum without BLAS: numpy's BLAS threads fight the frameworks' thread pools
    return float(np.einsum("i,i->", x, y, dtype=np.float64))


def compare_arrays(a: Any, b: Any, tolerance: Tolerance | None = None) -> TensorMetrics:
    """Compare ``a`` (reference side) with ``b``.

    Examples:
        >>> import numpy as np
        >>> m = compare_arrays(np.array([1.0, 2.0]), np.array([1.0, 2.1]), Tolerance(1e-3, 0))
        >>> bool(m), round(m.max_abs, 3), m.out_of_tolerance
        (False, 0.1, 0.5)
        >>> bool(compare_arrays(np.ones(3), np.ones(3)))
        True
    """
    tolerance = tolerance or Tolerance()
    a = np.asarray(a)
    b = np.asarray(b)
    shape_a, shape_b = tuple(int(d) for d in a.shape), tuple(int(d) for d in b.shape)
    base = {
        "shape_a": shape_a,
        "shape_b": shape_b,
        "dtype_a": a.dtype.name,
        "dtype_b": b.dtype.name,
    }
    if a.size != b.size:
        return TensorMetrics(
            ok=False,
            reason=f"shape {list(shape_a)} vs {list(shape_b)}",
            max_abs=math.inf,
            max_rel=math.inf,
            mean_abs=math.inf,
            cosine=0.0,
            out_of_tolerance=1.0,
            **base,
        )
    work = _working_dtype(a, b)
    x = a.astype(work, copy=False).ravel()
    y = b.astype(work, copy=False).ravel()
    numel = int(x.size)
    with np.errstate(invalid="ignore", over="ignore"):  # Inf - Inf in a sum: NaN, no warning
        sum_x, sum_y = float(x.sum(dtype=np.float64)), float(y.sum(dtype=np.float64))
    # a finite sum has no NaN or Inf among its terms (either would carry into it)
    all_finite = (math.isfinite(sum_x) and math.isfinite(sum_y)) or (
        bool(np.isfinite(x).all()) and bool(np.isfinite(y).all())
    )
    mismatched = 0  # positions where one side is NaN/Inf and the other is not the same value
    first_mismatch = -1
    with np.errstate(invalid="ignore", over="ignore"):
        if all_finite:
            nan_a = nan_b = inf_a = inf_b = 0
            both = None
            diff = np.subtract(x, y)
            np.abs(diff, out=diff)
            abs_y = np.abs(y)
            # the bound, then the relative error, in one scratch array
            scratch = np.multiply(abs_y, tolerance.rtol)
            scratch += tolerance.atol
            bad_count = int(np.count_nonzero(diff > scratch))
            np.maximum(abs_y, 1e-12, out=scratch)
            np.divide(diff, scratch, out=scratch)
            max_rel = float(scratch.max()) if numel else 0.0
            del scratch
        else:
            finite_x, finite_y = np.isfinite(x), np.isfinite(y)
            nan_x, nan_y = np.isnan(x), np.isnan(y)
            nan_a, nan_b = int(np.count_nonzero(nan_x)), int(np.count_nonzero(nan_y))
            inf_a = int(np.count_nonzero(np.isinf(x)))
            inf_b = int(np.count_nonzero(np.isinf(y)))
            # NaN/Inf are compared by position: the same non-finite value on both sides agrees
            both = finite_x & finite_y
            same = (nan_x & nan_y) | (np.isinf(x) & (x == y))
            differing = ~(both | same)
            mismatched = int(np.count_nonzero(differing))
            if mismatched:
                first_mismatch = int(np.flatnonzero(differing)[0])
            x_f, y_f = np.where(both, x, 0), np.where(both, y, 0)
            diff = np.abs(x_f - y_f)
            diff[differing] = np.inf
            abs_y = np.abs(y_f)
            bad_count = int(np.count_nonzero(~(diff <= tolerance.atol + tolerance.rtol * abs_y)))
            rel = diff / np.maximum(abs_y, 1e-12)
            max_rel = float(rel.max()) if numel else 0.0
    max_abs = float(diff.max()) if numel else 0.0
    if both is None or not mismatched:
        mean_abs = float(diff.sum(dtype=np.float64)) / numel if numel else 0.0
    else:
        finite = ~np.isinf(diff)
        mean_abs = float(diff[finite].mean(dtype=np.float64)) if finite.any() else math.inf
    fx = x if both is None else np.where(both, x, 0)
    fy = y if both is None else np.where(both, y, 0)
    norms = math.sqrt(_dot(fx, fx) * _dot(fy, fy))
    if norms > 0:
        cosine = _dot(fx, fy) / norms
    else:
        cosine = 1.0 if not fx.any() and not fy.any() else 0.0
    # the means are taken where both sides are finite (the non-finite positions agree or fail)
    count = numel if both is None else int(np.count_nonzero(both))
    if both is not None:
        sum_x, sum_y = float(fx.sum(dtype=np.float64)), float(fy.sum(dtype=np.float64))
    mean_a = sum_x / count if count else 0.0
    mean_b = sum_y / count if count else 0.0
    abs_mean_a = float(np.abs(fx).sum(dtype=np.float64)) / count if count else 0.0
    abs_mean_b = float(abs_y.sum(dtype=np.float64)) / count if count else 0.0
    if tolerance.mode == "strict":
        ok = not bad_count
    elif tolerance.mode == "mean":
        ok = bool(abs(mean_a - mean_b) <= tolerance.bound(mean_b))
    else:
        ok = bool(abs(abs_mean_a - abs_mean_b) <= tolerance.bound(abs_mean_b))
    reason = ""
    if mismatched:
        ok = False
        index = np.unravel_index(first_mismatch, shape_a) if shape_a else ()
        reason = (
            f"non-finite values: NaN/Inf differ at {mismatched} of {numel} positions "
            f"(first at {[int(i) for i in index]}: {float(x[first_mismatch])} vs "
            f"{float(y[first_mismatch])}); NaN {nan_a} vs {nan_b}, Inf {inf_a} vs {inf_b}"
        )
        cosine = 0.0 if norms == 0 else cosine
    elif shape_a != shape_b and not same_layout(shape_a, shape_b):
        ok = False
        reason = f"shape {list(shape_a)} vs {list(shape_b)} (same element count)"
    elif not ok:
        reason = (
            f"max abs {max_abs:.3g} > atol {tolerance.atol:g} + rtol {tolerance.rtol:g}"
            if tolerance.mode == "strict"
            else f"{tolerance.mode} {mean_a if tolerance.mode == 'mean' else abs_mean_a:.6g} vs "
            f"{mean_b if tolerance.mode == 'mean' else abs_mean_b:.6g}"
        )
    return TensorMetrics(
        ok=bool(ok),
        reason=reason,
        numel=numel,
        max_abs=max_abs,
        max_rel=max_rel,
        mean_abs=mean_abs,
        cosine=cosine,
        out_of_tolerance=bad_count / numel if numel else 0.0,
        nan_a=nan_a,
        nan_b=nan_b,
        inf_a=inf_a,
        inf_b=inf_b,
        mean_a=mean_a,
        mean_b=mean_b,
        abs_mean_a=abs_mean_a,
        abs_mean_b=abs_mean_b,
        error_histogram=_histogram(diff),
        **base,
    )
