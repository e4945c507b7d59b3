"""Matched tensors compared: every tensor pair, the graph outputs, the eager outputs.

Pairs are ordered by where A's graph makes them (data-flow order), so the first failing pair
is the first divergence. A per-tensor override (``tolerances=``) applies to a pair when one of
its tensors of A is named there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from padiff_ir.compare.eager import EagerRun
from padiff_ir.compare.laid_out_pairs import LayoutScopes, joined_value, layout_rows
from padiff_ir.compare.match_result import PairResult
from padiff_ir.compare.values import ComparedTensors, pair_values
from padiff_ir.errors import MatchError
from padiff_ir.exporters import ExportedGraph
from padiff_ir.ir import Graph
from padiff_ir.matching.types import Matching, TensorPair
from padiff_ir.metrics import Tolerance, compare_arrays

__all__ = [
    "compare_eager_outputs",
    "compare_outputs",
    "compare_pairs",
    "eager_output_index",
    "output_order",
]

logger = logging.getLogger(__name__)


_EAGER = "eager#"
"""The name of a model's eager output ``i`` in a pair: ``eager#i``."""


def eager_output_index(name: str) -> int | None:
    """The model output an eager pair's tensor name stands for (None for a graph tensor).

    Example:
        >>> eager_output_index("eager#2"), eager_output_index("logits")
        (2, None)
    """
    rest = name[len(_EAGER) :] if name.startswith(_EAGER) else ""
    return int(rest) if rest.isdigit() else None


def _order_key(graph: Graph, names: Sequence[str]) -> int:
    indices = [graph.ops[p.name].index for p in (graph.producer(n) for n in names) if p]
    return min(indices) if indices else -1


def compare_pairs(
    matching: Matching,
    graph_a: Graph,
    store_a: Mapping[str, Any],
    store_b: Mapping[str, Any],
    tolerance: Tolerance,
    overrides: Mapping[str, Tolerance],
    graph_b: Graph | None = None,
    compared: ComparedTensors | None = None,
) -> list[PairResult]:
    """Every tensor pair of ``matching`` with a value on both sides, in A's data-flow order.

    With ``graph_b``, a pair made by a module called several times names the call
    (``pool#2``) as its module. ``compared`` remembers single-tensor comparisons for the
    later stages of the check.
    """
    from padiff_ir.pairing.call_sites import module_calls, producer_site

    calls_a = module_calls(graph_a)
    calls_b = module_calls(graph_b) if graph_b is not None else {}
    results = []
    ordered = sorted(matching.tensor_pairs, key=lambda p: _order_key(graph_a, p.a))
    scopes = LayoutScopes(matching)

    def simple(pair: TensorPair) -> bool:
        return (
            len(pair.a) == len(pair.b) == 1
            and not pair.layout
            and pair.a[0] in store_a
            and pair.b[0] in store_b
        )

    def tolerance_of(pair: TensorPair) -> Tolerance:
        return next((overrides[n] for n in pair.a if n in overrides), tolerance)

    if compared is not None:
        compared.prefetch((p.a[0], p.b[0], tolerance_of(p)) for p in ordered if simple(p))
    for index, pair in enumerate(ordered):
        tol = tolerance_of(pair)
        if compared is not None and simple(pair):
            metrics = compared.compare(pair.a[0], pair.b[0], tol)
        else:
            value_a, value_b = _laid_out_values(pair, matching, store_a, store_b)
            if value_a is None or value_b is None:
                continue
            metrics = compare_arrays(value_a, value_b, tol)
        results.append(
            PairResult(
                index=index,
                a=pair.a,
                b=pair.b,
                module_a=producer_site(graph_a, calls_a, pair.a[0], pair.module_a),
                module_b=(
                    producer_site(graph_b, calls_b, pair.b[0], pair.module_b)
                    if graph_b is not None
                    else pair.module_b
                ),
                op_a=pair.op_a,
                op_b=pair.op_b,
                metrics=metrics,
                confidence=pair.confidence,
                evidence=pair.evidence,
                not_comparable="" if metrics.ok else scopes.note(pair),
            )
        )
    return results


