"""Parameter layout transforms: how a weight of model A becomes the weight of model B.

A :class:`~padiff_ir.matching.types.ParamPair` carries a ``transform`` that turns the values
of its ``a`` tensors (in order) into the values of its ``b`` tensors: a typed
:data:`~padiff_ir.matching.transform_types.Transform` (see
:mod:`padiff_ir.matching.transform_types`). Its JSON form, which the functions here also
accept, is a dict whose keys are applied in a fixed order, so one dict describes a transpose
with a split or a concat:

1. ``{"transpose": perm}``: every A array is permuted into B's layout
   (``numpy.transpose(x, perm)``);
2. ``{"split": axis, "sections": [n0, n1, ...]}``: the single (transposed) array is cut along
   ``axis`` of B's layout into pieces of those sizes, one per B tensor;
3. ``{"concat": axis, "sections": [...]}``: the (transposed) A arrays are joined along ``axis``
   of B's layout (``sections``, their sizes along it, let the inverse cut them again).

4. ``{"layout": {...}}``: the rows of the fused side along ``layout["axis"]`` (B's layout) are
   the pieces joined in member order, permuted (:mod:`padiff_ir.matching.layouts`: grouped
   qkv, gate/up order or interleaving, rotary row pairs); with neither split nor concat, B's
   rows are A's permuted (``"inverse": True``: the other way round);
5. ``{"offset": c}``: B's values are A's plus ``c`` (a norm computing ``x * (1 + w)``).

``{}`` is the identity. Two more kinds name code instead of describing a layout:
``{"name": n}`` runs an array transform registered with :func:`register_transform` (and
``"inverse": True`` its inverse); ``{"module": key}`` says that the whole module pair is copied by
a function registered with :func:`register_weight_transform` (PaDiff's "special init"), which
works on the two modules rather than on arrays.
The two registries live in :mod:`padiff_ir.matching._registry`; their functions are
re-exported here.

:func:`invert_transform` gives the transform that maps B back to A, so a transform written for
torch -> paddle also copies paddle -> torch.

Layout facts (each verified numerically in ``tests/matching``):

- ``Linear``: torch ``weight`` is ``[out, in]``, paddle ``[in, out]`` (a transpose, even when
  square); biases agree.
- ``Conv*`` and ``ConvTranspose*`` / ``Conv*Transpose``: the same layout in both
  (``[out, in/g, k...]`` and ``[in, out/g, k...]`` respectively); so do ``Embedding``, the norms
  and the recurrent layers (``LSTM``/``GRU``/``SimpleRNN`` share names, shapes and gate order;
  paddle also exposes each tensor under an alias such as ``0.cell.weight_ih``).
- ``BatchNorm``: torch ``running_mean`` / ``running_var`` are paddle ``_mean`` / ``_variance``;
  torch's ``num_batches_tracked`` counter has no paddle counterpart and is skipped on purpose.
- ``MultiheadAttention``: torch's fused ``in_proj_weight`` ``[3E, E]`` (``[out, in]``) is paddle's
  ``q_proj`` / ``k_proj`` / ``v_proj`` ``Linear`` weights ``[E, E]`` each in ``[in, out]``:
  transpose, then split along axis 1 (``{"transpose": [1, 0], "split": 1, "sections": [E]*3}``);
  ``in_proj_bias`` splits along axis 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from padiff_ir._paths import leaf
from padiff_ir.ir.families import linear_layouts_differ, module_family
from padiff_ir.matching._registry import (
    ArrayFn,
    WeightTransformFn,
    get_weight_transform,
    register_transform,
    register_weight_transform,
    unregister_transform,
    unregister_weight_transform,
    weight_transform_family,
)
from padiff_ir.matching.transform_types import (
    IDENTITY,
    ArrayTransform,
    Split,
    Transform,
    TransformLike,
    Transpose,
    as_transform,
)

__all__ = [
    "SKIPPED_TENSORS",
    "ArrayFn",
    "TensorInfo",
    "Transform",
    "WeightTransformFn",
    "apply_inverse",
    "apply_transform",
    "builtin_param_pairs",
    "class_family",
    "describe_transform",
    "get_weight_transform",
    "invert_transform",
    "layout_transform",
    "param_role",
    "register_transform",
    "register_weight_transform",
    "unregister_transform",
    "unregister_weight_transform",
    "weight_transform_family",
]

logger = logging.getLogger(__name__)

SKIPPED_TENSORS: Mapping[str, str] = {
    "num_batches_tracked": (
        "torch BatchNorm's num_batches_tracked counter has no paddle counterpart (it only matters "
        "with momentum=None in training); left as it is"
    ),
}
"""Tensor names (last component) that are skipped on purpose when the other side has none."""

# ---------------------------------------------------------------------------------------------
# Class families: torch and paddle class names of the same layer kind get one family name.
# ---------------------------------------------------------------------------------------------

UNIT_FAMILIES = frozenset({"multiheadattention", "lstm", "gru", "simplernn"})
"""Families whose whole subtree is one unit (its parameters are paired together)."""


def class_family(class_name: str, framework: str = "", base: str = "") -> str:
    """The family of a torch or paddle class name: ``Conv2d`` and ``Conv2D`` are ``conv2d``.

    ``base`` is the framework's layer class the module is (``Linear`` for a subclass of it, see
    ``Framework.base_layer``): it gives the family unless a weight transform is registered for
    ``class_name`` itself.

    Examples:
        >>> class_family("Conv2DTranspose"), class_family("ConvTranspose2d")
        ('convtranspose2d', 'convtranspose2d')
        >>> class_family("RNN", "torch"), class_family("RNN", "paddle")
        ('simplernn', 'rnn')
    """
    custom = weight_transform_family(class_name)
    if custom is not None:
        return custom
    return module_family(base or class_name, framework)


# ---------------------------------------------------------------------------------------------
# Applying transforms.
# ---------------------------------------------------------------------------------------------


def invert_transform(transform: TransformLike) -> Transform:
    """The transform that maps B's values back to A's.

    A split along axis ``k`` of B's layout becomes a concat along axis ``perm[k]`` of A's.

    Examples:
        >>> invert_transform({"transpose": [1, 0], "split": 1, "sections": [2, 2]}).to_dict()
        {'transpose': [1, 0], 'concat': 0, 'sections': [2, 2]}
        >>> invert_transform({"transpose": [1, 2, 0]}).to_dict()
        {'transpose': [2, 0, 1]}
    """
    return as_transform(transform).invert()


def apply_transform(
    transform: TransformLike,
    arrays: Sequence[np.ndarray],
    *,
    target_shapes: Sequence[Sequence[int]] | None = None,
) -> list[np.ndarray]:
    """Turn A's arrays into B's layout (see :mod:`padiff_ir.matching.transform_types`).

    Raises:
        WeightAssignError: the arrays do not fit the transform, or (with ``target_shapes``) the
            results do not have the expected shapes.

    Example:
        >>> import numpy as np
        >>> fused = np.arange(12.0).reshape(6, 2)
        >>> pieces = apply_transform({"transpose": [1, 0], "split": 1, "sections": [2, 2, 2]},
        ...                          [fused])
        >>> [p.shape for p in pieces], bool((pieces[1] == fused[2:4].T).all())
        ([(2, 2), (2, 2), (2, 2)], True)
    """
    return as_transform(transform).apply(arrays, target_shapes=target_shapes)


def apply_inverse(
    transform: TransformLike,
    arrays: Sequence[np.ndarray],
    *,
    target_shapes: Sequence[Sequence[int]] | None = None,
) -> list[np.ndarray]:
    """Turn B's arrays into A's layout: :func:`apply_transform` of :func:`invert_transform`."""
    return invert_transform(transform).apply(arrays, target_shapes=target_shapes)


def describe_transform(transform: TransformLike) -> str:
    """A short form: ``identity``, ``transpose[1, 0]``, ``transpose[1, 0]+split(axis=1)``."""
    return as_transform(transform).describe()


# ---------------------------------------------------------------------------------------------
# Built-in layout rules.
# ---------------------------------------------------------------------------------------------

_ROLE_ALIASES: Mapping[str, str] = {
    "_mean": "running_mean",
    "_variance": "running_var",
    "gamma": "weight",
    "beta": "bias",
    "scale": "weight",
}


def param_role(name: str) -> str:
    """The role of a parameter from its last name component, paddle aliases resolved.

    Examples:
        >>> param_role("bn1._variance"), param_role("lstm.0.cell.weight_ih")
        ('running_var', 'weight_ih')
    """
    last = leaf(name)
    return _ROLE_ALIASES.get(last, last)


def layout_transform(
    family: str,
    role: str,
    framework_a: str,
    shape_a: Sequence[int],
    framework_b: str,
    shape_b: Sequence[int],
) -> Transform | None:
    """The transform between two 1:1 parameters, or ``None`` if their shapes cannot agree.

    ``family`` is the owning module's class family (of either side). Linear weights transpose
    between torch and paddle even when square; any other 2-D tensor transposes only when that is
    the sole way the shapes fit.

    Examples:
        >>> layout_transform("linear", "weight", "torch", [4, 4], "paddle", [4, 4]).describe()
        'transpose[1, 0]'
        >>> layout_transform("conv2d", "weight", "torch", [8, 3, 3, 3], "paddle", [8, 3, 3, 3])
        ArrayTransform(transpose=None, regroup=None, layout=None, offset=0.0)
    """
    shape_a, shape_b = list(shape_a), list(shape_b)
    cross = linear_layouts_differ(framework_a, framework_b)
    if cross and family == "linear" and role == "weight" and len(shape_a) == 2:
        return _TRANSPOSED if shape_b == shape_a[::-1] else None
    if shape_a == shape_b:
        return IDENTITY
    if len(shape_a) == 2 and shape_b == shape_a[::-1]:
        return _TRANSPOSED
    return None


_TRANSPOSED = ArrayTransform(Transpose((1, 0)))


@dataclass(frozen=True)
class TensorInfo:
    """A parameter or buffer as the matchers see it.

    Attributes:
        name: full name in its model (``encoder.0.linear1.weight``).
        relative: name relative to the unit that owns it (``linear1.weight``).
        shape: its shape.
        family: class family of the module that holds it directly.
    """

    name: str
    relative: str
    shape: tuple[int, ...]
    family: str


_PairSpec = tuple[tuple[str, ...], tuple[str, ...], Transform]


def _mha_pairs(
    torch_side: Mapping[str, TensorInfo], paddle_side: Mapping[str, TensorInfo]
) -> list[_PairSpec]:
    """torch MultiheadAttention -> paddle MultiHeadAttention pairs (relative names)."""
    pairs: list[_PairSpec] = []
    projections = ("q_proj", "k_proj", "v_proj")
    for kind in ("weight", "bias"):
        fused = torch_side.get(f"in_proj_{kind}")
        split = [paddle_side.get(f"{p}.{kind}") for p in projections]
        if fused is not None and all(split):
            axis = 1 if kind == "weight" else 0  # paddle's output axis
            sections = [s.shape[axis] for s in split if s is not None]
            transpose = Transpose((1, 0)) if kind == "weight" else None
            transform = ArrayTransform(transpose, Split(axis, tuple(sections)))
            pairs.append(((fused.relative,), tuple(f"{p}.{kind}" for p in projections), transform))
    for proj in projections:  # kdim/vdim != embed_dim: separate torch projection weights
        single = torch_side.get(f"{proj}_weight")
        if single is not None and f"{proj}.weight" in paddle_side:
            pairs.append(((single.relative,), (f"{proj}.weight",), _TRANSPOSED))
    for kind, plain in (("weight", _TRANSPOSED), ("bias", IDENTITY)):
        name = f"out_proj.{kind}"
        if name in torch_side and name in paddle_side:
            pairs.append(((name,), (name,), plain))
    return pairs


def _fused_attention(params: Mapping[str, TensorInfo]) -> bool:
    """Whether an attention layer holds its projections as torch's ``MultiheadAttention``
    does (one ``in_proj_weight``, or ``q_proj_weight``... when the key and value sizes
    differ) rather than as ``q_proj``/``k_proj``/``v_proj`` layers."""
    return "in_proj_weight" in params or "q_proj_weight" in params


def builtin_param_pairs(
    family: str,
    framework_a: str,
    params_a: Mapping[str, TensorInfo],
    framework_b: str,
    params_b: Mapping[str, TensorInfo],
) -> list[_PairSpec] | None:
    """Parameter pairs of a built-in fused/split layer pair, or ``None`` when there is no rule.

    ``params_a`` / ``params_b`` map names relative to each unit to their :class:`TensorInfo`.
    Returns ``(names_a, names_b, transform)`` triples (relative names, A -> B); parameters left
    out have no counterpart. Only torch ``MultiheadAttention`` vs paddle ``MultiHeadAttention``
    needs a rule (the side holding fused projections, :func:`_fused_attention`, against the
    side of separate layers, between frameworks whose ``Linear`` layouts differ); every other
    built-in layer pair goes by name, role and shape.
    """
    if family != "multiheadattention" or not linear_layouts_differ(framework_a, framework_b):
        return None
    if _fused_attention(params_a) == _fused_attention(params_b):
        return None
    if _fused_attention(params_a):
        return _mha_pairs(params_a, params_b)
    return [
        (paddle_names, torch_names, invert_transform(transform))
        for torch_names, paddle_names, transform in _mha_pairs(params_b, params_a)
    ]
