"""Pair parameters through the matched units that read them, with the transform between them.

Parameters pair by *role*, never by name:

* ``linear``: weights by the ``weight_transposed`` flags of the two ``MatMul`` ops (torch stores
  ``[out, in]``, paddle ``[in, out]``: ``{"transpose": [1, 0]}``), biases as they are;
* a fused unit against split ones (one ``qkv`` projection against ``q``, ``k``, ``v``): A's weight,
  transposed to B's layout if needed, ``{"split": axis, "sections": [...]}`` along B's output
  axis (``{"concat": axis}`` the other way round); biases along axis 0;
* convolutions: kernel and bias (the ``Add`` marked ``bias_of``) as they are;
* layers a eager trace keeps whole (attention, recurrent layers, registered transforms): by
  rule, name, role and shape (:mod:`._unit_params`);
* any other unit (norms, embeddings, LSTM, ``Add(x, pos_embed)``...): operand by operand (sorted
  by shape for commutative ops), and within an operand the parameters it is computed from, in
  operand order (``BatchNormalization``'s scale, bias, mean, variance are inputs 1 to 4 on both
  sides, whatever the buffers are called); equal shapes pair as they are, reversed 2-D shapes
  with a transpose, anything else not at all.

A parameter read by several units (a layer called twice) pairs once; a later, different pairing
is logged and counted in ``conflicts``. A tied weight (one tensor read by two layers) pairs once
per partner on the other side: tied on one side only, each use pairs with its own tensor there
(``tied`` in the evidence); tied on both, the one pair lists each further layer reading it in
``also_used_in``. A pair's modules are the layers that read its tensors.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from padiff_ir._paths import ancestors, common_ancestor, within
from padiff_ir.matching._unit_params import pair_unit_params
from padiff_ir.matching._view import COMMUTATIVE
from padiff_ir.matching.transform_types import (
    IDENTITY,
    ArrayTransform,
    Concat,
    Split,
    Transform,
    Transpose,
)
from padiff_ir.matching.transforms import TensorInfo, class_family
from padiff_ir.matching.types import ParamPair

if TYPE_CHECKING:
    from collections.abc import Sequence

    from padiff_ir.ir.graph import OpNode
    from padiff_ir.matching._anchors import Unit
    from padiff_ir.matching._view import SideView

__all__ = ["ParamMatcher", "owner_module"]

logger = logging.getLogger(__name__)


def owner_module(graph_modules: dict[str, str], param_name: str) -> str:
    """The module owning ``param_name``: its longest dotted prefix that is a module path."""
    return next((path for path in ancestors(param_name) if path in graph_modules), "")


def _static(shape: tuple[int | str | None, ...] | None) -> tuple[int, ...]:
    """A parameter's shape as ints (``-1`` for a dimension the graph leaves symbolic)."""
    return tuple(d if isinstance(d, int) else -1 for d in shape or ())


