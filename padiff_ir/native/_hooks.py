"""Hooks on every matched layer pair: capture model A's tensors, compare model B's on the fly.

Each pass runs model A first, then model B. Hooks on A's layers keep numpy copies of what
B's counterparts will be compared with: layer outputs (forward hooks), the gradients reaching
those outputs and the gradients each layer passes to its inputs (tensor hooks registered in the
forward hooks: paddle has no full backward hook on layers, so both sides use tensor hooks).
B's hooks compare as soon as their tensor exists and drop A's copy, so only
:class:`~padiff_ir.metrics.TensorMetrics` outlive the pass.

Input gradients are per layer: a forward pre-hook hands each layer a view of its inputs (an
autograd node of its own), so a tensor used by several layers yields each layer's share, as a
full backward hook would.

In single-step mode B's layers are fed A's values: each B layer's output is replaced by A's
(straight-through when gradients are needed), and each gradient reaching a B layer's output is
replaced by A's, so a layer's forward and backward errors are its own.

:func:`recording` registers the module hooks through :func:`padiff_ir.frameworks.installed`,
which removes them in ``finally``; the tensor hooks go with the tensors the pass releases.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from padiff_ir._paths import layer_pattern
from padiff_ir.frameworks import Framework, flatten_tensors, installed
from padiff_ir.hints import Module, Outputs, Tensor
from padiff_ir.metrics import TensorMetrics, broadcast_alike, common_positions, same_layout
from padiff_ir.native._slots import (
    ASide,
    Draft,
    LayerSlot,
    PassOptions,
    Pending,
    failed_metrics,
    tensor_shape,
)
from padiff_ir.native._tensors import alias_inputs, in_place, rebuild
from padiff_ir.native._workers import Deferred, Workers
from padiff_ir.native.diff_result import LayerDiff

__all__ = ["Recorder", "recording"]

logger = logging.getLogger(__name__)

_LATE = 1e12  # order of entries model A never reached


class Recorder:
    """State of one pass: A's pending tensors, call counters, timeline, results."""

    def __init__(
        self,
        slots: list[LayerSlot],
        ops_a: Framework,
        ops_b: Framework,
        workers: Workers,
        options: PassOptions,
    ) -> None:
        self.slots = slots
        self.ops_a, self.ops_b = ops_a, ops_b
        self.workers = workers
        self.options = options
        self.pending = Pending()
        self.calls_a: dict[int, int] = {}
        self.calls_b: dict[int, int] = {}
        self.times: dict[tuple[int, int], list[float | None]] = {}  # A's (pre, post) per call
        self._clock = itertools.count()
        self.forward: list[Draft] = []
        self.backward: list[Draft] = []
        # one gradient hook per tensor value: (id, version) -> (tensor, keys); held for the pass
        self._grad_targets_a: dict[tuple[int, int], tuple[Any, list[tuple[int, int, int]]]] = {}
        self._grad_targets_b: dict[tuple[int, int], tuple[Any, list[tuple[int, int, int]]]] = {}
        # by (id, in-place version): one copy per tensor value; tensors held for the pass
        self._output_cache_a: dict[tuple[int, int], tuple[Any, np.ndarray]] = {}
        self._metrics_cache: dict[tuple[int, int, int], tuple[Any, Deferred]] = {}
        # which of A's layer outputs / inputs carry a gradient, by (index, call, position)
        self._grad_outputs_a: set[tuple[int, int, int]] = set()
        self._grad_inputs_a: set[tuple[int, int, int]] = set()
        # how many tensors each call of A's layers takes as its own arguments, by (index, call)
        self._input_counts_a: dict[tuple[int, int], int] = {}
        # (layer, call) whose inputs the two models take otherwise: no input gradient compared
        self._inputs_unlike: set[tuple[int, int]] = set()
        # keys already reported as gradient-less on one side (A's late values are dropped)
        self._flagged_outputs: set[tuple[int, int, int]] = set()
        self._flagged_inputs: set[tuple[int, int, int]] = set()
        self._detached_b: dict[int, Any] = {}  # B outputs reported as detached, held by id
        # layers returning more values on one side: (pattern A, pattern B, count A, count B,
        # compared) -> the layers of A (see extra_output_notes)
        self.extra_outputs: dict[tuple[str, str, int, int, int], set[str]] = {}
        # single step: B's layer inputs vs A's (fed values upstream, so a difference comes
        # from the code between layers): (slot, call, metrics)
        self._input_checks: list[tuple[LayerSlot, int, list[Deferred]]] = []
        #: A's values B took, kept for a replay (None: dropped once compared)
        self.kept: Pending | None = None

    # -- replay ------------------------------------------------------------------------------
    def _take(self, kind: str, key: Any) -> Any:
        """A's value waiting under ``key`` in ``pending.<kind>``, handed to B (and kept where
        :attr:`kept` is set)."""
        value = getattr(self.pending, kind).pop(key, None)
        if value is not None and self.kept is not None:
            getattr(self.kept, kind)[key] = value
        return value

    def a_side(self) -> ASide:
        """A's side of the pass just run: the values B took (:attr:`kept`) and what B's hooks
        read of A's calls, to replay them against another model (:meth:`replay`)."""
        return ASide(
            self.kept if self.kept is not None else Pending(),
            dict(self.calls_a),
            {key: list(times) for key, times in self.times.items()},
            set(self._grad_outputs_a),
            set(self._grad_inputs_a),
            dict(self._input_counts_a),
            set(self._flagged_outputs),
            set(self._flagged_inputs),
        )

    def replay(self, side: ASide) -> None:
        """Take ``side`` as model A's pass (A is not run): B's hooks compare with its values."""
        kept = side.pending
        self.pending = Pending(
            dict(kept.outputs), dict(kept.output_grads), dict(kept.input_grads), dict(kept.inputs)
        )
        self.calls_a = dict(side.calls)
        self.times = {key: list(times) for key, times in side.times.items()}
        self._grad_outputs_a = set(side.grad_outputs)
        self._grad_inputs_a = set(side.grad_inputs)
        self._input_counts_a = dict(side.input_counts)
        self._flagged_outputs = set(side.flagged_outputs)
        self._flagged_inputs = set(side.flagged_inputs)

    def extra_output_notes(self) -> list[str]:
        """One note per kind of layer that returns extra values on one side."""
        notes = []
        for (a, b, count_a, count_b, compared), layers in self.extra_outputs.items():
            where = (
                f"{a or '<root>'} ({len(layers)} layers)"
                if len(layers) > 1
                else next(iter(layers)) or "<root>"
            )
            notes.append(
                f"{where} returns {count_a} tensor(s) in model A and {count_b} in model B "
                f"({b or '<root>'}): compared on the {compared} both return (paired in order by "
                "shape); the others (attention weights, caches...) are left out"
            )
        return notes

    # -- comparisons -------------------------------------------------------------------------
    def _compare(self, array_a: np.ndarray, tensor_b: Tensor) -> Deferred:
        return self.workers.compare(*broadcast_alike(array_a, self.ops_b.to_numpy(tensor_b)))

    def _entry(
        self,
        slot: LayerSlot,
        kind: str,
        metrics: TensorMetrics | Deferred,
        call: int,
        position: int,
        order: float,
    ) -> Draft:
        deferred = metrics if isinstance(metrics, Deferred) else Deferred(metrics)
        return Draft(slot, kind, deferred, call, position, order)

    def _order(self, index: int, call: int, kind: str) -> float:
        times = self.times.get((index, call))
        if times is None:
            return _LATE
        pre, post = times
        if pre is None or post is None:
            return _LATE
        if kind == "output":
            return post
        return -post if kind == "output_grad" else -pre

    # -- model A -----------------------------------------------------------------------------
    def hooks_a(self, slot: LayerSlot) -> tuple[Callable[..., Any], Callable[..., Any]]:
        ops, index = self.ops_a, slot.index

        def pre(module: Module, args: tuple[object, ...], kwargs: Mapping[str, object]) -> Any:
            call = self.calls_a.get(index, 0)
            self.calls_a[index] = call + 1
            self.times[(index, call)] = [float(next(self._clock)), None]
            if self.options.feed_forward and self.options.compare_forward:
                self.pending.inputs[(index, call)] = [
                    ops.to_numpy(t) for t in _float_tensors(ops, args, kwargs)
                ]
            if not self.options.backward:
                return None
            self._input_counts_a[(index, call)] = _tensor_count(ops, args, kwargs)

            def store(key: tuple[int, int, int]) -> Callable[[Any], None]:
                self._grad_inputs_a.add(key)

                def hook(grad: Tensor) -> None:
                    if key not in self._flagged_inputs:
                        self.pending.input_grads[key] = ops.to_numpy(grad)

                return hook

            if in_place(slot):
                return None  # a view would take the in-place write away from the caller's tensor
            return alias_inputs(ops, args, kwargs, index, call, store)

        def post(module: Module, args: tuple[object, ...], output: Outputs) -> None:
            call = self.calls_a[index] - 1
            self.times[(index, call)][1] = float(next(self._clock))
            tensors = flatten_tensors(output, ops)
            if self.options.compare_forward or self.options.feed_forward:
                arrays = []
                for tensor in tensors:
                    key = (id(tensor), ops.version(tensor))
                    cached = self._output_cache_a.get(key)
                    if cached is None:
                        cached = (tensor, ops.to_numpy(tensor))
                        self._output_cache_a[key] = cached
                    arrays.append(cached[1])
                self.pending.outputs[(index, call)] = arrays
            if self.options.backward:
                for position, tensor in enumerate(tensors):
                    if ops.is_floating(tensor) and ops.requires_grad(tensor):
                        self._grad_outputs_a.add((index, call, position))
                        self._grad_target(
                            self._grad_targets_a,
                            ops,
                            tensor,
                            (index, call, position),
                            self._store_output_grad,
                        )

        return pre, post

    def _store_output_grad(self, keys: list[tuple[int, int, int]], grad: Tensor) -> None:
        wanted = [key for key in keys if key not in self._flagged_outputs]
        if wanted:
            array = self.ops_a.to_numpy(grad)
            for key in wanted:
                self.pending.output_grads[key] = array

    def _grad_target(
        self,
        targets: dict[tuple[int, int], Any],
        ops: Framework,
        tensor: Tensor,
        key: tuple[int, int, int],
        action: Callable[..., object],
    ) -> None:
        """One hook per tensor value: a tensor modified in place gets a hook of its own."""
        identity = (id(tensor), ops.version(tensor))
        entry = targets.get(identity)
        if entry is not None and entry[0] is tensor:
            entry[1].append(key)
            return
        keys = [key]
        targets[identity] = (tensor, keys)
        ops.register_grad_hook(tensor, lambda grad: action(keys, grad))

    # -- model B -----------------------------------------------------------------------------
    def hooks_b(self, slot: LayerSlot) -> tuple[Callable[..., Any], Callable[..., Any]]:
        ops, index = self.ops_b, slot.index

        def pre(module: Module, args: tuple[object, ...], kwargs: Mapping[str, object]) -> Any:
            call = self.calls_b.get(index, 0)
            self.calls_b[index] = call + 1
            arrays = self._take("inputs", (index, call))
            tensors = _float_tensors(ops, args, kwargs) if arrays is not None else []
            if arrays and len(arrays) == len(tensors):
                checks = [self._compare(a, t) for a, t in zip(arrays, tensors)]
                self._input_checks.append((slot, call, checks))
            if not self.options.backward:
                return None
            count_a = self._input_counts_a.get((index, call))
            if in_place(slot) or count_a not in (None, _tensor_count(ops, args, kwargs)):
                # A's layer takes its inputs otherwise (torchvision's dense layer a list of
                # earlier features, paddle's layer paired with it one tensor): their
                # gradients do not correspond
                if not in_place(slot):
                    self._inputs_unlike.add((index, call))
                return None
            self._gradless_inputs(slot, call, args, kwargs)
            return alias_inputs(ops, args, kwargs, index, call, self._input_grad_check(slot))

        def post(module: Module, args: tuple[object, ...], output: Outputs) -> Any:
            call = self.calls_b[index] - 1
            tensors = flatten_tensors(output, ops)
            arrays = self._take("outputs", (index, call))
            positions: list[int | None] = (
                common_positions(
                    [a.shape for a in arrays],
                    [tensor_shape(t) for t in tensors],
                    [a.dtype.kind in "biu" for a in arrays],
                    [not ops.is_floating(t) for t in tensors],
                )
                if arrays is not None
                else list(range(len(tensors)))
            )
            if self.options.compare_forward:
                self._compare_outputs(slot, call, arrays, tensors, positions)
            for extra in set(range(len(arrays or ()))) - set(positions):
                self._flagged_outputs.add((index, call, extra))  # A's extra value: left out
            fed = (
                self.options.feed_forward
                and arrays is not None
                and None not in positions
                and not in_place(slot)
            )
            replaced = list(tensors)
            for position, tensor in enumerate(tensors):
                partner = positions[position]
                key = (
                    index,
                    call,
                    partner if partner is not None else len(arrays or ()) + position,
                )
                carries = ops.is_floating(tensor) and ops.requires_grad(tensor)
                if fed and arrays is not None and partner is not None:
                    replaced[position] = self._fed(tensor, arrays[partner], key, carries)
                if not self.options.backward:
                    continue
                if partner is None and arrays is not None:
                    continue  # a value A does not return (attention weights): left out, as noted
                if carries and key in self._grad_outputs_a:
                    if not fed:  # a fed tensor's gradient is checked by its feed op
                        self._grad_target(
                            self._grad_targets_b, ops, tensor, key, self._check_output_grad
                        )
                elif carries or key in self._grad_outputs_a:
                    self._gradless_output(slot, key, tensor, missing_in_b=not carries)
            if not fed:
                return None
            return rebuild(output, iter(replaced), ops)

        return pre, post

    def _input_grad_check(
        self, slot: LayerSlot
    ) -> Callable[[tuple[int, int, int]], Callable[[Any], None]]:
        """For an input of ``slot`` in B (by key), the hook comparing the gradient reaching it
        with A's."""

        def check(key: tuple[int, int, int]) -> Callable[[Any], None]:
            def hook(grad: Tensor) -> None:
                array_a = self._take("input_grads", key)
                order = self._order(slot.index, key[1], "input_grad")
                metrics: TensorMetrics | Deferred
                if array_a is None:
                    metrics = failed_metrics(
                        "model A passes no gradient to this input (detached or "
                        "stop_gradient in model A)",
                        shape_b=tensor_shape(grad),
                    )
                else:
                    metrics = self._compare(array_a, grad)
                self.backward.append(
                    self._entry(slot, "input_grad", metrics, key[1], key[2], order)
                )

            return hook

        return check

    def _gradless_output(
        self, slot: LayerSlot, key: tuple[int, int, int], tensor: Tensor, *, missing_in_b: bool
    ) -> None:
        """Report now a layer output that carries a gradient on one side only."""
        side, other = ("B", "A") if missing_in_b else ("A", "B")
        metrics = failed_metrics(
            f"model {side}'s output of this layer carries no gradient while model {other}'s "
            f"does: a detach or stop_gradient in model {side} (in this layer, or a frozen "
            "path into it)",
            shape_b=tensor_shape(tensor),
        )
        self._flagged_outputs.add(key)
        if missing_in_b:
            self._detached_b[id(tensor)] = tensor
        self.backward.append(
            self._entry(
                slot,
                "output_grad",
                metrics,
                key[1],
                key[2],
                self._order(key[0], key[1], "output_grad"),
            )
        )

    def _gradless_inputs(
        self,
        slot: LayerSlot,
        call: int,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
    ) -> None:
        """Report inputs that carry a gradient in A and none in B (not already reported)."""
        ops = self.ops_b
        tensors = [v for v in (*args, *kwargs.values()) if ops.is_tensor(v)]
        for position, tensor in enumerate(tensors):
            key = (slot.index, call, position)
            if key not in self._grad_inputs_a or (
                ops.is_floating(tensor) and ops.requires_grad(tensor)
            ):
                continue
            self._flagged_inputs.add(key)
            if id(tensor) in self._detached_b:
                continue  # its producer was reported
            metrics = failed_metrics(
                "model B's input to this layer carries no gradient while model A's does: a "
                "detach or stop_gradient in model B before this layer",
                shape_b=tensor_shape(tensor),
            )
            self.backward.append(
                self._entry(
                    slot,
                    "input_grad",
                    metrics,
                    call,
                    position,
                    self._order(slot.index, call, "input_grad"),
                )
            )

    def _fed(
        self, tensor: Tensor, array: np.ndarray | None, key: tuple[int, int, int], carries: bool
    ) -> Any:
        """Single step: A's value in place of B's output; with gradients, a feed op whose
        backward checks B's incoming gradient against A's and passes A's on. A's value takes
        B's shape where the two hold the same elements in the same order (InceptionV3's
        Dropout: ``[1, 2048, 1, 1]`` in torch, ``[1, 2048]`` after paddle's reshape)."""
        if array is None or not self.ops_b.is_floating(tensor):
            return tensor
        value = self.ops_b.from_numpy(_in_shape_of(array, tensor_shape(tensor)), like=tensor)
        if self.options.backward and carries and key in self._grad_outputs_a:
            return self.ops_b.feed(tensor, value, lambda grad: self._check_output_grad([key], grad))
        return value

    def _compare_outputs(
        self,
        slot: LayerSlot,
        call: int,
        arrays: list[np.ndarray] | None,
        tensors: list[Tensor],
        positions: list[int | None],
    ) -> None:
        order = self._order(slot.index, call, "output")
        metrics: TensorMetrics | Deferred
        if arrays is None:
            calls = self.calls_a.get(slot.index, 0)
            metrics = failed_metrics(f"model A called this layer {calls} time(s), model B more")
            self.forward.append(self._entry(slot, "output", metrics, call, 0, order))
            return
        compared = [(i, t) for i, t in zip(positions, tensors) if i is not None]
        if len(arrays) != len(tensors):
            if not compared:
                metrics = failed_metrics(
                    f"model A's layer returns {len(arrays)} tensor(s), model B's {len(tensors)}"
                )
                self.forward.append(self._entry(slot, "output", metrics, call, 0, order))
                return
            key = (
                layer_pattern(slot.pair.a),
                layer_pattern(slot.pair.b),
                len(arrays),
                len(tensors),
                len(compared),
            )
            self.extra_outputs.setdefault(key, set()).add(slot.pair.a)
        for position, tensor in compared:
            array = arrays[position]
            cache_key = (id(array), id(tensor), self.ops_b.version(tensor))
            cached = self._metrics_cache.get(cache_key)
            if cached is not None and cached[0] is tensor:
                metrics = cached[1]
            else:
                metrics = self._compare(array, tensor)
                self._metrics_cache[cache_key] = (tensor, metrics)
            self.forward.append(self._entry(slot, "output", metrics, call, position, order))

    def _check_output_grad(self, keys: list[tuple[int, int, int]], grad: Tensor) -> Any:
        replacement = None
        metrics_by_array: dict[int, Deferred] = {}
        for key in keys:
            index, call, position = key
            slot = self.slots[index]
            array_a = self._take("output_grads", key)
            order = self._order(index, call, "output_grad")
            metrics: TensorMetrics | Deferred | None
            if array_a is None:
                metrics = failed_metrics(
                    "no gradient reaches model A's layer output (detached or stop_gradient in "
                    "model A, or unused by A's loss)",
                    shape_b=tensor_shape(grad),
                )
            else:
                metrics = metrics_by_array.get(id(array_a))
                if metrics is None:
                    metrics = self._compare(array_a, grad)
                    metrics_by_array[id(array_a)] = metrics
                if self.options.feed_backward and replacement is None:
                    replacement = self.ops_b.from_numpy(array_a, like=grad)
            self.backward.append(self._entry(slot, "output_grad", metrics, call, position, order))
        return replacement

    # -- after the pass ----------------------------------------------------------------------
    def inputs_differ(self) -> list[str]:
        """Single step: the layers (A's call site) whose inputs in B differed from A's although
        every layer before them was fed A's outputs: code between layers differs there."""
        found = []
        for slot, call, checks in self._input_checks:
            if not all(c.result().ok for c in checks):
                site = slot.pair.site_a
                found.append(f"{site}#{call + 1}" if call else site)
        self._input_checks.clear()
        return list(dict.fromkeys(found))

    def finish_forward(self) -> list[LayerDiff]:
        """Forward entries in completion order, with layers model B never called."""
        for (index, call), _arrays in sorted(self.pending.outputs.items()):
            slot = self.slots[index]
            calls_b = self.calls_b.get(index, 0)
            reason = (
                f"model B called this layer {calls_b} time(s), model A {self.calls_a.get(index, 0)}"
            )
            if self.options.compare_forward:
                self.forward.append(
                    self._entry(
                        slot,
                        "output",
                        failed_metrics(reason),
                        call,
                        0,
                        self._order(index, call, "output"),
                    )
                )
        self.pending.outputs.clear()
        self._output_cache_a.clear()
        self._metrics_cache.clear()
        return [d.resolve() for d in sorted(self.forward, key=lambda d: d.order)]

    def finish_backward(self) -> list[LayerDiff]:
        """Backward entries in backward order, with gradients model B never produced."""
        for (index, call, position), array in sorted(self.pending.output_grads.items()):
            if (index, call, position) in self._flagged_outputs:
                continue
            metrics = failed_metrics(
                "no gradient reaches model B's layer output (detached or stop_gradient in model "
                "B, or unused by B's loss)",
                shape_a=tuple(array.shape),
            )
            self.backward.append(
                self._entry(
                    self.slots[index],
                    "output_grad",
                    metrics,
                    call,
                    position,
                    self._order(index, call, "output_grad"),
                )
            )
        for (index, call, position), array in sorted(self.pending.input_grads.items()):
            if (index, call, position) in self._flagged_inputs or (
                index,
                call,
            ) in self._inputs_unlike:
                continue
            metrics = failed_metrics(
                "model B passes no gradient to this input (detached or stop_gradient in model B)",
                shape_a=tuple(array.shape),
            )
            self.backward.append(
                self._entry(
                    self.slots[index],
                    "input_grad",
                    metrics,
                    call,
                    position,
                    self._order(index, call, "input_grad"),
                )
            )
        self.pending.output_grads.clear()
        self.pending.input_grads.clear()
        self._grad_targets_a.clear()
        self._grad_targets_b.clear()
        self._detached_b.clear()
        drafts = sorted(self.backward, key=lambda d: (d.order, d.kind != "output_grad"))
        return [d.resolve() for d in drafts]

    def release(self) -> None:
        """Drop every tensor and array the pass still holds."""
        self.pending = Pending()
        self._detached_b.clear()
        self._grad_targets_a.clear()
        self._grad_targets_b.clear()
        self._output_cache_a.clear()
        self._metrics_cache.clear()


