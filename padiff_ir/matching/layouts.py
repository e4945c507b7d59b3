"""Parameter layouts of fused and permuted projections, and the candidates a pair's shapes allow.

A port to Paddle often fuses projections and lays their rows out for tensor parallelism: one
``qkv_proj`` for the split ``q_proj``, ``k_proj``, ``v_proj`` of a Hugging Face decoder, grouped
per key-value head; one ``gate_up_fused_proj`` for ``gate_proj`` and ``up_proj``, in either order
or interleaved; the rows of q and k permuted within each head when the rotary embedding pairs
neighbours instead of halves. Shapes alone cannot tell these apart: they are *candidates*, and a
probe that runs the models picks one (:mod:`padiff_ir.pairing.layout_probes`).

A layout is a :class:`RowLayout`, kept in a parameter pair's transform (saved in JSON under
``"layout"``): a name, its parameters and the ``axis`` it permutes (the fused output axis in
B's layout). With the pieces joined in member order along that axis (``q, k, v``; ``gate,
up``), the fused tensor is ``joined[permutation]``:

- ``fused_qkv``: ``[q; k; v]`` (with ``rope``: rows of q and k permuted within each head);
- ``fused_qkv_grouped``: per key-value head group, ``[q heads of group 0; k_0; v_0; ...]``;
  with ``kv_heads == heads`` this is ``[q_h; k_h; v_h]`` per head;
- ``fused_order``: the pieces concatenated in another ``order`` (``[up; gate]``);
- ``fused_interleaved``: rows alternate between the pieces, in ``order``;
- ``rope``: one projection (q or k) whose rows are permuted within each head.

``rope`` is ``"half->interleaved"`` when A rotates halves (Llama's ``rotate_half``) and B pairs
neighbours (GPT-J style), ``"interleaved->half"`` the other way round.

Examples:
    >>> permutation({"name": "fused_qkv_grouped", "heads": 2, "kv_heads": 1, "head_dim": 1},
    ...             [2, 1, 1]).tolist()
    [0, 1, 2, 3]
    >>> permutation({"name": "fused_qkv_grouped", "heads": 2, "kv_heads": 2, "head_dim": 1},
    ...             [2, 2, 2]).tolist()
    [0, 2, 4, 1, 3, 5]
    >>> permutation({"name": "fused_interleaved", "order": [1, 0]}, [2, 2]).tolist()
    [2, 0, 3, 1]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = [
    "LAYOUT_NAMES",
    "ROPE_CONVENTIONS",
    "RowLayout",
    "describe_layout",
    "fused_candidates",
    "head_dims",
    "offset_candidates",
    "permutation",
    "rope_candidates",
]

ROPE_CONVENTIONS = ("half->interleaved", "interleaved->half")
"""How B's rotary embedding pairs the rows of a head relative to A's."""

LAYOUT_NAMES = ("fused_qkv", "fused_qkv_grouped", "fused_order", "fused_interleaved", "rope")

MIN_HEAD_DIM = 4
"""Smallest head size tried when the head count must be inferred from the shapes."""


@dataclass(frozen=True)
class RowLayout:
    """How the rows of a fused (or permuted) parameter lie along one axis of B's layout.

    Attributes:
        name: one of :data:`LAYOUT_NAMES`.
        axis: the axis (B's layout) the rows lie along; a layer map's layouts leave it ``0``
            and each pair sets its own.
        heads / kv_heads / head_dim: the head counts and size (``fused_qkv_grouped``; ``rope``
            needs ``head_dim``).
        order: the pieces' order (``fused_order``, ``fused_interleaved``).
        rope: a :data:`ROPE_CONVENTIONS` entry: q and k rows permuted within each head.
        inverse: with neither split nor concat, B's rows are A's permuted the other way round.

    Its JSON form is today's dict: only the keys set (``{"name": "fused_order", "order": [1,
    0], "axis": 1}``).

    Example:
        >>> RowLayout.from_dict({"name": "fused_order", "order": [1, 0], "axis": 1})
        RowLayout(name='fused_order', axis=1, heads=None, kv_heads=None, head_dim=None, \
order=(1, 0), rope=None, inverse=False)
        >>> RowLayout("fused_order", order=(1, 0)).to_dict(axis=False)
        {'name': 'fused_order', 'order': [1, 0]}
    """

    name: str
    axis: int = 0
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    order: tuple[int, ...] | None = None
    rope: str | None = None
    inverse: bool = False

    @classmethod
    def of(cls, value: RowLayout | Mapping[str, object]) -> RowLayout:
        """``value`` as a :class:`RowLayout` (its JSON form turned into one)."""
        return value if isinstance(value, RowLayout) else cls.from_dict(value)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RowLayout:
        """A layout from its JSON form.

        Raises:
            ValueError: a key no layout has, or no ``name``.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown or "name" not in data:
            raise ValueError(
                f"a layout takes the keys {sorted(known)} ('name' required), got {sorted(data)}"
            )
        order = data.get("order")
        return cls(
            name=str(data["name"]),
            axis=_int(data.get("axis", 0)),
            heads=_int_or_none(data.get("heads")),
            kv_heads=_int_or_none(data.get("kv_heads")),
            head_dim=_int_or_none(data.get("head_dim")),
            order=tuple(_int(i) for i in order) if isinstance(order, (list, tuple)) else None,
            rope=str(data["rope"]) if data.get("rope") else None,
            inverse=bool(data.get("inverse", False)),
        )

    def to_dict(self, *, axis: bool = True) -> dict[str, object]:
        """The JSON form: the keys set (``axis`` left out with ``axis=False``, as a layer map
        keeps it)."""
        data: dict[str, object] = {"name": self.name}
        for key in ("heads", "kv_heads", "head_dim"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.order is not None:
            data["order"] = list(self.order)
        if self.rope:
            data["rope"] = self.rope
        if axis:
            data["axis"] = self.axis
        if self.inverse:
            data["inverse"] = True
        return data

    def at(self, axis: int) -> RowLayout:
        """This layout along ``axis``."""
        return replace(self, axis=int(axis))

    def permutation(self, sections: Sequence[int]) -> np.ndarray:
        """:func:`permutation` of this layout."""
        return permutation(self, sections)

    def describe(self) -> str:
        """``fused_qkv_grouped(heads=4, kv_heads=2, head_dim=8, rope=half->interleaved)``."""
        params = ", ".join(f"{k}={v}" for k, v in self.to_dict(axis=False).items() if k != "name")
        return f"{self.name}({params})"


def _int(value: object) -> int:
    if isinstance(value, (int, np.integer, str, float)):
        return int(value)
    raise ValueError(f"{value!r} is no integer")


def _int_or_none(value: object) -> int | None:
    return None if value is None else _int(value)


def _rope_rows(head_dim: int, convention: str) -> np.ndarray:
    """Rows of one head of A, in B's order (``B[i] = A[rows[i]]``)."""
    half = head_dim // 2
    pairs = np.empty(head_dim, dtype=np.int64)
    pairs[0::2] = np.arange(half)
    pairs[1::2] = np.arange(half) + half
    return pairs if convention == "half->interleaved" else np.argsort(pairs)


def _roped(size: int, head_dim: int, convention: str) -> np.ndarray:
    heads = size // head_dim
    rows = _rope_rows(head_dim, convention)
    order: np.ndarray = np.arange(heads)[:, None] * head_dim + rows[None, :]
    return order.reshape(-1)


def permutation(layout: RowLayout | Mapping[str, object], sections: Sequence[int]) -> np.ndarray:
    """Indices into the pieces joined in member order that give B's fused rows.

    Raises:
        ValueError: the layout does not fit ``sections`` (sizes of the pieces along the axis).
    """
    layout = RowLayout.of(layout)
    sections = [int(s) for s in sections]
    starts = np.cumsum([0, *sections])[:-1]
    name = layout.name
    rope = layout.rope
    head_dim = int(layout.head_dim or 0)
    blocks = [np.arange(s) + start for s, start in zip(sections, starts)]
    if rope:
        if head_dim <= 0 or head_dim % 2:
            raise ValueError(f"rope needs an even head_dim, got {head_dim}")
        roped = 1 if name == "rope" else 2  # q alone, or q and k of a fused qkv
        for i in range(min(roped, len(blocks))):
            if sections[i] % head_dim:
                raise ValueError(f"section {sections[i]} is not a multiple of {head_dim}")
            blocks[i] = starts[i] + _roped(sections[i], head_dim, rope)
    if name in ("fused_qkv", "rope"):
        return np.concatenate(blocks)
    if name == "fused_qkv_grouped":
        if layout.heads is None or layout.kv_heads is None:
            raise ValueError(f"{describe_layout(layout)} needs heads and kv_heads")
        heads, kv_heads = layout.heads, layout.kv_heads
        if len(sections) != 3 or sections != [heads * head_dim, *[kv_heads * head_dim] * 2]:
            raise ValueError(f"sections {sections} do not fit {describe_layout(layout)}")
        if heads % kv_heads:
            raise ValueError(f"{heads} heads do not group into {kv_heads} key-value heads")
        per_group = heads // kv_heads * head_dim
        q, k, v = (b.reshape(kv_heads, -1) for b in blocks)
        return np.concatenate([q, k, v], axis=1).reshape(-1) if per_group else blocks[0]
    if layout.order is None:
        raise ValueError(f"{describe_layout(layout)} needs an order")
    order = list(layout.order)
    if sorted(order) != list(range(len(sections))):
        raise ValueError(f"order {order} is not a permutation of {len(sections)} pieces")
    if name == "fused_order":
        return np.concatenate([blocks[i] for i in order])
    if name == "fused_interleaved":
        if len(set(sections)) != 1:
            raise ValueError(f"interleaving needs equal pieces, got {sections}")
        return np.stack([blocks[i] for i in order], axis=1).reshape(-1)
    raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUT_NAMES)}")


