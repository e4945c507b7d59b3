"""Align two token sequences: a banded weighted longest common subsequence.

Both exporters emit ops in the order the forward runs them, so the anchor tokens of the two
graphs (see :mod:`padiff_ir.matching._anchors`) form two sequences that mostly agree; they
differ where a layer exists on one side only or where parallel branches interleave differently.

The alignment maximises the sum of the scores of matched pairs, gaps costing nothing, where two
tokens may match only when their signatures are equal and score ``2``, plus ``1`` when the
contexts (what makes their inputs) agree as well. The common prefix and suffix of identical
signatures and contexts are matched directly; the dynamic program runs on the middle only,
restricted to a band of half-width ``w = |n - m| + BAND`` around the proportional diagonal
``j = i * m / n`` (a path that leaves it would need more gaps than the lengths differ by).
Cost ``O((n + m) * w)`` time and memory, ``O(n + m)`` when the signature sequences are
identical.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BAND", "align"]

logger = logging.getLogger(__name__)

#: Extra half-width of the band beyond the difference in length.
BAND = 24

_UNREACHABLE = -(1 << 40)
_DIAGONAL, _UP, _LEFT = 0, 1, 2


def align(
    keys_a: Sequence[Any],
    keys_b: Sequence[Any],
    context_a: Sequence[Any] = (),
    context_b: Sequence[Any] = (),
) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of matched tokens, increasing in both ``i`` and ``j``.

    Examples:
        >>> align(["ln", "fc", "fc", "ln"], ["ln", "fc", "drop", "fc", "ln"])
        [(0, 0), (1, 1), (2, 3), (3, 4)]
    """
    n, m = len(keys_a), len(keys_b)
    ctx_a = list(context_a) if context_a else [None] * n
    ctx_b = list(context_b) if context_b else [None] * m
    head = 0
    while head < min(n, m) and keys_a[head] == keys_b[head] and ctx_a[head] == ctx_b[head]:
        head += 1
    tail = 0
    while (
        tail < min(n, m) - head
        and keys_a[n - 1 - tail] == keys_b[m - 1 - tail]
        and ctx_a[n - 1 - tail] == ctx_b[m - 1 - tail]
    ):
        tail += 1
    pairs = [(i, i) for i in range(head)]
    middle = _banded(
        keys_a[head : n - tail],
        keys_b[head : m - tail],
        ctx_a[head : n - tail],
        ctx_b[head : m - tail],
    )
    pairs += [(head + i, head + j) for i, j in middle]
    pairs += [(n - tail + k, m - tail + k) for k in range(tail)]
    return pairs


def _banded(
    keys_a: Sequence[Any], keys_b: Sequence[Any], ctx_a: Sequence[Any], ctx_b: Sequence[Any]
) -> list[tuple[int, int]]:
    n, m = len(keys_a), len(keys_b)
    if n == 0 or m == 0:
        return []
    width = abs(n - m) + BAND
    # rows 0..n; row i covers columns lo[i]..hi[i] (inclusive)
    lo = [max(0, (i * m) // n - width) for i in range(n + 1)]
    hi = [min(m, (i * m) // n + width) for i in range(n + 1)]
    lo[0] = 0
    prev = [0] * (hi[0] - lo[0] + 1)
    moves: list[bytearray] = [bytearray(len(prev))]
    for i in range(1, n + 1):
        row_lo, row_hi = lo[i], hi[i]
        p_lo, p_hi = lo[i - 1], hi[i - 1]
        row = [_UNREACHABLE] * (row_hi - row_lo + 1)
        move = bytearray(len(row))
        key, ctx = keys_a[i - 1], ctx_a[i - 1]
        for j in range(row_lo, row_hi + 1):
            k = j - row_lo
            if j == 0:
                row[k], move[k] = 0, _UP
                continue
            best, how = _UNREACHABLE, _UP
            if p_lo <= j <= p_hi:
                best = prev[j - p_lo]
            if k > 0 and row[k - 1] > best:
                best, how = row[k - 1], _LEFT
            if p_lo <= j - 1 <= p_hi and keys_b[j - 1] == key:
                diagonal = prev[j - 1 - p_lo] + (3 if ctx_b[j - 1] == ctx else 2)
                if diagonal >= best:
                    best, how = diagonal, _DIAGONAL
            row[k], move[k] = best, how
        prev = row
        moves.append(move)
    # trace back from (n, m), or the best cell of the last row if m is out of the band
    i, j = n, min(m, hi[n])
    pairs: list[tuple[int, int]] = []
    while i > 0 and j > 0:
        how = moves[i][j - lo[i]] if lo[i] <= j <= hi[i] else _UP
        if how == _DIAGONAL:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif how == _UP:
            i -= 1
            j = min(j, hi[i])
        else:
            j -= 1
    pairs.reverse()
    return pairs
