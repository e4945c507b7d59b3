"""Indices of a match result's graphs for the report's script, and graphs of a native fallback.

:func:`graph_index` says which tensor pair and which unmatched entry each drawn node belongs
to, which module result each module path has (a layer called several times, ``pool#2``,
under its path too), each module's partner, the concrete shapes the run recorded for nodes
whose exported shape is symbolic (paddle2onnx's ``unk__16``), the first divergence, and under
``tolerance="auto"`` each module's and op's error in units of its noise
(:func:`~padiff_ir.report.noise_index.noise_index`).
:func:`module_graphs` draws a result without op graphs (the native fallback of
:func:`padiff_ir.match`, ``MatchResult.fallback``) as one node per compared module output, in
run order. Nothing here runs a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from padiff_ir._paths import ancestors, split_call_site
from padiff_ir.report.noise_index import noise_index
from padiff_ir.report.result_json import (
    SIDES,
    GraphJson,
    MatchJson,
    ModuleJson,
    Side,
    match_json,
)

__all__ = ["graph_index", "module_graphs"]

logger = logging.getLogger(__name__)

_STATUS_RANK = {"culprit": 5, "contains-culprit": 4, "inherited": 3, "accumulated": 2, "ok": 1}


def _rank(module: ModuleJson) -> int:
    return _STATUS_RANK.get(module.get("status", ""), 0)


def _tensor_nodes(view: GraphJson | None) -> dict[str, int]:
    """Tensor name -> index of the drawn node that makes it."""
    if not view:
        return {}
    out = {}
    for i, node in enumerate(view.get("nodes", ())):
        for tensor in node.get("out", ()):
            out[tensor] = i
    return out


def _node_index(data: MatchJson) -> dict[str, Any]:
    """Which pair and which unmatched entry each drawn node of each side belongs to."""
    graphs = data.get("graphs") or {}
    pairs = data.get("pairs", [])
    index: dict[str, Any] = {"node_pair": {}, "node_unmatched": {}, "groups": []}
    by_name = {}
    for side in SIDES:
        view = graphs.get(side)
        nodes = view.get("nodes", []) if view else []
        by_name[side] = {n["id"]: i for i, n in enumerate(nodes)}
        tensors = _tensor_nodes(view)
        node_pair = [-1] * len(nodes)
        for p, pair in enumerate(pairs):
            for tensor in pair.get(side, ()):
                node = tensors.get(tensor)
                if node is not None and node_pair[node] == -1:
                    node_pair[node] = p
        index["node_pair"][side] = node_pair
        unmatched: dict[str, str] = {}
        for entry in data.get("unmatched", ()):
            if entry.get("side") != side or entry.get("kind") not in ("op", "tensor"):
                continue
            name = entry.get("name")
            node = (
                None
                if name is None
                else by_name[side].get(name)
                if entry.get("kind") == "op"
                else tensors.get(name)
            )
            if node is not None:
                unmatched[str(node)] = entry.get("reason", "")
        index["node_unmatched"][side] = unmatched
    for p, pair in enumerate(pairs):
        if len(pair.get("a", ())) != 1 or len(pair.get("b", ())) != 1:
            index["groups"].append(p)
    return index


def _module_index(data: MatchJson) -> dict[str, Any]:
    """Module path -> its module result, per side; a layer called several times (``pool#2``)
    also under its path (the call that fails first) and in ``calls`` (every call)."""
    modules = data.get("modules", [])
    result: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    calls: dict[str, dict[str, list[int]]] = {"a": {}, "b": {}}
    for side in SIDES:
        for i, m in enumerate(modules):
            result[side][m[side]] = i
        for i, m in enumerate(modules):
            path, call = split_call_site(m[side])
            if call is None:
                continue
            calls[side].setdefault(path, []).append(i)
            known = result[side].get(path)
            if known is None or _rank(modules[i]) > _rank(modules[known]):
                result[side][path] = i
    partner: dict[str, dict[str, str]] = {"a": {}, "b": {}}
    for pair in data.get("layer_map", ()):
        partner["a"].setdefault(pair["a"], pair["b"])
        partner["b"].setdefault(pair["b"], pair["a"])
    for side in SIDES:
        other: Side = "b" if side == "a" else "a"
        for path, indices in calls[side].items():
            partner[side].setdefault(path, split_call_site(modules[indices[0]][other])[0])
    return {"module_result": result, "module_partner": partner, "calls": calls}


def _first_divergence_index(data: MatchJson) -> int | None:
    first = data.get("first_divergence")
    if not first:
        return None
    for i, pair in enumerate(data.get("pairs", ())):
        if list(pair.get("a", ())) == list(first.get("a", ())) and list(pair.get("b", ())) == list(
            first.get("b", ())
        ):
            return i
    return None


def _run_shapes(data: MatchJson) -> dict[str, dict[str, list[Any]]]:
    """Node index -> its shape as run, for nodes whose exported shape is symbolic.

    A paired node's shape is the one its pair's metrics recorded; the symbolic dims these
    bind (``unk__16`` = 1) then resolve the same dims of unpaired nodes (paddle2onnx names a
    dim once for the whole graph).
    """
    graphs = data.get("graphs") or {}
    out: dict[str, dict[str, list[Any]]] = {"a": {}, "b": {}}
    for side in SIDES:
        view = graphs.get(side)
        if not view or view.get("kind") == "modules":
            continue
        tensors = _tensor_nodes(view)
        nodes = view.get("nodes", [])
        bound: dict[str, int] = {}
        for pair in data.get("pairs", ()):
            names = pair.get(side, ())
            metrics = pair.get("metrics") or {}
            shape = metrics.get("shape_a") if side == "a" else metrics.get("shape_b")
            node = tensors.get(names[0]) if len(names) == 1 else None
            static = nodes[node].get("shape") if node is not None else None
            if (
                node is None
                or not shape
                or static is None
                or all(isinstance(d, int) for d in static)
            ):
                continue
            out[side][str(node)] = list(shape)
            if len(static) == len(shape):
                for dim, value in zip(static, shape):
                    if isinstance(dim, str):
                        bound.setdefault(dim, int(value))
        for i, drawn in enumerate(nodes):
            static = drawn.get("shape")
            if str(i) in out[side] or not static or all(isinstance(d, int) for d in static):
                continue
            out[side][str(i)] = [bound.get(d, d) if isinstance(d, str) else d for d in static]
    return out


def graph_index(data: Mapping[str, object]) -> dict[str, Any]:
    """Everything the report's script looks up about the drawn graphs of ``data``."""
    result = match_json(data)
    graphs = result.get("graphs") or {}
    return {
        **_node_index(result),
        **_module_index(result),
        "run_shape": _run_shapes(result),
        "first_divergence": _first_divergence_index(result),
        "has_graphs": bool(graphs.get("a") or graphs.get("b")),
        "noise": noise_index(result),
    }


def module_graphs(data: Mapping[str, object]) -> dict[str, Any]:
    """Graphs of a result compared module by module: a node per module output pair, in run
    order, each edge from the output before it; ``{}`` when the result has no pairs.

    Examples:
        >>> pair = {"a": ["f:out"], "b": ["g:out"], "module_a": "f", "module_b": "g",
        ...         "op_a": "Linear", "op_b": "Linear", "metrics": {"shape_a": [2, 3]}}
        >>> view = module_graphs({"pairs": [pair], "modules": []})["a"]
        >>> [(n["id"], n["op"], n["shape"]) for n in view["nodes"]], view["kind"]
        ([('f', 'Linear', [2, 3])], 'modules')
    """
    result = match_json(data)
    pairs = sorted(result.get("pairs", ()), key=lambda p: p.get("index", 0))
    if not pairs:
        return {}
    graphs: dict[str, object] = {}
    for side in SIDES:
        model = (result.get("model_a") if side == "a" else result.get("model_b")) or {}
        classes: dict[str, str] = {"": str(model.get("class", ""))}
        for entry in (*result.get("modules", ()), *result.get("layer_map", ())):
            path = split_call_site(entry.get(side, ""))[0]
            classes.setdefault(path, str(entry.get(f"class_{side}", "")))
        nodes: list[dict[str, object]] = []
        paths: list[str] = []
        for pair in pairs:
            module = str(pair.get(f"module_{side}", ""))
            metrics = pair.get("metrics") or {}
            nodes.append(
                {
                    "id": module or "<root>",
                    "op": pair.get(f"op_{side}", ""),
                    "module": split_call_site(module)[0],
                    "class": classes.get(split_call_site(module)[0], ""),
                    "out": list(pair.get(side, ())),
                    "shape": metrics.get(f"shape_{side}"),
                    "dtype": metrics.get(f"dtype_{side}"),
                }
            )
            paths.append(split_call_site(module)[0])
        for module_path in paths:
            for path in (module_path, *ancestors(module_path)):
                classes.setdefault(path, "")
        graphs[side] = {
            "kind": "modules",
            "framework": model.get("framework"),
            "model_class": model.get("class"),
            "name": None,
            "inputs": [],
            "outputs": [],
            "nodes": nodes,
            "edges": [[i - 1, i] for i in range(1, len(nodes))],
            "modules": classes,
        }
    logger.debug("module graphs of a result without op graphs: %d outputs", len(pairs))
    return graphs
