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
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from padiff_ir.errors import OptionError

__all__ = [
    "COMPARE_MODES",
    "TensorMetrics",
    "Tolerance",
    "broadcast_alike",
    "check_bound",
    "common_positions",
    "compare_arrays",
    "tolerance_of",
]

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


def tolerance_of(
    tolerance: Tolerance | None,
    atol: float | None,
    rtol: float | None,
    compare_mode: str | None,
    *,
    defaults: Tolerance,
) -> Tolerance:
    """The one tolerance of a call taking both ``tolerance=`` and ``atol`` / ``rtol`` /
    ``compare_mode``: ``tolerance`` when given (the three not passed, None, or equal to it),
    else made of the three, each one not passed (None) taken from ``defaults``.

    Raises:
        OptionError: a value a tolerance cannot take, or both forms given and different
            (the message names the arguments that differ).

    Examples:
        >>> tolerance_of(None, 1e-3, 0.0, "mean", defaults=Tolerance())
        Tolerance(atol=0.001, rtol=0.0, mode='mean')
        >>> tolerance_of(None, None, 1e-3, None, defaults=Tolerance(atol=0.0, mode="mean"))
        Tolerance(atol=0.0, rtol=0.001, mode='mean')
        >>> tolerance_of(Tolerance(atol=1e-3), None, None, None, defaults=Tolerance()).atol
        0.001
    """
    if tolerance is None:
        return Tolerance(
            check_bound("atol", defaults.atol if atol is None else atol),
            check_bound("rtol", defaults.rtol if rtol is None else rtol),
            defaults.mode if compare_mode is None else compare_mode,
        )
    if not isinstance(tolerance, Tolerance):
        raise OptionError(
            f"tolerance must be a padiff_ir.Tolerance, got {type(tolerance).__name__}",
            option="tolerance",
        )
    passed = (("atol", atol), ("rtol", rtol), ("compare_mode", compare_mode))
    given = (tolerance.atol, tolerance.rtol, tolerance.mode)
    default = (defaults.atol, defaults.rtol, defaults.mode)
    clash = [
        name for (name, v), d, g in zip(passed, default, given) if v is not None and v not in (d, g)
    ]
    if clash:
        raise OptionError(
            f"pass the tolerance either as tolerance=Tolerance(...) or as atol, rtol and "
            f"compare_mode, not both: {', '.join(clash)} differ from {tolerance}",
            option="tolerance",
        )
    return tolerance


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


def default_workers() -> int:
    """Threads for comparisons (numpy releases the GIL in its loops): the CPU count, at most
    8."""
    return max(1, min(8, os.cpu_count() or 1))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    # einsum without BLAS: numpy's BLAS threads fight the frameworks' thread pools
    return float(np.einsum("i,i->", x, y, dtype=np.float64))


_CHUNK = 1 << 18  # elements per pass of the chunked metrics: the chunks stay in cache


@dataclass
class _Sums:
    """Running sums, maxima and counts of one comparison (float64 sums)."""

    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_diff: float = 0.0
    finite_diffs: int = 0  # positions whose difference is finite (the mean's count)
    dot_xx: float = 0.0
    dot_yy: float = 0.0
    dot_xy: float = 0.0
    abs_x: float = 0.0
    abs_y: float = 0.0
    max_abs: float = 0.0
    max_rel: float = 0.0
    bad: int = 0
    any_x: bool = False
    any_y: bool = False
    count: int = 0  # positions finite on both sides (the means' count)
    nan_x: int = 0
    nan_y: int = 0
    inf_x: int = 0
    inf_y: int = 0
    mismatched: int = 0  # positions where one side is NaN/Inf and the other is not the same
    first_mismatch: int = -1
    at_least: list[int] = field(default_factory=lambda: [0] * len(_HIST_EDGES))

    def histogram(self) -> tuple[int, ...]:
        counts = [*self.at_least, 0]
        return tuple(counts[k] - counts[k + 1] for k in range(len(_HIST_EDGES)))


