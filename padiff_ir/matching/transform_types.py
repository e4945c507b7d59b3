"""Typed parameter transforms: how the arrays of model A become the arrays of model B.

A :class:`~padiff_ir.matching.types.ParamPair`'s ``transform`` is one of three kinds
(:data:`Transform`):

- :class:`ArrayTransform`: layout steps applied in a fixed order, each optional: a
  :class:`Transpose` of every A array into B's layout; a :class:`Split` of the single array
  into B's pieces or a :class:`Concat` of A's arrays into B's one (axes in B's layout); a
  :class:`~padiff_ir.matching.layouts.RowLayout` permuting the fused side's rows (grouped qkv,
  gate/up order, rotary row pairs); an ``offset`` added to the values (a norm computing
  ``x * (1 + w)``). No step is the identity.
- :class:`RegisteredTransform`: an array transform registered with
  :func:`~padiff_ir.matching.transforms.register_transform`, by name.
- :class:`ModuleTransform`: the whole module pair is copied by a function registered with
  :func:`~padiff_ir.matching.transforms.register_weight_transform` (PaDiff's "special init").

Each has ``apply`` (A's arrays to B's), ``invert`` (the transform from B to A), ``describe``
(a short text) and a JSON form (``to_dict`` / :func:`transform_from_dict`), which is the dict
layer maps and results have always held (``{"transpose": [1, 0], "split": 1, "sections": [4,
4, 4]}``), so files written before these types load as they are.

Example:
    >>> import numpy as np
    >>> t = transform_from_dict({"transpose": [1, 0], "split": 1, "sections": [2, 2]})
    >>> t.describe(), t.invert().to_dict()
    ('transpose[1, 0]+split(axis=1)', {'transpose': [1, 0], 'concat': 0, 'sections': [2, 2]})
    >>> [p.shape for p in t.apply([np.zeros((4, 3))])]
    [(3, 2), (3, 2)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

import numpy as np

from padiff_ir.errors import WeightAssignError
from padiff_ir.matching._registry import named_transform
from padiff_ir.matching.layouts import RowLayout

__all__ = [
    "ArrayTransform",
    "Concat",
    "IDENTITY",
    "ModuleTransform",
    "RegisteredTransform",
    "Split",
    "Transform",
    "TransformLike",
    "Transpose",
    "as_transform",
    "layer_map_entry",
    "transform_from_dict",
]

Arrays: TypeAlias = Sequence[np.ndarray]
Shapes: TypeAlias = Sequence[Sequence[int]]


@dataclass(frozen=True)
class Transpose:
    """Every A array permuted into B's layout (``numpy.transpose(x, perm)``)."""

    perm: tuple[int, ...]

    def inverse(self) -> Transpose:
        return Transpose(tuple(int(i) for i in np.argsort(self.perm)))


@dataclass(frozen=True)
class Split:
    """The single array cut along ``axis`` (B's layout) into pieces of ``sections``."""

    axis: int
    sections: tuple[int, ...]


@dataclass(frozen=True)
class Concat:
    """A's arrays joined along ``axis`` (B's layout); ``sections`` are their sizes along it."""

    axis: int
    sections: tuple[int, ...]


