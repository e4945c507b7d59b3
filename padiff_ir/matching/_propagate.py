"""Pair the parameter-free ops: forward propagation from the anchor pairs, in data-flow order.

The seeds (graph inputs and outputs by position, matched anchor units, resolved groups) come
from :mod:`padiff_ir.matching._seeds`. Then each unpaired activation op ``X`` of A, in
topological order, looks for its counterpart:

1. each activation operand of ``X`` is traced back through unpaired layout ops to a paired
   tensor, whose partner is traced forward in B through unpaired layout ops to its readers;
2. a candidate ``Y`` has ``X``'s family, as many activation operands, each reached from the
   partner of the matching operand (in any order for commutative families), compatible
   constants (equal scales, shifts and slice bounds when both are known) and output size;
3. layout ops pair only with the same layout op reading the partner directly, with the same
   output shape, when the partner has the same shape (else the values differ);
4. when no candidate exists, the walk is *relaxed* to skip ops applying a constant scalar too
   (torch scales ``q`` and ``k`` by ``d**-0.25`` each, paddle ``q`` by ``d**-0.5``: the scores
   match although neither scaled operand does);
5. among several candidates the closest in relative graph position wins (then equal fingerprints
   when activation values are given).

Each op is visited once and each walk is bounded, so the pass is linear in the graph size.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from itertools import permutations
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.matching._seeds import MAX_WALK, ValueCheck, seed_unit
from padiff_ir.matching._view import COMMUTATIVE, compatible_shapes, numel

if TYPE_CHECKING:
    from padiff_ir.matching._state import PairState
    from padiff_ir.matching._view import SideView

__all__ = ["ValueCheck", "propagate"]

logger = logging.getLogger(__name__)


# -- propagation ------------------------------------------------------------------------------


class _Walker:
    """Back and forward walks through unpaired layout (and, relaxed, scalar) ops."""

    def __init__(self, state: PairState) -> None:
        self.state = state

    def back(self, tensor: str, relaxed: bool) -> tuple[str | None, int]:
        """The paired tensor ``tensor`` is a view of, and the number of ops walked through."""
        view, state = self.state.view_a, self.state
        for depth in range(MAX_WALK):
            if tensor in state.one_a:
                return tensor, depth
            producer = view.producer(tensor)
            if producer is None or producer in view.ignored or producer in state.op_a:
                return None, depth
            facts = view.facts[producer]
            if not (facts.kind == "transparent" or (relaxed and facts.kind == "scalar")):
                return None, depth
            tensor = view.op(producer).inputs[facts.act_slots[0]]
        return None, MAX_WALK

    def forward(self, tensor: str, relaxed: bool) -> dict[str, dict[int, int]]:
        """B ops reading ``tensor`` (through unpaired walkable ops): op -> ordinal -> depth."""
        view, state = self.state.view_b, self.state
        reached: dict[str, dict[int, int]] = {}
        queue = deque([(tensor, 0)])
        while queue:
            current, depth = queue.popleft()
            for reader, ordinal in view.consumers.get(current, []):
                reached.setdefault(reader, {}).setdefault(ordinal, depth)
                if depth >= MAX_WALK or reader in state.op_b or reader in view.ignored:
                    continue
                facts = view.facts[reader]
                if facts.kind == "transparent" or (relaxed and facts.kind == "scalar"):
                    for out in view.act_outputs(reader)[:1]:
                        if out not in state.one_b:
                            queue.append((out, depth + 1))
        return reached


def propagate(state: PairState, same: ValueCheck | None = None) -> None:
    """Pair A's unpaired activation ops with B's (see the module docstring)."""
    view_a, view_b = state.view_a, state.view_b
    walker = _Walker(state)
    size_a, size_b = max(1, len(view_a.order)), max(1, len(view_b.order))
    for name in view_a.order:
        if name in state.op_a or name in view_a.ignored or name in state.covered_a:
            continue
        outs = view_a.act_outputs(name)
        if outs and all(state.paired_a(t) for t in outs):
            _pair_producers(state, name, outs)
            continue
        for relaxed in (False, True):
            found = _candidates(state, walker, name, relaxed)
            if not found:
                continue
            position = view_a.rank[name] / size_a

            def score(
                item: tuple[str, bool, int], position: float = position, name: str = name
            ) -> tuple[bool, bool, bool, int, float]:
                op_b, exact, depth = item
                value_ok = _outputs_agree(state, name, op_b, same)
                return (
                    value_ok is not False,
                    value_ok is True,
                    exact,
                    -depth,
                    -abs(view_b.rank[op_b] / size_b - position),
                )

            op_b, exact, depth = max(found, key=score)
            _accept(state, name, op_b, exact, depth, relaxed)
            break


def _pair_producers(state: PairState, name: str, outs: Sequence[str]) -> None:
    """Pair ``name`` with the op making its outputs' partners when that op does the same."""
    partner = state.one_a.get(outs[0])
    producer = state.view_b.producer(partner) if partner is not None else None
    if (
        producer is not None
        and producer not in state.op_b
        and state.view_b.facts[producer].family == state.view_a.facts[name].family
    ):
        state.pair_ops(name, producer)
        draft = state.draft_of(outs[0])
        if draft is not None and "structure" not in draft.evidence:
            draft.evidence = (*draft.evidence, "structure", "op-family")
            draft.confidence = max(draft.confidence, 0.95)