def _finite_sums(x: np.ndarray, y: np.ndarray, tolerance: Tolerance) -> _Sums | None:
    """The metrics' sums of two flat arrays of one dtype, a cache-sized chunk at a time (one
    pass over memory instead of twenty); None as soon as a value, or a difference, is not
    finite (the general path handles those)."""
    sums = _Sums()
    size = int(x.size)
    if not size:
        return sums
    step = min(_CHUNK, size)
    diff, abs_y, scratch = (np.empty(step, x.dtype) for _ in range(3))
    edges = [x.dtype.type(10.0**e) for e in _HIST_EDGES[1:]]
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, size, step):
            xs, ys = x[start : start + step], y[start : start + step]
            n = xs.size
            d, ay, s = diff[:n], abs_y[:n], scratch[:n]
            sum_x, sum_y = float(xs.sum(dtype=np.float64)), float(ys.sum(dtype=np.float64))
            if not (math.isfinite(sum_x) and math.isfinite(sum_y)):
                return None
            np.subtract(xs, ys, out=d)
            np.abs(d, out=d)
            chunk_max = float(d.max())
            if not math.isfinite(chunk_max):  # a difference overflowed
                return None
            sums.sum_x += sum_x
            sums.sum_y += sum_y
            sums.max_abs = max(sums.max_abs, chunk_max)
            sums.sum_diff += float(d.sum(dtype=np.float64))
            np.abs(ys, out=ay)
            np.multiply(ay, tolerance.rtol, out=s)
            s += tolerance.atol
            sums.bad += int(np.count_nonzero(d > s))
            np.maximum(ay, 1e-12, out=s)
            np.divide(d, s, out=s)
            sums.max_rel = max(sums.max_rel, float(s.max()))
            sums.abs_y += float(ay.sum(dtype=np.float64))
            np.abs(xs, out=s)
            sums.abs_x += float(s.sum(dtype=np.float64))
            sums.dot_xx += _dot(xs, xs)
            sums.dot_yy += _dot(ys, ys)
            sums.dot_xy += _dot(xs, ys)
            sums.at_least[0] += n
            for k, edge in enumerate(edges, start=1):
                above = int(np.count_nonzero(d >= edge))
                if not above:
                    break
                sums.at_least[k] += above
    sums.finite_diffs = sums.count = size
    sums.any_x, sums.any_y = sums.abs_x > 0, sums.abs_y > 0
    return sums


def _sums_with_non_finite(
    x: np.ndarray, y: np.ndarray, tolerance: Tolerance
) -> tuple[_Sums, np.ndarray]:
    """The metrics' sums where a side holds NaN or Inf (or a difference overflows), and the
    absolute differences: NaN/Inf are compared by position (the same non-finite value on both
    sides agrees; one that differs is an infinite error), the rest where both are finite."""
    sums = _Sums()
    numel = int(x.size)
    with np.errstate(invalid="ignore", over="ignore"):
        both = np.isfinite(x) & np.isfinite(y)
        if both.all():  # a difference overflowed: every position is compared
            fx, fy = x, y
            diff = np.abs(x - y)
            sums.sum_diff, sums.finite_diffs = float(diff.sum(dtype=np.float64)), numel
            sums.count = numel
        else:
            nan_x, nan_y = np.isnan(x), np.isnan(y)
            sums.nan_x, sums.nan_y = int(np.count_nonzero(nan_x)), int(np.count_nonzero(nan_y))
            sums.inf_x = int(np.count_nonzero(np.isinf(x)))
            sums.inf_y = int(np.count_nonzero(np.isinf(y)))
            differing = ~(both | (nan_x & nan_y) | (np.isinf(x) & (x == y)))
            sums.mismatched = int(np.count_nonzero(differing))
            if sums.mismatched:
                sums.first_mismatch = int(np.flatnonzero(differing)[0])
            fx, fy = np.where(both, x, 0), np.where(both, y, 0)
            diff = np.abs(fx - fy)
            diff[differing] = np.inf
            finite_diff = ~differing
            sums.finite_diffs = int(np.count_nonzero(finite_diff))
            sums.sum_diff = float(diff[finite_diff].sum(dtype=np.float64))
            sums.count = int(np.count_nonzero(both))
        abs_y = np.abs(fy)
        sums.bad = int(np.count_nonzero(~(diff <= tolerance.atol + tolerance.rtol * abs_y)))
        rel = diff / np.maximum(abs_y, 1e-12)
        sums.max_rel = float(rel.max()) if numel else 0.0
        sums.max_abs = float(diff.max()) if numel else 0.0
        sums.sum_x, sums.sum_y = float(fx.sum(dtype=np.float64)), float(fy.sum(dtype=np.float64))
        sums.abs_x = float(np.abs(fx).sum(dtype=np.float64))
        sums.abs_y = float(abs_y.sum(dtype=np.float64))
        sums.dot_xx, sums.dot_yy, sums.dot_xy = _dot(fx, fx), _dot(fy, fy), _dot(fx, fy)
        sums.any_x, sums.any_y = bool(fx.any()), bool(fy.any())
    return sums, diff