class ParamMatcher:
    """Collects :class:`ParamPair` from unit pairs, each parameter of A at most once."""

    def __init__(self, view_a: SideView, view_b: SideView) -> None:
        self.view_a = view_a
        self.view_b = view_b
        self.pairs: list[ParamPair] = []
        self.paired_a: dict[str, int] = {}
        self.paired_b: dict[str, int] = {}
        self.conflicts = 0

    # -- helpers ---------------------------------------------------------------------------
    def _name(self, view: SideView, tensor: str) -> str:
        info = view.graph.tensors[tensor]
        return info.param_name or tensor

    def _add(
        self,
        a: Sequence[str],
        b: Sequence[str],
        transform: Transform,
        evidence: tuple[str, ...],
        modules: tuple[str, str] | None = None,
        sites: tuple[str, str] | None = None,
    ) -> None:
        """Pair A's tensors ``a`` with B's ``b``; ``modules`` name the pair's modules, else
        their owners by name, or ``sites`` (the modules of the ops reading them) where an
        owner lies outside its site (a tied weight read by a layer that does not own it)."""
        names_a = tuple(self._name(self.view_a, t) for t in a)
        names_b = tuple(self._name(self.view_b, t) for t in b)
        if modules is None:
            owners = (_common_owner(self.view_a, names_a), _common_owner(self.view_b, names_b))
            modules = owners if sites is None else _used_in(owners, sites)
        known = {self.paired_a.get(n) for n in names_a} | {self.paired_b.get(n) for n in names_b}
        tied = len(names_a) == len(names_b) == 1 and (
            (names_a[0] in self.paired_a) != (names_b[0] in self.paired_b)
        )
        if tied:  # one side's tensor serves two layers (a tied embedding and output head)
            evidence = (*evidence, "tied")
        elif known != {None}:
            index = next(iter(known)) if len(known) == 1 else None
            if index is None or (self.pairs[index].a, self.pairs[index].b) != (names_a, names_b):
                self.conflicts += 1
                logger.debug("parameters %s / %s already paired otherwise", names_a, names_b)
            else:
                self._another_use(index, modules[0])
            return
        index = len(self.pairs)
        self.pairs.append(
            ParamPair(
                a=names_a,
                b=names_b,
                module_a=modules[0],
                module_b=modules[1],
                transform=transform,
                evidence=evidence,
            )
        )
        for n in names_a:
            self.paired_a.setdefault(n, index)
        for n in names_b:
            self.paired_b.setdefault(n, index)

    def _another_use(self, index: int, module_a: str) -> None:
        """The pair at ``index`` read again, by A's ``module_a`` (tied on both sides)."""
        pair = self.pairs[index]
        if module_a == pair.module_a or module_a in pair.also_used_in:
            return
        evidence = pair.evidence if "tied" in pair.evidence else (*pair.evidence, "tied")
        self.pairs[index] = replace(
            pair, evidence=evidence, also_used_in=(*pair.also_used_in, module_a)
        )

    def _shape(self, view: SideView, tensor: str) -> tuple[Any, ...]:
        shape = view.shape(tensor)
        return tuple(shape) if shape is not None else ()

    def _simple(
        self,
        a: str,
        b: str,
        evidence: tuple[str, ...],
        transpose: bool | None = None,
        sites: tuple[str, str] | None = None,
    ) -> bool:
        shape_a, shape_b = self._shape(self.view_a, a), self._shape(self.view_b, b)
        if transpose is None:
            if shape_a == shape_b:
                transpose = False
            elif len(shape_a) == 2 and shape_a == shape_b[::-1]:
                transpose = True
            else:
                return False
        expected = shape_a[::-1] if transpose else shape_a
        if len(shape_a) == 2 and expected != shape_b:
            return False
        transform = ArrayTransform(Transpose((1, 0))) if transpose else IDENTITY
        self._add((a,), (b,), transform, evidence, sites=sites)
        return True

    # -- unit pairs ------------------------------------------------------------------------
    def add_units(self, units_a: tuple[Unit, ...], units_b: tuple[Unit, ...]) -> None:
        if len(units_a) == 1 and len(units_b) == 1:
            self._one(units_a[0], units_b[0])
        elif units_a[0].family == "linear":
            self._linear_group(units_a, units_b)
        elif units_a[0].family in ("Conv", "ConvTranspose"):
            self._conv_group(units_a, units_b)

    def _one(self, ua: Unit, ub: Unit) -> None:
        op_a, op_b = self.view_a.op(ua.head), self.view_b.op(ub.head)
        sites = (op_a.module_path, op_b.module_path)
        if ua.family == "linear" and ua.weight and ub.weight:
            self._simple(
                ua.weight,
                ub.weight,
                ("param-anchor", "linear-weight"),
                transpose=ua.transposed != ub.transposed,
                sites=sites,
            )
            if ua.bias and ub.bias:
                self._simple(ua.bias, ub.bias, ("param-anchor", "linear-bias"), sites=sites)
            return
        if ua.family in ("Conv", "ConvTranspose") and ua.weight and ub.weight:
            self._simple(
                ua.weight, ub.weight, ("param-anchor", "conv-weight"), transpose=False, sites=sites
            )
            if ua.bias and ub.bias:
                self._simple(ua.bias, ub.bias, ("param-anchor", "conv-bias"), sites=sites)
            return
        if op_a.meta.get("module_unit") and op_b.meta.get("module_unit"):
            self._whole(op_a, op_b)
            return
        for unit_a, unit_b in zip(ua.ops, ub.ops):
            self._by_role(unit_a, unit_b)

    def _whole(self, op_a: OpNode, op_b: OpNode) -> None:
        """Two layers kept whole: their parameters pair by rule, name, role and shape."""
        infos_a = self._unit_tensors(self.view_a, op_a)
        infos_b = self._unit_tensors(self.view_b, op_b)
        result = pair_unit_params(
            op_a.meta["module_unit"],
            self.view_a.graph.framework,
            infos_a,
            self.view_b.graph.framework,
            infos_b,
        )
        for names_a, names_b, transform, evidence in result.specs:
            self._add(
                [infos_a[n].name for n in names_a],
                [infos_b[n].name for n in names_b],
                transform,
                ("param-anchor", *evidence),
                modules=(op_a.module_path, op_b.module_path),
            )

    def _unit_tensors(self, view: SideView, op: OpNode) -> dict[str, TensorInfo]:
        prefix = f"{op.module_path}." if op.module_path else ""
        modules = view.graph.modules
        found = {}
        for tensor in op.inputs:
            info = view.graph.tensors.get(tensor)
            if info is None or info.param_name is None:
                continue
            name = info.param_name
            owner = owner_module(modules, name)
            base = view.graph.meta.get("base_layers", {}).get(owner, "")
            family = class_family(modules.get(owner, ""), view.graph.framework, base)
            relative = name[len(prefix) :] if name.startswith(prefix) else name
            found[relative] = TensorInfo(tensor, relative, _static(info.shape), family)
        return found

    def _by_role(self, op_a: str, op_b: str) -> None:
        slots_a = self._role_slots(self.view_a, op_a)
        slots_b = self._role_slots(self.view_b, op_b)
        if len(slots_a) != len(slots_b):
            return
        family = self.view_a.facts[op_a].family
        for sources_a, sources_b in zip(slots_a, slots_b):
            if len(sources_a) != len(sources_b):
                continue
            for a, b in zip(sources_a, sources_b):
                self._simple(a, b, ("param-anchor", f"role:{family}"))

    def _role_slots(self, view: SideView, op: str) -> list[tuple[str, ...]]:
        facts = view.facts[op]
        slots = [facts.sources[s] for s in facts.const_slots if s in facts.sources]
        if facts.family in COMMUTATIVE:
            slots.sort(key=lambda srcs: tuple(self._shape(view, t) for t in srcs))
        return slots

    def _linear_group(self, units_a: tuple[Unit, ...], units_b: tuple[Unit, ...]) -> None:
        if len(units_a) != 1 and len(units_b) != 1:
            return
        if any(u.weight is None for u in (*units_a, *units_b)):
            return
        flags_a = {u.transposed for u in units_a}
        flags_b = {u.transposed for u in units_b}
        if len(flags_a) != 1 or len(flags_b) != 1:
            return
        transposed_a, transposed_b = flags_a.pop(), flags_b.pop()
        out_axis = 0 if transposed_b else 1
        transpose = Transpose((1, 0)) if transposed_a != transposed_b else None
        fused_b = len(units_b) == 1
        sections = tuple(  # -1: a size the graph leaves symbolic
            u.out_dim if u.out_dim is not None else -1 for u in (units_a if fused_b else units_b)
        )
        transform = ArrayTransform(transpose, _regroup(fused_b, out_axis, sections))
        self._add(
            [u.weight for u in units_a if u.weight],
            [u.weight for u in units_b if u.weight],
            transform,
            ("param-anchor", "linear-weight", "split-group"),
        )
        if all(u.bias for u in (*units_a, *units_b)):
            bias_transform = ArrayTransform(regroup=_regroup(fused_b, 0, sections))
            self._add(
                [u.bias for u in units_a if u.bias],
                [u.bias for u in units_b if u.bias],
                bias_transform,
                ("param-anchor", "linear-bias", "split-group"),
            )

    def _conv_group(self, units_a: tuple[Unit, ...], units_b: tuple[Unit, ...]) -> None:
        if (len(units_a) != 1 and len(units_b) != 1) or any(
            u.weight is None for u in (*units_a, *units_b)
        ):
            return
        axis = 0 if units_a[0].family == "Conv" else 1
        fused_b = len(units_b) == 1
        members = units_a if fused_b else units_b
        sections = tuple(
            self._shape(self.view_a if fused_b else self.view_b, u.weight)[axis]
            for u in members
            if u.weight
        )
        self._add(
            [u.weight for u in units_a if u.weight],
            [u.weight for u in units_b if u.weight],
            ArrayTransform(regroup=_regroup(fused_b, axis, sections)),
            ("param-anchor", "conv-weight", "split-group"),
        )
        if all(u.bias for u in (*units_a, *units_b)):
            self._add(
                [u.bias for u in units_a if u.bias],
                [u.bias for u in units_b if u.bias],
                ArrayTransform(regroup=_regroup(fused_b, 0, sections)),
                ("param-anchor", "conv-bias", "split-group"),
            )


def _regroup(fused_b: bool, axis: int, sections: tuple[int, ...]) -> Split | Concat:
    """A's pieces joined into B's fused tensor, or A's fused tensor cut into B's pieces."""
    return Concat(axis, sections) if fused_b else Split(axis, sections)


def _common_owner(view: SideView, names: Sequence[str]) -> str:
    return common_ancestor(owner_module(view.graph.modules, n) for n in names)


def _used_in(owners: tuple[str, str], sites: tuple[str, str]) -> tuple[str, str]:
    """Each side's owner, or the module using the tensor where the owner lies outside it (the
    second layer of a tied pair owns the weight the first reads).

    Example:
        >>> _used_in(("second", "embed"), ("first", ""))
        ('first', 'embed')
    """
    return (
        owners[0] if within(owners[0], sites[0]) else sites[0],
        owners[1] if within(owners[1], sites[1]) else sites[1],
    )
