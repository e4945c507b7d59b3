"""The graphs of two models, and the one matching every entry point takes its layer map from.

:func:`pair_models` is how ``match``, ``auto_layer_map``, ``assign_weight`` and ``auto_diff``
learn which module of A is which layer of B and how each parameter maps: always
:func:`padiff_ir.matching.match_graphs`, on

* the **exported ONNX graphs** when inputs are given and both models export;
* **native traces** otherwise (:func:`padiff_ir.frameworks.trace_model`, one eager run each,
  made a graph by :func:`padiff_ir.ir.graph_from_trace`): models whose ``forward`` cannot go
  through ``paddle.jit.save`` or the torch exporter are matched the same way;
* without inputs, the **module trees** (:func:`static_graph`): innermost modules in definition
  order, each reading the previous one's output (sibling projections reading one input).

Modules and parameters the exported graphs leave unpaired (a ``Dropout`` in eval mode has no
op in ONNX; an exporter may rewrite a ``Conv1D`` beyond recognition) are paired from the native
traces (:func:`complete_from_traces`), so a layer map made on ONNX graphs still names them.
Matchings are remembered per pair of models (weakly, while their
module trees and the layer map are unchanged): ``assign_weight`` without inputs after
``auto_layer_map`` with inputs reuses that matching, and every entry point gives the same pairs.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from padiff_ir.errors import ExportError
from padiff_ir.frameworks import framework_of, split_inputs, trace_model, unwrap_model
from padiff_ir.frameworks.trace import Trace, TracedCall
from padiff_ir.ir import Graph, build_graph, canonicalize
from padiff_ir.ir.trace_graph import graph_from_trace
from padiff_ir.matching import match_graphs
from padiff_ir.matching.transforms import UNIT_FAMILIES, class_family
from padiff_ir.matching.types import Matching, ModulePair

__all__ = [
    "complete_from_traces",
    "model_graph",
    "pair_graphs",
    "pair_models",
    "remember",
    "layer_sizes",
    "static_graph",
    "trace_graphs",
    "unit_paths",
]

logger = logging.getLogger(__name__)

_BLACK_BOX = "black-box"
_IGNORED = "ignored by the layer map"


def unit_paths(modules: Mapping[str, str], framework: str,
               black_boxes: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """Modules a native graph keeps whole -> their unit family.

    Multi-head attention and recurrent layers (their internals differ between frameworks),
    classes with a registered weight transform, and the layer map's black boxes; the outermost
    one wins when they nest. ``modules`` maps paths to class names, parents first.
    """
    units: dict[str, str] = {}
    if "" in black_boxes:
        return {"": _BLACK_BOX}
    for path, class_name in modules.items():
        if not path or any(path.startswith(u + ".") for u in units):
            continue
        family = class_family(class_name, framework)
        if path in black_boxes:
            units[path] = _BLACK_BOX
        elif family in UNIT_FAMILIES or family.startswith("custom:"):
            units[path] = family
    return units


def _black_boxes(layer_map: Any) -> tuple[frozenset[str], frozenset[str]]:
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


def _unit_ignores(layer_map: Any, graph_a: Graph, graph_b: Graph) -> Any:
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


def model_graph(model: Any, inputs: Any, *, black_boxes: frozenset[str] = frozenset()) -> Graph:
    """The graph of one eager run of ``model`` (a native trace), or of its module tree when
    ``inputs`` is ``None``."""
    if inputs is None:
        return static_graph(model, black_boxes=black_boxes)
    trace = trace_model(model, inputs)
    return graph_from_trace(trace, unit_paths(trace.modules, trace.framework, black_boxes))


def static_graph(model: Any, *, black_boxes: frozenset[str] = frozenset(),
                 fused: frozenset[tuple[Any, ...]] = frozenset()) -> Graph:
    """A graph of ``model`` without running it: its innermost modules in definition order.

    Each reads the output of the one before, except siblings of one container that read the
    same input size and together make a layer of the other side (``q``/``k``/``v`` against a
    fused ``qkv``): they all read the input of the first, so that the fused layer matches them
    as a group. ``fused`` holds the ``(input key, output size)`` of the other side's layers
    (:func:`layer_sizes`); a run grows while its outputs add up to at most one of them. A
    container holding parameters itself (a class token, position embeddings) adds one op for
    them before its submodules.
    """
    from padiff_ir.frameworks.trace import TracedTensor, module_roles

    model = unwrap_model(model)
    fw = framework_of(model)
    named = fw.named_modules(model)
    modules = {path: type(module).__name__ for path, module in named}
    units = unit_paths(modules, fw.name, black_boxes)
    tensors = fw.named_tensors(model)
    parameters: dict[str, TracedTensor] = {}
    owners: dict[str, list[str]] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        owners.setdefault(name.rpartition(".")[0], []).append(name)
        if id(tensor) not in seen:
            seen.add(id(tensor))
            parameters[name] = TracedTensor(name, fw.shape(tensor), fw.dtype_name(tensor))
    own = {p: [n for n in names if n in parameters] for p, names in owners.items()}
    roles = module_roles(fw, named)
    values: dict[str, TracedTensor] = {"input:0": TracedTensor("input:0", None, "float32")}
    whole = not fw.children(model) or "" in units
    calls: list[TracedCall] = [TracedCall(0, "", modules.get("", ""), 0, None, ("input:0",),
                                          (), not whole)]
    if whole:  # the model is one layer, or kept whole
        named = []
        calls[0] = replace(calls[0], outputs=("#0:out0",))
        values["#0:out0"] = TracedTensor("#0:out0", None, "float32")
    current, run_input, run_key, run_parent, run_out = "input:0", "input:0", None, None, 0
    if not whole and own.get(""):  # the model's own parameters (a class token...)
        values["#0:own"] = TracedTensor("#0:own", None, "float32")
        calls.append(TracedCall(len(calls), "", modules[""], 0, 0, (current,), ("#0:own",),
                                False, len(calls)))
        current = "#0:own"
    for path, module in named:
        if not path or any(path.startswith(u + ".") for u in units):
            continue
        leaf = path in units or not fw.children(module)
        if not leaf and not own.get(path):
            continue
        parent = path.rpartition(".")[0]
        weight = next((parameters[n] for n in own.get(path, ()) if roles.get(n) == "weight"),
                      None)
        key = _fan_key(modules[path], fw.name, weight)
        out = _out_size(modules[path], fw.name, weight)
        source = current
        # join the run only while it can still add up to a fused layer of the other side
        fits = any(k == key and run_out + out <= size and size > out for k, size in fused)
        if leaf and key is not None and key == run_key and parent == run_parent and fits:
            source = run_input
            run_out += out
        else:
            run_input, run_key, run_parent, run_out = current, key, parent, out
        output = f"{path}#0:out0"
        values[output] = TracedTensor(output, None, "float32")
        calls.append(TracedCall(len(calls), path, modules[path], 0, 0, (source,), (output,),
                                False, len(calls)))
        current = output
    if calls[0].children:
        calls[0] = replace(calls[0], outputs=(current,), done=len(calls))
    else:
        current = "#0:out0"
    trace = Trace(framework=fw.name, modules=modules, parameters=parameters,
                  owners={k: tuple(v) for k, v in owners.items()},
                  roles=module_roles(fw, named), inputs=("input:0",),
                  outputs=(current,), tensors=values, calls=tuple(calls))
    graph = graph_from_trace(trace, units)
    graph.meta["source"] = "static"
    return graph


def layer_sizes(model: Any) -> frozenset[tuple[Any, ...]]:
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
        key = _fan_key(type(module).__name__, fw.name, info)
        if key is not None:
            found.add((key, _out_size(type(module).__name__, fw.name, info)))
    return frozenset(found)


@dataclass(frozen=True)
class _Shape:
    shape: tuple[int, ...] | None


def _out_size(class_name: str, framework: str, weight: Any) -> int:
    if weight is None or weight.shape is None or len(weight.shape) < 2:
        return 0
    if class_family(class_name, framework) == "linear" and framework == "paddle":
        return int(weight.shape[1])
    return int(weight.shape[0])


def _fan_key(class_name: str, framework: str, weight: Any) -> tuple[Any, ...] | None:
    """What siblings reading one input share: a Linear's input size, a conv's input channels."""
    family = class_family(class_name, framework)
    if weight is None or weight.shape is None or len(weight.shape) < 2:
        return None
    if family == "linear":
        return ("linear", weight.shape[1] if framework == "torch" else weight.shape[0])
    if family.startswith("conv") and not family.startswith("convtranspose"):
        return ("conv", weight.shape[1], tuple(weight.shape[2:]))
    return None


def trace_graphs(model_a: Any, inputs_a: Any, model_b: Any, inputs_b: Any,
                 layer_map: Any = None) -> Callable[[], tuple[Graph, Graph]]:
    """A function making the native-trace graphs of both models (for :func:`pair_graphs`)."""
    black_a, black_b = _black_boxes(layer_map)

    def make() -> tuple[Graph, Graph]:
        return (model_graph(model_a, inputs_a, black_boxes=black_a),
                model_graph(model_b, inputs_b, black_boxes=black_b))

    return make


def pair_graphs(graph_a: Graph, graph_b: Graph, *, layer_map: Any = None,
                traces: Callable[[], tuple[Graph, Graph]] | None = None) -> Matching:
    """:func:`~padiff_ir.matching.match_graphs` on two exported graphs, completed from the
    models' native traces (``traces`` makes their graphs, called only when something is left
    unpaired) for the modules and parameters the exported graphs could not pair."""
    matching = match_graphs(graph_a, graph_b, layer_map=layer_map)
    if traces is None or not _incomplete(matching):
        return matching
    traced_a, traced_b = traces()
    return complete_from_traces(matching, match_graphs(traced_a, traced_b,
                                                       layer_map=layer_map))


def _incomplete(matching: Matching) -> bool:
    return any(u.kind in ("module", "tensor") and u.reason != _IGNORED
               for u in matching.unmatched)


def complete_from_traces(matching: Matching, traced: Matching) -> Matching:
    """``matching`` plus what the native traces pair among what it left alone.

    A module pair of ``traced`` joins when neither module is paired in ``matching`` (an
    exporter dropped it, as it drops a ``Dropout`` in eval mode, or changed its ops beyond
    recognition); a parameter pair joins when none of its tensors is paired. Their "unmatched"
    entries go. The added module pairs carry no tensor names (those of the traces are not the
    exported graphs'), and ``"eager-trace"`` in their evidence.
    """
    paired_a = {p.a for p in matching.module_pairs}
    paired_b = {p.b for p in matching.module_pairs}
    modules: list[ModulePair] = []
    for pair in traced.module_pairs:
        if pair.a in paired_a or pair.b in paired_b:
            continue
        modules.append(ModulePair(pair.a, pair.b, pair.class_a, pair.class_b, pair.confidence,
                                  (*pair.evidence, "eager-trace"), black_box=pair.black_box))
        paired_a.add(pair.a)
        paired_b.add(pair.b)
    names_a = {n for p in matching.param_pairs for n in p.a}
    names_b = {n for p in matching.param_pairs for n in p.b}
    params = [replace(p, evidence=(*p.evidence, "eager-trace")) for p in traced.param_pairs
              if not names_a.intersection(p.a) and not names_b.intersection(p.b)]
    if not modules and not params:
        return matching
    gone = {("a", p.a) for p in modules} | {("b", p.b) for p in modules}
    gone |= {("a", n) for p in params for n in p.a} | {("b", n) for p in params for n in p.b}
    unmatched = [u for u in matching.unmatched
                 if not (u.kind in ("module", "tensor") and (u.side, u.name) in gone)]
    order = {p.a: i for i, p in enumerate(traced.module_pairs)}
    pairs = sorted([*matching.module_pairs, *modules],
                   key=lambda p: order.get(p.a, len(order)))
    stats = {**matching.stats, "completed_from_traces": len(modules) + len(params)}
    return replace(matching, module_pairs=pairs, param_pairs=[*matching.param_pairs, *params],
                   unmatched=unmatched, stats=stats)


# ---------------------------------------------------------------------------------------------
# Pairs of models, remembered.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    ref_a: Any
    ref_b: Any
    layer_map: str
    structure: tuple[Any, ...]
    inputs: tuple[Any, ...] | None
    export: bool
    matching: Matching


_MEMO: dict[tuple[int, int], _Entry] = {}
_MAX_ENTRIES = 8


def _structure(model: Any) -> tuple[Any, ...]:
    fw = framework_of(model)
    return (tuple((p, type(m).__name__) for p, m in fw.named_modules(model)),
            tuple((n, fw.shape(t)) for n, t in fw.named_tensors(model).items()))


def _input_signature(inputs: Any) -> tuple[Any, ...]:
    def describe(value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple((k, describe(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return tuple(describe(v) for v in value)
        shape = getattr(value, "shape", None)
        return (tuple(int(d) for d in shape), str(getattr(value, "dtype", ""))) \
            if shape is not None else repr(value)

    return (describe(inputs),)


def _map_signature(layer_map: Any) -> str:
    if layer_map is None:
        return ""
    import json

    to_dict = getattr(layer_map, "to_dict", None)
    if to_dict is None:
        return repr(layer_map)
    data = {k: v for k, v in to_dict().items() if k != "version" and v}
    return json.dumps(data, sort_keys=True, default=str) if data else ""


def _lookup(model_a: Any, model_b: Any, layer_map: Any, inputs: Any,
            export: bool) -> Matching | None:
    entry = _MEMO.get((id(model_a), id(model_b)))
    if entry is None or entry.ref_a() is not model_a or entry.ref_b() is not model_b:
        return None
    if entry.layer_map != _map_signature(layer_map) or entry.export != export:
        return None
    if entry.structure != (_structure(model_a), _structure(model_b)):
        return None
    if inputs is None:
        return entry.matching  # a matching made with inputs beats one made without
    if entry.inputs is not None and entry.inputs == _input_signature(inputs):
        return entry.matching
    return None


def remember(model_a: Any, model_b: Any, layer_map: Any, inputs: Any, matching: Matching, *,
             export: bool = True) -> None:
    """Keep ``matching`` as the one of these models (what :func:`padiff_ir.match` made on the
    exported graphs), for the other entry points to reuse."""
    key = (id(model_a), id(model_b))
    _MEMO.pop(key, None)
    if len(_MEMO) >= _MAX_ENTRIES:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = _Entry(
        weakref.ref(model_a), weakref.ref(model_b), _map_signature(layer_map),
        (_structure(model_a), _structure(model_b)),
        _input_signature(inputs) if inputs is not None else None, export, matching)


def pair_models(model_a: Any, model_b: Any, inputs: Any = None, *, layer_map: Any = None,
                export: bool = True, reuse: bool = True) -> Matching:
    """The matching of two torch/paddle models (see the module docstring).

    Args:
        model_a / model_b: torch modules or paddle layers (or ``create_model`` wrappers).
        inputs: inputs for both (arrays or tensors; one, a sequence or a dict by argument
            name), or a pair of per-framework inputs such as ``({'x': paddle_tensor},
            {'x': torch_tensor})`` in either order; ``None`` matches the module trees.
        layer_map: a resolved :class:`~padiff_ir.pairing.layer_map.LayerMap` (path entries).
        export: try the ONNX graphs first (``False``: native traces only).
        reuse: give the matching remembered for these models when it still fits (``False``:
            match anew, and remember nothing).

    Returns:
        the :class:`~padiff_ir.matching.Matching`; ``stats["graphs"]`` says which graphs it
        was made on (``onnx``, ``trace`` or ``static``) and, after a failed export, why.

    Raises:
        InputError: a model does not run on its inputs.
    """
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    found = _lookup(model_a, model_b, layer_map, inputs, export) if reuse else None
    if found is not None:
        return found
    start = time.perf_counter()
    black_a, black_b = _black_boxes(layer_map)
    notes: dict[str, Any] = {"framework_a": framework_of(model_a).name,
                             "framework_b": framework_of(model_b).name}
    if inputs is None:
        graphs = "static"
        static_a = static_graph(model_a, black_boxes=black_a, fused=layer_sizes(model_b))
        static_b = static_graph(model_b, black_boxes=black_b, fused=layer_sizes(model_a))
        matching = match_graphs(static_a, static_b,
                                layer_map=_unit_ignores(layer_map, static_a, static_b))
    else:
        inputs_a, inputs_b = split_inputs(inputs, notes["framework_a"], notes["framework_b"])
        traces = trace_graphs(model_a, inputs_a, model_b, inputs_b, layer_map)

        exported = _exported_graphs(model_a, inputs_a, model_b, inputs_b, notes) \
            if export else None
        if exported is not None:
            graphs = "onnx"
            matching = pair_graphs(*exported, layer_map=layer_map, traces=traces)
        else:
            graphs = "trace"
            traced_a, traced_b = traces()
            matching = match_graphs(traced_a, traced_b,
                                    layer_map=_unit_ignores(layer_map, traced_a, traced_b))
    matching = replace(matching, stats={**matching.stats, "graphs": graphs, **notes,
                                        "pairing_seconds": round(time.perf_counter() - start, 3)})
    logger.debug("paired %s and %s on %s graphs: %d module pairs, %d parameter pairs",
                type(model_a).__name__, type(model_b).__name__, graphs,
                len(matching.module_pairs), len(matching.param_pairs))
    if reuse:
        remember(model_a, model_b, layer_map, inputs, matching, export=export)
    return matching


def _exported_graphs(model_a: Any, inputs_a: Any, model_b: Any, inputs_b: Any,
                     notes: dict[str, Any]) -> tuple[Graph, Graph] | None:
    from padiff_ir.exporters import export_pair

    try:
        exported_a, exported_b = export_pair(model_a, inputs_a, model_b, inputs_b, check=False)
    except ExportError as err:
        notes["export_failed"] = str(err).splitlines()[0]
        logger.info("matching on native traces: %s", notes["export_failed"])
        return None
    return canonicalize(build_graph(exported_a)), canonicalize(build_graph(exported_b))
