"""User-registered transforms: named array transforms and module weight transforms.

``{"name": n}`` in a :class:`~padiff_ir.matching.types.ParamPair`'s transform runs the array
transform registered as ``n`` with :func:`register_transform`; a pair of layer classes registered
with :func:`register_weight_transform` (PaDiff's "special init") is copied by a function that
works on the two modules, and its two classes form one class family (matched as one unit). The
public names are re-exported by :mod:`padiff_ir.matching.transforms`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ArrayFn",
    "WeightTransformFn",
    "get_weight_transform",
    "named_transform",
    "register_transform",
    "register_weight_transform",
    "unregister_transform",
    "unregister_weight_transform",
    "weight_transform_family",
]

logger = logging.getLogger(__name__)

WeightTransformFn = Callable[[Any, Any], "Mapping[str, Any] | None"]
"""``fn(source_module, target_module) -> {target parameter name: array}`` (or ``None`` if ``fn``
set the target's values itself); names are relative to ``target_module``."""

ArrayFn = Callable[[list[np.ndarray]], list[np.ndarray]]
"""``fn(arrays) -> arrays``: a registered array transform (or its inverse), A's arrays in order
to B's."""


@dataclass(frozen=True)
class _NamedTransform:
    forward: ArrayFn
    inverse: ArrayFn


_NAMED: dict[str, _NamedTransform] = {}
_WEIGHT_TRANSFORMS: dict[tuple[str, str], WeightTransformFn] = {}


def register_transform(name: str, forward: ArrayFn, inverse: ArrayFn) -> None:
    """Register an array transform usable as ``{"name": name}`` in a ParamPair.

    ``forward`` maps the list of A arrays to the list of B arrays, ``inverse`` the other way.

    Example:
        >>> import numpy as np
        >>> from padiff_ir.matching.transforms import apply_transform
        >>> register_transform("negate", lambda xs: [-x for x in xs], lambda xs: [-x for x in xs])
        >>> apply_transform({"name": "negate"}, [np.ones(2)])[0].tolist()
        [-1.0, -1.0]
        >>> unregister_transform("negate")
    """
    _NAMED[name] = _NamedTransform(forward, inverse)


def unregister_transform(name: str) -> None:
    """Forget the array transform registered as ``name`` (no error if there is none)."""
    _NAMED.pop(name, None)


def register_weight_transform(class_a: str, class_b: str, fn: WeightTransformFn) -> None:
    """Copy weights between a module of class ``class_a`` and one of ``class_b`` with ``fn``.

    PaDiff's "special init": for a pair of layers whose parameters do not correspond one to one.
    ``fn(source_module, target_module)`` returns ``{target parameter name: array}`` with names
    relative to ``target_module`` (arrays may be numpy arrays or tensors of either framework), or
    returns ``None`` after setting the target's values itself. It is used when the source is a
    ``class_a`` and the target a ``class_b``; register the reverse pair too to copy the other way.
    Modules of these classes are matched as one unit (their sublayers are not matched apart).

    Example:
        >>> def fused_to_split(src, dst):
        ...     return {}
        >>> register_weight_transform("FusedQKV", "SplitQKV", fused_to_split)
        >>> get_weight_transform("FusedQKV", "SplitQKV") is fused_to_split
        True
        >>> weight_transform_family("SplitQKV")
        'custom:FusedQKV|SplitQKV'
        >>> unregister_weight_transform("FusedQKV", "SplitQKV")
    """
    _WEIGHT_TRANSFORMS[(class_a, class_b)] = fn


def unregister_weight_transform(class_a: str, class_b: str) -> None:
    """Forget the function registered for ``class_a -> class_b`` (no error if there is none)."""
    _WEIGHT_TRANSFORMS.pop((class_a, class_b), None)


def get_weight_transform(source_class: str, target_class: str) -> WeightTransformFn | None:
    """The function registered for ``source_class -> target_class``, if any."""
    return _WEIGHT_TRANSFORMS.get((source_class, target_class))


def weight_transform_family(class_name: str) -> str | None:
    """The family shared by both classes of a registered weight transform, else ``None``."""
    for class_a, class_b in _WEIGHT_TRANSFORMS:
        if class_name in (class_a, class_b):
            first, second = sorted((class_a, class_b))
            return f"custom:{first}|{second}"
    return None


def named_transform(name: str, *, inverse: bool = False) -> ArrayFn | None:
    """The array function registered as ``name`` (its inverse with ``inverse``), if any."""
    named = _NAMED.get(name)
    if named is None:
        return None
    return named.inverse if inverse else named.forward
