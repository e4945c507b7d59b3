"""Tensor plumbing of the layer hooks: input views carrying a gradient hook, outputs rebuilt
with replaced tensors, and the layers that write their input in place."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from padiff_ir.frameworks import Framework
from padiff_ir.hints import Outputs, Tensor
from padiff_ir.native._slots import LayerSlot

__all__ = ["alias_inputs", "in_place", "rebuild"]

logger = logging.getLogger(__name__)


def in_place(slot: LayerSlot) -> bool:
    """Whether either layer of the pair writes its input in place (``ReLU(inplace=True)``):
    such layers keep their inputs as they are, and their input gradients are not compared."""
    return any(getattr(m, "inplace", False) is True for m in (slot.module_a, slot.module_b))


def alias_inputs(
    ops: Framework,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    index: int,
    call: int,
    make_hook: Callable[[tuple[int, int, int]], Callable[[Tensor], object]],
) -> Any:
    """Views of the gradient-carrying inputs, each with a hook; ``None`` when there are none."""
    position = itertools.count()
    changed = False

    def alias(value: object) -> Any:
        nonlocal changed
        if ops.is_tensor(value):
            slot = next(position)
            if ops.is_floating(value) and ops.requires_grad(value):
                view = ops.alias(value)
                ops.register_grad_hook(view, make_hook((index, call, slot)))
                changed = True
                return view
        return value

    new_args = tuple(alias(a) for a in args)
    new_kwargs = {k: alias(v) for k, v in kwargs.items()}
    return (new_args, new_kwargs) if changed else None


def rebuild(value: Outputs, tensors: Iterator[Tensor], ops: Framework) -> Any:
    """``value`` with its tensors replaced, in :func:`flatten_tensors` order."""
    if ops.is_tensor(value):
        return next(tensors)
    if isinstance(value, Mapping):
        rebuilt = {k: rebuild(v, tensors, ops) for k, v in value.items()}
        mapping_type: Any = type(value)  # a dict subclass or another Mapping
        try:
            return mapping_type(rebuilt)
        except TypeError:
            return rebuilt
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(rebuild(v, tensors, ops) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(rebuild(v, tensors, ops) for v in value)
    return value
