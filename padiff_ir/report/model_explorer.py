"""A result for Google's Model Explorer: both graphs, our errors as node data, the pairing.

`Model Explorer <https://github.com/google-ai-edge/model-explorer>`_ (``pip install
padiff-ir[explorer]``: ``ai-edge-model-explorer`` and its ONNX adapter ``model-explorer-onnx``)
draws ONNX files, overlays *node data* (per graph, ``{"results": {node id: {"value": v}},
"thresholds": [{"value": upper bound, "bgColor": colour}, ...]}``) and, in its split view,
moves the other pane to the partner of the selected node through a *sync navigation* mapping
(``{"mappingEntries": [{"leftNodeIds": [...], "rightNodeIds": [...]}]}``).

:func:`to_model_explorer` writes, from a result's JSON alone (no model is run):

* ``a.onnx`` / ``b.onnx``: both graphs, weight-less, rebuilt from the result's graph views
  (:mod:`padiff_ir.report.explorer_graph`: node ids are the ops' ids, groups the modules);
* ``{a,b}_max_abs.json``, ``{a,b}_max_rel.json``: the error of every compared op as run;
  ``{a,b}_own_max_abs.json``: the own error of the op's module (B's module fed A's inputs);
  ``{a,b}_status.json``: that module's status as text (culprit, inherited, ok...), coloured;
* ``sync_navigation_a_to_b.json``: the matched pairs, A's nodes -> B's nodes;
* ``model_explorer.json``: what goes where (the files, each node data file's model, the
  graph ids), read by ``padiff-ir explore`` (:mod:`padiff_ir.report.explorer_server`).

In Model Explorer, open ``a.onnx`` and ``b.onnx`` side by side (``padiff-ir explore`` does, with
the node data loaded), then choose *sync navigation* > *Upload mapping from computer* and pick
``sync_navigation_a_to_b.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from padiff_ir._paths import ancestors
from padiff_ir.errors import ReportError
from padiff_ir.report.explorer_graph import view_model
from padiff_ir.report.result_json import SIDES, MatchJson, MetricsJson, Side, match_json
from padiff_ir.report.view import to_float

__all__ = [
    "MANIFEST",
    "THRESHOLDS",
    "ExplorerFiles",
    "model_explorer_data",
    "to_model_explorer",
]

logger = logging.getLogger(__name__)

#: Colour bands of an error (upper bound -> background), green to red on a log scale.
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
#: The file naming what :func:`to_model_explorer` wrote, read by ``padiff-ir explore``.
MANIFEST = "model_explorer.json"
#: node data of a tensor pair's error as run: name -> key of its metrics
_PAIR_DATA = {"max_abs": "max_abs", "max_rel": "max_rel"}
#: a module's status (``ModuleStatus`` values) -> its colour in the ``status`` node data
STATUS_COLOURS = {
    "culprit": "#b71c1c",
    "inherited": "#ffb74d",
    "contains-culprit": "#f8bbd0",
    "accumulated": "#fff59d",
    "ok": "#c8e6c9",
    "unmeasured": "#e0e0e0",
}


@dataclass(frozen=True)
class ExplorerFiles:
    """What :func:`to_model_explorer` wrote into ``directory``.

    Attributes:
        directory: the folder.
        models: side (``"a"``, ``"b"``) -> its ONNX file.
        node_data: side -> {node data name (``max_abs``...) -> its JSON file}.
        mapping: the sync navigation file (A's nodes -> B's nodes).
        manifest: ``model_explorer.json``, naming all of the above.
        graph_ids: side -> the id of its graph in Model Explorer.
    """

    directory: Path
    models: dict[str, Path]
    node_data: dict[str, dict[str, Path]]
    mapping: Path
    manifest: Path
    graph_ids: dict[str, str]

    def paths(self) -> list[Path]:
        """Every file written, models first."""
        data = [p for side in SIDES for p in self.node_data[side].values()]
        return [*self.models.values(), *data, self.mapping, self.manifest]

    @classmethod
    def read(cls, directory: str | Path) -> ExplorerFiles:
        """The files named by ``directory/model_explorer.json``.

        Raises:
            FileFormatError: the manifest is missing or not JSON.
            ReportError: it names a file that is not there.
        """
        from padiff_ir._result import read_json_file

        folder = Path(directory)
        manifest = read_json_file(folder / MANIFEST, "the files result.to_model_explorer wrote")
        try:
            files = cls(
                directory=folder,
                models={s: folder / manifest["models"][s] for s in SIDES},
                node_data={
                    s: {k: folder / v for k, v in manifest["node_data"][s].items()} for s in SIDES
                },
                mapping=folder / manifest["mapping"],
                manifest=folder / MANIFEST,
                graph_ids={s: str(manifest["graph_ids"][s]) for s in SIDES},
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ReportError(
                f"{folder / MANIFEST}: not a Model Explorer manifest (missing {err}); "
                "write it again with result.to_model_explorer(directory)"
            ) from err
        missing = [str(p) for p in files.paths() if not p.is_file()]
        if missing:
            raise ReportError(
                f"{folder}: files named in {MANIFEST} are missing ({', '.join(missing)}); "
                "write them again with result.to_model_explorer(directory)"
            )
        return files


def _value(metrics: MetricsJson | None, key: str) -> float | None:
    value = to_float(metrics.get(key)) if metrics else None
    if value is None or math.isnan(value):
        return None
    return value if math.isfinite(value) else 1e300


def graph_ids(data: Mapping[str, object]) -> dict[str, str]:
    """Each side's graph id in Model Explorer: ``A: torch VitPose`` (side, framework, class)."""
    graphs = match_json(data)["graphs"]
    ids: dict[str, str] = {}
    for side in SIDES:
        view = graphs[side]
        words = [side.upper() + ":", str(view.get("framework") or ""), view.get("model_class")]
        ids[side] = " ".join(str(w) for w in words if w)
    return ids


