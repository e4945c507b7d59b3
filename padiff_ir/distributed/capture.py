"""Capture on every rank: each module call of this rank, digested, into the run's store.

The user puts :func:`capture_ranks` in their own training script, run by their own launcher
(``torchrun``, ``python -m paddle.distributed.launch``): every rank records the calls of its
own modules through the framework's forward hooks (:func:`padiff_ir.frameworks.installed`) into
``directory/rankNNNNN``. Each tensor gets a digest (always) and, inside the chosen window of
layers and steps, its full value. Placements come from the framework's metadata
(:func:`padiff_ir.frameworks.placement.module_placements`); a module without any takes its
first input's placement when its output has that input's shape (an activation between a
column- and a row-parallel layer), else it is replicated.

Backward is recorded too (unless ``backward=False``): the gradient reaching each module's
output (``output_grad``), the gradient each module passes to its first input (``input_grad``:
the module gets a view of that input, an autograd node of its own, so a tensor read by several
modules yields each module's share) and, at :meth:`RankCapture.next_step`, each parameter's
gradient (``param_grad``, after the user's all-reduce). A gradient lives where its tensor
lives: a column-parallel weight's gradient is sharded like the weight, and a data-parallel
replica's parameter gradient is a replica of the other replicas' (not a batch slice).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from padiff_ir._paths import within_any
from padiff_ir.distributed.digest import Digest, digest_array, projection_weights
from padiff_ir.distributed.store import Key, RankMeta, Record
from padiff_ir.errors import OptionError
from padiff_ir.frameworks import flatten_tensors, framework_of, installed, unwrap_model
from padiff_ir.frameworks.placement import (
    REPLICATED,
    ModulePlacement,
    Placement,
    PlacementKind,
    module_placements,
    process_rank,
)
from padiff_ir.hints import Model, Module, Outputs, Tensor

__all__ = ["RankCapture", "Window", "capture_ranks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """Where full tensors are kept besides the digests: the modules within ``layers`` (paths;
    ``("",)`` for all) at the ``steps`` listed."""

    layers: tuple[str, ...] = ()
    steps: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class _Mesh:
    rank: int
    world: int
    tp_rank: int
    tp_size: int
    dp_rank: int
    dp_size: int


def _mesh(rank: int, world: int, tp_size: int | None, dp_size: int) -> _Mesh:
    if dp_size < 1 or world % dp_size:
        raise OptionError(
            f"data_parallel={dp_size} does not divide the world size {world}: pass the number "
            "of data-parallel replicas",
            option="data_parallel",
        )
    tp = world // dp_size if tp_size is None else tp_size
    if tp < 1 or world % (tp * dp_size):
        raise OptionError(
            f"tensor_parallel={tp} x data_parallel={dp_size} does not divide the world size "
            f"{world}: pass the size of each tensor-parallel group",
            option="tensor_parallel",
        )
    return _Mesh(rank, world, rank % tp, tp, (rank // tp) % dp_size, dp_size)


class RankCapture:
    """The capture of one rank (made by :func:`capture_ranks`; use it as a context manager and
    call :meth:`next_step` after each training step)."""

    def __init__(
        self,
        model: Model,
        directory: str | Path,
        *,
        window: Window,
        tensor_parallel: int | None,
        data_parallel: int,
        layer_offset: tuple[str, int] | None,
        backward: bool = True,
    ) -> None:
        self.model = unwrap_model(model)
        self.fw = framework_of(self.model)
        rank, world = process_rank(self.fw)
        self.mesh = _mesh(rank, world, tensor_parallel, data_parallel)
        self.window = window
        self.backward = backward
        self.layer_offset = layer_offset
        self.dir = Path(directory) / f"rank{rank:05d}"
        self.step = 0
        self._records: list[Record] = []
        self._seen: dict[int, tuple[Any, Placement]] = {}
        self._calls: dict[str, int] = {}
        self._stack: dict[int, list[int]] = {}
        self._order = 0
        self._weights: dict[tuple[Any, ...], np.ndarray] = {}
        # digests of this step by tensor and placement (a module's input is often the output
        # of the one before, digested once); the tensors stay alive in ``_seen``
        self._digests: dict[tuple[int, Placement], Digest] = {}
        self._hooks: Any = None
        # the views handed to modules as their first input, by id: (view, original)
        self._aliases: dict[int, tuple[Any, Any]] = {}
        # the gradient records waiting on each tensor (a parent's output is often its last
        # child's: one hook digests the gradient once for both)
        self._grad_keys: dict[int, list[tuple[Key, int, Placement]]] = {}
        named = self.fw.named_modules(self.model)
        self.placements: dict[str, ModulePlacement] = module_placements(self.fw, self.model)
        self.local_paths = {id(module): path for path, module in named}
        self.paths = {id(module): self._rename(path) for path, module in named}
        self.modules = [module for _, module in named]
        self.classes = {self._rename(path): type(module).__name__ for path, module in named}

    def _rename(self, path: str) -> str:
        """A pipeline stage's local layer index made global (``layers.0`` of the second stage
        is ``layers.2``)."""
        if self.layer_offset is None:
            return path
        prefix, offset = self.layer_offset
        head = prefix + "."
        if not path.startswith(head):
            return path
        index, _, rest = path[len(head) :].partition(".")
        if not index.isdigit():
            return path
        return f"{head}{int(index) + offset}" + (f".{rest}" if rest else "")

    def __enter__(self) -> RankCapture:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "tensors").mkdir(parents=True)
        hooks = [(m, self._pre, self._post) for m in self.modules]
        self._hooks = installed(self.fw, hooks)
        self._hooks.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._hooks.__exit__(kind, error, trace)
        if self._records:
            self._flush()
        self._write_meta()

    def next_step(self) -> None:
        """End the current training step: record the parameters' gradients (call it before
        they are cleared), write the step's records, count the next one."""
        if self.backward:
            self._param_grads()
        self._flush()
        self.step += 1

    def _flush(self) -> None:
        path = self.dir / f"step{self.step:05d}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            for record in self._records:
                handle.write(record.to_json() + "\n")
        self._records.clear()
        self._seen.clear()
        self._digests.clear()
        self._aliases.clear()
        self._grad_keys.clear()
        self._calls.clear()
        self._order = 0

    def _write_meta(self) -> None:
        m = self.mesh
        placements = self.placements
        meta = RankMeta(
            framework=self.fw.name,
            rank=m.rank,
            world=m.world,
            tp_rank=m.tp_rank,
            tp_size=m.tp_size,
            dp_rank=m.dp_rank,
            dp_size=m.dp_size,
            classes=self.classes,
            styles={self._rename(p): mp.style for p, mp in placements.items()},
            parameters={self._rename(p): dict(mp.parameters) for p, mp in placements.items()},
        )
        (self.dir / "meta.json").write_text(json.dumps(meta.to_dict()), encoding="utf-8")

    def _pre(
        self, module: Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        self._stack.setdefault(id(module), []).append(self._order)
        self._order += 1
        if not self.backward:
            return None
        fw = self.fw
        for index, arg in enumerate(args):
            if fw.is_tensor(arg) and fw.is_floating(arg):
                if not fw.requires_grad(arg):
                    return None
                original = self._aliases.get(id(arg), (arg, arg))[1]
                view = fw.alias(arg)
                self._aliases[id(view)] = (view, original)
                return (*args[:index], view, *args[index + 1 :]), kwargs
        return None

    def _post(self, module: Module, args: tuple[Any, ...], output: Outputs) -> None:
        order = self._stack[id(module)].pop()
        path = self.paths[id(module)]
        if self.layer_offset is not None and not path:
            return  # a stage's root is no logical module
        call = self._calls.get(path, 0)
        self._calls[path] = call + 1
        fw = self.fw
        given = [t for t in flatten_tensors(args, fw) if fw.is_floating(t)][:1]
        inputs = [self._aliases.get(id(t), (t, t))[1] for t in given]
        known = self.placements.get(self.local_paths[id(module)])
        seen = self._seen.get(id(inputs[0])) if inputs else None
        in_place = known.input if known else (seen[1] if seen else REPLICATED)
        for index, tensor in enumerate(inputs):
            self._record((self.step, path, call, "in", index), order, tensor, in_place)
        outputs = [t for t in flatten_tensors(output, fw) if fw.is_floating(t)]
        for index, tensor in enumerate(outputs):
            place = known.output if known else self._follow(inputs, tensor, in_place)
            self._seen[id(tensor)] = (tensor, place)
            self._record((self.step, path, call, "out", index), order, tensor, place)
            self._on_grad(tensor, (self.step, path, call, "output_grad", index), order, place)
        for tensor in given:
            if id(tensor) in self._aliases:
                self._on_grad(tensor, (self.step, path, call, "input_grad", 0), order, in_place)

    def _on_grad(self, tensor: Tensor, key: Key, order: int, place: Placement) -> None:
        """Record ``tensor``'s gradient when backward computes it (a partial sum's gradient
        is the same on every rank)."""
        if not self.backward or not self.fw.requires_grad(tensor):
            return
        if place.kind is PlacementKind.PARTIAL:
            place = REPLICATED
        waiting = self._grad_keys.get(id(tensor))
        if waiting is not None:
            waiting.append((key, order, place))
            return
        waiting = self._grad_keys[id(tensor)] = [(key, order, place)]

        def hook(grad: Tensor) -> None:
            if key[0] != self.step:
                return  # a backward after next_step belongs to no step
            digests: dict[Placement, Digest | None] = {}
            for each, at, where in waiting:
                digests[where] = self._record(each, at, grad, where, digest=digests.get(where))

        self.fw.register_grad_hook(tensor, hook)

    def _param_grads(self) -> None:
        """Each parameter's gradient as it stands now (after the user's all-reduce), under
        its module's first call of the step."""
        for module in self.modules:
            local = self.local_paths[id(module)]
            path = self.paths[id(module)]
            known = self.placements.get(local)
            where = dict(known.parameters) if known else {}
            for index, (name, tensor) in enumerate(self.fw.own_tensors(module)):
                grad = self.fw.grad(tensor) if self.fw.requires_grad(tensor) else None
                if grad is None:
                    continue
                place = where.get(name, REPLICATED)
                key = (self.step, path, 0, "param_grad", index)
                self._record(key, self._order, grad, place, cached=False)

    def _follow(self, inputs: list[Tensor], tensor: Tensor, in_place: Placement) -> Placement:
        follows = inputs and in_place.kind is not PlacementKind.REPLICATED
        if follows and self.fw.shape(inputs[0]) == self.fw.shape(tensor):
            return in_place
        return REPLICATED

    def _record(
        self,
        key: Key,
        order: int,
        tensor: Tensor,
        place: Placement,
        *,
        cached: bool = True,
        digest: Digest | None = None,
    ) -> Digest | None:
        """Digest ``tensor`` (unless ``digest`` is given) and keep it in the window; ``cached``:
        a forward tensor, alive for the step (a gradient's id may be reused once freed)."""
        fw = self.fw
        local = tuple(fw.shape(tensor))
        if not local:
            return None  # a scalar (a loss) has no block to place
        array = None
        if digest is None and cached:
            digest = self._digests.get((id(tensor), place))
        if digest is None:
            array = self._array(tensor)
            digest = self._digest(array, local, place, batch=key[3] != "param_grad")
            if cached:
                self._digests[(id(tensor), place)] = digest
                self._seen.setdefault(id(tensor), (tensor, place))
        file = None
        if self.step in self.window.steps and within_any(key[1], self.window.layers):
            file = f"tensors/{key[0]:05d}_{len(self._records)}.npy"
            array = self._array(tensor) if array is None else array
            np.save(self.dir / file, np.ascontiguousarray(array))
        self._records.append(Record(key, order, local, place, digest, file))
        return digest

    def _array(self, tensor: Tensor) -> np.ndarray:
        array = self.fw.view(tensor)
        return self.fw.to_numpy(tensor) if array is None else array

    def _digest(
        self, array: np.ndarray, local: tuple[int, ...], place: Placement, *, batch: bool
    ) -> Digest:
        logical, offsets = self._logical(local, place, batch=batch)
        cache = (local, logical, offsets)
        weights = self._weights.get(cache)
        if weights is None:
            weights = self._weights[cache] = projection_weights(local, logical, offsets)
        digest = digest_array(array, logical, weights)
        return replace(digest, exact=False) if place.kind is PlacementKind.PARTIAL else digest

    def _logical(
        self, local: tuple[int, ...], place: Placement, *, batch: bool = True
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The logical shape of a local block and the block's offsets in it (``batch``: a
        data-parallel replica holds a slice of axis 0; a parameter's gradient it holds whole)."""
        m = self.mesh
        shape, offsets = list(local), [0] * len(local)
        if place.kind is PlacementKind.SHARD and place.axis is not None and m.tp_size > 1:
            axis = place.axis % len(local)
            offsets[axis] = m.tp_rank * local[axis]
            shape[axis] = local[axis] * m.tp_size
        if m.dp_size > 1 and batch:
            offsets[0] += m.dp_rank * local[0]
            shape[0] = local[0] * m.dp_size
        return tuple(shape), tuple(offsets)


def capture_ranks(
    model: Model,
    directory: str | Path,
    *,
    window: Window | None = None,
    tensor_parallel: int | None = None,
    data_parallel: int = 1,
    layer_offset: tuple[str, int] | None = None,
    backward: bool = True,
) -> RankCapture:
    """Record every module call of this rank into ``directory/rankNNNNN`` (call it on every rank).

    Use it as a context manager around the training steps, calling ``next_step()`` after
    each one::

        with padiff_ir.capture_ranks(model, "dumps/sharded", window=Window(("layers.1",))) as cap:
            for batch in batches:
                loss = model(batch).mean(); loss.backward(); optimizer.step()
                cap.next_step()

    Args:
        model: this rank's torch module or paddle layer (its tensor-parallel layers hold
            shards; their placements are read from the framework's metadata).
        directory: the run's store, shared by all ranks (each writes its own subdirectory;
            a rank's earlier capture there is replaced).
        window: modules and steps whose full tensors are kept (digests are kept for all).
        tensor_parallel: ranks per tensor-parallel group (default: the world divided by
            ``data_parallel``); ranks are ordered tensor-parallel first, as Megatron does.
        data_parallel: data-parallel replicas; each holds its slice of the batch (axis 0).
        layer_offset: ``(prefix, first)`` for a pipeline stage whose ``prefix.0`` is the
            model's layer ``first`` (its modules are recorded under their global paths).
        backward: record gradients too: each module call's output and input gradient and,
            at ``next_step()``, each parameter's gradient. A data-parallel replica's
            activation gradients are compared as they are, so each replica backpropagates its
            share of the global loss (its batch mean divided by the replicas) and the
            gradients are summed, as Megatron does (the parameter gradients are the same
            either way).

    Raises:
        OptionError: the parallel sizes do not divide the world size.
        ModelTypeError: ``model`` is no torch module or paddle layer.
    """
    return RankCapture(
        model,
        directory,
        window=window or Window(),
        tensor_parallel=tensor_parallel,
        data_parallel=data_parallel,
        layer_offset=layer_offset,
        backward=backward,
    )
