"""Tensor pairs whose two sides are laid out differently because their parameters are.

When the matching found that B's fused ``qkv_proj`` holds A's ``q``, ``k``, ``v`` rows grouped
per key-value head (:mod:`padiff_ir.matching.layouts`), the fused projection's output is A's
three outputs joined and permuted the same way: :func:`layout_rows` gives the permutation, so
the pair compares for real. The tensors between that projection and the end of the module
that holds it (q split into heads, rotated, k repeated...) are laid out in each side's own way;
where such a pair fails, :func:`layout_note` says why it is not comparable, and the pair is
kept out of the verdict (the module's outputs still count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from padiff_ir._paths import within
from padiff_ir.matching.layouts import RowLayout
from padiff_ir.matching.transform_types import ArrayTransform
from padiff_ir.matching.types import Matching, ModulePair, ParamPair, TensorPair
from padiff_ir.pairing.layout_probes import scope_of

__all__ = ["LayoutScopes", "joined_value", "layout_rows", "transposed_pairs"]


def _laid_out(matching: Matching) -> list[tuple[ParamPair, RowLayout]]:
    """The parameter pairs with a row layout, and their layout."""
    return [
        (p, p.transform.layout)
        for p in matching.param_pairs
        if isinstance(p.transform, ArrayTransform) and p.transform.layout is not None
    ]


def layout_rows(
    pair: TensorPair, matching: Matching, sizes_a: Sequence[int], sizes_b: Sequence[int]
) -> tuple[str, np.ndarray] | None:
    """For a fused tensor pair (one tensor on one side, several on the other), the side whose
    pieces are joined (``"a"`` or ``"b"``) and the permutation of the joined last axis that
    gives the fused side's layout; ``None`` when no parameter layout concerns the pair."""
    if len(pair.a) > 1 and len(pair.b) == 1:
        joined, sizes = "a", sizes_a
        found = [
            lay for p, lay in _laid_out(matching) if len(p.b) == 1 and p.module_b == pair.module_b
        ]
    elif len(pair.b) > 1 and len(pair.a) == 1:
        joined, sizes = "b", sizes_b
        found = [
            lay for p, lay in _laid_out(matching) if len(p.a) == 1 and p.module_a == pair.module_a
        ]
    else:
        return None
    for layout in found:
        try:
            return joined, layout.permutation(sizes)
        except ValueError:
            continue
    return None


class LayoutScopes:
    """The module pairs holding parameters with a layout, and why pairs inside them may not be
    comparable."""

    def __init__(self, matching: Matching) -> None:
        self.scopes: list[tuple[ModulePair, str]] = []
        for param, layout in _laid_out(matching):
            path = scope_of(param, {p.a: p.b for p in matching.module_pairs})
            scope = next((p for p in matching.module_pairs if p.a == path), None)
            if scope is not None:
                self.scopes.append((scope, layout.describe()))

    def note(self, pair: TensorPair) -> str:
        """Why ``pair`` is not comparable (``""`` when it is not inside a laid-out module)."""
        for scope, layout in self.scopes:
            if set(pair.a) <= set(scope.outputs_a):
                continue  # the module's own outputs are comparable
            if within(pair.module_a, scope.a) and within(pair.module_b, scope.b):
                return (
                    f"not comparable: layout differs inside {scope.a or '<root>'} (its "
                    f"parameters are laid out as {layout}); its outputs are compared"
                )
        return ""


def joined_value(values: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Pieces joined along the last axis and permuted into the fused side's layout."""
    return np.take(np.concatenate([np.asarray(v) for v in values], axis=-1), rows, axis=-1)


def transposed_pairs(matching: Matching) -> dict[tuple[str, str], tuple[int, ...]]:
    """The tensor pairs whose B side is A's transposed (a LayerNorm run channels-last on one
    side and channels-first on the other): ``(A's name, B's name)`` to the axes that bring B's
    value to A's layout, for the module comparisons that meet the same tensors."""
    return {
        (pair.a[0], pair.b[0]): tuple(int(axis) for axis in pair.layout["transpose"])
        for pair in matching.tensor_pairs
        if not pair.is_group and pair.layout and "transpose" in pair.layout
    }
