"""Anchors: the parametric layers of a graph, with a signature that survives both exporters.

Every activation op that reads a parameter (directly or through ops computing it: a slice, a
gate reordering, an expand) heads a *unit*:

* ``linear``: a ``MatMul`` with a 2-D weight and, when the only reader of its output adds a 1-D
  parameter, that bias ``Add``; signature ``(in, out, has_bias)`` with the weight read through
  the canonical pass's ``weight_transposed`` flag, so torch ``[out, in]`` equals paddle
  ``[in, out]``;
* ``Conv``/``ConvTranspose``: with the bias ``Add`` the canonical pass marks ``bias_of``;
  signature ``(kernel shape, has_bias, group)``;
* anything else (norms, embeddings, LSTM, ``Add(x, pos_embed)``...): the op alone; signature its
  family and the shapes of the parameters each operand comes from (sorted for commutative ops;
  a matrix and its transpose alike for a library layer a eager trace keeps opaque);
  a layer a eager trace keeps whole (``meta["module_unit"]``: attention, recurrent layers) is
  signed by its family alone, as its parameters differ in layout between frameworks.

The matcher aligns *tokens*, not units: sibling ``linear`` (or conv) units reading the same
activation (after layout ops) with the same input size form one token whose signature adds up
their outputs. A fused ``qkv`` projection ``E -> 3E`` and three ``E -> E`` projections then get
the same signature, and the token pair becomes an N:M group. Each token also records a
*context*: the signature of the unit, or the family of the op, that makes its input, which
breaks ties between equal signatures in the alignment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from padiff_ir._paths import within
from padiff_ir.matching._view import COMMUTATIVE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from padiff_ir.matching._view import SideView

__all__ = ["Token", "Unit", "build_tokens", "build_units", "transparent_root"]

logger = logging.getLogger(__name__)


@dataclass
class Unit:
    """One parametric layer occurrence (a layer called twice makes two units).

    Attributes:
        index: position among the side's units (topological).
        family: ``linear``, ``Conv``, ``ConvTranspose`` or the head op's family.
        head: the op reading the weight; ``ops`` adds the bias ``Add`` when there is one.
        key: the signature (see the module docstring), pin included.
        root: the head's first activation operand, through layout ops.
        output: the unit's output (the bias ``Add``'s, else the head's); ``raw``: the head's.
        in_dim / out_dim: for ``linear`` units.
        transposed: the weight is stored ``[out, in]`` (``weight_transposed``).
        weight / bias: parameter tensor names (``None`` when computed or absent).
    """

    index: int
    family: str
    head: str
    ops: tuple[str, ...]
    key: tuple[Any, ...]
    root: str | None
    output: str
    raw: str
    in_dim: int | None = None
    out_dim: int | None = None
    transposed: bool = False
    weight: str | None = None
    bias: str | None = None
    module: str = ""


@dataclass
class Token:
    """Units aligned as one: a single unit or siblings that may be fused on the other side."""

    units: tuple[Unit, ...]
    key: tuple[Any, ...]
    context: tuple[Any, ...]

    @property
    def rank(self) -> int:
        return self.units[0].index


def transparent_root(view: SideView, tensor: str) -> str:
    """``tensor`` traced back through layout and copy ops to the op that computed its values."""
    for _ in range(64):
        producer = view.producer(tensor)
        if producer is None or producer in view.ignored:
            return tensor
        facts = view.facts[producer]
        if facts.kind != "transparent" or not facts.act_slots:
            return tensor
        tensor = view.op(producer).inputs[facts.act_slots[0]]
    return tensor


def _param_shape(view: SideView, tensor: str) -> tuple[Any, ...]:
    shape = view.shape(tensor)
    return tuple(shape) if shape is not None else ()


def _unordered_matrix(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """A 2-D shape with its dimensions in one order (a matrix and its transpose alike)."""
    return tuple(sorted(shape, key=str)) if len(shape) == 2 else shape


def _direct_param(view: SideView, tensor: str) -> str | None:
    info = view.graph.tensors.get(tensor)
    return tensor if info is not None and info.param_name is not None else None


def _linear(view: SideView, name: str, claimed: set[str], index: int, pin: Any) -> Unit | None:
    op = view.op(name)
    facts = view.facts[name]
    if (
        op.op_type != "MatMul"
        or facts.act_slots != (0,)
        or facts.const_slots != (1,)
        or 1 not in facts.sources
    ):
        return None
    shape = view.shape(op.inputs[1])
    if shape is None or len(shape) != 2 or not all(isinstance(d, int) for d in shape):
        return None
    transposed = bool(op.meta.get("weight_transposed", False))
    in_dim, out_dim = (shape[1], shape[0]) if transposed else (shape[0], shape[1])
    raw = op.outputs[0]
    bias_op, bias = _bias_add(view, raw, claimed, lambda size: size == out_dim)
    ops = (name,) if bias_op is None else (name, bias_op)
    output = raw if bias_op is None else view.op(bias_op).outputs[0]
    return Unit(
        index,
        "linear",
        name,
        ops,
        (pin, "linear", in_dim, out_dim, bias_op is not None),
        transparent_root(view, op.inputs[0]),
        output,
        raw,
        in_dim,
        out_dim,
        transposed,
        _direct_param(view, op.inputs[1]),
        bias,
        op.module_path,
    )


def _bias_add(
    view: SideView, raw: str, claimed: set[str], fits: Any
) -> tuple[str | None, str | None]:
    """The ``Add`` of a 1-D parameter that is the only reader of ``raw``, and that parameter."""
    readers = view.consumers.get(raw, [])
    if len(readers) != 1 or raw in view.graph.outputs:
        return None, None
    reader = readers[0][0]
    facts = view.facts[reader]
    if (
        view.op(reader).op_type != "Add"
        or reader in claimed
        or len(facts.act_slots) != 1
        or len(facts.const_slots) != 1
        or facts.const_slots[0] not in facts.sources
    ):
        return None, None
    tensor = view.op(reader).inputs[facts.const_slots[0]]
    shape = view.shape(tensor)
    if shape is None or len(shape) != 1 or not fits(shape[0]):
        return None, None
    return reader, _direct_param(view, tensor)


def _conv(view: SideView, name: str, claimed: set[str], index: int, pin: Any) -> Unit | None:
    op = view.op(name)
    facts = view.facts[name]
    if (
        op.op_type not in ("Conv", "ConvTranspose")
        or facts.act_slots[:1] != (0,)
        or 1 not in facts.sources
    ):
        return None
    raw = op.outputs[0]
    bias_op = bias = None
    has_bias = False
    for reader, _ in view.consumers.get(raw, []):
        if view.op(reader).meta.get("bias_of") == name and reader not in claimed:
            reader_facts = view.facts[reader]
            if reader_facts.const_slots:
                # torch gives a bias-free conv a zero bias (Expand of 0): part of the unit,
                # but no parameter
                bias_op = reader
                slot = reader_facts.const_slots[0]
                has_bias = slot in reader_facts.sources
                bias = _direct_param(view, view.op(reader).inputs[slot])
            break
    ops = (name,) if bias_op is None else (name, bias_op)
    output = raw if bias_op is None else view.op(bias_op).outputs[0]
    key = (
        pin,
        op.op_type,
        _param_shape(view, op.inputs[1]),
        has_bias,
        int(op.attributes.get("group", 1)),
    )
    return Unit(
        index,
        op.op_type,
        name,
        ops,
        key,
        transparent_root(view, op.inputs[0]),
        output,
        raw,
        weight=_direct_param(view, op.inputs[1]),
        bias=bias,
        module=op.module_path,
    )


def _generic(view: SideView, name: str, index: int, pin: Any) -> Unit:
    op = view.op(name)
    facts = view.facts[name]
    slots = [
        tuple(_param_shape(view, p) for p in facts.sources[s])
        for s in facts.const_slots
        if s in facts.sources
    ]
    if facts.family == "Module":
        # a library layer an eager trace keeps opaque (a MoE router): torch stores its
        # matrices [out, in], paddle [in, out]
        slots = [tuple(_unordered_matrix(shape) for shape in slot) for slot in slots]
    if facts.family in COMMUTATIVE:
        slots.sort()
    root = transparent_root(view, op.inputs[facts.act_slots[0]]) if facts.act_slots else None
    output = view.act_outputs(name)[0] if view.act_outputs(name) else op.outputs[0]
    unit = op.meta.get("module_unit")
    # a layer kept whole (eager trace): its family, not its parameter shapes, is its signature
    key = (pin, "module", unit) if unit else (pin, facts.family, tuple(slots))
    return Unit(
        index, facts.family, name, (name,), key, root, output, output, module=op.module_path
    )


def build_units(view: SideView, pins: Sequence[str] = ()) -> list[Unit]:
    """The parametric units of ``view``, in topological order (see the module docstring).

    ``pins`` are module paths of this side pinned by a layer map; a unit inside the ``i``-th
    gets ``i`` in its key (the innermost pin wins), so it only matches inside the partner.
    """
    units: list[Unit] = []
    claimed: set[str] = set()
    for name in view.order:
        if name in claimed or name in view.ignored or not view.facts[name].sources:
            continue
        pin = _pin_of(view.op(name).module_path, pins)
        unit = (
            _linear(view, name, claimed, len(units), pin)
            or _conv(view, name, claimed, len(units), pin)
            or _generic(view, name, len(units), pin)
        )
        claimed.update(unit.ops)
        units.append(unit)
    return units


def _pin_of(path: str, pins: Sequence[str]) -> int | None:
    best, depth = None, -1
    for i, pin in enumerate(pins):
        if within(path, pin) and len(pin) > depth:
            best, depth = i, len(pin)
    return best


def _group_key(unit: Unit) -> tuple[Any, ...] | None:
    """Units with equal group keys and the same root are siblings that may be fused."""
    if unit.family == "linear":
        return (unit.key[0], "linear", unit.in_dim, unit.key[4])
    if unit.family in ("Conv", "ConvTranspose"):
        pin, op_type, shape, has_bias, group = unit.key
        rest = shape[1:] if op_type == "Conv" else (shape[0], *shape[2:])
        return (pin, op_type, rest, has_bias, group)
    return None


def _token_key(units: Sequence[Unit]) -> tuple[Any, ...]:
    first = units[0]
    if len(units) == 1 and first.family not in ("linear", "Conv", "ConvTranspose"):
        return first.key
    if first.family == "linear":
        return (*first.key[:3], sum(u.out_dim or 0 for u in units), first.key[4])
    pin, op_type, shape, has_bias, group = first.key
    axis = 0 if op_type == "Conv" else 1
    total = sum(u.key[2][axis] for u in units)
    shape = (*shape[:axis], total, *shape[axis + 1 :])
    return (pin, op_type, shape, has_bias, group)


def build_tokens(view: SideView, units: Sequence[Unit]) -> list[Token]:
    """Group sibling units into tokens (module docstring), in topological order."""
    groups: dict[tuple[Any, ...], list[Unit]] = {}
    order: list[tuple[Any, ...]] = []
    for unit in units:
        gkey = _group_key(unit)
        ident = (
            (gkey, unit.root)
            if gkey is not None and unit.root is not None
            else ("single", unit.index)
        )
        if ident not in groups:
            groups[ident] = []
            order.append(ident)
        groups[ident].append(unit)
    by_output = {u.output: u for u in units}
    tokens = []
    for ident in order:
        members = tuple(groups[ident])
        tokens.append(Token(members, _token_key(members), _context(view, members[0], by_output)))
    tokens.sort(key=lambda t: t.rank)
    return tokens


def _context(view: SideView, unit: Unit, by_output: dict[str, Unit]) -> tuple[Any, ...]:
    if unit.root is None:
        return ("none",)
    if unit.root in by_output:
        return ("unit", by_output[unit.root].key)
    producer = view.producer(unit.root)
    if producer is None:
        graph_inputs = view.graph.inputs
        return ("input", graph_inputs.index(unit.root) if unit.root in graph_inputs else -1)
    return ("op", view.facts[producer].family)