@dataclass(frozen=True)
class ArrayTransform:
    """Transpose, split or concat, row layout and offset, applied in that order.

    Attributes:
        transpose: the permutation of every array (``None``: none).
        regroup: a :class:`Split` (1:N) or a :class:`Concat` (N:1), ``None`` for 1:1.
        layout: the fused side's row layout (with neither split nor concat: B's rows are A's
            permuted, or the other way round with ``layout.inverse``).
        offset: added to the values (``0``: none).
    """

    transpose: Transpose | None = None
    regroup: Split | Concat | None = None
    layout: RowLayout | None = None
    offset: float = 0.0

    @property
    def sections(self) -> tuple[int, ...]:
        """The pieces' sizes along the split or concat axis (``()`` without one)."""
        return self.regroup.sections if self.regroup is not None else ()

    @property
    def is_identity(self) -> bool:
        return self == IDENTITY

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {}
        if self.transpose is not None:
            data["transpose"] = list(self.transpose.perm)
        if self.regroup is not None:
            data["split" if isinstance(self.regroup, Split) else "concat"] = self.regroup.axis
            data["sections"] = list(self.regroup.sections)
        if self.layout is not None:
            data["layout"] = self.layout.to_dict()
        if self.offset:
            data["offset"] = self.offset
        return data

    def describe(self) -> str:
        """``identity``, ``transpose[1, 0]``, ``transpose[1, 0]+split(axis=1)``..."""
        parts = []
        if self.transpose is not None:
            parts.append(f"transpose{list(self.transpose.perm)}")
        if isinstance(self.regroup, Split):
            parts.append(f"split(axis={self.regroup.axis})")
        if isinstance(self.regroup, Concat):
            parts.append(f"concat(axis={self.regroup.axis})")
        if self.layout is not None:
            parts.append(self.layout.describe())
        if self.offset:
            parts.append(f"offset({self.offset:+g})")
        return "+".join(parts) or "identity"

    def invert(self) -> ArrayTransform:
        """The transform from B's values to A's: a split along axis ``k`` of B's layout
        becomes a concat along axis ``perm[k]`` of A's."""
        perm = self.transpose.perm if self.transpose is not None else None

        def in_a(axis: int) -> int:
            return int(perm[axis]) if perm is not None else axis

        regroup: Split | Concat | None = None
        if isinstance(self.regroup, Split):
            regroup = Concat(in_a(self.regroup.axis), self.regroup.sections)
        elif isinstance(self.regroup, Concat):
            regroup = Split(in_a(self.regroup.axis), self.regroup.sections)
        layout = None
        if self.layout is not None:
            layout = self.layout.at(in_a(self.layout.axis))
            if self.regroup is None:
                layout = replace(layout, inverse=not layout.inverse)
        return ArrayTransform(
            self.transpose.inverse() if self.transpose is not None else None,
            regroup,
            layout,
            -self.offset if self.offset else 0.0,
        )

    def apply(self, arrays: Arrays, *, target_shapes: Shapes | None = None) -> list[np.ndarray]:
        """A's arrays in B's layout.

        Raises:
            WeightAssignError: the arrays do not fit the transform, or (with
                ``target_shapes``) the results do not have the expected shapes.
        """
        pieces = [np.asarray(a) for a in arrays]
        if self.transpose is not None:
            perm = list(self.transpose.perm)
            bad = [list(p.shape) for p in pieces if p.ndim != len(perm)]
            if bad:
                raise WeightAssignError(f"cannot transpose shape(s) {bad} by {perm}")
            # regroup in A's layout (rows stay contiguous, so permuting them is a fast copy),
            # then transpose once: cutting or joining along B's axis k is along A's perm[k]
            pieces = [np.transpose(p, perm) for p in self._in_a()._regroup(pieces)]
        else:
            pieces = self._regroup(pieces)
        if self.offset:
            pieces = [p + np.asarray(self.offset, dtype=p.dtype) for p in pieces]
        return _checked(self, pieces, target_shapes)

    def _in_a(self) -> ArrayTransform:
        """The split, concat and layout axes, given in B's layout, in A's."""
        perm = self.transpose.perm if self.transpose is not None else None
        if perm is None:
            return self
        regroup = self.regroup
        if regroup is not None:
            regroup = replace(regroup, axis=int(perm[regroup.axis]))
        layout = self.layout.at(int(perm[self.layout.axis])) if self.layout is not None else None
        return replace(self, regroup=regroup, layout=layout)

    def _rows(self, sections: Sequence[int]) -> np.ndarray:
        assert self.layout is not None
        try:
            return self.layout.permutation(sections)
        except ValueError as err:
            raise WeightAssignError(
                f"layout {self.layout.describe()} does not fit pieces of {list(sections)}: {err}"
            ) from err

    def _regroup(self, pieces: list[np.ndarray]) -> list[np.ndarray]:
        """The split, concat and row layout steps of :meth:`apply`."""
        layout = self.layout
        if isinstance(self.regroup, Split):
            if len(pieces) != 1:
                raise WeightAssignError(f"a split takes one array, got {len(pieces)}")
            sections, axis = list(self.regroup.sections), self.regroup.axis
            if sum(sections) != pieces[0].shape[axis]:
                raise WeightAssignError(
                    f"cannot split shape {list(pieces[0].shape)} along axis {axis} into {sections}"
                )
            fused = pieces[0]
            if layout is not None:
                fused = np.take(fused, np.argsort(self._rows(sections)), axis=layout.axis)
            return np.split(fused, np.cumsum(sections)[:-1].tolist(), axis=axis)
        if isinstance(self.regroup, Concat):
            joined = np.concatenate(pieces, axis=self.regroup.axis)
            if layout is not None:
                joined = np.take(joined, self._rows(self.regroup.sections), axis=layout.axis)
            return [joined]
        if layout is not None:
            out = []
            for piece in pieces:
                rows = self._rows([piece.shape[layout.axis]])
                out.append(
                    np.take(piece, np.argsort(rows) if layout.inverse else rows, layout.axis)
                )
            return out
        return pieces


IDENTITY = ArrayTransform()
"""The transform that copies values as they are."""


