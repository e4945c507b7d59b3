"""Pair the parameters of two layers matched whole (a ``Module`` unit of a eager trace).

Multi-head attention, recurrent layers, layers with a registered weight transform and black
boxes are kept whole in a graph built from a eager trace (their internals differ between the
frameworks). Their parameters pair here, in this order:

1. a registered weight transform (``custom:`` family): every tensor, ``{"module": family}``;
2. a built-in rule (:func:`~padiff_ir.matching.transforms.builtin_param_pairs`: torch's fused
   ``in_proj_weight`` against paddle's ``q_proj``/``k_proj``/``v_proj``);
3. the same name once paddle's aliases are read as torch's (``_mean`` is ``running_mean``),
   with a layout the shapes allow;
4. the same role and shape, then the same shape;
5. the same role with shapes that disagree: paired, so the conflict is reported.

What is left is unmatched, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from padiff_ir._paths import join, leaf, owner
from padiff_ir.matching.transform_types import IDENTITY, ModuleTransform, Transform
from padiff_ir.matching.transforms import (
    SKIPPED_TENSORS,
    TensorInfo,
    builtin_param_pairs,
    layout_transform,
    param_role,
)

__all__ = ["UnitParams", "pair_unit_params"]

Spec: TypeAlias = tuple[tuple[str, ...], tuple[str, ...], Transform, tuple[str, ...]]


@dataclass(frozen=True)
class UnitParams:
    """The outcome: ``(names_a, names_b, transform, evidence)`` specs (names relative to the
    units) and what stayed without a partner on each side."""

    specs: tuple[Spec, ...]
    left_a: tuple[TensorInfo, ...]
    left_b: tuple[TensorInfo, ...]


def _canonical(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(shape)) if len(shape) == 2 else shape


def _normalised(name: str) -> str:
    return join(owner(name), param_role(name))


def pair_unit_params(
    family: str,
    framework_a: str,
    params_a: Mapping[str, TensorInfo],
    framework_b: str,
    params_b: Mapping[str, TensorInfo],
) -> UnitParams:
    """Pair the tensors of two units of ``family`` (relative name -> :class:`TensorInfo`).

    Examples:
        >>> a = {"weight": TensorInfo("fc.weight", "weight", (3, 2), "linear")}
        >>> b = {"weight": TensorInfo("fc.weight", "weight", (2, 3), "linear")}
        >>> [(x, y, t.describe(), e) for x, y, t, e in
        ...  pair_unit_params("linear", "torch", a, "paddle", b).specs]
        [(('weight',), ('weight',), 'transpose[1, 0]', ('name', 'shape'))]
    """
    left_a, left_b = dict(params_a), dict(params_b)
    specs: list[Spec] = []
    if family.startswith("custom:"):
        if left_a or left_b:
            specs.append((tuple(left_a), tuple(left_b), ModuleTransform(family), ("registered",)))
        return UnitParams(tuple(specs), (), ())
    for names_a, names_b, transform in (
        builtin_param_pairs(family, framework_a, left_a, framework_b, left_b) or []
    ):
        specs.append((names_a, names_b, transform, ("builtin-layout",)))
        for name in names_a:
            left_a.pop(name)
        for name in names_b:
            left_b.pop(name)

    def transform_of(ta: TensorInfo, tb: TensorInfo) -> Transform | None:
        owner = "linear" if "linear" in (ta.family, tb.family) else ta.family
        role = param_role(ta.relative)
        return layout_transform(owner, role, framework_a, ta.shape, framework_b, tb.shape)

    def take(
        ta: TensorInfo, tb: TensorInfo, transform: Transform, evidence: tuple[str, ...]
    ) -> None:
        specs.append(((ta.relative,), (tb.relative,), transform, evidence))
        left_a.pop(ta.relative)
        left_b.pop(tb.relative)

    by_name_b = {_normalised(n): t for n, t in left_b.items()}
    for ta in list(left_a.values()):
        tb = by_name_b.get(_normalised(ta.relative))
        if (
            tb is not None
            and tb.relative in left_b
            and (by_name := transform_of(ta, tb)) is not None
        ):
            take(ta, tb, by_name, ("name", "shape"))
    for same_role in (True, False):
        for ta in list(left_a.values()):
            for tb in list(left_b.values()):
                if same_role and param_role(ta.relative) != param_role(tb.relative):
                    continue
                if _canonical(ta.shape) == _canonical(tb.shape):
                    by_shape = transform_of(ta, tb)
                    if by_shape is not None:
                        take(ta, tb, by_shape, ("role", "shape") if same_role else ("shape",))
                        break
    for ta in list(left_a.values()):  # same role, shapes disagree: a conflict to report
        role = param_role(ta.relative)
        tb = next((t for t in left_b.values() if param_role(t.relative) == role), None)
        if tb is not None:
            take(ta, tb, IDENTITY, ("role", "shape-conflict"))
    return UnitParams(tuple(specs), tuple(left_a.values()), tuple(left_b.values()))


def unmatched_reason(info: TensorInfo, other_class: str, other_path: str) -> str:
    """Why ``info`` has no partner in the other side's unit."""
    return SKIPPED_TENSORS.get(leaf(info.relative)) or (
        f"no tensor of {other_class} {other_path!r} fits {info.relative} {list(info.shape)}"
    )