def _outputs_agree(state: PairState, op_a: str, op_b: str, same: ValueCheck | None) -> bool | None:
    if same is None:
        return None
    outs_a, outs_b = state.view_a.act_outputs(op_a), state.view_b.act_outputs(op_b)
    if not outs_a or not outs_b:
        return None
    return same(outs_a[0], outs_b[0])


def _candidates(
    state: PairState, walker: _Walker, name: str, relaxed: bool
) -> list[tuple[str, bool, int]]:
    """``(op of B, exact, walk depth)`` candidates for op ``name`` of A."""
    view_a, view_b = state.view_a, state.view_b
    facts = view_a.facts[name]
    inputs = view_a.act_inputs(name)
    if not inputs:
        return []
    partners: list[str] = []
    depth_a = 0
    for tensor in inputs:
        paired, depth = walker.back(tensor, relaxed)
        if paired is None:
            return []
        partners.append(state.one_a[paired])
        depth_a += depth
    transparent = facts.kind == "transparent"
    if transparent and (relaxed or depth_a):
        return []
    reach = [walker.forward(p, relaxed) for p in partners]
    found: list[tuple[str, bool, int]] = []
    for op_b in reach[0]:
        facts_b = view_b.facts[op_b]
        if (
            facts_b.family != facts.family
            or op_b in state.op_b
            or op_b in view_b.ignored
            or op_b in state.covered_b
            or len(facts_b.act_slots) != len(inputs)
        ):
            continue
        depth_b = _assign(reach, op_b, facts.family in COMMUTATIVE)
        if depth_b is None or (transparent and depth_b):
            continue
        if not _compatible(state, name, op_b, inputs, partners):
            continue
        exact = depth_a == 0 and depth_b == 0 and not relaxed
        found.append((op_b, exact, depth_a + depth_b))
    return found


def _assign(reach: list[dict[str, dict[int, int]]], op_b: str, commutative: bool) -> int | None:
    """Total depth of the best assignment of A's operands to ``op_b``'s, or ``None``."""
    n = len(reach)
    orders = permutations(range(n)) if commutative and n <= 4 else [tuple(range(n))]
    best = None
    for order in orders:
        total = 0
        for i, ordinal in enumerate(order):
            depth = reach[i].get(op_b, {}).get(ordinal)
            if depth is None:
                break
            total += depth
        else:
            best = total if best is None else min(best, total)
    return best


def _compatible(
    state: PairState, op_a: str, op_b: str, inputs: Sequence[str], partners: list[str]
) -> bool:
    view_a, view_b = state.view_a, state.view_b
    fa, fb = view_a.facts[op_a], view_b.facts[op_b]
    if (
        fa.scalar is not None
        and fb.scalar is not None
        and not np.isclose(fa.scalar, fb.scalar, rtol=1e-4, atol=1e-7)
    ):
        return False
    if (
        fa.family == "select"
        and fa.select is not None
        and fb.select is not None
        and fa.select[:4] != fb.select[:4]
    ):
        return False
    if fa.kind == "transparent":
        return _same_layout_op(state, op_a, op_b, inputs, partners)
    if (fa.sources or fb.sources) and _param_shapes(view_a, fa) != _param_shapes(view_b, fb):
        return False
    if not _same_constants(state, op_a, op_b):
        return False
    outs_a, outs_b = view_a.act_outputs(op_a), view_b.act_outputs(op_b)
    if outs_a and outs_b:
        shape_a, shape_b = view_a.shape(outs_a[0]), view_b.shape(outs_b[0])
        size_a, size_b = numel(shape_a), numel(shape_b)
        if size_a is not None and size_b is not None and size_a != size_b:
            # one value for the whole batch on one side, per sample on the other (RoPE's
            # cos/sin from positions of batch 1): what their consumers see is the same
            return _broadcast_alike(shape_a, shape_b)
    return True


