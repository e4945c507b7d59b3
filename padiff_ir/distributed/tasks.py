"""One compare task: a window of (modules, step) of two stores, digests first.

A task reads the records of its step from every rank of both runs, joins them into logical
tensors (:class:`~padiff_ir.distributed.canonical.Run`), compares the digests of each paired
tensor and reads the full tensors only where the digests disagree (and both runs kept them). A
failing tensor is traced to the ranks whose own block fails. Tasks are plain picklable data
in and out, so a local process pool and Ray run the same function. Parameter gradients are
compared between runs of one framework only (torch and paddle lay some weights out
differently, ``[out, in]`` vs ``[in, out]``, and the matcher's parameter transforms are not
applied here); activation gradients are compared across frameworks too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir.distributed.canonical import Logical, Run, Shard
from padiff_ir.distributed.digest import disagree
from padiff_ir.distributed.store import Key
from padiff_ir.frameworks.placement import PlacementKind
from padiff_ir.metrics import Tolerance, compare_arrays

__all__ = ["Outcome", "WindowTask", "run_window"]


@dataclass(frozen=True)
class WindowTask:
    """Compare the tensors of the module pairs ``pairs`` (paths of A, B) at ``step``."""

    root_a: str
    root_b: str
    step: int
    pairs: tuple[tuple[str, str], ...]
    atol: float = 1e-5
    rtol: float = 1e-5


@dataclass(frozen=True)
class Outcome:
    """The comparison of one logical tensor of A with its partner in B.

    ``by`` says what decided: ``digest`` (the digests agree, or disagree and no full tensors
    were kept) or ``tensor``; ``ranks_a``/``ranks_b`` are the ranks whose own block fails
    (all ranks holding the tensor when no block can be told apart).
    """

    key: Key
    path_b: str
    order: int
    ok: bool
    by: str
    reason: str = ""
    max_abs: float | None = None
    placement_a: str = ""
    placement_b: str = ""
    ranks_a: tuple[int, ...] = ()
    ranks_b: tuple[int, ...] = ()
    split_a: tuple[int, ...] = ()
    split_b: tuple[int, ...] = ()
    bytes_read: int = 0


def _region(logical: Logical, shard: Shard) -> tuple[slice, ...]:
    """Where ``shard`` of ``logical`` lies in the logical tensor."""
    local = shard.record.local_shape
    region = [slice(None)] * len(local)
    if len({s.dp_rank for s in logical.shards}) > 1:
        region[0] = slice(shard.dp_rank * local[0], (shard.dp_rank + 1) * local[0])
    place = logical.placement
    if place.kind is PlacementKind.SHARD and place.axis is not None:
        axis = place.axis % len(local)
        if len({s.tp_rank for s in logical.shards}) > 1:
            start = shard.tp_rank * local[axis]
            region[axis] = slice(start, start + local[axis])
    return tuple(region)


def _departs(block: np.ndarray, expected: np.ndarray, tolerance: Tolerance) -> bool:
    """Whether any element of ``block`` lies outside the tolerance around ``expected`` (NaN
    departs)."""
    if block.shape != expected.shape:
        return True
    return not bool(np.all(np.abs(block - expected) <= tolerance.bound(expected)))


def _failing_ranks(
    logical: Logical, outside: np.ndarray | None, run: Run, other: np.ndarray, tolerance: Tolerance
) -> tuple[int, ...]:
    """The ranks of ``logical`` whose own block departs (``outside``: where the logical tensors
    depart, elementwise); every rank holding it when that cannot be told. A replica that
    departs from its group's first is compared by itself."""
    if outside is None or not logical.complete or logical.placement.kind is PlacementKind.PARTIAL:
        return logical.ranks
    failing = set()
    split = set(logical.split_replicas)
    for shard in logical.replicas or logical.shards:
        region = _region(logical, shard)
        if shard.rank in split:
            if shard.record.file is None or _departs(
                run.shard_tensor(shard), other[region], tolerance
            ):
                failing.add(shard.rank)
        elif outside[region].any():
            failing.add(shard.rank)
    return tuple(sorted(failing)) or logical.ranks


def _digest_ranks(
    run: Run, logical: Logical, other: Logical, tolerance: Tolerance
) -> tuple[int, ...]:
    """The replicas of ``logical`` whose own digest departs from ``other``'s (one replica group:
    a replica is the whole tensor); every rank holding it otherwise."""
    if run.world == 1:
        return ()
    groups = {s.dp_rank for s in logical.replicas}
    if len(groups) != 1:
        return logical.ranks
    found = [s.rank for s in logical.replicas if disagree(s.record.digest, other.digest, tolerance)]
    return tuple(sorted(found)) or logical.ranks


def _compare(
    run_a: Run, a: Logical, run_b: Run, b: Logical, path_b: str, tolerance: Tolerance
) -> Outcome:
    reason = disagree(a.digest, b.digest, tolerance)
    common: dict[str, Any] = {
        "key": a.key,
        "path_b": path_b,
        "order": a.order,
        "placement_a": str(a.placement),
        "placement_b": str(b.placement),
        "split_a": a.split_replicas,
        "split_b": b.split_replicas,
    }
    if not reason:
        return Outcome(ok=True, by="digest", **common)
    tensor_a, tensor_b = run_a.tensor(a), run_b.tensor(b)
    if tensor_a is None or tensor_b is None:
        return Outcome(
            ok=False,
            by="digest",
            reason=reason,
            ranks_a=_digest_ranks(run_a, a, b, tolerance),
            ranks_b=_digest_ranks(run_b, b, a, tolerance),
            **common,
        )
    read = int(tensor_a.nbytes + tensor_b.nbytes)
    if tensor_a.shape != tensor_b.shape:
        ranks_a = a.ranks if run_a.world > 1 else ()
        ranks_b = b.ranks if run_b.world > 1 else ()
        return Outcome(
            ok=False,
            by="tensor",
            reason=reason,
            ranks_a=ranks_a,
            ranks_b=ranks_b,
            bytes_read=read,
            **common,
        )
    metrics = compare_arrays(tensor_a, tensor_b, tolerance)
    if metrics.ok:
        return Outcome(ok=True, by="tensor", max_abs=metrics.max_abs, bytes_read=read, **common)
    outside = ~(np.abs(tensor_a - tensor_b) <= tolerance.bound(tensor_b))
    return Outcome(
        ok=False,
        by="tensor",
        reason=metrics.reason or reason,
        max_abs=metrics.max_abs,
        ranks_a=_failing_ranks(a, outside, run_a, tensor_b, tolerance) if run_a.world > 1 else (),
        ranks_b=_failing_ranks(b, outside, run_b, tensor_a, tolerance) if run_b.world > 1 else (),
        bytes_read=read,
        **common,
    )


def run_window(task: WindowTask) -> tuple[Outcome, ...]:
    """Compare one window (the function every engine runs)."""
    tolerance = Tolerance(atol=task.atol, rtol=task.rtol)
    run_a, run_b = Run(task.root_a), Run(task.root_b)
    partner = dict(task.pairs)
    logical_a = run_a.step(task.step, set(partner))
    logical_b = run_b.step(task.step, set(partner.values()))
    outcomes = []
    for key, a in sorted(logical_a.items(), key=lambda item: item[1].order):
        step, path, call, io, index = key
        path_b = partner[path]
        b = logical_b.get((step, path_b, call, io, index))
        if b is None or (io == "param_grad" and run_a.framework != run_b.framework):
            continue
        outcomes.append(_compare(run_a, a, run_b, b, path_b, tolerance))
        run_a.forget()
        run_b.forget()
    return tuple(outcomes)
