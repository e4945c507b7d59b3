"""Remove ``Identity`` ops and no-op casts, recording each removed tensor as an alias.

Exporters sprinkle copies through their graphs: paddle2onnx puts an ``Identity`` after every
``add`` op and makes every ``auto.cast`` an ``Identity``; torch casts tensors to the dtype they
already have. These ops compute nothing, and they would spoil op-by-op matching, so this pass
removes them:

* every reader of a removed op's output reads the op's source instead, through whole chains of
  copies (``a -> Identity -> b -> Identity -> c`` makes readers of ``c`` read ``a``);
* ``graph.aliases[removed output] = source`` records the equivalence, so a tensor named by a
  framework (a paddle ``fetch_name_0``, say) is still found with :meth:`Graph.resolve`; the
  removed tensor stays in ``graph.tensors``, with no producer;
* a graph output made by a removed op is replaced in ``graph.outputs`` by its source, and
  ``graph.meta["output_aliases"]`` maps the original output name to the new one.

A ``Cast`` (or ``CastLike``) is a no-op when the dtype of its input is known and is the dtype it
casts to.
"""

from __future__ import annotations

import logging

from padiff_ir.ir.graph import Graph, OpNode
from padiff_ir.ir.passes._pass import DEFAULT_DOMAINS, PassResult, onnx_dtype_name

__all__ = ["identity_alias"]

logger = logging.getLogger(__name__)


def _is_copy(graph: Graph, op: OpNode) -> bool:
    """Whether ``op`` only copies its first input to its only output."""
    if op.domain not in DEFAULT_DOMAINS or len(op.outputs) != 1 or not op.outputs[0]:
        return False
    if not op.inputs or not op.inputs[0]:
        return False
    if op.op_type == "Identity":
        return True
    source = graph.tensors.get(op.inputs[0])
    if source is None or source.dtype is None:
        return False
    if op.op_type == "Cast" and "to" in op.attributes:
        return onnx_dtype_name(op.attributes["to"]) == source.dtype
    if op.op_type == "CastLike" and len(op.inputs) == 2:
        like = graph.tensors.get(op.inputs[1])
        return like is not None and like.dtype == source.dtype
    return False


def identity_alias(graph: Graph) -> PassResult:
    """Remove ``Identity`` ops and no-op casts (see the module docstring).

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> ops = [OpNode("relu", "Relu", inputs=("x",), outputs=("r",), index=0),
        ...        OpNode("id", "Identity", inputs=("r",), outputs=("y",), index=1)]
        >>> tensors = {n: TensorInfo(n) for n in ("x", "r", "y")}
        >>> result = identity_alias(Graph(ops, tensors, ["x"], ["y"]))
        >>> result.modified, sorted(result.graph.ops), result.graph.outputs
        (True, ['relu'], ('r',))
        >>> result.graph.aliases, result.graph.meta["output_aliases"]
        ({'y': 'r'}, {'y': 'r'})
    """
    result = graph.copy()
    source: dict[str, str] = {}
    removed: list[str] = []
    for op in result.topological_order():
        if _is_copy(result, op):
            origin = op.inputs[0]
            source[op.outputs[0]] = source.get(origin, origin)
            removed.append(op.name)
    if not removed:
        return PassResult(result, False)

    old_outputs = result.outputs
    result.replace_ops(removed, rename=source)
    result.aliases.update(source)
    for name in old_outputs:
        if name in source and name not in result.outputs:
            result.tensors[name].is_output = False
    # compose with the renames of earlier runs: keys stay the names the exporter gave
    earlier = dict(result.meta.get("output_aliases", {}))
    output_aliases = {
        original: source.get(current, current) for original, current in earlier.items()
    }
    for name in old_outputs:
        if name in source and name not in earlier.values():
            output_aliases[name] = source[name]
    if output_aliases:
        result.meta["output_aliases"] = output_aliases
    logger.debug(
        "identity_alias: removed %d ops, %d of them making graph outputs",
        len(removed),
        sum(1 for name in old_outputs if name in source),
    )
    return PassResult(result, True)