@dataclass(frozen=True)
class RegisteredTransform:
    """An array transform registered with ``register_transform(name, forward, inverse)``."""

    name: str
    inverse: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "inverse": True} if self.inverse else {"name": self.name}

    def describe(self) -> str:
        return f"{self.name} (inverse)" if self.inverse else self.name

    def invert(self) -> RegisteredTransform:
        return RegisteredTransform(self.name, not self.inverse)

    def apply(self, arrays: Arrays, *, target_shapes: Shapes | None = None) -> list[np.ndarray]:
        """The registered function on A's arrays.

        Raises:
            WeightAssignError: no transform of this name is registered, or the results do not
                have ``target_shapes``.
        """
        fn = named_transform(self.name, inverse=self.inverse)
        if fn is None:
            raise WeightAssignError(
                f"no transform named {self.name!r} is registered; register it with "
                "register_transform(name, forward, inverse)"
            )
        pieces = [np.asarray(p) for p in fn([np.asarray(a) for a in arrays])]
        return _checked(self, pieces, target_shapes)


@dataclass(frozen=True)
class ModuleTransform:
    """The module pair is copied by a function registered with ``register_weight_transform``
    (``key`` is the family of the two classes, ``custom:...``); it works on modules, not on
    arrays."""

    key: str

    def to_dict(self) -> dict[str, object]:
        return {"module": self.key}

    def describe(self) -> str:
        return f"module transform {self.key}"

    def invert(self) -> ModuleTransform:
        return self

    def apply(self, arrays: Arrays, *, target_shapes: Shapes | None = None) -> list[np.ndarray]:
        """Raises :class:`WeightAssignError`: a module transform has no array form."""
        raise WeightAssignError(
            f"transform {self.describe()} works on modules, not arrays; use "
            "padiff_ir.pairing.assign.assign_weight"
        )


Transform: TypeAlias = ArrayTransform | RegisteredTransform | ModuleTransform
"""A parameter pair's transform, one of the three kinds."""

TransformLike: TypeAlias = "Transform | Mapping[str, object]"
"""A transform or its JSON form (what public functions accept)."""


def _checked(
    transform: Transform, pieces: list[np.ndarray], shapes: Shapes | None
) -> list[np.ndarray]:
    pieces = [np.asarray(p, order="C") for p in pieces]
    if shapes is not None:
        got, want = [list(p.shape) for p in pieces], [list(s) for s in shapes]
        if got != want:
            raise WeightAssignError(
                f"transform {transform.describe()} gives shape(s) {got}, expected {want}"
            )
    return pieces


def _ints(value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of integers, got {value!r}")
    return tuple(int(v) for v in value)


def transform_from_dict(data: Mapping[str, object]) -> Transform:
    """A transform from its JSON form (``{}``: the identity).

    Raises:
        ValueError: a key no transform has, or a value of the wrong kind.
    """
    if "module" in data:
        return ModuleTransform(str(data["module"]))
    if "name" in data:
        return RegisteredTransform(str(data["name"]), bool(data.get("inverse", False)))
    unknown = set(data) - {"transpose", "split", "concat", "sections", "layout", "offset"}
    if unknown:
        raise ValueError(f"a transform has no key(s) {sorted(unknown)}: {dict(data)}")
    regroup: Split | Concat | None = None
    for key, kind in (("split", Split), ("concat", Concat)):
        if key in data:
            axis = data[key]
            if not isinstance(axis, (int, np.integer)):
                raise ValueError(f"{key} takes an axis, got {axis!r}")
            regroup = kind(int(axis), _ints(data.get("sections", ())))
    layout = data.get("layout")
    offset = data.get("offset") or 0.0
    if not isinstance(offset, (int, float)):
        raise ValueError(f"offset takes a number, got {offset!r}")
    return ArrayTransform(
        Transpose(_ints(data["transpose"])) if data.get("transpose") is not None else None,
        regroup,
        RowLayout.of(layout) if isinstance(layout, (Mapping, RowLayout)) else None,
        float(offset),
    )


def layer_map_entry(transform: Transform) -> dict[str, object]:
    """``transform`` as a layer map keeps it for a kind of parameter group (the JSON of
    ``LayerMap.layouts``): its row layout without the axis (each pair has its own), its
    offset, or a registered transform's name.

    Example:
        >>> layer_map_entry(ArrayTransform(layout=RowLayout("fused_order", 1, order=(1, 0))))
        {'layout': {'name': 'fused_order', 'order': [1, 0]}}
    """
    if not isinstance(transform, ArrayTransform):
        return transform.to_dict()
    entry: dict[str, object] = {}
    if transform.layout is not None:
        entry["layout"] = transform.layout.to_dict(axis=False)
    if transform.offset or transform.layout is None:
        entry["offset"] = transform.offset
    return entry


def as_transform(value: TransformLike) -> Transform:
    """``value`` as a :data:`Transform` (its JSON form turned into one)."""
    if isinstance(value, (ArrayTransform, RegisteredTransform, ModuleTransform)):
        return value
    return transform_from_dict(value)
