"""Canonical tensors: the shards of every rank mapped to the logical tensor of the model.

Within a data-parallel replica the tensor-parallel ranks hold a tensor as shards (joined on
the split axis, by tensor-parallel rank), replicas (one stands for all; ranks that disagree
with it are remembered) or partial sums (added). The replicas then hold slices of the batch,
joined on axis 0, except a parameter's gradient (``param_grad``), which every replica holds
whole after the data-parallel all-reduce: the first replica stands for all and replicas whose
digest departs from it are remembered. A pipeline stage records its modules under their
global paths, so the union of the stages' records is the model's. The digests are joined the
same way (:func:`~padiff_ir.distributed.digest.combine`): each rank digested its block with
the indices the block has in the logical tensor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from padiff_ir.distributed.digest import Digest, combine, disagree
from padiff_ir.distributed.store import (
    Key,
    RankMeta,
    Record,
    load_tensor,
    rank_dirs,
    read_meta,
    read_step,
    steps_of,
)
from padiff_ir.frameworks.placement import Placement, PlacementKind
from padiff_ir.metrics import Tolerance

__all__ = ["Logical", "Run", "Shard"]

_EXACT = Tolerance(atol=0.0, rtol=0.0)


@dataclass(frozen=True)
class Shard:
    """One rank's record of a logical tensor."""

    rank: int
    tp_rank: int
    dp_rank: int
    record: Record


@dataclass(frozen=True)
class Logical:
    """A logical tensor of a run: its digest, placement and the shards that make it."""

    key: Key
    order: int
    digest: Digest
    placement: Placement
    shards: tuple[Shard, ...]
    #: replicas whose digest is not their group's first replica's
    split_replicas: tuple[int, ...] = ()
    #: every rank's record of a replicated tensor (``shards`` holds one per replica group)
    replicas: tuple[Shard, ...] = ()

    @property
    def ranks(self) -> tuple[int, ...]:
        """Every rank holding the tensor."""
        return tuple(sorted({s.rank for s in (*self.shards, *self.replicas)}))

    @property
    def complete(self) -> bool:
        """Every shard kept its full tensor."""
        return all(s.record.file is not None for s in self.shards)


class Run:
    """A store written by :func:`~padiff_ir.distributed.capture_ranks` on every rank."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dirs = {read_meta(d).rank: d for d in rank_dirs(self.root)}
        self.metas: dict[int, RankMeta] = {r: read_meta(d) for r, d in self.dirs.items()}
        first = next(iter(self.metas.values()))
        self.framework = first.framework
        self.world = first.world
        self.classes = {p: c for m in self.metas.values() for p, c in m.classes.items()}
        self.styles = {p: s for m in self.metas.values() for p, s in m.styles.items()}
        self._arrays: dict[tuple[int, str | None], np.ndarray] = {}

    def steps(self) -> list[int]:
        return sorted({s for d in self.dirs.values() for s in steps_of(d)})

    def step(self, step: int, paths: set[str] | None = None) -> dict[Key, Logical]:
        """The logical tensors of one step (of the modules in ``paths``; all by default)."""
        shards: dict[Key, list[Shard]] = defaultdict(list)
        for rank, directory in self.dirs.items():
            meta = self.metas[rank]
            for record in read_step(directory, step):
                if paths is None or record.key[1] in paths:
                    shards[record.key].append(Shard(rank, meta.tp_rank, meta.dp_rank, record))
        return {key: _logical(key, parts) for key, parts in shards.items()}

    def tensor(self, logical: Logical) -> np.ndarray | None:
        """The logical tensor joined from its shards' full tensors (``None`` when a shard
        kept only its digest)."""
        if not logical.complete:
            return None
        groups: dict[int, list[Shard]] = defaultdict(list)
        for shard in logical.shards:
            groups[shard.dp_rank].append(shard)
        slices = []
        for dp_rank in sorted(groups):
            members = sorted(groups[dp_rank], key=lambda s: s.tp_rank)
            arrays = [self.shard_tensor(s) for s in members]
            slices.append(_join(arrays, logical.placement))
        return slices[0] if len(slices) == 1 else np.concatenate(slices, axis=0)

    def shard_tensor(self, shard: Shard) -> np.ndarray:
        """One rank's full block (kept until :meth:`forget`: joining and telling the ranks
        apart read it once)."""
        key = (shard.rank, shard.record.file)
        array = self._arrays.get(key)
        if array is None:
            array = load_tensor(self.dirs[shard.rank], shard.record)
            assert array is not None
            self._arrays[key] = array
        return array

    def forget(self) -> None:
        """Drop the blocks read so far."""
        self._arrays.clear()


def _join(arrays: list[np.ndarray], placement: Placement) -> np.ndarray:
    if placement.kind is PlacementKind.SHARD and placement.axis is not None and len(arrays) > 1:
        return np.concatenate(arrays, axis=placement.axis % arrays[0].ndim)
    if placement.kind is PlacementKind.PARTIAL:
        return np.sum(np.stack(arrays), axis=0)
    return arrays[0]


def _logical(key: Key, parts: list[Shard]) -> Logical:
    groups: dict[int, list[Shard]] = defaultdict(list)
    for shard in parts:
        groups[shard.dp_rank].append(shard)
    placement = parts[0].record.placement
    digests: list[Digest] = []
    used: list[Shard] = []
    split: list[int] = []
    replicas: list[Shard] = []
    for dp_rank in sorted(groups):
        members = sorted(groups[dp_rank], key=lambda s: (s.tp_rank, s.rank))
        if placement.kind is PlacementKind.REPLICATED:
            first = members[0]
            split += [
                s.rank
                for s in members[1:]
                if disagree(s.record.digest, first.record.digest, _EXACT)
            ]
            digests.append(first.record.digest)
            used.append(first)
            replicas += members
            continue
        unique = {s.tp_rank: s for s in members}  # pipeline stages record each tensor once
        digests.append(
            combine(
                (s.record.digest for s in unique.values()),
                partial=placement.kind is PlacementKind.PARTIAL,
            )
        )
        used += unique.values()
    order = min(s.record.order for s in parts)
    if key[3] == "param_grad" and len(groups) > 1:
        return _replicated_grad(key, order, placement, groups, digests, split)
    return Logical(
        key, order, combine(digests), placement, tuple(used), tuple(split), tuple(replicas)
    )


def _replicated_grad(
    key: Key,
    order: int,
    placement: Placement,
    groups: dict[int, list[Shard]],
    digests: list[Digest],
    split: list[int],
) -> Logical:
    """A parameter's gradient on data-parallel replicas: the first replica group stands for
    all; the ranks of groups whose digest departs from it are remembered."""
    first = min(groups)
    for dp_rank, digest in zip(sorted(groups), digests, strict=True):
        if dp_rank != first and disagree(digest, digests[0], _EXACT):
            split += [s.rank for s in groups[dp_rank]]
    shards = tuple(sorted(groups[first], key=lambda s: s.tp_rank))
    if placement.kind is PlacementKind.REPLICATED:
        shards = shards[:1]
    every = tuple(s for dp_rank in sorted(groups) for s in groups[dp_rank])
    return Logical(key, order, digests[0], placement, shards, tuple(sorted(set(split))), every)
