"""Test-only ground truth for matchings: exports, activation values, metrics and a weight copier.

* :func:`export_case`: export both models of a pair and build their canonical graphs.
* :func:`activation_values`: every tensor of an exported graph, run in onnxruntime.
* :func:`tensor_precision`: the share of tensor pairs whose values agree, layout aside (sorted
  values are compared; a group's members are pooled).
* :func:`module_scores`: precision and recall of module pairs against a name map, restricted to
  modules that own parameters.
* :func:`copy_through_pairs`: copy torch weights into the paddle model through ``param_pairs``
  (after scrambling the paddle weights, so that a missed parameter shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir.exporters import ExportedGraph, export
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.matching import Matching

__all__ = [
    "Exported",
    "activation_values",
    "copy_through_pairs",
    "export_case",
    "fingerprints",
    "module_scores",
    "param_owners",
    "tensor_precision",
]


@dataclass
class Exported:
    """Both sides of a pair: the exports, canonical graphs and all activation values."""

    exported_a: ExportedGraph
    exported_b: ExportedGraph
    graph_a: Graph
    graph_b: Graph
    values_a: dict[str, np.ndarray]
    values_b: dict[str, np.ndarray]


def activation_values(
    exported: ExportedGraph, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    from padiff_ir.runtime import run_all

    feed = dict(zip(exported.input_names, inputs.values()))
    with run_all(exported, feed) as store:
        return {name: np.array(store[name]) for name in store}


def export_case(torch_model: Any, paddle_model: Any, inputs: dict[str, np.ndarray]) -> Exported:
    exported_a = export(torch_model, inputs)
    exported_b = export(paddle_model, inputs)
    return Exported(
        exported_a,
        exported_b,
        canonicalize(build_graph(exported_a)),
        canonicalize(build_graph(exported_b)),
        activation_values(exported_a, inputs),
        activation_values(exported_b, inputs),
    )


def fingerprints(values: dict[str, np.ndarray]):
    """A layout-free fingerprint function over recorded values (for ``values_a/values_b``)."""

    def get(name: str) -> np.ndarray | None:
        value = values.get(name)
        if value is None or not np.issubdtype(value.dtype, np.floating) or value.size == 0:
            return None
        flat = value.astype(np.float64).ravel()
        return np.array([flat.mean(), flat.std(), flat.min(), flat.max(), np.abs(flat).mean()])

    return get


def _agree(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    va = np.sort(np.concatenate([x.astype(np.float64).ravel() for x in a]))
    vb = np.sort(np.concatenate([x.astype(np.float64).ravel() for x in b]))
    if va.shape != vb.shape:
        return False
    scale = max(1.0, float(np.abs(va).max()) if va.size else 1.0)
    return bool(np.allclose(va, vb, rtol=1e-3, atol=1e-4 * scale))


def tensor_precision(matching: Matching, case: Exported) -> tuple[float, list[Any], int]:
    """``(precision, wrong pairs, pairs checked)`` of the tensor pairs with recorded values."""
    checked, wrong = 0, []
    for pair in matching.tensor_pairs:
        a = [case.values_a.get(t) for t in pair.a]
        b = [case.values_b.get(t) for t in pair.b]
        if any(x is None for x in (*a, *b)):
            continue
        if not all(np.issubdtype(x.dtype, np.floating) for x in (*a, *b)):
            continue
        checked += 1
        if not _agree(a, b):  # type: ignore[arg-type]
            wrong.append(pair)
    precision = 1.0 if checked == 0 else 1 - len(wrong) / checked
    return precision, wrong, checked


def param_owners(graph: Graph) -> set[str]:
    """Modules that own at least one parameter consumed by the graph."""
    owners = set()
    for info in graph.tensors.values():
        if info.param_name is not None and "." in info.param_name:
            path = info.param_name.rsplit(".", 1)[0]
            while path and path not in graph.modules:
                path = path.rsplit(".", 1)[0] if "." in path else ""
            owners.add(path)
        elif info.param_name is not None:
            owners.add("")
    return owners


def module_scores(
    matching: Matching, graph_a: Graph, truth: dict[str, str]
) -> tuple[float, float, list[tuple[str, str]], list[str]]:
    """``(precision, recall, wrong pairs, missed modules)`` over A modules owning parameters."""
    owners = param_owners(graph_a)
    found = {p.a: p.b for p in matching.module_pairs if p.a in owners}
    wrong = [(a, b) for a, b in found.items() if truth.get(a) != b]
    expected = [a for a in owners if a in truth]
    missed = [a for a in expected if found.get(a) != truth[a]]
    precision = 1.0 if not found else 1 - len(wrong) / len(found)
    recall = 1.0 if not expected else 1 - len(missed) / len(expected)
    return precision, recall, wrong, missed


def _apply(transform: dict[str, Any], arrays: list[np.ndarray], count: int) -> list[np.ndarray]:
    if "transpose" in transform:
        arrays = [np.transpose(x, transform["transpose"]) for x in arrays]
    if "split" in transform:
        (array,) = arrays
        cuts = np.cumsum(transform["sections"])[:-1]
        return np.split(array, cuts, axis=transform["split"])
    if "concat" in transform:
        return [np.concatenate(arrays, axis=transform["concat"])]
    assert len(arrays) == count
    return arrays


def copy_through_pairs(
    matching: Matching, torch_model: Any, paddle_model: Any, seed: int = 123
) -> list[str]:
    """Scramble the paddle weights, copy torch's through ``param_pairs``; paddle names missed."""
    rng = np.random.default_rng(seed)
    state_b = paddle_model.state_dict()
    for tensor in state_b.values():
        tensor.set_value(rng.standard_normal(tuple(tensor.shape)).astype(tensor.numpy().dtype))
    state_a = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
    written = set()
    for pair in matching.param_pairs:
        arrays = _apply(pair.transform.to_dict(), [state_a[n] for n in pair.a], len(pair.b))
        for name, array in zip(pair.b, arrays):
            target = state_b[name]
            assert tuple(target.shape) == array.shape, (pair, target.shape, array.shape)
            target.set_value(np.ascontiguousarray(array).astype(target.numpy().dtype))
            written.add(target.name)
    return sorted(n for n, t in state_b.items() if t.name not in written)


def outputs_after_copy(
    matching: Matching, torch_model: Any, paddle_model: Any, inputs: dict[str, np.ndarray]
) -> tuple[float, list[str]]:
    """Max abs difference of the first outputs after :func:`copy_through_pairs`."""
    import paddle
    import torch

    missed = copy_through_pairs(matching, torch_model, paddle_model)
    with torch.no_grad():
        out_a = torch_model(*[torch.from_numpy(v) for v in inputs.values()])
    out_b = paddle_model(*[paddle.to_tensor(v) for v in inputs.values()])
    outs_a = out_a if isinstance(out_a, (tuple, list)) else [out_a]
    outs_b = out_b if isinstance(out_b, (tuple, list)) else [out_b]
    diff = max(float(np.abs(a.detach().numpy() - b.numpy()).max()) for a, b in zip(outs_a, outs_b))
    return diff, missed
