"""Framework-neutral graph IR on networkx.

Nodes are ops, edges are tensors: ``graph.nx`` is a :class:`networkx.MultiDiGraph` whose nodes are
op names and whose edge ``(producer, consumer, key=tensor_name)`` carries one tensor from the op
that makes it to an op that reads it. Graph inputs and parameters have no producer, so they are
not edges; :attr:`Graph.tensors` knows every tensor, edge or not.

The IR is built from an :class:`~padiff_ir.exporters.ExportedGraph` by :func:`build_graph` and is
changed only by passes (``padiff_ir.ir.passes``), each a pure function that returns a new graph.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import networkx as nx
from networkx import MultiDiGraph

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = ["Graph", "OpNode", "TensorInfo"]

logger = logging.getLogger(__name__)

#: Op kinds: ``data`` carries activations; ``shape`` computes shapes/indices only;
#: ``const`` produces a constant (Constant, or a subgraph of constants only).
OP_KINDS = ("data", "shape", "const")


@dataclass
class TensorInfo:
    """One tensor of the graph.

    Attributes:
        name: ONNX value name.
        shape: static shape (ints, symbolic dims as strings, ``None`` unknown), ``None`` if unknown.
        dtype: numpy dtype name (``float32``, ``int64``...), ``None`` if unknown.
        producer: name of the op that makes it; ``None`` for graph inputs and parameters.
        consumers: names of the ops that read it, in graph order.
        param_name: framework parameter name when the tensor is an initializer of the model.
        is_initializer: the tensor is an initializer (a parameter or a constant array).
        is_input / is_output: the tensor is a graph input / output.
    """

    name: str
    shape: tuple[int | str | None, ...] | None = None
    dtype: str | None = None
    producer: str | None = None
    consumers: list[str] = field(default_factory=list)
    param_name: str | None = None
    is_initializer: bool = False
    is_input: bool = False
    is_output: bool = False

    @property
    def is_param(self) -> bool:
        """The tensor is a framework parameter or buffer."""
        return self.param_name is not None


@dataclass
class OpNode:
    """One op of the graph.

    Attributes:
        name: unique node name.
        op_type: ONNX op type after canonicalisation (``MatMul``, ``Conv``...).
        domain: ONNX domain (``""`` for the default one).
        attributes: ONNX attributes as Python values (ints, floats, strings, lists, arrays).
        inputs / outputs: tensor names in operand order (``""`` for an omitted optional input).
        module_path: attribute path of the module the op came from (``""`` the root model).
        module_class: class name of that module.
        index: position in the original graph order (a topological order).
        kind: ``"data"``, ``"shape"`` or ``"const"`` (see :data:`OP_KINDS`).
        meta: free-form analysis results (passes record what they did here, e.g.
            ``meta["fused_from"]``, ``meta["param_transforms"]``; a trace's
            ``meta["base_layers"]``: module path -> the framework's layer class it is where
            that is not its own class, a subclass of ``nn.Linear`` being a ``Linear``).
    """

    name: str
    op_type: str
    domain: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    module_path: str = ""
    module_class: str = ""
    index: int = 0
    kind: str = "data"
    meta: dict[str, Any] = field(default_factory=dict)


class Graph:
    """A model as ops and tensors, plus the module tree they came from.

    Attributes:
        nx: the op graph (see the module docstring).
        ops: op name -> :class:`OpNode`.
        tensors: tensor name -> :class:`TensorInfo`.
        inputs / outputs: graph input and output tensor names, in order.
        framework: ``torch``, ``paddle`` or ``onnx``.
        modules: module path -> class name for every module of the source model.
        aliases: tensor name -> the tensor it is an alias of (set by the Identity pass).
        meta: graph-level analysis results.
    """

    __slots__ = (
        "_nx",
        "aliases",
        "framework",
        "inputs",
        "meta",
        "modules",
        "ops",
        "outputs",
        "tensors",
    )

    def __init__(
        self,
        ops: Iterable[OpNode],
        tensors: dict[str, TensorInfo],
        inputs: Iterable[str],
        outputs: Iterable[str],
        *,
        framework: str = "onnx",
        modules: dict[str, str] | None = None,
        aliases: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.ops: dict[str, OpNode] = {op.name: op for op in ops}
        self.tensors = tensors
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.framework = framework
        self.modules = dict(modules or {})
        self.aliases = dict(aliases or {})
        self.meta = dict(meta or {})
        self._nx: MultiDiGraph | None = None
        self._rebuild()

    @property
    def nx(self) -> MultiDiGraph:
        """The op graph (see the module docstring), built on first use after each change."""
        if self._nx is None:
            self._nx = self._build_nx()
        return self._nx

    @nx.setter
    def nx(self, value: nx.MultiDiGraph) -> None:
        self._nx = value

    # -- construction helpers -------------------------------------------------------------
    def _rebuild(self) -> None:
        """Recompute producers and consumers from the ops; the networkx graph follows lazily."""
        tensors = self.tensors
        for info in tensors.values():
            info.producer = None
            info.consumers = []
        order = sorted(self.ops.values(), key=attrgetter("index"))
        for op in order:
            for out in op.outputs:
                if out:
                    (tensors.get(out) or self._tensor(out)).producer = op.name
        for op in order:
            for name in op.inputs:
                if not name:
                    continue
                consumers = (tensors.get(name) or self._tensor(name)).consumers
                # ops are visited once each, so a repeated input can only follow itself
                if not consumers or consumers[-1] != op.name:
                    consumers.append(op.name)
        self._nx = None

    def _build_nx(self) -> MultiDiGraph:
        """The networkx view of the producers and consumers :meth:`_rebuild` computed."""
        g = nx.MultiDiGraph()
        order = sorted(self.ops.values(), key=attrgetter("index"))
        g.add_nodes_from(op.name for op in order)
        edges = []
        for op in order:
            for name in op.inputs:
                info = self.tensors.get(name) if name else None
                if info is not None and info.producer is not None:
                    edges.append((info.producer, op.name, name))
        g.add_edges_from(edges)
        return g

    def _tensor(self, name: str) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            info = self.tensors[name] = TensorInfo(name)
        return info

    def copy(self) -> Graph:
        """A deep copy: passes work on copies so that graphs stay immutable for callers.

        Producers and consumers are copied as they are rather than recomputed (every edit
        through :meth:`replace_ops` keeps them current); the networkx view is rebuilt on use.
        """
        new = Graph.__new__(Graph)
        new.ops = {op.name: op for op in map(_copy_op, self.ops.values())}
        new.tensors = {k: _copy_tensor(v) for k, v in self.tensors.items()}
        new.inputs = self.inputs
        new.outputs = self.outputs
        new.framework = self.framework
        new.modules = dict(self.modules)
        new.aliases = dict(self.aliases)
        new.meta = copy.deepcopy(self.meta)
        new._nx = None
        return new

    def replace_ops(
        self,
        remove: Iterable[str],
        add: Iterable[OpNode] = (),
        *,
        rename: Mapping[str, str] | None = None,
    ) -> None:
        """Remove ops by name and add new ones, then refresh the edges (for passes).

        ``rename`` maps tensor names to their replacements for every reader, as
        :meth:`rename_tensor_uses` does for one tensor; it is applied once (not transitively)
        after the ops are added, and the edges are refreshed once for the whole batch.
        """
        for name in remove:
            del self.ops[name]
        for op in add:
            if op.name in self.ops:
                raise ValueError(f"op {op.name!r} already exists in the graph")
            self.ops[op.name] = op
        if rename:
            self._rename_uses(rename)
        self._rebuild()

    def rename_tensor_uses(self, old: str, new: str) -> None:
        """Make every reader of tensor ``old`` (ops and graph outputs) read ``new`` instead."""
        self._rename_uses({old: new})
        self._rebuild()

    def _rename_uses(self, rename: Mapping[str, str]) -> None:
        for op in self.ops.values():
            if any(t in rename for t in op.inputs):
                op.inputs = tuple(rename.get(t, t) for t in op.inputs)
        renamed_outputs = [t for t in self.outputs if t in rename]
        if renamed_outputs:
            self.outputs = tuple(rename.get(t, t) for t in self.outputs)
            for old in renamed_outputs:
                self._tensor(rename[old]).is_output = True

    # -- queries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[OpNode]:
        """Ops in topological (graph) order."""
        return iter(self.topological_order())

    def __repr__(self) -> str:
        data = sum(1 for op in self.ops.values() if op.kind == "data")
        return (
            f"Graph(framework={self.framework!r}, ops={len(self.ops)}, data_ops={data}, "
            f"inputs={list(self.inputs)}, outputs={list(self.outputs)})"
        )

    def op(self, name: str) -> OpNode:
        return self.ops[name]

    def topological_order(self) -> list[OpNode]:
        """Ops sorted by their index, which every pass keeps a topological order."""
        return sorted(self.ops.values(), key=lambda o: o.index)

    def data_ops(self) -> list[OpNode]:
        """Ops that carry activations (not shape arithmetic nor constants), in order."""
        return [op for op in self.topological_order() if op.kind == "data"]

    def producer(self, tensor: str) -> OpNode | None:
        info = self.tensors.get(tensor)
        if info is None or info.producer is None:
            return None
        return self.ops[info.producer]

    def consumers(self, tensor: str) -> list[OpNode]:
        info = self.tensors.get(tensor)
        return [self.ops[c] for c in info.consumers] if info else []

    def params_of(self, op: OpNode) -> list[str]:
        """Framework parameter names the op reads directly."""
        out = []
        for name in op.inputs:
            info = self.tensors.get(name)
            if info is not None and info.param_name is not None:
                out.append(info.param_name)
        return out

    def resolve(self, tensor: str) -> str:
        """The tensor ``tensor`` is an alias of (itself when it is no alias)."""
        seen = set()
        while tensor in self.aliases and tensor not in seen:
            seen.add(tensor)
            tensor = self.aliases[tensor]
        return tensor

    def ops_in_module(self, module_path: str) -> list[OpNode]:
        """Ops of ``module_path`` and its submodules, in order."""
        prefix = module_path + "."
        return [
            op
            for op in self.topological_order()
            if not module_path or op.module_path == module_path or op.module_path.startswith(prefix)
        ]


_ATOMIC = frozenset({str, int, float, bool, bytes, type(None)})


def _copy_value(value: Any) -> Any:
    """``copy.deepcopy(value)``, fast for scalars and flat lists or tuples of scalars."""
    cls = value.__class__
    if cls in _ATOMIC:
        return value
    if (cls is list or cls is tuple) and all(v.__class__ in _ATOMIC for v in value):
        return list(value) if cls is list else value
    return copy.deepcopy(value)


def _copy_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """A copy of a tuple of tensor names: the tuple itself, as ``copy.deepcopy`` gives."""
    return names if names.__class__ is tuple else copy.deepcopy(names)


def _copy_op(op: OpNode) -> OpNode:
    """``copy.deepcopy(op)``, several times faster (graphs have 20,000+ ops).

    ``tests/ir/test_graph_copy.py`` checks that every field of :class:`OpNode` is passed on.
    """
    return OpNode(
        op.name,
        op.op_type,
        op.domain,
        {k: _copy_value(v) for k, v in op.attributes.items()} if op.attributes else {},
        _copy_names(op.inputs),
        _copy_names(op.outputs),
        op.module_path,
        op.module_class,
        op.index,
        op.kind,
        {k: _copy_value(v) for k, v in op.meta.items()} if op.meta else {},
    )


def _copy_tensor(info: TensorInfo) -> TensorInfo:
    """``copy.deepcopy(info)``, several times faster (checked as :func:`_copy_op` is)."""
    shape = info.shape
    return TensorInfo(
        info.name,
        shape if shape is None or shape.__class__ is tuple else copy.deepcopy(shape),
        info.dtype,
        info.producer,
        list(info.consumers),
        info.param_name,
        info.is_initializer,
        info.is_input,
        info.is_output,
    )
