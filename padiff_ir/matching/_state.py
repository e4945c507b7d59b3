"""The growing set of tensor and op pairs of a matching, and how a pair's layouts relate.

A tensor belongs to at most one 1:1 pair and at most one group (N:M) pair on its side: a fused
``qkv`` output is in a group with the three projections of the other side, and each of its
slices in a 1:1 pair with one projection. Ops pair 1:1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import permutations
from typing import TYPE_CHECKING, Any

from padiff_ir.matching._view import compatible_shapes, numel

if TYPE_CHECKING:
    from padiff_ir.matching._view import SideView

__all__ = ["Draft", "PairState", "layout_between"]

logger = logging.getLogger(__name__)


@dataclass
class Draft:
    """A tensor pair in the making (becomes a :class:`~padiff_ir.matching.TensorPair`)."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    confidence: float
    evidence: tuple[str, ...]
    concat_axis: int | None = None

    @property
    def is_group(self) -> bool:
        return len(self.a) != 1 or len(self.b) != 1


class PairState:
    """Tensor pairs (1:1 and groups) and op pairs found so far."""

    def __init__(self, view_a: SideView, view_b: SideView) -> None:
        self.view_a = view_a
        self.view_b = view_b
        self.drafts: list[Draft] = []
        self.one_a: dict[str, str] = {}
        self.one_b: dict[str, str] = {}
        self.group_a: dict[str, int] = {}
        self.group_b: dict[str, int] = {}
        self.op_a: dict[str, str] = {}
        self.op_b: dict[str, str] = {}
        self._draft_of_a: dict[str, int] = {}
        #: ops of paired units (a unit's zero bias has no counterpart but is accounted for)
        self.covered_a: set[str] = set()
        self.covered_b: set[str] = set()
        #: head op -> unit, for units propagation may still pair
        self.units_a: dict[str, Any] = {}
        self.units_b: dict[str, Any] = {}
        #: unit pairs found by propagation rather than by the alignment
        self.late_units: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []

    def pair(self, a: str, b: str, confidence: float, evidence: tuple[str, ...]) -> bool:
        """Pair ``a`` with ``b`` 1:1 unless either is already in a 1:1 pair."""
        if a in self.one_a or b in self.one_b:
            return False
        self.one_a[a] = b
        self.one_b[b] = a
        self._draft_of_a[a] = len(self.drafts)
        self.drafts.append(Draft((a,), (b,), confidence, evidence))
        return True

    def pair_group(
        self,
        a: tuple[str, ...],
        b: tuple[str, ...],
        confidence: float,
        evidence: tuple[str, ...],
        concat_axis: int | None,
    ) -> bool:
        """Pair tensors ``a`` with ``b`` as a group unless any is already in a group."""
        if any(t in self.group_a for t in a) or any(t in self.group_b for t in b):
            return False
        index = len(self.drafts)
        self.drafts.append(Draft(a, b, confidence, evidence, concat_axis))
        self.group_a.update(dict.fromkeys(a, index))
        self.group_b.update(dict.fromkeys(b, index))
        return True

    def pair_ops(self, a: str, b: str) -> bool:
        if a in self.op_a or b in self.op_b:
            return False
        self.op_a[a] = b
        self.op_b[b] = a
        return True

    def draft_of(self, a: str) -> Draft | None:
        index = self._draft_of_a.get(a)
        return None if index is None else self.drafts[index]

    def paired_a(self, tensor: str) -> bool:
        return tensor in self.one_a or tensor in self.group_a

    def paired_b(self, tensor: str) -> bool:
        return tensor in self.one_b or tensor in self.group_b


def layout_between(
    shape_a: tuple[Any, ...] | None, shape_b: tuple[Any, ...] | None
) -> dict[str, Any] | None:
    """How to bring a B value of ``shape_b`` to A's ``shape_a`` (``None``: same layout).

    ``{"transpose": perm}`` when ``shape_b`` permuted by ``perm`` gives ``shape_a`` (the first
    such permutation when dimensions repeat, then marked ``"ambiguous": True``),
    ``{"reshape": shape_a}`` when they differ by dimensions of size 1 only, and the same with
    ``"ambiguous": True`` when only the element counts agree (a reshape *and* a permutation,
    e.g. heads split on one side only: compare such values without regard to order).

    Examples:
        >>> layout_between((5, 2, 16), (2, 5, 16))
        {'transpose': [1, 0, 2]}
        >>> layout_between((2, 32), (2, 1, 32))
        {'reshape': [2, 32]}
        >>> layout_between((2, 2, 5, 8), (2, 5, 16))
        {'reshape': [2, 2, 5, 8], 'ambiguous': True}
    """
    if shape_a is None or shape_b is None or compatible_shapes(shape_a, shape_b):
        return None
    known = all(isinstance(d, int) for d in (*shape_a, *shape_b))
    if (
        known
        and len(shape_a) == len(shape_b)
        and sorted(shape_a) == sorted(shape_b)
        and len(shape_a) <= 6
    ):
        found = [
            list(p)
            for p in permutations(range(len(shape_b)))
            if tuple(shape_b[i] for i in p) == tuple(shape_a)
        ]
        if found:
            layout: dict[str, Any] = {"transpose": found[0]}
            if len(found) > 1:
                layout["ambiguous"] = True
            return layout
    size_a, size_b = numel(shape_a), numel(shape_b)
    if size_a is not None and size_a == size_b:
        squeezed = [d for d in shape_a if d != 1] == [d for d in shape_b if d != 1]
        return (
            {"reshape": list(shape_a)}
            if squeezed
            else {"reshape": list(shape_a), "ambiguous": True}
        )
    return {"reshape": [d if isinstance(d, int) else -1 for d in shape_a], "ambiguous": True}
