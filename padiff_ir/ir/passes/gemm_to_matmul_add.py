"""Bring linear layers to one form: ``MatMul(x, W)`` then ``Add(b)``.

The exporters write a linear layer three ways:

* paddle: ``MatMul(x, W[in, out]) -> Add(b)``, already the canonical form;
* torch, 2-D input: ``Gemm(x, W[out, in], b, transB=1)``;
* torch, N-D input: ``Transpose(W, perm=[1, 0]) -> MatMul -> Add(b)``.

This pass rewrites the other two to the first. A ``Gemm(A, B, C)`` with ``alpha=1``, ``beta=1``
and ``transA=0`` becomes ``MatMul(A, B)`` followed by ``Add(C)`` (just the ``MatMul`` when ``C``
is omitted). A ``Transpose`` of a 2-D constant (an initializer or a ``Constant`` output) read as
the second input of ``MatMul`` ops is folded into them: the ``MatMul`` reads the constant itself
and the ``Transpose`` goes once nothing else reads it.

Rather than insert a ``Transpose``, a ``MatMul`` that reads its second input transposed says so
with ``op.meta["weight_transposed"] = True`` (torch weights are ``[out, in]``, paddle's
``[in, out]``); a later weight comparison transposes accordingly. The IR is analysed, never run,
so it need not stay executable.

New ops keep the module path and class of the op they replace, and ``meta["fused_from"]`` names
the original ops. Op indices are renumbered so that they stay a topological order.
"""

from __future__ import annotations

import logging
from typing import Any

from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
from padiff_ir.ir.passes._pass import (
    DEFAULT_DOMAINS,
    PassResult,
    is_constant,
    origins,
    renumber,
    unique_name,
)

__all__ = ["gemm_to_matmul_add"]

logger = logging.getLogger(__name__)


def _splittable(op: OpNode) -> bool:
    attrs = op.attributes
    has_bias = len(op.inputs) > 2 and bool(op.inputs[2])
    return (
        op.op_type == "Gemm"
        and op.domain in DEFAULT_DOMAINS
        and len(op.inputs) >= 2
        and float(attrs.get("alpha", 1.0)) == 1.0
        and int(attrs.get("transA", 0)) == 0
        and (not has_bias or float(attrs.get("beta", 1.0)) == 1.0)
    )


def _split_gemm(graph: Graph, gemm: OpNode, taken_ops: set[str]) -> list[OpNode]:
    """The ``MatMul`` (and ``Add``) standing for ``gemm``; new tensors go into ``graph``."""
    a, b = gemm.inputs[0], gemm.inputs[1]
    bias = gemm.inputs[2] if len(gemm.inputs) > 2 else ""
    output = gemm.outputs[0]
    meta = {
        **gemm.meta,
        "fused_from": origins(gemm),
        "weight_transposed": bool(int(gemm.attributes.get("transB", 0))),
    }
    common: dict[str, Any] = {
        "domain": gemm.domain,
        "module_path": gemm.module_path,
        "module_class": gemm.module_class,
        "index": gemm.index,
        "kind": gemm.kind,
    }
    matmul_name = unique_name(taken_ops, f"{gemm.name}.matmul")
    taken_ops.add(matmul_name)
    if not bias:
        return [
            OpNode(matmul_name, "MatMul", inputs=(a, b), outputs=(output,), meta=meta, **common)
        ]
    product = unique_name(graph.tensors, f"{output}.matmul")
    template = graph.tensors.get(output)
    graph.tensors[product] = TensorInfo(
        product,
        shape=template.shape if template else None,
        dtype=template.dtype if template else None,
    )
    add_name = unique_name(taken_ops, f"{gemm.name}.add")
    taken_ops.add(add_name)
    return [
        OpNode(matmul_name, "MatMul", inputs=(a, b), outputs=(product,), meta=meta, **common),
        OpNode(
            add_name,
            "Add",
            inputs=(product, bias),
            outputs=(output,),
            meta={"fused_from": origins(gemm)},
            **common,
        ),
    ]


def _foldable_transpose(graph: Graph, op: OpNode) -> bool:
    """Whether ``op`` transposes a 2-D constant."""
    if op.op_type != "Transpose" or op.domain not in DEFAULT_DOMAINS or len(op.inputs) != 1:
        return False
    weight = graph.tensors.get(op.inputs[0])
    if weight is None or not is_constant(graph, weight.name):
        return False
    perm = op.attributes.get("perm")
    if perm is None:  # no perm reverses the axes: a swap for a 2-D tensor
        return weight.shape is not None and len(weight.shape) == 2
    return list(perm) == [1, 0]


def gemm_to_matmul_add(graph: Graph) -> PassResult:
    """Rewrite ``Gemm`` and ``Transpose -> MatMul`` to ``MatMul [-> Add]`` (module docstring).

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> gemm = OpNode("fc", "Gemm", attributes={"transB": 1}, inputs=("x", "w", "b"),
        ...               outputs=("y",), module_path="fc", module_class="Linear")
        >>> tensors = {n: TensorInfo(n) for n in ("x", "y")}
        >>> tensors.update({n: TensorInfo(n, is_initializer=True) for n in ("w", "b")})
        >>> result = gemm_to_matmul_add(Graph([gemm], tensors, ["x"], ["y"]))
        >>> [(op.op_type, op.inputs, op.module_path) for op in result.graph]
        [('MatMul', ('x', 'w'), 'fc'), ('Add', ('y.matmul', 'b'), 'fc')]
        >>> result.graph.ops["fc.matmul"].meta
        {'fused_from': ['fc'], 'weight_transposed': True}
    """
    result = graph.copy()
    taken_ops = set(result.ops)
    removed: list[str] = []
    added: list[OpNode] = []
    after: dict[str, int] = {}
    replacement: dict[str, OpNode] = {}  # Gemm name -> the MatMul standing for it
    for op in result.topological_order():
        if op.op_type != "Gemm":
            continue
        if not _splittable(op):
            logger.debug(
                "gemm_to_matmul_add: keeping %s: alpha, beta or transA not default (%s)",
                op.name,
                op.attributes,
            )
            continue
        new_ops = _split_gemm(result, op, taken_ops)
        removed.append(op.name)
        added.extend(new_ops)
        replacement[op.name] = new_ops[0]
        after.update({new.name: rank for rank, new in enumerate(new_ops)})

    folded = 0
    for op in result.topological_order():
        if not _foldable_transpose(result, op):
            continue
        transposed, weight = op.outputs[0], op.inputs[0]
        readers = [replacement.get(reader.name, reader) for reader in result.consumers(transposed)]
        foldable = [
            reader
            for reader in readers
            if reader.op_type == "MatMul"
            and len(reader.inputs) == 2
            and reader.inputs[1] == transposed
            and reader.inputs[0] != transposed
        ]
        if not foldable:
            continue
        for reader in foldable:
            reader.inputs = (reader.inputs[0], weight)
            reader.meta["weight_transposed"] = not reader.meta.get("weight_transposed", False)
            reader.meta["fused_from"] = [*origins(op), *origins(reader)]  # in graph order
        folded += len(foldable)
        if len(foldable) == len(readers) and transposed not in result.outputs:
            removed.append(op.name)

    if not removed and not folded:
        return PassResult(result, False)
    removed_set = set(removed)
    renumber([*(o for o in result.ops.values() if o.name not in removed_set), *added], after)
    result.replace_ops(removed, added)
    logger.debug(
        "gemm_to_matmul_add: split %d Gemm ops, folded %d transposed weights",
        len(replacement),
        folded,
    )
    return PassResult(result, True)