def broadcast_alike(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two module outputs in their common shape where they differ only by axes of size 1 (a
    RoPE table ``[1, seq, dim]`` shared by the batch against one per batch row
    ``[2, seq, dim]``): what their consumers see, broadcast; as they are otherwise.

    Examples:
        >>> import numpy as np
        >>> [x.shape for x in broadcast_alike(np.ones((1, 3)), np.ones((2, 3)))]
        [(2, 3), (2, 3)]
        >>> [x.shape for x in broadcast_alike(np.ones(6), np.ones((2, 3)))]
        [(6,), (2, 3)]
    """
    if a.shape == b.shape or a.ndim != b.ndim:
        return a, b
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return a, b
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)


def _cosine(sums: _Sums) -> float:
    """The cosine of two arrays' angle (1 for two zero arrays, 0 where NaN/Inf differ)."""
    norms = math.sqrt(sums.dot_xx * sums.dot_yy)
    if norms > 0:
        return sums.dot_xy / norms
    return 1.0 if not sums.any_x and not sums.any_y and not sums.mismatched else 0.0


def _verdict(
    sums: _Sums,
    tolerance: Tolerance,
    arrays: tuple[np.ndarray, np.ndarray],
    shapes: tuple[tuple[int, ...], tuple[int, ...]],
    means: tuple[float, ...],
    abs_means: tuple[float, ...],
) -> tuple[bool, str]:
    """Whether two arrays agree under ``tolerance``, and if not, why in words."""
    (x, y), (shape_a, shape_b) = arrays, shapes
    if sums.mismatched:
        first = sums.first_mismatch
        index = np.unravel_index(first, shape_a) if shape_a else ()
        return False, (
            f"non-finite values: NaN/Inf differ at {sums.mismatched} of {int(x.size)} positions "
            f"(first at {[int(i) for i in index]}: {float(x[first])} vs "
            f"{float(y[first])}); NaN {sums.nan_x} vs {sums.nan_y}, "
            f"Inf {sums.inf_x} vs {sums.inf_y}"
        )
    if tolerance.mode == "strict":
        ok = not sums.bad
    elif tolerance.mode == "mean":
        ok = bool(abs(means[0] - means[1]) <= tolerance.bound(means[1]))
    else:
        ok = bool(abs(abs_means[0] - abs_means[1]) <= tolerance.bound(abs_means[1]))
    if shape_a != shape_b and not same_layout(shape_a, shape_b):
        return False, f"shape {list(shape_a)} vs {list(shape_b)} (same element count)"
    if ok:
        return True, ""
    if tolerance.mode == "strict":
        return (
            False,
            f"max abs {sums.max_abs:.3g} > atol {tolerance.atol:g} + rtol {tolerance.rtol:g}",
        )
    shown = means if tolerance.mode == "mean" else abs_means
    return False, f"{tolerance.mode} {shown[0]:.6g} vs {shown[1]:.6g}"


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
    sums = _finite_sums(x, y, tolerance)  # every value finite: cache-sized chunks
    if sums is not None:
        histogram = sums.histogram()
    else:
        sums, diff = _sums_with_non_finite(x, y, tolerance)
        histogram = _histogram(diff)
        del diff
    count = sums.count
    if not sums.mismatched:
        mean_abs = sums.sum_diff / numel if numel else 0.0
    else:
        mean_abs = sums.sum_diff / sums.finite_diffs if sums.finite_diffs else math.inf
    # the means are taken where both sides are finite (the non-finite positions agree or fail)
    means = tuple(value / count if count else 0.0 for value in (sums.sum_x, sums.sum_y))
    abs_means = tuple(value / count if count else 0.0 for value in (sums.abs_x, sums.abs_y))
    ok, reason = _verdict(sums, tolerance, (x, y), (shape_a, shape_b), means, abs_means)
    return TensorMetrics(
        ok=bool(ok),
        reason=reason,
        numel=numel,
        max_abs=sums.max_abs,
        max_rel=sums.max_rel,
        mean_abs=mean_abs,
        cosine=_cosine(sums),
        out_of_tolerance=sums.bad / numel if numel else 0.0,
        nan_a=sums.nan_x,
        nan_b=sums.nan_y,
        inf_a=sums.inf_x,
        inf_b=sums.inf_y,
        mean_a=means[0],
        mean_b=means[1],
        abs_mean_a=abs_means[0],
        abs_mean_b=abs_means[1],
        error_histogram=histogram,
        **base,
    )


def common_positions(
    shapes_a: list[tuple[int, ...]],
    shapes_b: list[tuple[int, ...]],
    integral_a: list[bool] | None = None,
    integral_b: list[bool] | None = None,
) -> list[int | None]:
    """For each output of B's layer, the position of A's output it is compared with.

    Equal counts pair by position. A layer returning extra values on one side (attention
    weights, caches, router logits) pairs in order by shape, the extras left out; a shape with
    its leading axes merged (tokens flattened: ``[16, 64]`` vs ``[2, 8, 64]``) is the same.
    With ``integral_a``/``integral_b`` (whether each value holds integers), integers pair only
    with integers, in another order when no later one fits (a router returning ``(logits,
    weights, indices)`` on one side, ``(indices, weights)`` on the other).

    Examples:
        >>> common_positions([(2, 3), (2, 4, 3, 3)], [(2, 3)])
        [0]
        >>> common_positions([(2, 3)], [(2, 3), (5,)])
        [0, None]
        >>> common_positions([(16, 64)], [(2, 8, 64), (16, 4)])
        [0, None]
        >>> common_positions([(16, 4), (16, 2), (16, 2)], [(16, 2), (16, 2)],
        ...                  [False, False, True], [True, False])
        [2, 1]
    """
    if len(shapes_a) == len(shapes_b):
        return list(range(len(shapes_b)))
    kinds_a = integral_a or [False] * len(shapes_a)
    kinds_b = integral_b or [False] * len(shapes_b)
    positions: list[int | None] = []
    start = 0
    for shape, kind in zip(shapes_b, kinds_b):
        fits = [
            i
            for i in range(len(shapes_a))
            if i not in positions and kinds_a[i] == kind and _same_values(shapes_a[i], shape)
        ]
        later = [i for i in fits if i >= start]
        found = later[0] if later else (fits[0] if fits and integral_a is not None else None)
        positions.append(found)
        if found is not None:
            start = found + 1
    return positions


def _same_values(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> bool:
    """The same shape, or the same elements in the same order (leading axes merged)."""
    return shape_a == shape_b or (
        int(np.prod(shape_a)) == int(np.prod(shape_b)) and same_layout(shape_a, shape_b)
    )