_Hooks = tuple[Callable[..., Any], Callable[..., Any]]


def _tensor_count(ops: Framework, args: tuple[object, ...], kwargs: Mapping[str, object]) -> int:
    """How many of a call's own arguments are tensors (not those inside lists)."""
    return sum(1 for v in (*args, *kwargs.values()) if ops.is_tensor(v))


def _float_tensors(
    ops: Framework, args: tuple[object, ...], kwargs: Mapping[str, object]
) -> list[Any]:
    return [v for v in (*args, *(kwargs or {}).values()) if ops.is_tensor(v) and ops.is_floating(v)]


def _by_call(module: Module, entries: list[tuple[int | None, _Hooks]]) -> tuple[Any, Any, Any]:
    """One pre- and post-hook on ``module`` handing each call to the slot of that call.

    A layer called several times may pair call by call (``pool#2`` with ``pool2``): each of
    its slots sees only its call (``None``: every call not taken by another slot), which is
    that slot's call 0.
    """
    count = itertools.count()
    active: list[_Hooks | None] = []

    def pre(layer: Module, args: tuple[object, ...], kwargs: Mapping[str, object]) -> Any:
        call = next(count)
        hooks = next((h for c, h in entries if c == call), None)
        if hooks is None:
            hooks = next((h for c, h in entries if c is None), None)
        active.append(hooks)
        return hooks[0](layer, args, kwargs) if hooks is not None else None

    def post(layer: Module, args: tuple[object, ...], output: Outputs) -> Any:
        hooks = active.pop() if active else None
        return hooks[1](layer, args, output) if hooks is not None else None

    return module, pre, post


