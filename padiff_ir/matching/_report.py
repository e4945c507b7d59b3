"""Results: tensor pairs with layouts, what stayed unmatched and why.

Every activation op left without a pair, and every parameter, gets a reason a user can act on:
a layout op or a no-op the other side does without, a constant scale applied elsewhere, a piece
of a computation the other side makes with different ops (``Erf`` of a decomposed ``Gelu``),
a parametric layer with no counterpart of the same signature, a parameter no op reads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from padiff_ir._paths import leaf, within, within_any
from padiff_ir.matching._params import owner_module
from padiff_ir.matching._state import layout_between
from padiff_ir.matching.transforms import SKIPPED_TENSORS
from padiff_ir.matching.types import TensorPair, Unmatched

if TYPE_CHECKING:
    from padiff_ir.matching._anchors import Unit
    from padiff_ir.matching._module_tree import ModuleTree
    from padiff_ir.matching._seeds import ValueCheck
    from padiff_ir.matching._state import Draft, PairState
    from padiff_ir.matching._view import SideView

__all__ = [
    "drop_internal",
    "fused_owners",
    "rank_of",
    "tensor_pair",
    "unmatched_ops",
    "unmatched_params",
]

logger = logging.getLogger(__name__)


def rank_of(view: SideView, tensors: tuple[str, ...]) -> int:
    """Position of the op making ``tensors[0]`` (``-1`` for a graph input)."""
    producer = view.producer(tensors[0])
    return view.rank[producer] if producer is not None else -1


def tensor_pair(state: PairState, draft: Draft, same: ValueCheck | None) -> TensorPair:
    """The :class:`TensorPair` of a draft: layout, producers, and values when given."""
    view_a, view_b = state.view_a, state.view_b
    producer_a, producer_b = view_a.producer(draft.a[0]), view_b.producer(draft.b[0])
    evidence, confidence = draft.evidence, draft.confidence
    if draft.is_group:
        group: dict[str, Any] = {"concat_axis": draft.concat_axis}
        shapes_b = [view_b.shape(t) for t in draft.b]
        shapes_a = [view_a.shape(t) for t in draft.a]
        joined_a, joined_b = (
            _joined(shapes_a, draft.concat_axis),
            _joined(shapes_b, draft.concat_axis),
        )
        extra = layout_between(joined_a, joined_b)
        if extra:
            group.update(extra)
        layout: dict[str, Any] | None = group
    else:
        layout = layout_between(view_a.shape(draft.a[0]), view_b.shape(draft.b[0]))
        if (
            producer_a is not None
            and producer_b is not None
            and "structure" not in evidence
            and "param-anchor" not in evidence
            and "split-group" not in evidence
            and view_a.facts[producer_a].family != view_b.facts[producer_b].family
        ):
            evidence = (*evidence, "decomposition")  # e.g. Gelu against Erf, Mul, Add...
        if same is not None:
            agree = same(draft.a[0], draft.b[0])
            if agree is True:
                evidence, confidence = (*evidence, "values"), max(confidence, 0.99)
            elif agree is False:
                evidence, confidence = (*evidence, "values-differ"), min(confidence, 0.5)
    return TensorPair(
        a=draft.a,
        b=draft.b,
        confidence=round(confidence, 3),
        evidence=evidence,
        module_a=view_a.op(producer_a).module_path if producer_a else "",
        module_b=view_b.op(producer_b).module_path if producer_b else "",
        op_a=view_a.op(producer_a).op_type if producer_a else "",
        op_b=view_b.op(producer_b).op_type if producer_b else "",
        layout=layout,
    )


def _joined(shapes: list[tuple[Any, ...] | None], axis: int | None) -> tuple[Any, ...] | None:
    if any(s is None for s in shapes) or axis is None or not shapes:
        return None
    first = list(shapes[0])  # type: ignore[arg-type]
    if len(shapes) == 1:
        return tuple(first)
    index = axis % len(first)
    dims = [s[index] for s in shapes]  # type: ignore[index]
    first[index] = sum(dims) if all(isinstance(d, int) for d in dims) else None
    return tuple(first)


def drop_internal(
    state: PairState, boxed: list[Any], tree_a: ModuleTree, tree_b: ModuleTree
) -> list[Draft]:
    """Drafts minus the tensors inside modules compared as black boxes by the layer map."""
    if not boxed:
        return state.drafts
    internal: set[str] = set()
    view_a = state.view_a
    for pair in boxed:
        boundary = set(tree_a.outputs.get(pair.a, {}))
        for name in view_a.order:
            path = view_a.op(name).module_path
            if within(path, pair.a):
                internal.update(t for t in view_a.act_outputs(name) if t not in boundary)
    return [d for d in state.drafts if not all(t in internal for t in d.a)]


def fused_owners(
    pairs: list[Any], modules_a: dict[str, str], modules_b: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Reasons for the modules whose parameters are fused with others on the other side."""
    fused_a: dict[str, str] = {}
    fused_b: dict[str, str] = {}
    for pair in pairs:
        if len(pair.b) > 1:
            for name in pair.b:
                owner = owner_module(modules_b, name)
                if owner != pair.module_b:
                    fused_b[owner] = (
                        f"its parameters are fused with others' into "
                        f"{pair.module_a!r} on the other side"
                    )
        if len(pair.a) > 1:
            for name in pair.a:
                owner = owner_module(modules_a, name)
                if owner != pair.module_a:
                    fused_a[owner] = (
                        f"its parameters are fused with others' into "
                        f"{pair.module_b!r} on the other side"
                    )
    return fused_a, fused_b


