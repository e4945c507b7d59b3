"""Helpers shared by the exporters: write attribution into ONNX metadata, fill gaps."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from padiff_ir.exporters._graph import (
    FRAMEWORK_KEY,
    MODEL_CLASS_KEY,
    MODULE_CALL_KEY,
    MODULE_CLASS_KEY,
    MODULE_PATH_KEY,
    MODULES_KEY,
    OUTPUT_KEYS_KEY,
    PARAMETERS_KEY,
)

if TYPE_CHECKING:
    import onnx

__all__ = ["fill_missing_scopes", "set_metadata", "unique_node_names", "write_attribution"]

logger = logging.getLogger(__name__)


def set_metadata(proto, key: str, value: str) -> None:
    """Set (or replace) one ``metadata_props`` entry of a node or model proto."""
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    entry = proto.metadata_props.add()
    entry.key = key
    entry.value = value


def fill_missing_scopes(model: onnx.ModelProto, scopes: dict[str, str | None]) -> dict[str, str]:
    """Give every node without a module path the path of its nearest neighbour.

    Exporters create nodes that belong to no framework op (helper constants, the pieces of a
    decomposed op). Such a node takes the module of the first attributed node reached going
    downstream through unattributed nodes (the op it helps compute), else upstream, else the
    root ``""``.

    Args:
        model: the ONNX model (node names must be unique).
        scopes: node name -> module path, ``None`` where unknown.

    Returns:
        node name -> module path for every node.
    """
    nodes = list(model.graph.node)
    producer: dict[str, str] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        for out in node.output:
            producer[out] = node.name
        for inp in node.input:
            consumers[inp].append(node.name)
    by_name = {node.name: node for node in nodes}
    result: dict[str, str | None] = dict(scopes)

    def downstream(name: str) -> str | None:
        seen = {name}
        frontier = [name]
        while frontier:
            nxt = []
            for current in frontier:
                for out in by_name[current].output:
                    for cons in consumers.get(out, ()):
                        if cons in seen:
                            continue
                        seen.add(cons)
                        if scopes.get(cons) is not None:
                            return scopes[cons]
                        nxt.append(cons)
            frontier = nxt
        return None

    def upstream(name: str) -> str | None:
        seen = {name}
        frontier = [name]
        while frontier:
            nxt = []
            for current in frontier:
                for inp in by_name[current].input:
                    prod = producer.get(inp)
                    if prod is None or prod in seen:
                        continue
                    seen.add(prod)
                    if scopes.get(prod) is not None:
                        return scopes[prod]
                    nxt.append(prod)
            frontier = nxt
        return None

    for node in nodes:
        if result.get(node.name) is None:
            result[node.name] = downstream(node.name)
    for node in nodes:
        if result.get(node.name) is None:
            result[node.name] = upstream(node.name)
    return {name: (path if path is not None else "") for name, path in result.items()}


def write_attribution(
    model: onnx.ModelProto,
    *,
    framework: str,
    node_modules: dict[str, str],
    modules: dict[str, str],
    parameters: dict[str, str],
    model_class: str,
    output_keys: list[str] | None = None,
    node_calls: dict[str, int] | None = None,
) -> None:
    """Store node module paths/classes and model-level tables in ``model``'s metadata
    (``output_keys``: the key path of each graph output, when the model returns a dict;
    ``node_calls``: which call of its module made a node, for modules called several times)."""
    calls = node_calls or {}
    for node in model.graph.node:
        path = node_modules.get(node.name, "")
        set_metadata(node, MODULE_PATH_KEY, path)
        set_metadata(node, MODULE_CLASS_KEY, modules.get(path, ""))
        if node.name in calls:
            set_metadata(node, MODULE_CALL_KEY, str(calls[node.name]))
    set_metadata(model, FRAMEWORK_KEY, framework)
    set_metadata(model, MODULES_KEY, json.dumps(modules))
    set_metadata(model, PARAMETERS_KEY, json.dumps(parameters))
    set_metadata(model, MODEL_CLASS_KEY, model_class)
    if output_keys and len(output_keys) == len(model.graph.output):
        set_metadata(model, OUTPUT_KEYS_KEY, json.dumps(list(output_keys)))


def unique_node_names(model: onnx.ModelProto) -> None:
    """Give every node a unique, non-empty name (exporters may leave them empty)."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        while name in seen:
            name = f"{name}_{index}"
        node.name = name
        seen.add(name)