def describe_layout(layout: RowLayout | Mapping[str, object]) -> str:
    """``fused_qkv_grouped(heads=4, kv_heads=2, head_dim=8, rope=half->interleaved)``."""
    return RowLayout.of(layout).describe()


def head_dims(*sizes: int) -> list[int]:
    """Even head sizes (at least :data:`MIN_HEAD_DIM`) that divide every size, largest first."""
    common = math.gcd(*[int(s) for s in sizes])
    return [d for d in range(common, MIN_HEAD_DIM - 1, -1) if common % d == 0 and d % 2 == 0]


def _qkv(sections: Sequence[int], axis: int) -> Iterator[RowLayout]:
    q, k, _ = sections
    yield RowLayout("fused_qkv", axis)
    for d in head_dims(q, k):
        heads, kv_heads = q // d, k // d
        ropes: tuple[str | None, ...] = (None, *ROPE_CONVENTIONS)
        for rope in ropes:
            if rope:
                yield RowLayout("fused_qkv", axis, head_dim=d, rope=rope)
            if heads % kv_heads == 0 and kv_heads > 1:
                yield RowLayout(
                    "fused_qkv_grouped", axis, heads=heads, kv_heads=kv_heads, head_dim=d, rope=rope
                )


def fused_candidates(sections: Sequence[int], axis: int) -> list[RowLayout]:
    """The layouts a fused group with pieces of ``sections`` rows may have, the plain
    concatenation in member order first; duplicates (layouts giving the same rows) removed.

    Three pieces whose last two are equal (q, k, v) try the qkv layouts for every head size that
    fits; two equal pieces (gate, up) try both orders, concatenated or interleaved.

    Examples:
        >>> [describe_layout(c) for c in fused_candidates([4, 4], axis=1)]
        ['fused_order(order=[0, 1])', 'fused_order(order=[1, 0])', \
'fused_interleaved(order=[0, 1])', 'fused_interleaved(order=[1, 0])']
        >>> len(fused_candidates([16, 8, 8], axis=0)) > 4
        True
    """
    sections = [int(s) for s in sections]
    found: list[RowLayout] = []
    if len(sections) == 3 and sections[1] == sections[2]:
        found = list(_qkv(sections, axis))
    elif len(sections) == 2 and sections[0] == sections[1]:
        for name in ("fused_order", "fused_interleaved"):
            found += [RowLayout(name, axis, order=order) for order in ((0, 1), (1, 0))]
    return _distinct(found, sections)


def rope_candidates(size: int, axis: int) -> list[RowLayout]:
    """Row permutations of one q or k projection of ``size`` rows, each head size that fits."""
    found = [
        RowLayout("rope", axis, head_dim=d, rope=rope)
        for d in head_dims(size)
        for rope in ROPE_CONVENTIONS
    ]
    return _distinct(found, [size])


def offset_candidates() -> list[float]:
    """Offsets B's norm weight may have against A's: ``w``, ``w - 1`` (B computes ``1 + w``,
    Gemma style) and ``w + 1`` (A does)."""
    return [0.0, -1.0, 1.0]


def _distinct(candidates: list[RowLayout], sections: Sequence[int]) -> list[RowLayout]:
    seen: set[bytes] = set()
    kept = []
    for candidate in candidates:
        try:
            key = permutation(candidate, sections).tobytes()
        except ValueError:
            continue
        if key not in seen:
            seen.add(key)
            kept.append(candidate)
    return kept
