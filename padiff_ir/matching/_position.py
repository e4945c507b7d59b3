"""Pair the parameter-free ops propagation left alone on both sides by their position.

Propagation pairs an op only with one of its own family, so a ``Relu`` ported as an ``Elu``
stays unpaired on both sides, and so does the tensor it makes when no anchor reads it: the
difference then shows only downstream, in the wrong module. Two such ops are the same layer
when they sit in the same place:

* each has one activation operand and one activation output, reads no parameter, keeps its
  input's shape and is not a layout op (``reshape``/``transpose``/``cast`` families): an
  activation, a dropout, a scale;
* their operands are paired with each other;
* their outputs are paired with each other (an anchor reads them, or they are paired graph
  outputs), or every paired op reading one output is paired with an op reading the other
  output at the same operand (any operand for commutative ops), and at least one is;
* neither has another candidate (the pair is unique both ways).

An op present on one side only fails the test: the op reading its output is paired with one
reading the *input's* partner (the identity-in-eval dropout absent from one export). The pairs
get the evidence ``position`` and a lower confidence; propagation then resumes downstream of
them, and another round looks for sites it has reached. Each round is linear in the graph size.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from padiff_ir.matching._propagate import propagate
from padiff_ir.matching._view import COMMUTATIVE, compatible_shapes

if TYPE_CHECKING:
    from padiff_ir.matching._seeds import ValueCheck
    from padiff_ir.matching._state import PairState
    from padiff_ir.matching._view import SideView

__all__ = ["POSITION_CONFIDENCE", "pair_by_position"]

logger = logging.getLogger(__name__)

#: Confidence of a pair found by position alone (different op families).
POSITION_CONFIDENCE = 0.7

#: Rounds of pairing, each followed by propagation: a second site downstream of a first has its
#: operand paired only by the propagation after the first.
_ROUNDS = 4

_LAYOUT_FAMILIES = frozenset({"reshape", "transpose", "cast"})


def _elementwise_like(view: SideView, name: str) -> bool:
    """One activation in and out, no parameter, shape kept, not a layout op."""
    facts = view.facts[name]
    if facts.family in _LAYOUT_FAMILIES or facts.sources or len(facts.act_slots) != 1:
        return False
    outs = view.act_outputs(name)
    if len(outs) != 1:
        return False
    shape_in, shape_out = view.shape(view.act_inputs(name)[0]), view.shape(outs[0])
    return shape_in is None or shape_out is None or compatible_shapes(shape_in, shape_out)


def _free(state: PairState, side: str, name: str) -> bool:
    view = state.view_a if side == "a" else state.view_b
    ops = state.op_a if side == "a" else state.op_b
    covered = state.covered_a if side == "a" else state.covered_b
    return (
        name not in ops
        and name not in covered
        and name not in view.ignored
        and _elementwise_like(view, name)
    )


def _readers_agree(state: PairState, out_a: str, out_b: str) -> bool:
    """Every paired reader of either output pairs with a reader of the other, same operand."""
    view_a, view_b = state.view_a, state.view_b
    readers_b = {(op, ordinal) for op, ordinal in view_b.consumers.get(out_b, [])}
    readers_a = {(op, ordinal) for op, ordinal in view_a.consumers.get(out_a, [])}
    ops_b = {op for op, _ in readers_b}
    ops_a = {op for op, _ in readers_a}
    paired = 0
    for op, ordinal in readers_a:
        partner = state.op_a.get(op)
        if partner is None:
            continue
        paired += 1
        anywhere = view_a.facts[op].family in COMMUTATIVE
        if (partner, ordinal) not in readers_b and not (anywhere and partner in ops_b):
            return False
    for op, ordinal in readers_b:
        partner = state.op_b.get(op)
        if partner is None:
            continue
        anywhere = view_b.facts[op].family in COMMUTATIVE
        if (partner, ordinal) not in readers_a and not (anywhere and partner in ops_a):
            return False
    return paired > 0


def _same_place(state: PairState, op_a: str, op_b: str) -> bool:
    out_a, out_b = state.view_a.act_outputs(op_a)[0], state.view_b.act_outputs(op_b)[0]
    partner = state.one_a.get(out_a)
    if partner is not None or out_b in state.one_b:
        return partner == out_b
    return _readers_agree(state, out_a, out_b)


def _candidates(state: PairState) -> list[tuple[str, str]]:
    """``(op of A, op of B)`` in the same place, each unique on its side."""
    view_a, view_b = state.view_a, state.view_b
    found: list[tuple[str, str]] = []
    for name in view_a.order:
        if not _free(state, "a", name):
            continue
        partner = state.one_a.get(view_a.act_inputs(name)[0])
        if partner is None:
            continue
        for reader, _ in view_b.consumers.get(partner, []):
            if _free(state, "b", reader) and _same_place(state, name, reader):
                found.append((name, reader))
    count_a: dict[str, int] = {}
    count_b: dict[str, int] = {}
    for a, b in found:
        count_a[a] = count_a.get(a, 0) + 1
        count_b[b] = count_b.get(b, 0) + 1
    return [(a, b) for a, b in found if count_a[a] == 1 and count_b[b] == 1]


def pair_by_position(state: PairState, same: ValueCheck | None = None) -> int:
    """Pair the ops in the same place, propagating after each round (module docstring); the
    number of op pairs made by position."""
    made = 0
    for _ in range(_ROUNDS):
        found = _pair_round(state)
        if not found:
            break
        made += found
        propagate(state, same)
    return made


def _pair_round(state: PairState) -> int:
    made = 0
    for op_a, op_b in _candidates(state):
        if not state.pair_ops(op_a, op_b):
            continue
        made += 1
        out_a, out_b = state.view_a.act_outputs(op_a)[0], state.view_b.act_outputs(op_b)[0]
        draft = state.draft_of(out_a)
        if draft is not None:
            if "position" not in draft.evidence:
                draft.evidence = (*draft.evidence, "position")
            continue
        shape_a, shape_b = state.view_a.shape(out_a), state.view_b.shape(out_b)
        evidence: tuple[str, ...] = ("structure", "position")
        if shape_a is not None and shape_a == shape_b:
            evidence = (*evidence, "shape")
        state.pair(out_a, out_b, POSITION_CONFIDENCE, evidence)
        logger.debug(
            "paired %s (%s) with %s (%s) by position",
            op_a,
            state.view_a.op(op_a).op_type,
            op_b,
            state.view_b.op(op_b).op_type,
        )
    return made