def model_explorer_data(data: Mapping[str, object]) -> dict[str, Any]:
    """Node data per side and name, and the A -> B mapping, as dictionaries.

    ``data`` is a MatchResult's ``to_dict()`` with ``graphs`` (see
    :func:`padiff_ir.report.graph_view`). Returns ``{"a": {"max_abs": node data, ...},
    "b": {...}, "mapping": sync navigation data, "graph_ids": {"a": ..., "b": ...}}``; node ids
    are the graph views' op ids, as in the files :func:`to_model_explorer` writes.

    Raises:
        ReportError: the result holds no graphs, so its pairs cannot be put on nodes.
    """
    result = match_json(data)
    graphs = result.get("graphs") or {}
    if not graphs.get("a") or not graphs.get("b"):
        raise ReportError(
            "this result holds no graphs (result.graphs), so its errors cannot be "
            "placed on graph nodes; rerun padiff_ir.match to get one"
        )
    ids = graph_ids(data)
    producer = {
        side: {t: n["id"] for n in graphs[side]["nodes"] for t in n.get("out", ())}
        for side in SIDES
    }
    pairs = result.get("pairs", ())
    out: dict[str, Any] = {"graph_ids": ids}
    for side in SIDES:
        per_name = {}
        for name, key in _PAIR_DATA.items():
            results: dict[str, dict[str, Any]] = {}
            for pair in pairs:
                value = _value(pair.get("metrics"), key)
                for tensor in pair.get(side, ()) if value is not None else ():
                    node = producer[side].get(tensor)
                    old = results.get(node, {}).get("value") if node else None
                    if node is not None and (old is None or value > old):
                        results[node] = {"value": value}
            per_name[name] = _node_data(ids[side], name, results)
        per_name.update(_module_data(result, side, ids[side]))
        out[side] = per_name
    entries = []
    for pair in pairs:
        left = _unique(producer["a"].get(t) for t in pair.get("a", ()))
        right = _unique(producer["b"].get(t) for t in pair.get("b", ()))
        if left and right:
            entries.append({"leftNodeIds": left, "rightNodeIds": right})
    out["mapping"] = {"mappingEntries": entries}
    return out


def _node_data(graph_id: str, name: str, results: Mapping[str, object]) -> dict[str, Any]:
    return {
        graph_id: {
            "name": name,
            "results": results,
            "thresholds": [{"value": v, "bgColor": c} for v, c in THRESHOLDS],
        }
    }


def _module_data(data: MatchJson, side: Side, graph_id: str) -> dict[str, Any]:
    """``own_max_abs`` (the own error of each op's module: B's module fed A's inputs) and
    ``status`` (the module's status as text, coloured) of every op, from its nearest module
    with a result."""
    modules = {str(m.get(side, "")): m for m in data.get("modules", ())}
    own: dict[str, Any] = {}
    status: dict[str, Any] = {}
    for node in data["graphs"][side]["nodes"]:
        path = str(node.get("module", ""))
        found = next((modules[p] for p in (path, *ancestors(path)) if p in modules), None)
        if found is None:
            continue
        value = _value(found.get("own"), "max_abs")
        if value is not None:
            own[node["id"]] = {"value": value}
        text = str(found.get("status", "ok"))
        status[node["id"]] = {"value": text, "bgColor": STATUS_COLOURS.get(text, "#e0e0e0")}
    return {
        "own_max_abs": _node_data(graph_id, "own_max_abs", own),
        "status": {graph_id: {"name": "status", "results": status}},
    }


def _unique(names: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n is not None))


def _write_json(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content, indent=1), encoding="utf-8")
    return path


def to_model_explorer(result: object, directory: str | Path) -> dict[str, Path]:
    """Write both graphs, the node data and the A -> B mapping for Model Explorer.

    ``result`` is a MatchResult (with ``graphs``), its ``to_dict()`` or a saved JSON file. See
    the module docstring for the files and how to open them (``padiff-ir explore``). Returns
    ``{file kind: path}``: ``a`` and ``b`` (the ONNX files), ``a_max_abs``, ``a_max_rel``,
    ``a_own_max_abs``, ``a_status`` and the same for ``b`` (node data), ``mapping``, ``manifest``
    (:meth:`ExplorerFiles.read` reads them back).

    Raises:
        ReportError: the result holds no graphs.
    """
    import onnx

    from padiff_ir.report.html_report import result_dict

    data = result_dict(result)
    built = model_explorer_data(data)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    models: dict[str, Path] = {}
    node_data: dict[str, dict[str, Path]] = {}
    for side in SIDES:
        models[side] = folder / f"{side}.onnx"
        onnx.save_model(view_model(data["graphs"][side], built["graph_ids"][side]), models[side])
        node_data[side] = {
            name: _write_json(folder / f"{side}_{name}.json", content)
            for name, content in built[side].items()
        }
    mapping = _write_json(folder / "sync_navigation_a_to_b.json", built["mapping"])
    manifest = _write_json(
        folder / MANIFEST,
        {
            "models": {side: path.name for side, path in models.items()},
            "node_data": {s: {k: p.name for k, p in node_data[s].items()} for s in SIDES},
            "mapping": mapping.name,
            "graph_ids": built["graph_ids"],
        },
    )
    logger.info(
        "wrote Model Explorer files (%d mapped pairs) to %s",
        len(built["mapping"]["mappingEntries"]),
        folder,
    )
    written = dict(models)
    written.update({f"{s}_{k}": p for s in SIDES for k, p in node_data[s].items()})
    written.update(mapping=mapping, manifest=manifest)
    return written