def _broadcast_alike(shape_a: tuple[Any, ...] | None, shape_b: tuple[Any, ...] | None) -> bool:
    """Same rank, every dimension equal or 1 on one side."""
    if shape_a is None or shape_b is None or len(shape_a) != len(shape_b):
        return False
    return all(x == y or x == 1 or y == 1 for x, y in zip(shape_a, shape_b))


def _param_shapes(view: SideView, facts: Any) -> list[tuple[Any, ...]]:
    """Shapes of the parameters an op reads, sorted, 2-D ones in either orientation."""
    shapes = []
    for tensors in facts.sources.values():
        for tensor in tensors:
            shape = tuple(view.shape(tensor) or ())
            shapes.append(tuple(sorted(shape)) if len(shape) == 2 else shape)
    return sorted(shapes)


def _same_layout_op(
    state: PairState, op_a: str, op_b: str, inputs: Sequence[str], partners: list[str]
) -> bool:
    """Layout ops pair only when they do the same thing to the same layout."""
    view_a, view_b = state.view_a, state.view_b
    node_a, node_b = view_a.op(op_a), view_b.op(op_b)
    if node_a.op_type == "Transpose" and node_a.attributes.get("perm") != node_b.attributes.get(
        "perm"
    ):
        return False
    if node_a.op_type in ("Cast",) and node_a.attributes.get("to") != node_b.attributes.get("to"):
        return False
    in_a, in_b = view_a.shape(inputs[0]), view_b.shape(partners[0])
    if in_a is None or in_b is None or len(in_a) != len(in_b) or not compatible_shapes(in_a, in_b):
        return False
    outs_a, outs_b = view_a.act_outputs(op_a), view_b.act_outputs(op_b)
    out_a, out_b = view_a.shape(outs_a[0]), view_b.shape(outs_b[0])
    return (
        out_a is not None
        and out_b is not None
        and len(out_a) == len(out_b)
        and compatible_shapes(out_a, out_b)
    )


def _same_constants(state: PairState, op_a: str, op_b: str) -> bool:
    """Known constant operands (not parameters) of the two ops agree."""
    view_a, view_b = state.view_a, state.view_b
    fa, fb = view_a.facts[op_a], view_b.facts[op_b]
    consts_a = [s for s in fa.const_slots if s not in fa.sources]
    consts_b = [s for s in fb.const_slots if s not in fb.sources]
    if len(consts_a) != len(consts_b):
        return fa.kind == "scalar" or fb.kind == "scalar" or not (consts_a and consts_b)
    for slot_a, slot_b in zip(consts_a, consts_b):
        va = view_a.folder.value(view_a.op(op_a).inputs[slot_a])
        vb = view_b.folder.value(view_b.op(op_b).inputs[slot_b])
        if va is None or vb is None:
            continue
        if va.size != vb.size or not np.allclose(
            np.ravel(va).astype(np.float64), np.ravel(vb).astype(np.float64), rtol=1e-4, atol=1e-7
        ):
            return False
    return True


def _accept(state: PairState, op_a: str, op_b: str, exact: bool, depth: int, relaxed: bool) -> None:
    view_a, view_b = state.view_a, state.view_b
    unit_a, unit_b = state.units_a.get(op_a), state.units_b.get(op_b)
    if (
        unit_a is not None
        and unit_b is not None
        and unit_a.key == unit_b.key
        and op_b not in state.covered_b
    ):
        # a layer the alignment left out (branches in another order): pair it as a unit
        state.covered_a.update(unit_a.ops)
        state.covered_b.update(unit_b.ops)
        state.late_units.append(((unit_a,), (unit_b,)))
        seed_unit(state, unit_a, unit_b, ("param-anchor", "structure"))
        return
    state.pair_ops(op_a, op_b)
    evidence = ["structure", "op-family"]
    if depth:
        evidence.append("layout-skip")
    if relaxed:
        evidence.append("scalar-skip")
    confidence = 1.0 if exact else (0.8 if relaxed else 0.9)
    for out_a, out_b in zip(view_a.act_outputs(op_a), view_b.act_outputs(op_b)):
        shape_a, shape_b = view_a.shape(out_a), view_b.shape(out_b)
        tags = (*evidence, "shape") if shape_a == shape_b and shape_a is not None else evidence
        state.pair(out_a, out_b, confidence, tuple(tags))
