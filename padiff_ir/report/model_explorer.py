"""Our errors as Model Explorer node data, and the A -> B node mapping of its two-pane view.

`Model Explorer <https://github.com/google-ai-edge/model-explorer>`_ opens ONNX files (with the
``model-explorer-onnx`` adapter, where a node's id is its ONNX node name and a graph's id is the
ONNX graph's name) and overlays *node data*: per graph, ``{"results": {node id: {"value": v}},
"thresholds": [...]}``. Its split view syncs the selection of the two panes through a mapping
file ``{"type": "sync_navigation", "mapping": {left node id: right node id}}``.

:func:`to_model_explorer` writes, from a result's JSON alone:

* ``a_max_abs.json`` / ``b_max_abs.json``: the max abs error of every compared op, per side;
* ``a_max_rel.json`` / ``b_max_rel.json``: the same for the max relative error;
* ``sync_navigation_a_to_b.json``: A's node -> B's node for every matched pair.

Open the two exported ONNX files (``padiff-ir export ...`` or ``ExportedGraph.save``) side by
side, load each side's node data, and upload the mapping as "sync navigation".

Node ids are the ops' original ONNX node names: an op made by a canonicalising pass (a Gemm split
into MatMul + Add) gives its data to the ONNX node it came from (``onnx`` in the graph view).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from padiff_ir.report.view import ReportError

__all__ = ["THRESHOLDS", "model_explorer_data", "to_model_explorer"]

logger = logging.getLogger(__name__)

#: Colour bands of max abs error (upper bound -> background), green to red on a log scale.
THRESHOLDS = (
    (1e-7, "#2e7d32"),
    (1e-6, "#66bb6a"),
    (1e-5, "#c5e1a5"),
    (1e-4, "#fff59d"),
    (1e-3, "#ffcc80"),
    (1e-2, "#ff8a65"),
    (1e-1, "#e53935"),
    (1e300, "#b71c1c"),
)
_DEFAULT_GRAPH = "main_graph"
_METRICS = ("max_abs", "max_rel")


def _value(metrics: dict[str, Any] | None, key: str) -> float | None:
    if not metrics:
        return None
    try:
        value = float(metrics[key])
    except (KeyError, TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else 1e300


def _onnx_names(node: dict[str, Any]) -> list[str]:
    return list(node.get("onnx") or [node["id"]])


def model_explorer_data(data: dict[str, Any]) -> dict[str, Any]:
    """Node data per side and metric, and the A -> B mapping, as dictionaries.

    ``data`` is a MatchResult's ``to_dict()`` with ``graphs`` (see
    :func:`padiff_ir.report.graph_view`). Returns ``{"a": {"max_abs": node data, ...},
    "b": {...}, "mapping": sync navigation data}``.

    Raises:
        ReportError: the result holds no graphs, so its pairs cannot be put on nodes.
    """
    graphs = data.get("graphs") or {}
    if not graphs.get("a") or not graphs.get("b"):
        raise ReportError(
            "this result holds no graphs (result.graphs), so its errors cannot be "
            "placed on ONNX nodes; rerun padiff_ir.match to get one"
        )
    tensor_node: dict[str, dict[str, dict[str, Any]]] = {}
    for side in ("a", "b"):
        tensor_node[side] = {t: n for n in graphs[side]["nodes"] for t in n.get("out", ())}
    out: dict[str, Any] = {}
    for side in ("a", "b"):
        graph_id = graphs[side].get("name") or _DEFAULT_GRAPH
        per_metric = {}
        for key in _METRICS:
            results: dict[str, dict[str, float]] = {}
            for pair in data.get("pairs", ()):
                value = _value(pair.get("metrics"), key)
                if value is None:
                    continue
                for tensor in pair.get(side, ()):
                    node = tensor_node[side].get(tensor)
                    if node is None:
                        continue
                    for name in _onnx_names(node):
                        old = results.get(name, {}).get("value")
                        if old is None or value > old:
                            results[name] = {"value": value}
            per_metric[key] = {
                graph_id: {
                    "results": results,
                    "thresholds": [{"value": v, "bgColor": c} for v, c in THRESHOLDS],
                }
            }
        out[side] = per_metric
    mapping: dict[str, str] = {}
    for pair in data.get("pairs", ()):
        nodes_b = [tensor_node["b"].get(t) for t in pair.get("b", ())]
        names_b = [name for n in nodes_b if n is not None for name in _onnx_names(n)]
        if not names_b:
            continue
        for tensor in pair.get("a", ()):
            node = tensor_node["a"].get(tensor)
            if node is not None:
                for name in _onnx_names(node):
                    mapping.setdefault(name, names_b[-1])
    out["mapping"] = {"type": "sync_navigation", "mapping": mapping}
    return out


def to_model_explorer(result: Any, directory: str | Path) -> dict[str, Path]:
    """Write Model Explorer node data and the A -> B node mapping into ``directory``.

    ``result`` is a MatchResult (with ``graphs``), its ``to_dict()`` or a saved JSON file. See
    the module docstring for the files and how to open them. Returns ``{file kind: path}``
    (kinds ``a_max_abs``, ``a_max_rel``, ``b_max_abs``, ``b_max_rel``, ``mapping``).
    """
    from padiff_ir.report.html_report import result_dict

    data = result_dict(result)
    built = model_explorer_data(data)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for side in ("a", "b"):
        for key, content in built[side].items():
            path = folder / f"{side}_{key}.json"
            path.write_text(json.dumps(content, indent=1), encoding="utf-8")
            written[f"{side}_{key}"] = path
    path = folder / "sync_navigation_a_to_b.json"
    path.write_text(json.dumps(built["mapping"], indent=1), encoding="utf-8")
    written["mapping"] = path
    logger.info(
        "wrote Model Explorer node data and mapping (%d nodes) to %s",
        len(built["mapping"]["mapping"]),
        folder,
    )
    return written
