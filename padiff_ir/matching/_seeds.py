"""The first pairs of the forward propagation: seeds, then resolved groups.

Seeds come first: graph inputs by position, matched anchor units (their outputs, their raw
``MatMul``/``Conv`` outputs, and the activations feeding them, traced back through layout ops:
what two matched layers read is the same quantity however it was computed), group pairs for
fused/split units, then graph outputs by position.

A group whose fused side is sliced (``Gather``/``Slice``/``Split`` through layout ops: torch's
``qkv[0], qkv[1], qkv[2]``) is *resolved*: the ``i``-th slice, in index order, pairs 1:1 with the
``i``-th member of the other side. Two paired tensors cut into chunks on both sides (a fused
gate/up projection ``chunk``-ed in two: ``Split`` from paddle, ``SplitToSequence`` and
``SequenceAt`` from torch) pair chunk by chunk, in index order.

:mod:`padiff_ir.matching._propagate` pairs the remaining parameter-free ops from there.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from itertools import permutations
from typing import TYPE_CHECKING, Any

from padiff_ir.matching._view import compatible_shapes

if TYPE_CHECKING:
    from padiff_ir.matching._anchors import Unit
    from padiff_ir.matching._state import PairState
    from padiff_ir.matching._view import SideView

__all__ = [
    "MAX_WALK",
    "ValueCheck",
    "paired_root",
    "resolve_chunks",
    "resolve_groups",
    "seed_anchors",
    "seed_positions",
    "seed_unit",
]

logger = logging.getLogger(__name__)

#: Longest chain of layout (or scalar) ops walked through.
MAX_WALK = 12

#: ``(tensor of A, tensor of B) -> True / False / None (unknown)``: whether values agree.
ValueCheck = Callable[[str, str], "bool | None"]


# -- seeds ------------------------------------------------------------------------------------


def seed_positions(
    state: PairState, names_a: Sequence[str], names_b: Sequence[str], tag: str
) -> None:
    """Pair graph inputs (or outputs) position by position, through layout ops for outputs."""
    for a, b in zip(names_a, names_b):
        root_a = paired_root(state.view_a, state.one_a, a)
        root_b = paired_root(state.view_b, state.one_b, b)
        if root_a in state.one_a and state.one_a[root_a] == root_b:
            continue
        state.pair(a, b, 1.0, ("position", tag))


def paired_root(view: SideView, paired: dict[str, str], tensor: str) -> str:
    """``tensor`` traced back through layout ops to a paired tensor (or as far as they go)."""
    for _ in range(MAX_WALK):
        if tensor in paired:
            return tensor
        producer = view.producer(tensor)
        if producer is None or view.facts[producer].kind != "transparent":
            return tensor
        tensor = view.op(producer).inputs[view.facts[producer].act_slots[0]]
    return tensor


def seed_anchors(
    state: PairState, unit_pairs: Sequence[tuple[tuple[Unit, ...], tuple[Unit, ...]]]
) -> None:
    """Pair the outputs, raw outputs and inputs of matched units (module docstring)."""
    for units_a, units_b in unit_pairs:
        for unit in units_a:
            state.covered_a.update(unit.ops)
        for unit in units_b:
            state.covered_b.update(unit.ops)
        if len(units_a) == 1 and len(units_b) == 1:
            seed_unit(state, units_a[0], units_b[0], ("param-anchor",))
        else:
            axis = -1 if units_a[0].family == "linear" else 1
            state.pair_group(
                tuple(u.output for u in units_a),
                tuple(u.output for u in units_b),
                0.95,
                ("param-anchor", "split-group"),
                axis,
            )
            if all(len(u.ops) == 2 for u in (*units_a, *units_b)):
                state.pair_group(
                    tuple(u.raw for u in units_a),
                    tuple(u.raw for u in units_b),
                    0.95,
                    ("param-anchor", "split-group", "raw"),
                    axis,
                )
    for units_a, units_b in unit_pairs:
        roots_a = {u.root for u in units_a if u.root is not None}
        roots_b = {u.root for u in units_b if u.root is not None}
        if len(roots_a) == 1 and len(roots_b) == 1:
            state.pair(roots_a.pop(), roots_b.pop(), 0.9, ("anchor-input",))


def seed_unit(state: PairState, ua: Unit, ub: Unit, evidence: tuple[str, ...]) -> None:
    """Pair two units' ops and outputs (the raw ones too when both add a bias)."""
    confidence = 0.95 if "structure" in evidence else 1.0
    state.pair_ops(ua.head, ub.head)
    if len(ua.ops) == 2 and len(ub.ops) == 2:
        state.pair_ops(ua.ops[1], ub.ops[1])
        state.pair(ua.raw, ub.raw, confidence, (*evidence, "raw"))
    state.pair(ua.output, ub.output, confidence, evidence)
    for out_a, out_b in zip(
        state.view_a.act_outputs(ua.head)[1:], state.view_b.act_outputs(ub.head)[1:]
    ):
        state.pair(out_a, out_b, 0.95, (*evidence, "position"))


