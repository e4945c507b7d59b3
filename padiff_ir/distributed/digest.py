"""The digest of a tensor: a few numbers that tell two tensors apart without reading them.

A digest holds the logical shape, the dtype, the moments (count, sum, sum of squares, min,
max) and a fixed random projection: a sum ``sum_i x_i r(i)`` whose weights ``r`` depend on the
element's index *in the logical tensor* alone (a multiplicative hash of it). It costs one
matrix-vector product (projection and sum together), one dot product, a min and a max. A
shard computes its projection with the indices its elements have in the logical tensor, so the
digests of the shards of one tensor add up to the digest of the whole (:func:`combine`), and a
permutation (a split on the wrong axis) changes the projection even where the moments stay.

:func:`disagree` is conservative: it reports a difference only where no pair of tensors within
the tolerance elementwise could have made the two digests; the full tensors decide the rest.

Example:
    >>> x = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> whole = digest_array(x, (3, 4), projection_weights((3, 4), (3, 4), (0, 0)))
    >>> left = digest_array(x[:, :2], (3, 4), projection_weights((3, 2), (3, 4), (0, 0)))
    >>> right = digest_array(x[:, 2:], (3, 4), projection_weights((3, 2), (3, 4), (0, 2)))
    >>> disagree(combine([left, right]), whole, Tolerance())
    ''
    >>> moved = np.ascontiguousarray(x.reshape(4, 3).T.reshape(3, 4))  # same values, moved
    >>> weights = projection_weights((3, 4), (3, 4), (0, 0))
    >>> disagree(digest_array(moved, (3, 4), weights), whole, Tolerance()).startswith("projection")
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from padiff_ir.metrics import Tolerance

__all__ = ["Digest", "combine", "digest_array", "disagree", "projection_weights"]

# multiplier and offset of each projection's index hash (odd, below 2**31)
_HASHES = ((0x5BD1E995 % (1 << 30) | 1, 0x3C6EF372 % (1 << 30)),)
_MOD = 1 << 31
# float32 accumulation noise allowed in the bounds, relative to the sums of magnitudes
_ROUNDING = 1e-5


@dataclass(frozen=True)
class Digest:
    """Shape, dtype, moments and projection of a tensor (or of the part of it a shard holds,
    with the logical ``shape``). ``exact`` is false for a partial sum, whose nonlinear moments
    (squares, min, max) say nothing of the whole."""

    shape: tuple[int, ...]
    dtype: str
    count: int
    total: float
    squares: float
    low: float
    high: float
    projection: tuple[float, ...]
    exact: bool = True

    def to_list(self) -> list[Any]:
        return [
            list(self.shape),
            self.dtype,
            self.count,
            self.total,
            self.squares,
            self.low,
            self.high,
            list(self.projection),
            self.exact,
        ]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> Digest:
        shape, dtype, count, total, squares, low, high, proj, exact = data
        return cls(tuple(shape), dtype, count, total, squares, low, high, tuple(proj), exact)


def projection_weights(
    local: tuple[int, ...], logical: tuple[int, ...], offsets: tuple[int, ...]
) -> np.ndarray:
    """The ``[2, n]`` float32 weights of a local block at ``offsets`` of a ``logical`` tensor:
    the projection and a row of ones (the sum, in the same pass)."""
    strides = np.cumprod((1, *logical[::-1][:-1]))[::-1] if logical else np.zeros(0, np.int64)
    index = np.zeros(local, dtype=np.int64)
    for axis, (size, offset) in enumerate(zip(local, offsets)):
        shape = [1] * len(local)
        shape[axis] = size
        index += ((np.arange(size, dtype=np.int64) + offset) * int(strides[axis])).reshape(shape)
    flat = index.reshape(-1)
    rows = [((flat * a + b) % _MOD).astype(np.float32) / _MOD - 0.5 for a, b in _HASHES]
    return np.stack([*rows, np.ones(flat.size, np.float32)])  # the last row sums


def digest_array(array: np.ndarray, logical: tuple[int, ...], weights: np.ndarray) -> Digest:
    """The digest of ``array``, a block of a ``logical``-shaped tensor (``weights`` from
    :func:`projection_weights` for its place in it)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype != np.float32 and flat.dtype != np.float64:
        flat = flat.astype(np.float32)
    if flat.size == 0:
        return Digest(logical, str(array.dtype), 0, 0.0, 0.0, 0.0, 0.0, (0.0,) * len(_HASHES))
    *projection, total = (float(v) for v in weights.astype(flat.dtype, copy=False) @ flat)
    return Digest(
        shape=logical,
        dtype=str(array.dtype),
        count=int(flat.size),
        total=total,
        squares=float(np.dot(flat, flat)),
        low=float(flat.min()),
        high=float(flat.max()),
        projection=tuple(projection),
    )


def combine(parts: Iterable[Digest], *, partial: bool = False) -> Digest:
    """The digest of the logical tensor whose disjoint blocks (``partial``: summands) the
    ``parts`` digest."""
    parts = list(parts)
    first = parts[0]
    exact = all(p.exact for p in parts) and not (partial and len(parts) > 1)
    return replace(
        first,
        count=first.count if partial else sum(p.count for p in parts),
        total=sum(p.total for p in parts),
        squares=sum(p.squares for p in parts),
        low=min(p.low for p in parts),
        high=max(p.high for p in parts),
        projection=tuple(float(sum(v)) for v in zip(*(p.projection for p in parts))),
        exact=exact,
    )


def disagree(a: Digest, b: Digest, tolerance: Tolerance) -> str:
    """Why ``a`` and ``b`` cannot be the digests of two tensors equal within ``tolerance``
    elementwise (``""`` when they can)."""
    if a.shape != b.shape:
        return f"shape {list(a.shape)} vs {list(b.shape)}"
    if a.count != b.count:
        return f"{a.count} vs {b.count} elements"
    atol, rtol = tolerance.atol, tolerance.rtol
    # sum |x| <= sqrt(n sum x^2) (Cauchy-Schwarz) bounds what the linear parts may move
    exact = a.exact and b.exact
    magnitude = math.sqrt(a.count * max(a.squares, b.squares)) if exact else float("inf")
    linear = a.count * atol + (rtol + _ROUNDING) * magnitude
    if not np.isfinite(linear):  # a partial sum: only the linear parts compare
        linear = a.count * atol + (rtol + _ROUNDING) * max(abs(a.total), abs(b.total), 1.0) * 10
    if abs(a.total - b.total) > linear:
        return f"sum {a.total:.6g} vs {b.total:.6g}"
    for k, (pa, pb) in enumerate(zip(a.projection, b.projection)):
        if abs(pa - pb) > 0.5 * linear:
            return f"projection {k} {pa:.6g} vs {pb:.6g}"
    if not (a.exact and b.exact):
        return ""
    peak = max(abs(a.low), abs(a.high), abs(b.low), abs(b.high))
    for name, va, vb in (("max", a.high, b.high), ("min", a.low, b.low)):
        if abs(va - vb) > atol + (rtol + _ROUNDING) * peak:
            return f"{name} {va:.6g} vs {vb:.6g}"
    squares = 2 * atol * magnitude + (2 * rtol + _ROUNDING) * max(a.squares, b.squares)
    if abs(a.squares - b.squares) > squares + a.count * atol * atol:
        return f"sum of squares {a.squares:.6g} vs {b.squares:.6g}"
    return ""