def _laid_out_values(
    pair: TensorPair, matching: Matching, store_a: Mapping[str, Any], store_b: Mapping[str, Any]
) -> tuple[Any, Any]:
    """The pair's values, a fused side's pieces joined in its parameters' layout."""
    if (
        not pair.is_group
        or any(n not in store_a for n in pair.a)
        or any(n not in store_b for n in pair.b)
    ):
        return pair_values(pair, store_a, store_b)
    pieces_a = [store_a[n] for n in pair.a]
    pieces_b = [store_b[n] for n in pair.b]
    found = layout_rows(
        pair, matching, [v.shape[-1] for v in pieces_a], [v.shape[-1] for v in pieces_b]
    )
    if found is None:
        return pair_values(pair, store_a, store_b)
    side, rows = found
    if side == "a":
        return joined_value(pieces_a, rows), pieces_b[0]
    return pieces_a[0], joined_value(pieces_b, rows)


def output_order(keys_a: Sequence[str], keys_b: Sequence[str], count: int) -> list[int]:
    """For each output of A, the index of B's output it pairs with: by key path when both
    models return outputs with the same names (``{"logits": ..., "hidden": ...}``), else by
    position.

    Example:
        >>> output_order(("logits", "hidden"), ("hidden", "logits"), 2)
        [1, 0]
        >>> output_order((), ("hidden", "logits"), 2)
        [0, 1]
    """
    if (
        len(keys_a) == len(keys_b) == count
        and len(set(keys_a)) == count
        and set(keys_a) == set(keys_b)
    ):
        index_b = {key: index for index, key in enumerate(keys_b)}
        return [index_b[key] for key in keys_a]
    return list(range(count))


def compare_outputs(
    exported_a: ExportedGraph,
    exported_b: ExportedGraph,
    store_a: Mapping[str, Any],
    store_b: Mapping[str, Any],
    tolerance: Tolerance,
    compared: ComparedTensors | None = None,
) -> list[PairResult]:
    """The graph outputs, paired by name when both models return them with names (a dict),
    else by position.

    Raises:
        MatchError: the two graphs have different numbers of outputs.
    """
    if len(exported_a.output_names) != len(exported_b.output_names):
        raise MatchError(
            f"model A has {len(exported_a.output_names)} outputs {list(exported_a.output_names)} "
            f"and model B {len(exported_b.output_names)} {list(exported_b.output_names)}: compare "
            "models with the same outputs (wrap one so that both return the same tensors)"
        )
    count = len(exported_a.output_names)
    order = output_order(exported_a.output_keys, exported_b.output_keys, count)
    by_name = order != list(range(count)) or bool(exported_a.output_keys and exported_b.output_keys)
    compared = compared or ComparedTensors(store_a, store_b)
    results = []
    for index, name_a in enumerate(exported_a.output_names):
        name_b = exported_b.output_names[order[index]]
        results.append(
            PairResult(
                index=index,
                a=(name_a,),
                b=(name_b,),
                module_a="",
                module_b="",
                op_a="output",
                op_b="output",
                metrics=compared.compare(name_a, name_b, tolerance),
                evidence=("output-name",) if by_name else ("output-position",),
            )
        )
    return results


def compare_eager_outputs(
    eager_a: EagerRun | None,
    eager_b: EagerRun | None,
    tolerance: Tolerance,
    keys_a: Sequence[str] = (),
    keys_b: Sequence[str] = (),
) -> list[PairResult]:
    """The two models' eager outputs compared (none for ONNX files): by key path when both
    return outputs with the same names (``keys_a``/``keys_b``, in eager order), else by
    position."""
    if eager_a is None or eager_b is None:
        return []
    count = min(len(eager_a.outputs), len(eager_b.outputs))
    order = (
        output_order(keys_a, keys_b, count)
        if len(eager_a.outputs) == len(eager_b.outputs)
        else list(range(count))
    )
    return [
        PairResult(
            index=i,
            a=(f"{_EAGER}{i}",),
            b=(f"{_EAGER}{order[i]}",),
            module_a="",
            module_b="",
            op_a="eager output",
            op_b="eager output",
            metrics=compare_arrays(eager_a.outputs[i], eager_b.outputs[order[i]], tolerance),
            evidence=("eager",),
        )
        for i in range(count)
    ]
