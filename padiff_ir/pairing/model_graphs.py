"""The graphs of one model that the matcher reads when it does not read an ONNX export.

* :func:`model_graph`: one eager run, traced (:func:`padiff_ir.frameworks.trace_model`) and made a
  graph in the ONNX vocabulary (:func:`padiff_ir.ir.graph_from_trace`);
* :func:`static_graph`: the module tree alone, without running the model (no inputs given);
* :func:`unit_paths`: the layers such graphs keep whole (attention, recurrent layers, layers with a
  registered weight transform, black boxes), whose insides differ between frameworks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from padiff_ir._paths import owner, strictly_within
from padiff_ir._paths import parent as parent_path
from padiff_ir.frameworks import Framework, framework_of, trace_model, unwrap_model
from padiff_ir.frameworks.registry import FRAMEWORKS
from padiff_ir.frameworks.trace import Trace, TracedCall, TracedOp, TracedTensor
from padiff_ir.hints import Inputs, Model, Tensor
from padiff_ir.ir import Graph
from padiff_ir.ir.trace_graph import graph_from_trace
from padiff_ir.matching.transforms import UNIT_FAMILIES, class_family
from padiff_ir.pairing.layer_map import LayerMap

__all__ = [
    "black_boxes",
    "layer_sizes",
    "model_graph",
    "static_graph",
    "trace_graphs",
    "unit_ignores",
    "unit_paths",
]

logger = logging.getLogger(__name__)

_BLACK_BOX = "black-box"


def unit_paths(
    modules: Mapping[str, str],
    framework: str,
    black_boxes: frozenset[str] | set[str] = frozenset(),
    bases: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Modules a trace graph keeps whole -> their unit family.

    Multi-head attention and recurrent layers (their internals differ between frameworks),
    classes with a registered weight transform, and the layer map's black boxes; the outermost
    one wins when they nest. ``modules`` maps paths to class names, parents first; ``bases``
    paths to the framework's layer class they are, where that is another (``Framework.base_layer``).
    """
    units: dict[str, str] = {}
    if "" in black_boxes:
        return {"": _BLACK_BOX}
    for path, class_name in modules.items():
        if not path or any(strictly_within(path, u) for u in units):
            continue
        family = class_family(class_name, framework, (bases or {}).get(path, ""))
        if path in black_boxes:
            units[path] = _BLACK_BOX
        elif family in UNIT_FAMILIES or family.startswith("custom:"):
            units[path] = family
    return units


def black_boxes(layer_map: LayerMap | None) -> tuple[frozenset[str], frozenset[str]]:
    """Modules kept whole on each side: the layer map's black boxes and their pinned partners
    (a model black-boxed on one side is whole on both)."""
    if layer_map is None:
        return frozenset(), frozenset()
    boxes_a = set(getattr(layer_map, "black_box_a", ()) or ())
    boxes_b = set(getattr(layer_map, "black_box_b", ()) or ())
    pins = dict(getattr(layer_map, "pairs", None) or {})
    pins.setdefault("", "")
    for a, b in pins.items():
        if a in boxes_a or b in boxes_b:
            boxes_a.add(a)
            boxes_b.add(b)
    return frozenset(boxes_a), frozenset(boxes_b)


def unit_ignores(layer_map: LayerMap | None, graph_a: Graph, graph_b: Graph) -> Any:
    """The layer map, with units ignored "themselves" ignored whole (nothing inside is left)."""
    if layer_map is None:
        return None
    extra = {}
    for side, graph in (("a", graph_a), ("b", graph_b)):
        units = {op.module_path for op in graph.ops.values() if op.meta.get("module_unit")}
        itself = set(getattr(layer_map, f"ignored_self_{side}", ()) or ())
        extra[side] = units & itself
    if not extra["a"] and not extra["b"]:
        return layer_map
    adjusted = layer_map.copy()
    adjusted.ignored_a |= extra["a"]
    adjusted.ignored_b |= extra["b"]
    return adjusted


def model_graph(
    model: Model, inputs: Inputs, *, black_boxes: frozenset[str] = frozenset()
) -> Graph:
    """The graph of one eager run of ``model`` (a eager trace), or of its module tree when
    ``inputs`` is ``None``."""
    if inputs is None:
        return static_graph(model, black_boxes=black_boxes)
    trace = trace_model(model, inputs)
    return graph_from_trace(
        trace, unit_paths(trace.modules, trace.framework, black_boxes, trace.base_layers)
    )