def _hooks(slots: list[LayerSlot], side: str, make: Callable[[LayerSlot], _Hooks]) -> list[Any]:
    """``(module, pre, post)`` per module of one side; a module shared by several slots (one
    per call) gets one pair of hooks that dispatches by call."""
    grouped: dict[int, tuple[Any, list[tuple[int | None, _Hooks]]]] = {}
    for slot in slots:
        module = slot.module_a if side == "a" else slot.module_b
        call = slot.pair.call_a if side == "a" else slot.pair.call_b
        grouped.setdefault(id(module), (module, []))[1].append((call, make(slot)))
    found = []
    for module, entries in grouped.values():
        if len(entries) == 1 and entries[0][0] is None:
            found.append((module, *entries[0][1]))
        else:
            found.append(_by_call(module, entries))
    return found


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """The recorder's hooks on every slot's two modules for the block (installed through
    :func:`padiff_ir.frameworks.installed`, which removes them in ``finally``); on exit, also
    when the block raises, the recorder drops every tensor it still holds."""
    slots = recorder.slots
    try:
        with (
            installed(recorder.ops_a, _hooks(slots, "a", recorder.hooks_a)),
            installed(recorder.ops_b, _hooks(slots, "b", recorder.hooks_b)),
        ):
            yield recorder
    finally:
        recorder.release()


def _in_shape_of(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A's value in the shape of B's output it replaces: the same elements in B's shape (a
    single-head axis on one side only: ``[2, 1, 8, 128]`` for ``[2, 8, 128]``), or broadcast to
    it (RoPE's cos/sin of batch 1 for one per sample); as it is otherwise (a pooling of another
    size: B's next layers see A's value)."""
    if array.shape == shape:
        return array
    if array.size == int(np.prod(shape)):
        return array.reshape(shape) if same_layout(array.shape, shape) else array
    if len(array.shape) == len(shape) and all(a in (1, b) for a, b in zip(array.shape, shape)):
        return np.ascontiguousarray(np.broadcast_to(array, shape))
    return array
