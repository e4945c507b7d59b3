"""Trace an eager run: every module call, and the data flow between calls.

:func:`trace_model` runs a model once (eval mode, state restored after) with a pre- and a
post-hook on every module. Each call is recorded with its path, class, call index (a layer
called three times makes calls 0, 1 and 2), parent call and tensor inputs and outputs, named
``path#call:out0`` and so on. The computation *between* module calls (a residual ``x + y``,
attention's matmuls, a reshape) leaves no call; it is found in the autograd graph: walking back
from a tensor a call reads, through the autograd nodes, to the tensors already named (earlier
outputs, graph inputs, parameters) gives one :class:`TracedOp` per autograd node, whose kind is
the node's op (``Add``, ``MatMul``... or ``Functional`` when unknown). Float graph inputs
become gradient-carrying leaves for the run so the walk reaches them; the user's tensors are
not touched.

The :class:`Trace` is plain data (names, shapes, dtypes): :func:`padiff_ir.ir.graph_from_trace`
makes it a graph that :func:`padiff_ir.matching.match_graphs` matches exactly like an export.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir._paths import owner
from padiff_ir.errors import InputError
from padiff_ir.frameworks._base import Framework, flatten_tensors
from padiff_ir.frameworks.hooks import installed
from padiff_ir.frameworks.inputs import normalize_inputs
from padiff_ir.frameworks.state import preserved_state
from padiff_ir.hints import Inputs, Model, Module, Outputs, Tensor

__all__ = [
    "Trace",
    "TracedCall",
    "TracedOp",
    "TracedTensor",
    "model_arguments",
    "module_roles",
    "trace_model",
]

logger = logging.getLogger(__name__)

_MAX_WALK = 20000

#: Autograd node names (torch ``XBackward0``, paddle ``XGradNode`` with the suffix removed,
#: lower case) -> the ONNX op type they compute.
_NODE_OPS: Mapping[str, str] = {
    "add": "Add",
    "sub": "Sub",
    "rsub": "Sub",
    "mul": "Mul",
    "multiply": "Mul",
    "div": "Div",
    "divide": "Div",
    "scale": "Mul",
    "matmul": "MatMul",
    "mm": "MatMul",
    "bmm": "MatMul",
    "matmulv2": "MatMul",
    "cat": "Concat",
    "concat": "Concat",
    "view": "Reshape",
    "reshape": "Reshape",
    "reshape2": "Reshape",
    "unsafeview": "Reshape",
    "reshapealias": "Reshape",
    "flatten": "Flatten",
    "squeeze": "Squeeze",
    "unsqueeze": "Unsqueeze",
    "transpose": "Transpose",
    "permute": "Transpose",
    "t": "Transpose",
    "softmax": "Softmax",
    "gelu": "Gelu",
    "relu": "Relu",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "rsqrt": "Rsqrt",
    "pow": "Pow",
    "mean": "ReduceMean",
    "sum": "ReduceSum",
    "expand": "Expand",
    "neg": "Neg",
    "silu": "Silu",
    "clone": "Identity",
    "contiguous": "Identity",
}


@dataclass(frozen=True)
class TracedTensor:
    """A tensor of the trace: its name, shape and dtype (``None`` and ``""`` when unknown: a
    value between two autograd nodes)."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str


@dataclass(frozen=True)
class TracedCall:
    """One call of one module.

    Attributes:
        index: order in which the calls started.
        path: the module's attribute path (``""`` for the model).
        class_name: the module's class.
        call: how often this module was called before (0 for its first call).
        parent: the ``index`` of the call this one happened in (``None`` for the model).
        inputs / outputs: names of its tensor inputs (positional, then keyword) and outputs.
        children: whether other module calls happened inside it.
        done: when it returned, on the clock that :attr:`TracedOp.seq` also reads.
    """

    index: int
    path: str
    class_name: str
    call: int
    parent: int | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    children: bool
    done: int = 0


