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
from padiff_ir.metrics import TensorMetrics
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