def unmatched_ops(state: PairState, side: str, boxed: list[Any]) -> list[Unmatched]:
    """Activation ops of one side in no pair (nor a paired unit, nor a black box), with why."""
    view = state.view_a if side == "a" else state.view_b
    other = state.view_b if side == "a" else state.view_a
    op_pairs = state.op_a if side == "a" else state.op_b
    one = state.one_a if side == "a" else state.one_b
    groups = state.group_a if side == "a" else state.group_b
    partner_of = state.one_a if side == "a" else state.one_b
    boxes = [p.a if side == "a" else p.b for p in boxed]
    found = []
    covered = state.covered_a if side == "a" else state.covered_b
    for name in view.order:
        if name in op_pairs or name in view.ignored or name in covered:
            continue
        outs = view.act_outputs(name)
        if any(t in one or t in groups for t in outs):
            continue
        op = view.op(name)
        if within_any(op.module_path, boxes):
            continue
        found.append(
            Unmatched(
                side,
                "op",
                name,
                _op_reason(view, other, name, one, partner_of),
                module=op.module_path,
                op_type=op.op_type,
            )
        )
    return found


def _op_reason(
    view: SideView, other: SideView, name: str, paired: dict[str, str], partner_of: dict[str, str]
) -> str:
    facts = view.facts[name]
    op_type = view.op(name).op_type
    if facts.family == "identity" and op_type not in ("Identity", "Dropout"):
        amount = "1" if facts.scalar is None and op_type in ("Mul", "Div") else "0"
        if facts.scalar is not None:
            amount = f"{facts.scalar:g}"
        return (
            f"a no-op ({op_type} by {amount}) that the other side does not have; its "
            "values are those of its input"
        )
    if facts.kind == "transparent":
        return (
            f"layout-only op ({op_type}) with no counterpart on the other side; its values "
            "are those of its input, re-laid out"
        )
    decomposed = _decomposition_of(view, other, name, paired, partner_of)
    if decomposed is not None:
        return decomposed
    if facts.kind == "scalar":
        return (
            f"{op_type} by a constant scalar that the other side applies differently "
            "(elsewhere, combined or not at all)"
        )
    if facts.sources:
        return (
            f"{op_type} reading parameters: no layer with the same signature on the other "
            "side at this place of the data flow"
        )
    return (
        f"no {facts.family} op on the other side reads the counterparts of its inputs "
        "(present on one side only, or computed differently)"
    )


def _decomposition_of(
    view: SideView, other: SideView, name: str, paired: dict[str, str], partner_of: dict[str, str]
) -> str | None:
    """A reason when ``name`` helps make a paired tensor that the other side makes otherwise."""
    frontier, seen = list(view.act_outputs(name)), set()
    for _ in range(16):
        if not frontier:
            break
        tensor = frontier.pop(0)
        if tensor in seen:
            continue
        seen.add(tensor)
        if tensor in paired:
            producer = other.producer(partner_of[tensor])
            mine = view.producer(tensor)
            if (
                producer is None
                or mine is None
                or other.op(producer).op_type == view.op(mine).op_type
            ):
                return None
            return (
                f"part of the computation of {tensor!r}, which the other side makes with "
                f"different ops (its {other.op(producer).op_type})"
            )
        for reader, _ in view.consumers.get(tensor, []):
            frontier.extend(view.act_outputs(reader))
    return None


def unmatched_params(
    view: SideView,
    paired: dict[str, int],
    units: list[Unit],
    unit_pairs: list[tuple[tuple[Unit, ...], tuple[Unit, ...]]],
    side: str,
    op_pairs: dict[str, str],
) -> list[Unmatched]:
    """Parameters of one side in no parameter pair, with the reason."""
    in_pairs = {u.index for pair in unit_pairs for u in (pair[0] if side == "a" else pair[1])}
    unit_of_param: dict[str, Unit] = {}
    for each in units:
        for op in each.ops:
            for tensors in view.facts[op].sources.values():
                for tensor in tensors:
                    unit_of_param.setdefault(tensor, each)
    found = []
    seen: set[str] = set()
    for tensor, info in view.graph.tensors.items():
        name = info.param_name
        if name is None or name in paired or name in seen:
            continue
        seen.add(name)
        readers = [c for c in info.consumers]
        if readers and all(view.graph.ops[c].name in view.ignored for c in readers):
            continue
        unit = unit_of_param.get(tensor)
        if leaf(name) in SKIPPED_TENSORS:
            reason = SKIPPED_TENSORS[leaf(name)]
        elif not readers:
            reason = "no op of the graph reads it"
        elif unit is None:
            reason = "it reaches no activation op (only shape or constant computations)"
        elif unit.index not in in_pairs:
            reason = (
                f"its layer ({view.op(unit.head).op_type} in {unit.module!r}) has no "
                "counterpart with the same signature on the other side"
            )
        else:
            reason = (
                "its layer is matched but no parameter of the same role and shape "
                "(or a transpose of it) is there on the other side"
            )
        found.append(
            Unmatched(
                side,
                "tensor",
                name,
                reason,
                module=unit.module if unit else "",
                op_type=view.op(unit.head).op_type if unit else "",
            )
        )
    return found