def static_graph(
    model: Model,
    *,
    black_boxes: frozenset[str] = frozenset(),
    fused: frozenset[tuple[Any, ...]] = frozenset(),
) -> Graph:
    """A graph of ``model`` without running it: its innermost modules in definition order.

    Each reads the output of the one before, except siblings of one container that read the
    same input size and together make a layer of the other side (``q``/``k``/``v`` against a
    fused ``qkv``): they all read the input of the first, so that the fused layer matches them
    as a group, and the layer after them reads their outputs joined by a ``Concat`` marked
    ``meta["synthetic"]`` (it stands for what the model computes there, not for an op of it).
    ``fused`` holds the ``(input key, output size)`` of the other side's layers
    (:func:`layer_sizes`); a run grows while its outputs add up to at most one of them. A
    container holding parameters itself (a class token, position embeddings) adds one op for
    them before its submodules.
    """
    from padiff_ir.frameworks.trace import module_roles

    model = unwrap_model(model)
    fw = framework_of(model)
    named = fw.named_modules(model)
    modules = {path: type(module).__name__ for path, module in named}
    bases = fw.base_layers(named)
    units = unit_paths(modules, fw.name, black_boxes, bases)
    parameters, owners = _static_parameters(fw.named_tensors(model), fw)
    own = {p: [n for n in names if n in parameters] for p, names in owners.items()}
    roles = module_roles(fw, named)
    whole = not fw.children(model) or "" in units
    chain = _Chain([TracedCall(0, "", modules.get("", ""), 0, None, ("input:0",), (), not whole)])
    if whole:  # the model is one layer, or kept whole
        named = []
        chain.calls[0] = replace(chain.calls[0], outputs=("#0:out0",))
        chain.value("#0:out0")
    if not whole and own.get(""):  # the model's own parameters (a class token...)
        chain.call("", modules[""], "#0:own", chain.current)
        chain.current = "#0:own"
    for path, module in named:
        if not path or any(strictly_within(path, u) for u in units):
            continue
        leaf = path in units or not fw.children(module)
        if not leaf and not own.get(path):
            continue
        weight = next((parameters[n] for n in own.get(path, ()) if roles.get(n) == "weight"), None)
        base = bases.get(path, modules[path])
        chain.add(
            path,
            modules[path],
            leaf,
            _fan_key(base, fw.name, weight),
            _out_size(base, fw.name, weight),
            fused,
        )
    current = chain.join()
    if chain.calls[0].children:
        chain.calls[0] = replace(chain.calls[0], outputs=(current,), done=len(chain.calls))
    else:
        current = "#0:out0"
    trace = Trace(
        framework=fw.name,
        modules=modules,
        parameters=parameters,
        owners={k: tuple(v) for k, v in owners.items()},
        roles=module_roles(fw, named),
        inputs=("input:0",),
        outputs=(current,),
        tensors=chain.values,
        calls=tuple(chain.calls),
        ops=tuple(chain.joins),
        base_layers=bases,
    )
    graph = graph_from_trace(trace, units)
    graph.meta["source"] = "static"
    return graph


def _static_parameters(
    tensors: Mapping[str, Tensor], fw: Framework
) -> tuple[dict[str, TracedTensor], dict[str, list[str]]]:
    """The model's tensors by name, each shared one once, and their names by owning module."""
    parameters: dict[str, TracedTensor] = {}
    owners: dict[str, list[str]] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        owners.setdefault(owner(name), []).append(name)
        if id(tensor) not in seen:
            seen.add(id(tensor))
            parameters[name] = TracedTensor(name, fw.shape(tensor), fw.dtype_name(tensor))
    return parameters, owners


