"""Where each parameter and module output of a sharded model lives, read from the framework.

A tensor-parallel rank holds a *shard* of a logical tensor (one slice of it along an axis), a
*replica* of it, or a *partial* sum of it. This module reads that from each framework's own
metadata, and nothing else:

* torch ``DTensor`` parameters (``torch.distributed.tensor``, what ``parallelize_module`` and a
  tensor-parallel plan make): their ``placements`` (``Shard(dim)``, ``Replicate()``,
  ``Partial()``) on a one-dimensional mesh;
* Megatron-style parameter attributes (``tensor_model_parallel``, ``partition_dim``), which
  Megatron-LM's ``ColumnParallelLinear``/``RowParallelLinear`` set on plain torch parameters;
* paddle's distributed attributes (``is_distributed``, ``split_axis``), which
  ``ColumnParallelLinear``, ``RowParallelLinear`` and ``VocabParallelEmbedding`` of
  ``paddle.distributed.fleet`` set on their weights.

A module's inputs and outputs follow from its weight: a column-parallel layer (weight sharded
on its output axis) reads a replicated input and makes an output sharded on its last axis
(replicated when it gathers, ``gather_output``); a row-parallel layer (weight sharded on its
input axis) reads an input sharded on its last axis (replicated when ``input_is_parallel`` is
false: it scatters it itself) and makes a replicated output; a vocabulary-parallel embedding
makes a replicated output.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from padiff_ir.frameworks._base import Framework
from padiff_ir.hints import Model, Module, Tensor

__all__ = [
    "REPLICATED",
    "ModulePlacement",
    "Placement",
    "PlacementKind",
    "module_placements",
    "process_rank",
]


class PlacementKind(str, enum.Enum):
    """How a rank holds a logical tensor."""

    REPLICATED = "replicated"
    SHARD = "shard"
    PARTIAL = "partial"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Placement:
    """One rank's hold on a logical tensor: ``kind``, the split ``axis`` of a shard (negative
    axes count from the end) and where the fact was read (``source``)."""

    kind: PlacementKind = PlacementKind.REPLICATED
    axis: int | None = None
    source: str = ""

    def __str__(self) -> str:
        if self.kind is PlacementKind.SHARD:
            return f"shard({self.axis})"
        return str(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "axis": self.axis, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Placement:
        return cls(PlacementKind(data["kind"]), data.get("axis"), data.get("source", ""))


REPLICATED = Placement()


@dataclass(frozen=True)
class ModulePlacement:
    """A module's tensor-parallel style (``column``, ``row``, ``vocab`` or ``""``), its
    parameters' placements by local name, and where its first input and outputs live."""

    style: str
    parameters: tuple[tuple[str, Placement], ...]
    input: Placement
    output: Placement


def _torch_placement(tensor: Tensor) -> Placement | None:
    """A torch parameter's placement: DTensor placements, then Megatron's attributes."""
    placements = getattr(tensor, "placements", None)
    if placements is not None and type(tensor).__name__ == "DTensor":
        first = placements[0]
        name = type(first).__name__
        if name == "Shard":
            return Placement(PlacementKind.SHARD, int(first.dim), "DTensor")
        if name in ("Partial", "_Partial"):
            return Placement(PlacementKind.PARTIAL, None, "DTensor")
        return Placement(PlacementKind.REPLICATED, None, "DTensor")
    if getattr(tensor, "tensor_model_parallel", False):
        axis = int(getattr(tensor, "partition_dim", 0))
        return Placement(PlacementKind.SHARD, axis, "tensor_model_parallel")
    return None


def _paddle_placement(tensor: Tensor) -> Placement | None:
    """A paddle parameter's placement from fleet's ``is_distributed``/``split_axis``."""
    if getattr(tensor, "is_distributed", False) and hasattr(tensor, "split_axis"):
        return Placement(PlacementKind.SHARD, int(tensor.split_axis), "is_distributed")
    return None


# the axis of a Linear weight that indexes its outputs: torch [out, in], paddle [in, out]
_OUT_AXIS = {"torch": 0, "paddle": 1}


def _style(fw: Framework, module: Module, weight: Placement | None, ndim: int) -> str:
    if weight is None or weight.kind is not PlacementKind.SHARD or weight.axis is None:
        return ""
    axis = weight.axis % max(ndim, 1)
    if fw.is_embedding(module) or type(module).__name__.endswith("Embedding"):
        return "vocab" if axis == 0 else "column"
    if ndim != 2:
        return ""
    return "column" if axis == _OUT_AXIS.get(fw.name, 0) else "row"


def _io(style: str, module: Module) -> tuple[Placement, Placement]:
    """The placements of a module's first input and of its outputs, from its style."""
    last = Placement(PlacementKind.SHARD, -1, f"{style}-parallel")
    if style == "column":
        gathers = bool(getattr(module, "gather_output", False))
        return REPLICATED, (Placement(source="gather_output") if gathers else last)
    if style == "row":
        parallel = bool(getattr(module, "input_is_parallel", True))
        return (last if parallel else Placement(source="input_is_parallel")), REPLICATED
    return REPLICATED, REPLICATED


def module_placements(fw: Framework, model: Model) -> dict[str, ModulePlacement]:
    """Every module of ``model`` that holds a sharded or placed parameter -> its placement.

    Modules absent from the answer hold no placement metadata (their parameters are
    replicated, their outputs follow their inputs).
    """
    reader = _torch_placement if fw.name == "torch" else _paddle_placement
    found: dict[str, ModulePlacement] = {}
    for path, module in fw.named_modules(model):
        params = [(name, reader(tensor), tensor) for name, tensor in fw.own_tensors(module)]
        placed = [(name, p, t) for name, p, t in params if p is not None]
        if not placed:
            continue
        weight = next(((p, t) for name, p, t in placed if name == "weight"), None)
        style = _style(fw, module, weight[0], len(fw.shape(weight[1]))) if weight else ""
        inp, out = _io(style, module)
        found[path] = ModulePlacement(style, tuple((n, p) for n, p, _ in placed), inp, out)
    return found


def process_rank(fw: Framework) -> tuple[int, int]:
    """``(rank, world size)`` of this process in the framework's default process group;
    ``(0, 1)`` when none is initialised (the launcher's environment is read then:
    ``RANK``/``WORLD_SIZE`` of torchrun, ``PADDLE_TRAINER_ID``/``PADDLE_TRAINERS_NUM`` of
    paddle's launcher)."""
    if fw.name == "torch":
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if fw.name == "paddle":
        import paddle.distributed as pdist

        world = pdist.get_world_size()
        if world > 1:
            return pdist.get_rank(), world
        return (
            int(os.environ.get("PADDLE_TRAINER_ID", 0)),
            int(os.environ.get("PADDLE_TRAINERS_NUM", 1)),
        )
    return 0, 1
