"""The store of one sharded run: a directory per rank, a file of records per step.

::

    run/
      rank00000/
        meta.json            framework, rank, world, mesh coordinates, modules, placements
        step00000.jsonl      one record per tensor of each module call (digest, placement)
        tensors/00000_17.npy the full tensors of the chosen window

A record is the key of a tensor (step, module path, call of that module in the step, ``in``,
``out``, ``output_grad``, ``input_grad`` or ``param_grad``, index among the module's tensors
of that kind), where the module was entered in the step (``order``),
its local shape, its placement in the tensor-parallel group and its digest (of the logical
tensor's block this rank holds). Readers read one step of every rank at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from padiff_ir.distributed.digest import Digest
from padiff_ir.errors import FileFormatError
from padiff_ir.frameworks.placement import Placement

__all__ = [
    "Key",
    "RankMeta",
    "Record",
    "load_tensor",
    "rank_dirs",
    "read_meta",
    "read_step",
    "steps_of",
]

#: ``(step, module path, call, "in" | "out" | "output_grad" | "input_grad" | "param_grad",
#: index)``
Key = tuple[int, str, int, str, int]


@dataclass(frozen=True)
class RankMeta:
    """What a rank says of itself: framework, global rank and world size, its coordinates in
    the tensor-parallel and data-parallel groups, its modules' classes and placements."""

    framework: str
    rank: int
    world: int
    tp_rank: int
    tp_size: int
    dp_rank: int
    dp_size: int
    classes: dict[str, str]
    styles: dict[str, str]
    parameters: dict[str, dict[str, Placement]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "rank": self.rank,
            "world": self.world,
            "tp": [self.tp_rank, self.tp_size],
            "dp": [self.dp_rank, self.dp_size],
            "classes": self.classes,
            "styles": self.styles,
            "parameters": {
                path: {name: p.to_dict() for name, p in params.items()}
                for path, params in self.parameters.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankMeta:
        return cls(
            framework=data["framework"],
            rank=data["rank"],
            world=data["world"],
            tp_rank=data["tp"][0],
            tp_size=data["tp"][1],
            dp_rank=data["dp"][0],
            dp_size=data["dp"][1],
            classes=data["classes"],
            styles=data["styles"],
            parameters={
                path: {name: Placement.from_dict(p) for name, p in params.items()}
                for path, params in data["parameters"].items()
            },
        )


@dataclass(frozen=True)
class Record:
    """One tensor of one module call on one rank."""

    key: Key
    order: int
    local_shape: tuple[int, ...]
    placement: Placement
    digest: Digest
    file: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "key": list(self.key),
                "order": self.order,
                "local": list(self.local_shape),
                "placement": self.placement.to_dict(),
                "digest": self.digest.to_list(),
                "file": self.file,
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        step, path, call, io, index = data["key"]
        return cls(
            (int(step), str(path), int(call), str(io), int(index)),
            data["order"],
            tuple(data["local"]),
            Placement.from_dict(data["placement"]),
            Digest.from_list(data["digest"]),
            data.get("file"),
        )


def rank_dirs(root: str | Path) -> list[Path]:
    """The rank directories of a run, by rank.

    Raises:
        FileFormatError: ``root`` holds no rank directory (not a store written by
            :func:`~padiff_ir.distributed.capture_ranks`).
    """
    found = sorted(Path(root).glob("rank[0-9]*"))
    if not found:
        raise FileFormatError(
            f"{root}: holds no rank directory; pass the directory given to capture_ranks "
            "(every rank writes rankNNNNN/ under it)",
            path=str(root),
        )
    return found


def read_meta(rank_dir: Path) -> RankMeta:
    path = rank_dir / "meta.json"
    try:
        return RankMeta.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as err:
        raise FileFormatError(
            f"{path}: is not a rank's metadata ({err}); the rank did not finish its capture "
            "(leave the capture_ranks block on every rank)",
            path=str(path),
        ) from err


def steps_of(rank_dir: Path) -> list[int]:
    return sorted(int(p.stem[4:]) for p in rank_dir.glob("step*.jsonl"))


def read_step(rank_dir: Path, step: int) -> Iterator[Record]:
    path = rank_dir / f"step{step:05d}.jsonl"
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield Record.from_dict(json.loads(line))


def load_tensor(rank_dir: Path, record: Record) -> np.ndarray | None:
    if record.file is None:
        return None
    return np.load(rank_dir / record.file, allow_pickle=False)