@dataclass
class _Chain:
    """The calls of a static graph as :func:`static_graph` lays them out, one after the other,
    and the run of siblings reading one input that it is growing."""

    calls: list[TracedCall]
    values: dict[str, TracedTensor] = field(
        default_factory=lambda: {"input:0": TracedTensor("input:0", None, "float32")}
    )
    joins: list[TracedOp] = field(default_factory=list)
    current: str = "input:0"
    members: list[str] = field(default_factory=list)  # outputs of the current run
    run_input: str = "input:0"
    run_key: tuple[Any, ...] | None = None
    run_parent: str | None = None
    run_out: int = 0

    def value(self, name: str) -> None:
        self.values[name] = TracedTensor(name, None, "float32")

    def call(self, path: str, class_name: str, output: str, source: str) -> None:
        self.value(output)
        index = len(self.calls)
        self.calls.append(
            TracedCall(index, path, class_name, 0, 0, (source,), (output,), False, index)
        )

    def join(self) -> str:
        """The run's outputs joined (what a fused layer of the other side makes), or the
        last output when the run is one layer."""
        if len(self.members) < 2:
            return self.current
        output = f"join:{len(self.joins)}"
        self.value(output)
        # before the next call, which reads it (the graph orders by data)
        seq = len(self.calls)
        self.joins.append(
            TracedOp(f"join{len(self.joins)}", "Concat", (), tuple(self.members), output, 0, seq)
        )
        return output

    def add(
        self,
        path: str,
        class_name: str,
        leaf: bool,
        key: tuple[Any, ...] | None,
        out: int,
        fused: frozenset[tuple[Any, ...]],
    ) -> None:
        """The call of the module at ``path``: in the current run when it can still add up to
        a fused layer of the other side (``fused``), else reading the run's joined outputs."""
        parent = parent_path(path)
        fits = any(k == key and self.run_out + out <= size and size > out for k, size in fused)
        complete = len(self.members) > 1 and any(
            k == self.run_key and self.run_out == size for k, size in fused
        )
        same_run = leaf and key is not None and key == self.run_key and parent == self.run_parent
        if same_run and fits:
            fits = not complete
        if same_run and fits:
            source = self.run_input
            self.run_out += out
        else:
            self.current = self.join()
            source = self.current
            self.members = []
            self.run_input, self.run_key, self.run_parent, self.run_out = (
                self.current,
                key,
                parent,
                out,
            )
        output = f"{path}#0:out0"
        self.call(path, class_name, output, source)
        self.members.append(output)
        self.current = output


def layer_sizes(model: Model) -> frozenset[tuple[Any, ...]]:
    """``(input key, output size)`` of every Linear and convolution of ``model`` (see
    :func:`static_graph`)."""
    model = unwrap_model(model)
    fw = framework_of(model)
    found = set()
    for _, module in fw.named_modules(model):
        roles = fw.roles(module)
        weight = next((t for n, t in fw.own_tensors(module) if roles.get(n) == "weight"), None)
        if weight is None:
            continue
        info = _Shape(fw.shape(weight))
        base = fw.base_layer(module)
        key = _fan_key(base, fw.name, info)
        if key is not None:
            found.add((key, _out_size(base, fw.name, info)))
    return frozenset(found)


@dataclass(frozen=True)
class _Shape:
    shape: tuple[int, ...] | None


def _out_size(class_name: str, framework: str, weight: _Shape | TracedTensor | None) -> int:
    if weight is None or weight.shape is None or len(weight.shape) < 2:
        return 0
    linear = class_family(class_name, framework) == "linear"
    if linear and not FRAMEWORKS[framework].linear_weight_transposed:  # [in, out]
        return int(weight.shape[1])
    return int(weight.shape[0])


def _fan_key(
    class_name: str, framework: str, weight: _Shape | TracedTensor | None
) -> tuple[Any, ...] | None:
    """What siblings reading one input share: a Linear's input size, a conv's input channels."""
    family = class_family(class_name, framework)
    if weight is None or weight.shape is None or len(weight.shape) < 2:
        return None
    if family == "linear":
        transposed = FRAMEWORKS[framework].linear_weight_transposed  # [out, in]
        return ("linear", weight.shape[1] if transposed else weight.shape[0])
    if family.startswith("conv") and not family.startswith("convtranspose"):
        return ("conv", weight.shape[1], tuple(weight.shape[2:]))
    return None


def trace_graphs(
    model_a: Model,
    inputs_a: Inputs,
    model_b: Model,
    inputs_b: Inputs,
    layer_map: LayerMap | None = None,
) -> Callable[[], tuple[Graph, Graph]]:
    """A function making the eager-trace graphs of both models (for :func:`pair_graphs`)."""
    black_a, black_b = black_boxes(layer_map)

    def make() -> tuple[Graph, Graph]:
        return (
            model_graph(model_a, inputs_a, black_boxes=black_a),
            model_graph(model_b, inputs_b, black_boxes=black_b),
        )

    return make
