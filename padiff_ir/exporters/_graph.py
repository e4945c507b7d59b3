"""The exported graph: an ONNX model whose nodes know which module they came from.

The attribution lives *inside* the ONNX model, so a file written by ``padiff-ir export`` in one
environment carries everything another environment needs:

* every node has ``metadata_props`` :data:`MODULE_PATH_KEY` (attribute path such as
  ``backbone.blocks.3.attn.qkv``; ``""`` is the root model) and :data:`MODULE_CLASS_KEY`
  (the module's class name, e.g. ``Linear``); a node made by a module called several times
  also has :data:`MODULE_CALL_KEY` (which call of it, from 0: the second ``pool(x)`` is 1);
* the model has ``metadata_props`` :data:`FRAMEWORK_KEY` (``torch``, ``paddle`` or ``onnx``),
  :data:`PARAMETERS_KEY` (JSON ``{onnx tensor name: framework parameter name}``) and
  :data:`MODULES_KEY` (JSON ``{module path: class name}`` for every module of the model);
* when the model returns a nested structure, :data:`OUTPUT_KEYS_KEY` (JSON list, one key path
  per graph output, such as ``"logits"`` or ``"1/hidden"``): outputs with names are paired by
  name, whatever order each exporter gives them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from padiff_ir.hints import Outputs

if TYPE_CHECKING:
    import onnx

__all__ = [
    "FRAMEWORK_KEY",
    "MODEL_CLASS_KEY",
    "MODULES_KEY",
    "MODULE_CALL_KEY",
    "MODULE_CLASS_KEY",
    "MODULE_PATH_KEY",
    "OUTPUT_KEYS_KEY",
    "PARAMETERS_KEY",
    "ExportedGraph",
    "has_mapping",
    "output_key_paths",
]

MODULE_PATH_KEY = "padiff_ir.module_path"
MODULE_CLASS_KEY = "padiff_ir.module_class"
MODULE_CALL_KEY = "padiff_ir.module_call"
FRAMEWORK_KEY = "padiff_ir.framework"
PARAMETERS_KEY = "padiff_ir.parameters"
MODULES_KEY = "padiff_ir.modules"
MODEL_CLASS_KEY = "padiff_ir.model_class"
OUTPUT_KEYS_KEY = "padiff_ir.output_keys"


def output_key_paths(
    value: Outputs, is_leaf: Callable[[object], bool], *, sort_dicts: bool = False
) -> list[str]:
    """The key path of each tensor of a (nested) output, in flattening order.

    Dicts are walked in insertion order (as the models' eager outputs are flattened), or by
    sorted key with ``sort_dicts`` (as paddle's exporter flattens them); sequences by index.

    Example:
        >>> out = {"logits": 1.0, "extra": [2.0, 3.0]}
        >>> leaf = lambda v: isinstance(v, float)
        >>> output_key_paths(out, leaf), output_key_paths(out, leaf, sort_dicts=True)
        (['logits', 'extra/0', 'extra/1'], ['extra/0', 'extra/1', 'logits'])
    """
    return list(_walk_paths(value, is_leaf, sort_dicts, ""))


def has_mapping(value: object) -> bool:
    """Whether a (nested) output holds a dict somewhere (its outputs then have key paths)."""
    if isinstance(value, Mapping):
        return True
    return isinstance(value, (list, tuple)) and any(has_mapping(v) for v in value)


def _walk_paths(
    value: Outputs, is_leaf: Callable[[object], bool], sort_dicts: bool, prefix: str
) -> Iterator[str]:
    def join(key: object) -> str:
        return f"{prefix}/{key}" if prefix else str(key)

    if is_leaf(value):
        yield prefix
    elif isinstance(value, Mapping):
        keys = sorted(value) if sort_dicts else list(value)
        for key in keys:
            yield from _walk_paths(value[key], is_leaf, sort_dicts, join(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk_paths(item, is_leaf, sort_dicts, join(index))


def _props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def _output_keys(props: Mapping[str, str], count: int) -> tuple[str, ...]:
    try:
        keys = json.loads(props.get(OUTPUT_KEYS_KEY, "[]"))
    except ValueError:
        return ()
    if (
        not isinstance(keys, list)
        or len(keys) != count
        or not all(isinstance(k, str) for k in keys)
    ):
        return ()
    return tuple(keys)


@dataclass
class ExportedGraph:
    """An ONNX model plus the attribution of its nodes and initializers.

    Build one with :func:`padiff_ir.exporters.export`; :meth:`from_model` reads the attribution
    back from a model's metadata.

    Attributes:
        model: the ONNX model, every node carrying its module path in ``metadata_props``.
        framework: ``"torch"``, ``"paddle"`` or ``"onnx"`` (a foreign file without attribution).
        node_modules: node name -> module path.
        node_classes: node name -> module class name.
        node_calls: node name -> which call of its module made it (from 0), for the nodes of
            modules called several times.
        parameters: initializer (ONNX tensor) name -> framework parameter name.
        modules: every module path of the source model -> its class name.
        model_class: class name of the source model.
        input_names / output_names: the graph's inputs and outputs, in order.
        output_keys: the key path of each output in the model's returned structure
            (``"logits"``), when it returns a dict; empty otherwise.
        fingerprint: the export cache's key of the model and input signature it was exported
            from (what the graph depends on, not the weights); empty for an ONNX file and
            for an export the cache could not keep (its graph depends on the weights).
        weights: values of initializers that ``model`` declares as shared external data
            (name -> array), read from the source model's own tensors (a *live* export, see
            :mod:`padiff_ir.exporters._live`); empty for a self-contained model.
        cached: the graph was served by the export cache (found by fingerprint, not exported
            from the model now): a graph to verify against the model's eager run.
        subgraph_runner: a slot for the session runner of this graph's subgraphs, set by
            the floor that runs graphs, so its sessions live as long as the graph (not part of
            what the graph is; exporters never fill or read it).
    """

    model: onnx.ModelProto
    framework: str
    node_modules: dict[str, str] = field(default_factory=dict)
    node_classes: dict[str, str] = field(default_factory=dict)
    node_calls: dict[str, int] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    model_class: str = ""
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    output_keys: tuple[str, ...] = ()
    fingerprint: str = ""
    weights: Mapping[str, Any] = field(default_factory=dict, repr=False)
    cached: bool = False
    subgraph_runner: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_model(cls, model: onnx.ModelProto) -> ExportedGraph:
        """Read the attribution stored in ``model``'s metadata (see the module docstring)."""
        props = _props(model)
        node_modules: dict[str, str] = {}
        node_classes: dict[str, str] = {}
        node_calls: dict[str, int] = {}
        for node in model.graph.node:
            node_props = _props(node)
            if MODULE_PATH_KEY in node_props:
                node_modules[node.name] = node_props[MODULE_PATH_KEY]
                node_classes[node.name] = node_props.get(MODULE_CLASS_KEY, "")
            if node_props.get(MODULE_CALL_KEY, "").isdigit():
                node_calls[node.name] = int(node_props[MODULE_CALL_KEY])
        initializer_names = [t.name for t in model.graph.initializer]
        parameters = json.loads(props.get(PARAMETERS_KEY, "{}"))
        return cls(
            model=model,
            framework=props.get(FRAMEWORK_KEY, "onnx"),
            node_modules=node_modules,
            node_classes=node_classes,
            node_calls=node_calls,
            parameters={k: v for k, v in parameters.items() if k in initializer_names},
            modules=json.loads(props.get(MODULES_KEY, "{}")),
            model_class=props.get(MODEL_CLASS_KEY, ""),
            input_names=tuple(
                i.name for i in model.graph.input if i.name not in set(initializer_names)
            ),
            output_names=tuple(o.name for o in model.graph.output),
            output_keys=_output_keys(props, len(model.graph.output)),
        )

    @property
    def attributed(self) -> bool:
        """Whether the nodes carry module paths (false for a foreign ONNX file)."""
        return bool(self.node_modules)

    def save(self, path: str) -> None:
        """Write the ONNX model, attribution and weights included, to ``path``."""
        import onnx

        from padiff_ir.exporters._live import materialized

        onnx.save_model(materialized(self), path)

    def __repr__(self) -> str:
        return (
            f"ExportedGraph(framework={self.framework!r}, model_class={self.model_class!r}, "
            f"nodes={len(self.model.graph.node)}, parameters={len(self.parameters)})"
        )
