"""Mark each op as carrying activations (``data``), shapes (``shape``) or constants (``const``).

Exporters compute reshape targets and indices in the graph itself: torch's dynamo exporter
emits ``Shape -> Gather -> Concat -> Reshape`` chains, ``CastLike``, ``Unsqueeze`` and friends;
paddle2onnx ``Shape -> Slice -> Concat``. These ops differ between the frameworks and carry no
activations, so matching looks only at ``data`` ops and this pass sets every op's ``kind``.

One forward sweep in topological order gives every tensor a kind, from its sources:

* graph inputs and framework parameters (initializers with a ``param_name``) are ``data``;
  other initializers (constant arrays) are ``const``; a tensor no op makes is ``data``;
* ``Shape``, ``Size`` and ``EyeLike`` make ``shape`` tensors whatever they read; ``Constant``
  makes ``const``; ops reading nothing make ``const`` (``data`` for the ``Random*`` ops);
* any other op is ``data`` as soon as one input is ``data``, else ``shape`` if one input is
  ``shape``, else ``const``; the second input of ``CastLike``, of which only the dtype is
  read, does not count.

So ``Reshape(x, Concat(Shape(x), Constant))`` stays ``data`` although its target is a shape
subgraph, while ``Gather``, ``Concat``, ``Cast``, ``Range``, ``Equal`` or ``Where`` on shapes
are ``shape`` ops.
"""

from __future__ import annotations

import logging

from padiff_ir.ir.graph import Graph, OpNode
from padiff_ir.ir.passes._pass import PassResult

__all__ = ["mark_shape_subgraphs"]

logger = logging.getLogger(__name__)

#: Ops that read only the shape of their input, so make ``shape`` tensors whatever it is.
SHAPE_SOURCES = frozenset({"Shape", "Size", "EyeLike"})

#: Inputs of which an op reads only the dtype: their kind does not count.
DTYPE_ONLY_INPUTS = {"CastLike": 1}


def _source_kind(graph: Graph, tensor: str) -> str:
    """Kind of a tensor no op makes."""
    info = graph.tensors.get(tensor)
    if info is None or info.is_input or info.is_param or not info.is_initializer:
        return "data"
    return "const"


def _op_kind(op: OpNode, input_kinds: list[str]) -> str:
    if op.op_type in SHAPE_SOURCES:
        return "shape"
    if op.op_type == "Constant" or (not input_kinds and not op.op_type.startswith("Random")):
        return "const"
    if not input_kinds or "data" in input_kinds:
        return "data"
    return "shape" if "shape" in input_kinds else "const"


def mark_shape_subgraphs(graph: Graph) -> PassResult:
    """Set ``op.kind`` on every op (see the module docstring).

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> ops = [OpNode("shape", "Shape", inputs=("x",), outputs=("s",), index=0),
        ...        OpNode("reshape", "Reshape", inputs=("x", "s"), outputs=("y",), index=1)]
        >>> tensors = {n: TensorInfo(n) for n in ("x", "s", "y")}
        >>> result = mark_shape_subgraphs(Graph(ops, tensors, ["x"], ["y"]))
        >>> [(op.name, op.kind) for op in result.graph]
        [('shape', 'shape'), ('reshape', 'data')]
    """
    result = graph.copy()
    kinds: dict[str, str] = {}
    changed = 0
    for op in result.topological_order():
        skipped = DTYPE_ONLY_INPUTS.get(op.op_type)
        input_kinds = [
            kinds.get(name) or _source_kind(result, name)
            for position, name in enumerate(op.inputs)
            if name and position != skipped
        ]
        kind = _op_kind(op, input_kinds)
        for name in op.outputs:
            if name:
                kinds[name] = kind
        if op.kind != kind:
            op.kind = kind
            changed += 1
    if changed:
        logger.debug("mark_shape_subgraphs: changed the kind of %d ops", changed)
    return PassResult(result, changed > 0)
