"""What one pass of the layer hooks works on: the layer slots, the pass options, the entries
waiting for their metrics and model A's values waiting for model B's.

A *slot* is a matched layer pair with its two module objects; a *pass* runs model A, then model
B, with the hooks of :class:`~padiff_ir.native._hooks.Recorder` on every slot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from padiff_ir.hints import Module, Tensor
from padiff_ir.matching.types import ModulePair
from padiff_ir.metrics import TensorMetrics, same_layout
from padiff_ir.native._workers import Deferred
from padiff_ir.native.diff_result import LayerDiff

__all__ = [
    "ASide",
    "Draft",
    "LayerSlot",
    "PassOptions",
    "Pending",
    "failed_metrics",
    "tensor_shape",
]

logger = logging.getLogger(__name__)


def failed_metrics(
    reason: str, shape_a: tuple[int, ...] = (), shape_b: tuple[int, ...] = ()
) -> TensorMetrics:
    """A failing :class:`TensorMetrics` for a tensor present on one side only."""
    return TensorMetrics(ok=False, reason=reason, shape_a=shape_a, shape_b=shape_b)


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


def tensor_shape(tensor: Tensor) -> tuple[int, ...]:
    """A tensor's shape as a tuple of ints."""
    return tuple(int(d) for d in tensor.shape)


@dataclass(frozen=True)
class LayerSlot:
    """A matched layer pair with its two module objects."""

    index: int
    pair: ModulePair
    module_a: Module
    module_b: Module
    base_a: str = ""  # the framework's layer class each module is (Framework.base_layer)
    base_b: str = ""


@dataclass(frozen=True)
class PassOptions:
    """What one pass compares and feeds.

    Attributes:
        compare_forward: compare layer outputs.
        backward: capture and compare output and input gradients.
        feed_forward: single step: B's layers get A's outputs in place of their own.
        feed_backward: single step: B's layer outputs receive A's gradients.
    """

    compare_forward: bool = True
    backward: bool = False
    feed_forward: bool = False
    feed_backward: bool = False


@dataclass
class Draft:
    """A layer entry whose metrics may still be computing."""

    slot: LayerSlot
    kind: str
    metrics: Deferred
    call: int
    position: int
    order: float

    def resolve(self) -> LayerDiff:
        pair = self.slot.pair
        return LayerDiff(
            pair.site_a,
            pair.site_b,
            pair.class_a,
            pair.class_b,
            self.kind,
            self.metrics.result(),
            self.call,
            self.position,
            self.order,
            self.slot.base_a,
            self.slot.base_b,
        )


@dataclass
class Pending:
    """A's values waiting for B, by key."""

    outputs: dict[tuple[int, int], list[np.ndarray]] = field(default_factory=dict)
    output_grads: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)
    input_grads: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)
    #: single step: A's floating layer inputs, by (slot, call)
    inputs: dict[tuple[int, int], list[np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class ASide:
    """Model A's side of one pass, kept to replay it against another model: the values B's
    hooks took (by key, as in :class:`Pending`) and what they read of A's calls."""

    pending: Pending
    calls: dict[int, int]
    times: dict[tuple[int, int], list[float | None]]
    grad_outputs: set[tuple[int, int, int]]
    grad_inputs: set[tuple[int, int, int]]
    input_counts: dict[tuple[int, int], int]
    flagged_outputs: set[tuple[int, int, int]]
    flagged_inputs: set[tuple[int, int, int]]
