"""The layer map: which module of model A is which layer of model B, as the user wants it.

A :class:`LayerMap` holds the user's corrections to automatic matching, by module path:

- ``pairs``: pins, ``A module path -> B layer path``; pinned modules are paired whatever their
  structure says, and the modules inside them are only matched with each other;
- ``ignored_a`` / ``ignored_b``: modules left out with everything inside them;
- ``ignored_self_a`` / ``ignored_self_b``: modules left out themselves, their sublayers still
  matched (PaDiff's ``ignore``);
- ``black_box_a`` / ``black_box_b``: modules compared by their outputs only; a pinned black-box
  pair is also matched as one unit, its parameters paired by name, role and shape.

Paths are those of ``named_modules()`` / ``named_sublayers()``; ``""`` is the model itself.
PaDiff's object-based API works too: ``layer_map.map = {paddle_layer: torch_module}`` (either
order), ``ignore(module)``, ``ignore_recursively(module)``, ``ignore_class(model, cls)``. Object
entries are turned into paths by :meth:`LayerMap.resolve` against the two models, by identity;
which side an object belongs to follows from the model it is found in.

Example:
    >>> lm = LayerMap()
    >>> lm.pin("encoder.attn", "encoder.self_attn", black_box=True)
    >>> lm.ignore("head.dropout", side="b")
    >>> LayerMap.from_dict(lm.to_dict()) == lm
    True
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from padiff_ir.errors import MatchError
from padiff_ir.hints import Model, Module
from padiff_ir.matching.transform_types import (
    Transform,
    TransformLike,
    as_transform,
    layer_map_entry,
)

if TYPE_CHECKING:
    from padiff_ir.matching.types import Matching

__all__ = ["LayerMap"]

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_SET_FIELDS = (
    "ignored_a",
    "ignored_b",
    "ignored_self_a",
    "ignored_self_b",
    "black_box_a",
    "black_box_b",
)


def named_modules(model: Model) -> list[tuple[str, Any]]:
    """``(path, module)`` of a torch module or paddle layer and all its submodules, root first.

    Raises:
        MatchError: ``model`` is no torch module or paddle layer.
    """
    from padiff_ir.errors import ModelTypeError
    from padiff_ir.frameworks import framework_of, unwrap_model

    model = unwrap_model(model)
    try:
        framework = framework_of(model)
    except ModelTypeError as err:
        raise MatchError(
            f"{type(model).__qualname__} is not a torch.nn.Module or a paddle.nn.Layer; a layer "
            "map resolves against model objects"
        ) from err
    return framework.named_modules(model)


class LayerMap:
    """User-editable pins, ignores and black boxes between model A and model B.

    Attributes:
        pairs: A module path -> B layer path (pins).
        ignored_a / ignored_b: paths ignored with their whole subtree.
        ignored_self_a / ignored_self_b: paths ignored themselves; sublayers still matched.
        black_box_a / black_box_b: paths compared by outputs only.
        layouts: parameter layouts found by probing or set by hand, by kind of parameter
            group (names with layer indices as ``*``, as in
            :func:`~padiff_ir.pairing.layout_probes.layout_kind`) -> a transform: an
            ``ArrayTransform`` with a row layout (its axis set per pair) or an offset, or a
            ``RegisteredTransform`` (an array transform registered with
            :func:`~padiff_ir.matching.transforms.register_transform`); their JSON form (also
            accepted here) is ``{"layout": {"name": ..., parameters}}``, ``{"offset": c}`` or
            ``{"name": n}``. Applied to every group of that kind instead of probing
            (:mod:`padiff_ir.matching.layouts` lists the layout names).
    """

    def __init__(
        self,
        pairs: Mapping[str, str] | None = None,
        *,
        ignored_a: Iterable[str] = (),
        ignored_b: Iterable[str] = (),
        ignored_self_a: Iterable[str] = (),
        ignored_self_b: Iterable[str] = (),
        black_box_a: Iterable[str] = (),
        black_box_b: Iterable[str] = (),
        layouts: Mapping[str, TransformLike] | None = None,
    ) -> None:
        self.pairs: dict[str, str] = dict(pairs or {})
        self.layouts: dict[str, Transform] = _layouts(layouts or {})
        self.ignored_a: set[str] = set(ignored_a)
        self.ignored_b: set[str] = set(ignored_b)
        self.ignored_self_a: set[str] = set(ignored_self_a)
        self.ignored_self_b: set[str] = set(ignored_self_b)
        self.black_box_a: set[str] = set(black_box_a)
        self.black_box_b: set[str] = set(black_box_b)
        # Unresolved module objects (PaDiff style): (x, y, black_box) pins; (obj, recursive).
        self._object_pins: list[tuple[Any, Any, bool]] = []
        self._object_ignores: list[tuple[Any, bool]] = []
        self._object_black_boxes: list[Any] = []

    @classmethod
    def coerce(cls, value: object, *, option: str = "layer_map") -> LayerMap | None:
        """``value`` as a :class:`LayerMap`: one as it is, a dict ``{path of A: path of B}`` as
        pins, ``None`` as ``None``.

        Raises:
            OptionError: anything else, naming the option.

        Examples:
            >>> LayerMap.coerce({"fc1": "linear1"}).pairs
            {'fc1': 'linear1'}
        """
        if value is None or isinstance(value, LayerMap):
            return value
        if isinstance(value, Mapping):
            pinned = cls()
            for a, b in value.items():
                pinned.pin(a, b)
            return pinned
        from padiff_ir.errors import OptionError

        raise OptionError(
            f"{option} must be a LayerMap or a dict {{module path of A: module "
            f"path of B}}, got {type(value).__name__}",
            option=option,
        )

    # -- editing -----------------------------------------------------------------------------

    def pin(self, a: Module | str, b: Module | str, *, black_box: bool = False) -> None:
        """Pair module ``a`` of A with layer ``b`` of B (paths, or module objects).

        With ``black_box=True`` the pair is compared by its outputs only and matched as one unit.
        """
        if isinstance(a, str) and isinstance(b, str):
            self.pairs[a] = b
            if black_box:
                self.black_box_a.add(a)
                self.black_box_b.add(b)
        elif isinstance(a, str) or isinstance(b, str):
            raise MatchError(
                f"pin() takes two paths or two module objects, got {type(a).__name__} and "
                f"{type(b).__name__}"
            )
        else:
            self._object_pins.append((a, b, black_box))

    def ignore(self, path_or_module: Module | str, side: str | None = None) -> None:
        """Leave a module out of matching itself; its sublayers are still matched.

        ``path_or_module``: a path (then ``side`` is ``"a"`` or ``"b"``), a module object or a
        list of them.
        """
        self._add_ignore(path_or_module, side, recursive=False)

    def ignore_recursively(self, path_or_module: Module | str, side: str | None = None) -> None:
        """Leave a module and everything inside it out of matching and weight copying."""
        self._add_ignore(path_or_module, side, recursive=True)

    def ignore_class(self, model: Model, cls: type | str) -> None:
        """Ignore (not recursively) every submodule of ``model`` that is an instance of ``cls``.

        ``cls`` is a class, a tuple of classes or a class name.
        """
        for path, module in named_modules(model):
            if path and _is_instance(module, cls):
                self._object_ignores.append((module, False))

    def black_box(self, a: Module | str, b: Module | str | None = None) -> None:
        """Compare ``a`` (a path of A or a module) by its outputs only; with ``b``, pin them too."""
        if b is not None:
            self.pin(a, b, black_box=True)
        elif isinstance(a, str):
            self.black_box_a.add(a)
        else:
            self._object_black_boxes.append(a)

    def _add_ignore(self, target: Module | str, side: str | None, *, recursive: bool) -> None:
        if isinstance(target, (list, tuple, set)):
            for item in target:
                self._add_ignore(item, side, recursive=recursive)
            return
        if isinstance(target, str):
            if side not in ("a", "b"):
                raise MatchError(f"ignoring path {target!r} needs side='a' or side='b'")
            field = f"ignored_{side}" if recursive else f"ignored_self_{side}"
            getattr(self, field).add(target)
        else:
            self._object_ignores.append((target, recursive))

    # -- PaDiff compatibility ----------------------------------------------------------------

    @property
    def map(self) -> dict[Any, Any]:
        """PaDiff's ``{module: module}`` pins (objects; path pins are in :attr:`pairs`).

        Setting it adds black-box pins, one per item, keys and values of either framework.
        """
        return {x: y for x, y, _ in self._object_pins}

    @map.setter
    def map(self, mapping: Mapping[Any, Any]) -> None:
        if not isinstance(mapping, Mapping):
            raise MatchError(f"LayerMap.map wants a dict of modules, got {type(mapping).__name__}")
        for x, y in mapping.items():
            self.pin(x, y, black_box=True)

    # -- resolution and validation -----------------------------------------------------------

    @property
    def is_resolved(self) -> bool:
        """True when every entry is a path (no module objects left to look up)."""
        return not (self._object_pins or self._object_ignores or self._object_black_boxes)

    def resolve(self, model_a: Model, model_b: Model) -> LayerMap:
        """A path-only copy for these two models; object entries looked up by identity.

        Raises:
            MatchError: an object is in neither model, or a path names no module of its model.
        """
        paths_a = {id(m): p for p, m in named_modules(model_a)}
        paths_b = {id(m): p for p, m in named_modules(model_b)}
        resolved = self.copy(objects=False)

        def locate(obj: Module) -> tuple[str, str]:
            if id(obj) in paths_a:
                return "a", paths_a[id(obj)]
            if id(obj) in paths_b:
                return "b", paths_b[id(obj)]
            raise MatchError(
                f"{type(obj).__name__} object {_short_repr(obj)} of the layer map is in neither "
                "model; pass submodules of the two models being compared"
            )

        for x, y, black_box in self._object_pins:
            (side_x, path_x), (side_y, path_y) = locate(x), locate(y)
            if side_x == side_y:
                raise MatchError(
                    f"layer map pins {type(x).__name__} at {path_x!r} to {type(y).__name__} at "
                    f"{path_y!r}, but both are in model {side_x.upper()}; pin a module of A to "
                    "a layer of B"
                )
            path_a, path_b = (path_x, path_y) if side_x == "a" else (path_y, path_x)
            resolved.pin(path_a, path_b, black_box=black_box)
        for obj, recursive in self._object_ignores:
            side, path = locate(obj)
            resolved._add_ignore(path, side, recursive=recursive)
        for obj in self._object_black_boxes:
            side, path = locate(obj)
            getattr(resolved, f"black_box_{side}").add(path)
        resolved.validate(set(paths_a.values()), set(paths_b.values()))
        return resolved

    def validate(self, paths_a: set[str], paths_b: set[str]) -> None:
        """Check every path against the models' module paths.

        Raises:
            MatchError: a path names no module, or one B layer is pinned twice.
        """
        problems = []
        entries = [("a", p, "pinned") for p in self.pairs]
        entries += [("b", p, "pinned") for p in self.pairs.values()]
        for field in _SET_FIELDS:
            entries += [(field[-1], p, field.rsplit("_", 1)[0]) for p in getattr(self, field)]
        for side, path, what in entries:
            known = paths_a if side == "a" else paths_b
            if path not in known:
                close = difflib.get_close_matches(path, sorted(known), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                problems.append(
                    f"{what} path {path!r} is not a module of model {side.upper()}{hint}"
                )
        seen: dict[str, str] = {}
        for a, b in self.pairs.items():
            if b in seen:
                problems.append(f"layer {b!r} of B is pinned to both {seen[b]!r} and {a!r}")
            seen[b] = a
        if problems:
            raise MatchError("invalid layer map:\n  - " + "\n  - ".join(problems))

    # -- conversion --------------------------------------------------------------------------

    def copy(self, *, objects: bool = True) -> LayerMap:
        """A copy (with the unresolved object entries unless ``objects=False``)."""
        other = LayerMap(
            self.pairs, layouts=self.layouts, **{f: getattr(self, f) for f in _SET_FIELDS}
        )
        if objects:
            other._object_pins = list(self._object_pins)
            other._object_ignores = list(self._object_ignores)
            other._object_black_boxes = list(self._object_black_boxes)
        return other

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. Raises :class:`MatchError` while object entries are unresolved."""
        if not self.is_resolved:
            raise MatchError(
                "the layer map holds module objects; call resolve(model_a, model_b) first to "
                "turn them into paths"
            )
        data: dict[str, Any] = {"version": _FORMAT_VERSION, "pairs": dict(self.pairs)}
        data.update({f: sorted(getattr(self, f)) for f in _SET_FIELDS})
        if self.layouts:
            data["layouts"] = {k: layer_map_entry(v) for k, v in self.layouts.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerMap:
        version = data.get("version", _FORMAT_VERSION)
        if version != _FORMAT_VERSION:
            raise MatchError(f"layer map format version {version} is not supported")
        return cls(
            data.get("pairs", {}),
            layouts=data.get("layouts"),
            **{f: data.get(f, ()) for f in _SET_FIELDS},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the layer map as JSON.

        Raises:
            MatchError: module objects are not resolved yet. FileFormatError: the file cannot
                be written.
        """
        from padiff_ir.errors import FileFormatError

        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as err:
            raise FileFormatError(
                f"{path}: cannot write the layer map ({err.strerror or err}); "
                "pass a file path in an existing, writable folder",
                path=str(path),
            ) from err

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LayerMap:
        """Read a layer map written by :meth:`save`.

        Raises:
            FileFormatError: the file is missing, not JSON or not a layer map (the message
                names the file and what is wrong).
        """
        from padiff_ir._result import read_json_file
        from padiff_ir.errors import FileFormatError

        what = "a layer map saved with LayerMap.save()"
        data = read_json_file(os.fspath(path), what)
        problem = _layer_map_problem(data)
        if problem:
            raise FileFormatError(f"{path}: is not {what}: {problem}", path=str(path))
        try:
            return cls.from_dict(data)
        except MatchError as err:
            raise FileFormatError(f"{path}: {err}", path=str(path)) from err

    @classmethod
    def from_matching(cls, matching: Matching) -> LayerMap:
        """Pin every module pair of a matching and keep the parameter layouts it found.

        A pair the matching compares by its boundary only because the two sides' internals
        differ (fused against split projections) is pinned, not black-boxed: its insides are
        still matched, so a fused group keeps its parameter pairs and layout."""
        from padiff_ir.pairing.layout_probes import found_layouts

        layer_map = cls(layouts=found_layouts(matching))
        for pair in matching.module_pairs:
            layer_map.pin(pair.a, pair.b)
        return layer_map

    # -- dunder ------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerMap):
            return NotImplemented
        return (
            self.pairs == other.pairs
            and self.layouts == other.layouts
            and all(getattr(self, f) == getattr(other, f) for f in _SET_FIELDS)
            and self._object_pins == other._object_pins
            and self._object_ignores == other._object_ignores
            and self._object_black_boxes == other._object_black_boxes
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = [f"{len(self.pairs)} pins"]
        counts += [f"{len(getattr(self, f))} {f}" for f in _SET_FIELDS if getattr(self, f)]
        if self.layouts:
            counts.append(f"{len(self.layouts)} layouts")
        if not self.is_resolved:
            counts.append("unresolved objects")
        return f"LayerMap({', '.join(counts)})"


def _layouts(layouts: Mapping[str, TransformLike]) -> dict[str, Transform]:
    """A layer map's layouts as transforms (their JSON form, ``{"layout": {...}}``, turned
    into one).

    Raises:
        MatchError: an entry that is no layout, offset or registered transform's name.
    """
    found = {}
    for kind, entry in layouts.items():
        try:
            found[kind] = as_transform(entry)
        except (ValueError, TypeError) as err:
            raise MatchError(
                f"the layer map's layout for {kind} is not a layout: {err}; fix or remove it"
            ) from err
    return found


def _layer_map_problem(data: object) -> str:
    """What makes ``data`` no layer map dictionary (``""`` when it is one)."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    known = {"version", "pairs", "layouts", *_SET_FIELDS}
    if not known & set(data) or "kind" in data:
        return (
            f"it has none of the keys {sorted(known)}"
            if "kind" not in data
            else f"it holds a result of kind {data['kind']!r}"
        )
    pairs = data.get("pairs", {})
    if not isinstance(pairs, dict) or not all(
        isinstance(a, str) and isinstance(b, str) for a, b in pairs.items()
    ):
        return "'pairs' must map module paths of A to module paths of B (strings)"
    for name in _SET_FIELDS:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{name!r} must be a list of module paths (strings)"
    layouts = data.get("layouts", {})
    if not isinstance(layouts, dict) or not all(
        isinstance(v, dict) and set(v) <= {"layout", "offset"} for v in layouts.values()
    ):
        return '\'layouts\' must map parameter kinds to {"layout": {...}} or {"offset": c}'
    return ""


def _is_instance(module: Module, cls: type | str) -> bool:
    if isinstance(cls, str):
        return type(module).__name__ == cls
    if isinstance(cls, (list, tuple)):
        return any(_is_instance(module, c) for c in cls)
    return isinstance(module, cls)


def _short_repr(obj: object) -> str:
    text = repr(obj).splitlines()[0] if repr(obj) else type(obj).__name__
    return text if len(text) <= 60 else text[:57] + "..."
