"""What :func:`~padiff_ir.pairing.assign.assign_weight` reports, and which target tensors it
covers.

Every parameter and persistent buffer of the target must receive a value. :func:`coverage` sorts
those left without one into skips on purpose (modules the layer map ignores; torch's
``num_batches_tracked`` when the source is paddle), listed in the :class:`AssignReport` with
their reasons, and problems (no source, with the matcher's reason when it gave one).
:func:`unread_buffers` finds a source for target tensors no op reads, by name in the paired
module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from padiff_ir._paths import join, strictly_within
from padiff_ir.hints import Tensor
from padiff_ir.matching.transform_types import IDENTITY, Transform, as_transform
from padiff_ir.matching.transforms import SKIPPED_TENSORS
from padiff_ir.matching.types import Matching
from padiff_ir.pairing.layer_map import LayerMap

__all__ = [
    "IGNORED",
    "AssignReport",
    "CopiedWeight",
    "SkippedWeight",
    "coverage",
    "tensor_shape",
    "unread_buffers",
]

logger = logging.getLogger(__name__)

IGNORED = "ignored by the layer map"


@dataclass(frozen=True)
class CopiedWeight:
    """Source tensors copied into target tensors through ``transform`` (source -> target)."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    transform: Transform = IDENTITY

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform", as_transform(self.transform))  # JSON form works


@dataclass(frozen=True)
class SkippedWeight:
    """A tensor deliberately left alone: ``side`` is ``"target"`` or ``"source"``."""

    name: str
    side: str
    reason: str


@dataclass(frozen=True)
class AssignReport:
    """What :func:`assign_weight` did.

    Attributes:
        source_framework / target_framework: ``"torch"`` or ``"paddle"``.
        copied: every copy, with its transform.
        skipped: tensors left alone on purpose, with the reason.
        unused: source tensors that were copied nowhere (the target has no such layer).
    """

    source_framework: str
    target_framework: str
    copied: tuple[CopiedWeight, ...]
    skipped: tuple[SkippedWeight, ...] = ()
    unused: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.copied)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"copied {len(self.copied)} tensor group(s) {self.source_framework} -> "
            f"{self.target_framework}"
        )
        if self.skipped:
            text += f", skipped {len(self.skipped)}"
        if self.unused:
            text += f", {len(self.unused)} source tensor(s) unused"
        return text


def tensor_shape(tensor: Tensor) -> list[int]:
    """A tensor's shape as a list of ints."""
    return [int(d) for d in tensor.shape]


def _ignored_paths(layer_map: LayerMap, side: str) -> tuple[set[str], set[str]]:
    return getattr(layer_map, f"ignored_{side}"), getattr(layer_map, f"ignored_self_{side}")


def _is_ignored(name: str, owner: str, recursive: set[str], itself: set[str]) -> bool:
    if owner in itself:
        return True
    return any(strictly_within(name, p) for p in recursive)


def coverage(
    tensors_t: Mapping[str, Tensor],
    written: Mapping[int, str],
    matching: Matching,
    layer_map: LayerMap,
    target_side: str,
    framework_s: str,
    framework_t: str,
) -> tuple[list[SkippedWeight], list[str]]:
    """Skipped target tensors (with reasons) and problems for those left without a source."""
    recursive, itself = _ignored_paths(layer_map, target_side)
    reasons = {
        u.name: u.reason
        for u in matching.unmatched
        if u.kind in ("param", "tensor") and u.side == target_side
    }
    skipped, missing = [], []
    seen: set[int] = set()
    for name, tensor in tensors_t.items():
        if id(tensor) in written or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        owner, _, leaf = name.rpartition(".")
        if _is_ignored(name, owner, recursive, itself) or reasons.get(name) == IGNORED:
            skipped.append(SkippedWeight(name, "target", IGNORED))
        elif leaf in SKIPPED_TENSORS and framework_s != framework_t:
            skipped.append(SkippedWeight(name, "target", SKIPPED_TENSORS[leaf]))
        else:
            why = f": {reasons[name]}" if name in reasons else ""
            missing.append(f"target {name!r} {tensor_shape(tensor)} has no source{why}")
    return skipped, missing


def unread_buffers(
    matching: Matching,
    target_is_a: bool,
    tensors_t: Mapping[str, Tensor],
    tensors_s: Mapping[str, Tensor],
    written: Mapping[int, str],
) -> list[tuple[str, str]]:
    """Target tensors no op reads (a BatchNorm's ``num_batches_tracked``) and the source tensor
    of the same name in the paired module, when its shape fits: ``(target, source)`` names."""
    partner = {}
    for pair in matching.module_pairs:
        target, source = (pair.a, pair.b) if target_is_a else (pair.b, pair.a)
        partner[target] = source
    found = []
    for name, tensor in tensors_t.items():
        if id(tensor) in written:
            continue
        owner, _, leaf = name.rpartition(".")
        if owner not in partner:
            continue
        source = join(partner[owner], leaf)
        other = tensors_s.get(source)
        if other is not None and tensor_shape(other) == tensor_shape(tensor):
            found.append((name, source))
    return found
