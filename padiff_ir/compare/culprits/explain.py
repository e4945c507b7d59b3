"""Explain a module's own error: differing op attributes, op structure and parameter values.

The user should read ``LayerNormalization epsilon 1e-05 vs 1e-06`` or ``Softmax axis -1 vs 1``,
not only numbers. For a module pair this compares the attributes of its matched ops, names the
ops present on one side only, and the parameters whose values differ after the transform of
the parameter map.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from padiff_ir._paths import within
from padiff_ir.ir.graph import Graph, OpNode
from padiff_ir.matching.types import Matching, ModulePair

__all__ = ["attribute_diffs", "op_structure_diffs", "op_type_diffs", "param_diffs"]

logger = logging.getLogger(__name__)

# Attributes that only describe how an exporter wrote an op, not what it computes.
_IGNORED_ATTRIBUTES = frozenset({"training_mode", "value", "to", "allowzero"})
# Ops that only move data around; on one side only they are not worth a line.
_LAYOUT_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Identity",
        "Cast",
        "CastLike",
        "Expand",
        "Constant",
        "Shape",
        "Gather",
        "Concat",
        "Slice",
    }
)


def _norm(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(value.ravel().tolist()) if value.size <= 16 else ("array", value.shape)
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    if isinstance(value, float):
        return float(np.float32(value))
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _ops_of(
    graph: Graph, module: str, *, direct: bool = False, call: int | None = None
) -> list[OpNode]:
    """Data ops of ``module`` and its submodules, or (``direct``) of the module itself only;
    with ``call``, only those of that call of the module."""
    return [
        op
        for op in graph.ops_in_module(module)
        if op.kind == "data"
        and (not direct or op.module_path == module)
        and (call is None or op.module_path != module or op.meta.get("call", call) == call)
    ]


def _paired_ops(
    module: ModulePair,
    matching: Matching,
    graph_a: Graph,
    graph_b: Graph,
    evidence: str | None = None,
) -> list[tuple[OpNode, OpNode]]:
    ops_a = {op.name for op in _ops_of(graph_a, module.a, call=module.call_a)}
    ops_b = {op.name for op in _ops_of(graph_b, module.b, call=module.call_b)}
    pairs = []
    seen = set()
    for pair in matching.tensor_pairs:
        if len(pair.a) != 1 or len(pair.b) != 1:
            continue
        if evidence is not None and evidence not in pair.evidence:
            continue
        op_a = graph_a.producer(pair.a[0])
        op_b = graph_b.producer(pair.b[0])
        if op_a is None or op_b is None or op_a.name not in ops_a or op_b.name not in ops_b:
            continue
        if (op_a.name, op_b.name) not in seen:
            seen.add((op_a.name, op_b.name))
            pairs.append((op_a, op_b))
    return pairs


_AXIS_ATTRIBUTES = frozenset({"axis", "axes"})


def _rank(graph: Graph, op: OpNode) -> int | None:
    info = graph.tensors.get(op.inputs[0]) if op.inputs else None
    return len(info.shape) if info is not None and info.shape is not None else None


def _canonical(graph: Graph, op: OpNode, key: str, value: Any) -> Any:
    """Negative axes counted from the input's rank, so ``-1`` and ``2`` agree on rank 3."""
    if key not in _AXIS_ATTRIBUTES or value is None:
        return value
    rank = _rank(graph, op)
    if rank is None:
        return value
    if isinstance(value, (list, tuple)):
        return [v + rank if isinstance(v, int) and v < 0 else v for v in value]
    return value + rank if isinstance(value, int) and value < 0 else value


def attribute_diffs(
    module: ModulePair, matching: Matching, graph_a: Graph, graph_b: Graph
) -> list[str]:
    """``"<Op> <attribute> <A value> vs <B value>"`` for matched ops of the module pair.

    An attribute present on one side only counts when it is not the ONNX default that the other
    side leaves out (the exporters differ in what they write explicitly).
    """
    lines: list[str] = []
    for op_a, op_b in _paired_ops(module, matching, graph_a, graph_b):
        if op_a.op_type != op_b.op_type:
            continue
        keys = (set(op_a.attributes) | set(op_b.attributes)) - _IGNORED_ATTRIBUTES
        for key in sorted(keys):
            va, vb = op_a.attributes.get(key), op_b.attributes.get(key)
            if va is None or vb is None:
                default = _DEFAULTS.get((op_a.op_type, key))
                if default is None or _norm(va if va is not None else vb) == _norm(default):
                    continue
                va = default if va is None else va
                vb = default if vb is None else vb
            same = _norm(_canonical(graph_a, op_a, key, va)) == _norm(
                _canonical(graph_b, op_b, key, vb)
            )
            if not same:
                lines.append(f"{op_a.op_type} {key} {_fmt(va)} vs {_fmt(vb)}")
    return list(dict.fromkeys(lines))


