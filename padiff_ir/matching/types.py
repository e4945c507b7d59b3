"""Result types of matching: tensor pairs, module pairs (the layer_map), what stayed unmatched.

All are plain data with a JSON round trip (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from padiff_ir._paths import call_site
from padiff_ir.matching.transform_types import IDENTITY, Transform, as_transform

__all__ = ["Matching", "ModulePair", "ParamPair", "TensorPair", "Unmatched"]


@dataclass(frozen=True)
class TensorPair:
    """Tensors of A and of B that compute the same quantity.

    ``a`` and ``b`` hold one tensor each for a 1:1 pair; several on one side form an N:M group
    (e.g. one fused qkv output vs three q/k/v outputs; ``a`` tensors concatenated along
    ``concat_axis`` equal the ``b`` tensors concatenated the same way). Names are tensor names of
    the canonicalised graphs (aliases resolved).

    Attributes:
        a / b: tensor names in graph A / B.
        confidence: 0..1.
        evidence: short tags of what supported the pair (``param-anchor``, ``op-family``, ``shape``,
            ``position``, ``name-hint``, ``values``, ``pinned``...).
        module_a / module_b: module paths of the producing ops.
        op_a / op_b: op types of the producers (canonical), for display.
        layout: how to bring B's value to A's layout before comparing (``None``: same layout;
            e.g. ``{"transpose": [0, 2, 1, 3]}`` or ``{"concat_axis": -1}``).
    """

    a: tuple[str, ...]
    b: tuple[str, ...]
    confidence: float = 1.0
    evidence: tuple[str, ...] = ()
    module_a: str = ""
    module_b: str = ""
    op_a: str = ""
    op_b: str = ""
    layout: dict[str, Any] | None = None

    @property
    def is_group(self) -> bool:
        return len(self.a) != 1 or len(self.b) != 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorPair:
        data = dict(data)
        data["a"] = tuple(data["a"])
        data["b"] = tuple(data["b"])
        data["evidence"] = tuple(data.get("evidence", ()))
        return cls(**data)


@dataclass(frozen=True)
class ModulePair:
    """A module of A and a layer of B that compute the same thing (one layer_map entry).

    Attributes:
        a / b: module paths (``""`` is the root model).
        class_a / class_b: class names.
        confidence: 0..1.
        evidence: tags as in :class:`TensorPair`.
        black_box: internals differ (e.g. fused vs split ops): compare boundary tensors only.
        inputs_a / inputs_b: tensors entering the module (graph tensor names), in order.
        outputs_a / outputs_b: tensors leaving the module, in order, paired position by position.
        call_a / call_b: for a module called several times, which call (from 0) this pair is
            about (``None``: every call; a module called once). :attr:`site_a` names it
            (``pool#2``).
    """

    a: str
    b: str
    class_a: str = ""
    class_b: str = ""
    confidence: float = 1.0
    evidence: tuple[str, ...] = ()
    black_box: bool = False
    inputs_a: tuple[str, ...] = ()
    inputs_b: tuple[str, ...] = ()
    outputs_a: tuple[str, ...] = ()
    outputs_b: tuple[str, ...] = ()
    call_a: int | None = None
    call_b: int | None = None

    @property
    def site_a(self) -> str:
        """A's module path, with the call (``pool#2``) when the pair is about one call."""
        return call_site(self.a, self.call_a)

    @property
    def site_b(self) -> str:
        """B's module path, with the call when the pair is about one call."""
        return call_site(self.b, self.call_b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModulePair:
        data = dict(data)
        for key in ("evidence", "inputs_a", "inputs_b", "outputs_a", "outputs_b"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass(frozen=True)
class ParamPair:
    """Parameters (or buffers) of A and of B that hold the same values, up to a transform.

    ``transform`` says how to turn A's values into B's layout (its ``invert()`` gives A from B):
    a :data:`~padiff_ir.matching.transform_types.Transform`, the identity by default; a
    transpose, a concat / split for N:1 / 1:N groups along an axis (fused qkv vs separate
    q/k/v), a row layout, an offset, or a registered custom transform. Its JSON form (and what
    the constructor also accepts) is the dict ``{"transpose": [1, 0], "split": 1, ...}``.

    Attributes:
        a / b: framework parameter names (``blocks.0.attn.qkv.weight``); several on one side for
            a split/concat group, in concatenation order.
        module_a / module_b: the modules using them: their owners, or the layer reading a tied
            weight that another layer owns.
        transform: as above.
        evidence: tags as in :class:`TensorPair` (``tied``: a weight one side shares).
        also_used_in: A's further modules reading the same tensors through the same pair (a
            tied weight on both sides pairs once, and is used by each of these layers).
    """

    a: tuple[str, ...]
    b: tuple[str, ...]
    module_a: str = ""
    module_b: str = ""
    transform: Transform = IDENTITY
    evidence: tuple[str, ...] = ()
    also_used_in: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform", as_transform(self.transform))  # JSON form works

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "module_a": self.module_a,
            "module_b": self.module_b,
            "transform": self.transform.to_dict(),
            "evidence": self.evidence,
            "also_used_in": self.also_used_in,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamPair:
        data = dict(data)
        for key in ("a", "b", "evidence", "also_used_in"):
            data[key] = tuple(data.get(key, ()))
        data["transform"] = as_transform(data.get("transform", {}))
        return cls(**data)


@dataclass(frozen=True)
class Unmatched:
    """Something of one side left without a partner, and why.

    Attributes:
        side: ``"a"`` or ``"b"``.
        kind: ``"op"``, ``"tensor"`` or ``"module"``.
        name: op name, tensor name or module path.
        reason: a sentence for the user (``"Dropout present on one side only"``...).
        module: module path of the op (for ``op``/``tensor``).
        op_type: op type (for ``op``/``tensor``).
    """

    side: str
    kind: str
    name: str
    reason: str
    module: str = ""
    op_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unmatched:
        return cls(**data)


@dataclass
class Matching:
    """The result of :func:`padiff_ir.matching.match_graphs`.

    Attributes:
        tensor_pairs: pairs in A's data-flow order.
        module_pairs: the layer_map, in A's data-flow order (first use of each module).
        param_pairs: every parameter of A paired with B's, with the transform between them.
        unmatched: ops, tensors and modules of each side left alone, with reasons.
        stats: counts and timings (``{"seconds": ..., "anchors": ...}``).
    """

    tensor_pairs: list[TensorPair] = field(default_factory=list)
    module_pairs: list[ModulePair] = field(default_factory=list)
    param_pairs: list[ParamPair] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def module_map(self) -> dict[str, str]:
        """Module path of A -> layer path of B (for a layer called several times, the partner
        of its first call; ``module_pairs`` has one pair per call)."""
        found: dict[str, str] = {}
        for pair in self.module_pairs:
            found.setdefault(pair.a, pair.b)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor_pairs": [p.to_dict() for p in self.tensor_pairs],
            "module_pairs": [p.to_dict() for p in self.module_pairs],
            "param_pairs": [p.to_dict() for p in self.param_pairs],
            "unmatched": [u.to_dict() for u in self.unmatched],
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Matching:
        return cls(
            tensor_pairs=[TensorPair.from_dict(p) for p in data.get("tensor_pairs", ())],
            module_pairs=[ModulePair.from_dict(p) for p in data.get("module_pairs", ())],
            param_pairs=[ParamPair.from_dict(p) for p in data.get("param_pairs", ())],
            unmatched=[Unmatched.from_dict(u) for u in data.get("unmatched", ())],
            stats=dict(data.get("stats", {})),
        )