# -- groups -----------------------------------------------------------------------------------


def resolve_groups(state: PairState, same: ValueCheck | None = None) -> None:
    """Pair the slices of each fused side with the members of the split side (docstring)."""
    for draft in list(state.drafts):
        if not draft.is_group:
            continue
        if len(draft.a) == 1:
            slices = _slices(state.view_a, draft.a[0])
            if len(slices) == len(draft.b):
                for part, member in zip(_order_by_values(slices, draft.b, same, True), draft.b):
                    state.pair(part, member, 0.9, ("split-group", "slice-order"))
        elif len(draft.b) == 1:
            slices = _slices(state.view_b, draft.b[0])
            if len(slices) == len(draft.a):
                for member, part in zip(draft.a, _order_by_values(slices, draft.a, same, False)):
                    state.pair(member, part, 0.9, ("split-group", "slice-order"))


def resolve_chunks(state: PairState, same: ValueCheck | None = None) -> None:
    """Pair the chunks of two paired tensors that both sides cut with a split (docstring)."""
    view_a, view_b = state.view_a, state.view_b
    for a, b in list(state.one_a.items()):
        if not (_is_split(view_a, a) and _is_split(view_b, b)):
            continue
        chunks_a, chunks_b = _slices(view_a, a), _slices(view_b, b)
        if len(chunks_a) < 2 or len(chunks_a) != len(chunks_b):
            continue
        if not all(
            compatible_shapes(view_a.shape(x), view_b.shape(y))
            and (same is None or same(x, y) is not False)
            for x, y in zip(chunks_a, chunks_b)
        ):
            continue
        for x, y in zip(chunks_a, chunks_b):
            state.pair(x, y, 0.9, ("chunk", "slice-order"))


#: Families of the ops that cut a tensor into chunks (ONNX op types kept as families).
_SPLITS = frozenset({"Split", "SplitToSequence"})


def _is_split(view: SideView, tensor: str) -> bool:
    """``tensor`` is read by a split into chunks (``Split`` or ``SplitToSequence``)."""
    return any(view.facts[reader].family in _SPLITS for reader, _ in view.consumers.get(tensor, []))


def _slices(view: SideView, tensor: str) -> list[str]:
    """Outputs of the ops slicing ``tensor`` (through layout ops), in slice order."""
    found: list[tuple[Any, str]] = []
    queue = deque([(tensor, 0)])
    while queue:
        current, depth = queue.popleft()
        for reader, _ in view.consumers.get(current, []):
            facts = view.facts[reader]
            if facts.family == "Split":  # ONNX op types are the families of these two
                outs = view.act_outputs(reader)
                found.extend(((i, view.rank[reader]), t) for i, t in enumerate(outs))
            elif facts.family == "SplitToSequence":
                found.extend(_sequence_items(view, reader))
            elif facts.family == "select":
                start = facts.select[1] if facts.select is not None else None
                found.append(
                    (
                        (start if start is not None else -1, view.rank[reader]),
                        view.act_outputs(reader)[0],
                    )
                )
            elif facts.kind == "transparent" and depth < MAX_WALK:
                queue.extend((t, depth + 1) for t in view.act_outputs(reader))
    found.sort()
    return [t for _, t in found]


def _sequence_items(view: SideView, split: str) -> list[tuple[Any, str]]:
    """``((index, rank), output)`` of each ``SequenceAt`` with a constant index reading the
    sequence a ``SplitToSequence`` makes."""
    items = []
    for reader, _ in view.consumers.get(view.act_outputs(split)[0], []):
        op = view.op(reader)
        if op.op_type != "SequenceAt" or len(op.inputs) < 2:
            continue
        index = view.folder.value(op.inputs[1])
        if index is not None and index.size == 1 and int(index.reshape(())) >= 0:
            items.append(((int(index.reshape(())), view.rank[split]), view.act_outputs(reader)[0]))
    return items


def _order_by_values(
    slices: list[str], members: Sequence[str], same: ValueCheck | None, slices_on_a: bool
) -> list[str]:
    """``slices`` reordered so that their values agree with ``members`` when that is known."""
    if same is None or len(slices) > 6:
        return slices
    for order in permutations(slices):
        checks = [same(s, m) if slices_on_a else same(m, s) for s, m in zip(order, members)]
        if all(c is True for c in checks):
            return list(order)
    return slices