def op_type_diffs(
    module: ModulePair, matching: Matching, graph_a: Graph, graph_b: Graph
) -> list[str]:
    """``"<A op> vs <B op>"`` for ops of the module pair paired by their position alone.

    The matcher pairs ops of different families only when they sit in the same place (evidence
    ``position``): a ``Relu`` ported as an ``Elu``. Ops of one family written differently by
    the two exporters (``GlobalAveragePool`` vs ``ReduceMean``) are not listed.
    """
    lines = [
        f"{op_a.op_type} vs {op_b.op_type}"
        for op_a, op_b in _paired_ops(module, matching, graph_a, graph_b, "position")
        if op_a.op_type != op_b.op_type
    ]
    return list(dict.fromkeys(lines))


# ONNX defaults of attributes that decide results, for attributes written on one side only.
_DEFAULTS: Mapping[tuple[str, str], Any] = {
    ("LayerNormalization", "epsilon"): 1e-5,
    ("LayerNormalization", "axis"): -1,
    ("BatchNormalization", "epsilon"): 1e-5,
    ("BatchNormalization", "momentum"): 0.9,
    ("Softmax", "axis"): -1,
    ("LogSoftmax", "axis"): -1,
    ("Gelu", "approximate"): "none",
    ("Conv", "group"): 1,
    ("ConvTranspose", "group"): 1,
    ("MaxPool", "ceil_mode"): 0,
    ("AveragePool", "ceil_mode"): 0,
    ("AveragePool", "count_include_pad"): 0,
    ("LeakyRelu", "alpha"): 0.01,
    ("Elu", "alpha"): 1.0,
    ("HardSigmoid", "alpha"): 0.2,
    ("Concat", "axis"): 0,
    ("Gather", "axis"): 0,
    ("Flatten", "axis"): 1,
}


def op_structure_diffs(
    module: ModulePair, graph_a: Graph, graph_b: Graph, *, direct: bool = False
) -> list[str]:
    """Compute ops (not layout ops) that one side of the module has more of than the other.

    With ``direct``, only the ops of the module itself count, not those of its submodules.
    """
    count_a = Counter(
        op.op_type
        for op in _ops_of(graph_a, module.a, direct=direct, call=module.call_a)
        if op.op_type not in _LAYOUT_OPS
    )
    count_b = Counter(
        op.op_type
        for op in _ops_of(graph_b, module.b, direct=direct, call=module.call_b)
        if op.op_type not in _LAYOUT_OPS
    )
    lines = []
    for op_type in sorted(set(count_a) | set(count_b)):
        na, nb = count_a.get(op_type, 0), count_b.get(op_type, 0)
        if na != nb:
            lines.append(f"{op_type} x{na} in A vs x{nb} in B")
    return lines


def param_diffs(
    module: ModulePair,
    matching: Matching,
    params_a: Mapping[str, np.ndarray],
    params_b: Mapping[str, np.ndarray],
    *,
    atol: float,
    rtol: float,
) -> list[str]:
    """Parameters of the module pair whose values differ after the parameter map's transform.

    Args:
        params_a / params_b: framework parameter name -> value, per side.
    """
    from padiff_ir.errors import WeightAssignError

    lines = []
    for pair in matching.param_pairs:
        if not any(within(use, module.a) for use in (pair.module_a, *pair.also_used_in)):
            continue  # not used in this module (a tied weight: each layer reading it)
        if any(name not in params_a for name in pair.a) or any(
            name not in params_b for name in pair.b
        ):
            continue
        try:
            expected = pair.transform.apply(
                [params_a[n] for n in pair.a],
                target_shapes=[params_b[n].shape for n in pair.b],
            )
        except WeightAssignError as err:
            lines.append(f"{', '.join(pair.a)} vs {', '.join(pair.b)}: {err}")
            continue
        for name_b, want in zip(pair.b, expected):
            got = params_b[name_b]
            diff = (
                float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))
                if want.size
                else 0.0
            )
            bound = atol + rtol * float(np.max(np.abs(got))) if got.size else atol
            if diff > bound:
                how = pair.transform.describe()
                via = f" ({how})" if how != "identity" else ""
                lines.append(
                    f"parameter {', '.join(pair.a)} vs {name_b}{via} differs: max abs {diff:.3g}"
                )
    return lines
