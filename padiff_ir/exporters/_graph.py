"""The exported graph: an ONNX model whose nodes know which module they came from.

The attribution lives *inside* the ONNX model, so a file written by ``padiff-ir export`` in one
environment carries everything another environment needs:

* every node has ``metadata_props`` :data:`MODULE_PATH_KEY` (attribute path such as
  ``backbone.blocks.3.attn.qkv``; ``""`` is the root model) and :data:`MODULE_CLASS_KEY`
  (the module's class name, e.g. ``Linear``);
* the model has ``metadata_props`` :data:`FRAMEWORK_KEY` (``torch``, ``paddle`` or ``onnx``),
  :data:`PARAMETERS_KEY` (JSON ``{onnx tensor name: framework parameter name}``) and
  :data:`MODULES_KEY` (JSON ``{module path: class name}`` for every module of the model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = [
    "FRAMEWORK_KEY",
    "MODEL_CLASS_KEY",
    "MODULES_KEY",
    "MODULE_CLASS_KEY",
    "MODULE_PATH_KEY",
    "PARAMETERS_KEY",
    "ExportedGraph",
]

MODULE_PATH_KEY = "padiff_ir.module_path"
MODULE_CLASS_KEY = "padiff_ir.module_class"
FRAMEWORK_KEY = "padiff_ir.framework"
PARAMETERS_KEY = "padiff_ir.parameters"
MODULES_KEY = "padiff_ir.modules"
MODEL_CLASS_KEY = "padiff_ir.model_class"


def _props(proto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


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
        parameters: initializer (ONNX tensor) name -> framework parameter name.
        modules: every module path of the source model -> its class name.
        model_class: class name of the source model.
        input_names / output_names: the graph's inputs and outputs, in order.
    """

    model: onnx.ModelProto
    framework: str
    node_modules: dict[str, str] = field(default_factory=dict)
    node_classes: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    model_class: str = ""
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    @classmethod
    def from_model(cls, model: onnx.ModelProto) -> ExportedGraph:
        """Read the attribution stored in ``model``'s metadata (see the module docstring)."""
        props = _props(model)
        node_modules: dict[str, str] = {}
        node_classes: dict[str, str] = {}
        for node in model.graph.node:
            node_props = _props(node)
            if MODULE_PATH_KEY in node_props:
                node_modules[node.name] = node_props[MODULE_PATH_KEY]
                node_classes[node.name] = node_props.get(MODULE_CLASS_KEY, "")
        initializer_names = [t.name for t in model.graph.initializer]
        parameters = json.loads(props.get(PARAMETERS_KEY, "{}"))
        return cls(
            model=model,
            framework=props.get(FRAMEWORK_KEY, "onnx"),
            node_modules=node_modules,
            node_classes=node_classes,
            parameters={k: v for k, v in parameters.items() if k in initializer_names},
            modules=json.loads(props.get(MODULES_KEY, "{}")),
            model_class=props.get(MODEL_CLASS_KEY, ""),
            input_names=tuple(
                i.name for i in model.graph.input if i.name not in set(initializer_names)
            ),
            output_names=tuple(o.name for o in model.graph.output),
        )

    @property
    def attributed(self) -> bool:
        """Whether the nodes carry module paths (false for a foreign ONNX file)."""
        return bool(self.node_modules)

    def save(self, path: str) -> None:
        """Write the ONNX model, attribution included, to ``path``."""
        import onnx

        onnx.save_model(self.model, path)

    def __repr__(self) -> str:
        return (
            f"ExportedGraph(framework={self.framework!r}, model_class={self.model_class!r}, "
            f"nodes={len(self.model.graph.node)}, parameters={len(self.parameters)})"
        )