@dataclass(frozen=True)
class TracedOp:
    """One autograd node of the computation between module calls.

    Attributes:
        name: the op's name.
        kind: the ONNX op type of its autograd node (``Functional`` when unknown).
        nodes: the autograd node it stands for, by name.
        inputs: the named tensors (call outputs, graph inputs, parameters) it reads.
        output: the tensor it makes.
        call: the ``index`` of the call it happened in.
        seq: when it was found (ops and returning calls share this clock: a topological order).
    """

    name: str
    kind: str
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    call: int | None
    seq: int = 0


@dataclass(frozen=True)
class Trace:
    """One eager run of one model, as data.

    Attributes:
        framework: ``"torch"`` or ``"paddle"``.
        modules: every module path -> its class name, definition order.
        parameters: parameter and persistent buffer names -> their tensor (first name of shared).
        owners: module path -> names of the tensors it holds itself.
        roles: tensor name -> its role in its module (``weight``, ``bias``, ``running_mean``,
            ``running_var``), found by attribute (renamed storage still says what it is).
        inputs / outputs: the model's tensor inputs and outputs, by name.
        tensors: every named tensor.
        calls: module calls, in the order they started.
        ops: the computation between calls.
        base_layers: module path -> the framework's layer class it is, where that is not its own
            class (a subclass of ``nn.Linear`` is a ``Linear``: :meth:`Framework.base_layer`).
        activations: module path -> the activation the layer applies after its own computation
            (:meth:`Framework.fused_activation`), for the layers that apply one.
    """

    framework: str
    modules: dict[str, str]
    parameters: dict[str, TracedTensor]
    owners: dict[str, tuple[str, ...]]
    roles: dict[str, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: dict[str, TracedTensor] = field(default_factory=dict)
    calls: tuple[TracedCall, ...] = ()
    ops: tuple[TracedOp, ...] = ()
    base_layers: dict[str, str] = field(default_factory=dict)
    activations: dict[str, str] = field(default_factory=dict)


def _node_op(name: str) -> str:
    key = re.sub(r"(Backward\d*|GradNode(Final)?|_grad)$", "", name).lower().replace("_", "")
    return _NODE_OPS.get(key, "Functional")


class _Recorder:
    """Names tensors as the hooks see them and finds the ops between calls."""

    def __init__(self, framework: Framework) -> None:
        self.fw = framework
        self.tensors: dict[str, TracedTensor] = {}
        self.by_node: dict[Any, str] = {}
        self.by_id: dict[int, tuple[Any, str, Any]] = {}  # id -> (tensor, name, node key)
        self.keep: list[Any] = []  # every tensor named, alive until the end (stable ids)
        self.calls: list[dict[str, Any]] = []
        self.ops: list[TracedOp] = []
        self.stack: list[int] = []
        self.counts: dict[str, int] = {}
        self.clock = 0

    # -- naming ----------------------------------------------------------------------------
    def _key(self, tensor: Tensor) -> Any:
        node = self.fw.grad_node(tensor)
        return None if node is None else (self.fw.node_key(node), self.fw.output_index(tensor))

    def name(self, tensor: Tensor, name: str, *, leaf: bool = False) -> str:
        self.tensors[name] = TracedTensor(name, self.fw.shape(tensor), self.fw.dtype_name(tensor))
        key = self.fw.leaf_key(tensor) if leaf else self._key(tensor)
        if key is not None:
            self.by_node[key] = name
        self.by_id[id(tensor)] = (tensor, name, key)
        self.keep.append(tensor)
        return name

    def resolve(self, tensor: Tensor) -> str:
        """The name of a tensor a call reads or returns; ops are made for a new one."""
        key = self._key(tensor)
        known = self.by_id.get(id(tensor))
        if known is not None and known[0] is tensor and (key is None or known[2] == key):
            return known[1]
        if key is None:
            leaf_key = self.fw.leaf_key(tensor) if self.fw.requires_grad(tensor) else None
            if leaf_key is not None and leaf_key in self.by_node:
                return self.by_node[leaf_key]
            return self.name(tensor, f"const:{len(self.tensors)}")
        if key in self.by_node:
            return self.by_node[key]
        return self._functional(tensor)

    def _functional(self, tensor: Tensor) -> str:
        """Ops for the autograd nodes between ``tensor`` and the tensors named so far."""
        fw = self.fw
        output = self.name(tensor, f"fn:{len(self.tensors)}")
        call = self.stack[-1] if self.stack else None
        # iterative post-order walk: an op is emitted after the ops making its inputs
        stack: list[tuple[Any, str, list[str] | None]] = [(fw.grad_node(tensor), output, None)]
        budget = _MAX_WALK
        while stack:
            node, made, inputs = stack.pop()
            if inputs is not None:  # children done: emit
                name = fw.node_name(node)
                self.clock += 1
                self.ops.append(
                    TracedOp(
                        f"fn{len(self.ops)}",
                        _node_op(name),
                        (name,),
                        tuple(inputs),
                        made,
                        call,
                        self.clock,
                    )
                )
                continue
            inputs = []
            stack.append((node, made, inputs))
            pending = []
            for nxt, index in fw.next_nodes(node):
                key = (fw.node_key(nxt), index)
                found = self.by_node.get(key) or self.by_node.get(fw.node_key(nxt))
                if found is not None:
                    inputs.append(found)
                    continue
                if _is_accumulation(fw.node_name(nxt)) or budget <= 0:
                    continue  # a leaf padiff-ir does not know (a frozen or foreign tensor)
                budget -= 1
                inner = f"fn:{len(self.tensors)}"
                self.tensors[inner] = TracedTensor(inner, None, "")
                self.by_node[key] = inner
                inputs.append(inner)
                pending.append((nxt, inner, None))
            stack.extend(reversed(pending))
        return output

    # -- hooks -----------------------------------------------------------------------------
    def pre_hook(self, path: str) -> Any:
        def hook(
            module: Module, args: tuple[object, ...], kwargs: Mapping[str, object] | None = None
        ) -> None:
            tensors = flatten_tensors((args, kwargs or {}), self.fw)
            inputs = tuple(self.resolve(t) for t in tensors)
            index = len(self.calls)
            call = self.counts.get(path, 0)
            self.counts[path] = call + 1
            parent = self.stack[-1] if self.stack else None
            if parent is not None:
                self.calls[parent]["children"] = True
            self.calls.append(
                {
                    "index": index,
                    "path": path,
                    "class_name": type(module).__name__,
                    "call": call,
                    "parent": parent,
                    "inputs": inputs,
                    "outputs": (),
                    "children": False,
                    "done": 0,
                }
            )
            self.stack.append(index)

        return hook

    def post_hook(self, path: str) -> Any:
        def hook(module: Module, args: tuple[object, ...], output: Outputs) -> None:
            if not self.stack or self.calls[self.stack[-1]]["path"] != path:
                return  # a call that raised inside: the run fails anyway
            record = self.calls[self.stack[-1]]
            tensors = flatten_tensors(output, self.fw)
            if record["children"]:
                names = tuple(self.resolve(t) for t in tensors)
            else:
                label = f"{path}#{record['call']}" if path else f"#{record['call']}"
                names = tuple(self.name(t, f"{label}:out{i}") for i, t in enumerate(tensors))
            record["outputs"] = names
            self.clock += 1
            record["done"] = self.clock
            self.stack.pop()

        return hook


def _is_accumulation(name: str) -> bool:
    return name in ("AccumulateGrad", "GradNodeAccumulation")


def model_arguments(framework: Framework, model: Model, inputs: Inputs) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of this framework's tensors, floats cast to the model's dtype."""
    if isinstance(inputs, Mapping):
        values = dict(inputs)
        positional = False
    elif isinstance(inputs, (tuple, list)):
        values = dict(enumerate(inputs))
        positional = True
    else:
        values, positional = {0: inputs}, True
    dtype, device = framework.first_float(model)
    converted = {}
    for key, value in values.items():
        if not framework.is_tensor(value):
            value = normalize_inputs([value]).arrays[0]
        converted[key] = framework.as_input(value, dtype, device)
    if positional:
        return tuple(converted.values()), {}
    return (), converted


def module_roles(framework: Framework, modules: list[tuple[str, Module]]) -> dict[str, str]:
    """Full tensor name -> role, for every module (see :attr:`Trace.roles`)."""
    roles = {}
    for path, module in modules:
        for name, role in framework.roles(module).items():
            roles[f"{path}.{name}" if path else name] = role
    return roles


def trace_model(model: Model, inputs: Inputs) -> Trace:
    """Run ``model`` once on ``inputs`` and record its module calls and the data flow.

    Args:
        model: a torch module or paddle layer (or a :class:`~padiff_ir.frameworks.PadiffModel`).
        inputs: its inputs: one array or tensor, a sequence (positional arguments) or a dict
            (keyword arguments); numpy arrays are converted, floats cast to the model's dtype.

    Raises:
        InputError: the model does not run on the inputs.

    Examples:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> trace = trace_model(model, torch.zeros(2, 4))
        >>> [(c.path, c.inputs, c.outputs) for c in trace.calls if not c.children]
        [('0', ('input:0',), ('0#0:out0',)), ('1', ('0#0:out0',), ('1#0:out0',))]
        >>> trace.outputs
        ('1#0:out0',)
    """
    from padiff_ir.frameworks import framework_of, unwrap_model

    model = unwrap_model(model)
    fw = framework_of(model)
    recorder = _Recorder(fw)
    parameters: dict[str, TracedTensor] = {}
    owners: dict[str, list[str]] = {}
    seen: dict[int, str] = {}
    for name, tensor in fw.named_tensors(model).items():
        owners.setdefault(owner(name), []).append(name)
        if id(tensor) in seen:
            continue
        seen[id(tensor)] = name
        parameters[name] = TracedTensor(name, fw.shape(tensor), fw.dtype_name(tensor))
        if fw.requires_grad(tensor):
            recorder.name(tensor, name, leaf=True)
    modules = fw.named_modules(model)
    roles = module_roles(fw, modules)
    with preserved_state(model), fw.enable_grad():
        args, kwargs = model_arguments(fw, model, inputs)
        args = tuple(fw.grad_leaf(t) if fw.is_floating(t) else t for t in args)
        kwargs = {k: fw.grad_leaf(t) if fw.is_floating(t) else t for k, t in kwargs.items()}
        graph_inputs = [
            recorder.name(t, f"input:{i}", leaf=True)
            for i, t in enumerate(flatten_tensors((args, kwargs), fw))
        ]
        hooks = [
            (module, recorder.pre_hook(path), recorder.post_hook(path)) for path, module in modules
        ]
        try:
            with installed(fw, hooks):
                output = fw.run(model, args, kwargs)
        except Exception as err:
            reraise_interruption(err)
            raise InputError(
                f"running {fw.name} model {type(model).__name__} on the given inputs failed "
                f"({type(err).__name__}: {err}); check the inputs' names, shapes and dtypes"
            ) from err
        root = next((c for c in recorder.calls if c["path"] == "" and c["parent"] is None), None)
        outputs = (
            root["outputs"]
            if root is not None
            else tuple(recorder.resolve(t) for t in flatten_tensors(output, fw))
        )
    parameter_names = set(parameters)
    tensors = {n: t for n, t in recorder.tensors.items() if n not in parameter_names}
    return Trace(
        framework=fw.name,
        modules={path: type(module).__name__ for path, module in modules},
        parameters=parameters,
        owners={k: tuple(v) for k, v in owners.items()},
        roles=roles,
        inputs=tuple(graph_inputs),
        outputs=tuple(outputs),
        tensors=tensors,
        calls=tuple(TracedCall(**c) for c in recorder.calls),
        ops=tuple(recorder.ops),
        base_layers=fw.base_layers(modules),
        activations={p: a for p, m in modules if (a := fw.fused_activation(m)) is not None},
    )
