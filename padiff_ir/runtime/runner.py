"""Run exported graphs in onnxruntime and record every intermediate tensor.

A :class:`Runner` wraps one ONNX model (an :class:`~padiff_ir.exporters.ExportedGraph` or a bare
``onnx.ModelProto``) and answers three questions:

* :meth:`Runner.infer`: the graph outputs for some inputs, like Polygraphy's runners;
* :meth:`Runner.run_all`: *every* node output (or the ``tensors`` asked for), recorded in an
  :class:`~padiff_ir.runtime.ActivationStore`;
* :meth:`Runner.run_subgraph`: some tensors computed from values given for *any* tensors, which
  tells an error a module makes itself from the one it inherits from its inputs.

All sessions run with graph optimisations off (``ORT_DISABLE_ALL``), so every node of the graph
is executed as written and every tensor name keeps its meaning.

How :meth:`Runner.run_all` bounds memory: the graph is run in *segments* whose exposed outputs
are estimated to fit in half of ``memory_budget`` (see :mod:`padiff_ir.runtime._segments`); every
node runs exactly once on the same values as in a single session, so the results are identical,
and the peak is about one segment of activations plus what the store keeps in RAM (the other half
of the budget) plus the weights.

The one-call forms :func:`~padiff_ir.runtime.run_all` and :func:`~padiff_ir.runtime.run_subgraph`
are in :mod:`padiff_ir.runtime.calls`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir._onnx_values import onnx_array
from padiff_ir._shared_weights import current_arrays
from padiff_ir.errors import InputError
from padiff_ir.runtime._graph_index import GraphIndex, input_value_info, output_value_info
from padiff_ir.runtime._segments import run_segments
from padiff_ir.runtime._session import check_value, create_session, run_session
from padiff_ir.runtime._weights import WeightsOnDemand, same_memory
from padiff_ir.runtime.store import DEFAULT_STORE_BUDGET, ActivationStore

if TYPE_CHECKING:
    import onnx
    import onnxruntime

    from padiff_ir.exporters import ExportedGraph

    ModelLike = ExportedGraph | onnx.ModelProto

__all__ = ["DEFAULT_MEMORY_BUDGET", "DEFAULT_PROVIDERS", "Runner"]

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
DEFAULT_MEMORY_BUDGET = 2 * DEFAULT_STORE_BUDGET
"""Bytes of activations :meth:`Runner.run_all` holds in RAM by default (1 GiB): half for the
store, half for one segment's outputs."""


# -- the runner ----------------------------------------------------------------------------


class Runner:
    """Runs one ONNX model in onnxruntime with graph optimisations off.

    Args:
        model: an :class:`~padiff_ir.exporters.ExportedGraph` (its node attribution then names
            modules in error messages) or an ``onnx.ModelProto``. It is never modified; do not
            modify it while the runner is in use.
        providers: ONNX Runtime execution providers, in order of preference.
        subgraph_cache_size: how many :meth:`run_subgraph` sessions to keep (least recently used
            go first).
        keep_sessions: keep :meth:`run_all`'s sessions for the next call (many inputs); their
            sessions then read the weights in place from :attr:`shared_weights`.

    Sessions are built when first needed (so a runner used only for :meth:`run_all` never holds
    a full inference session and its copy of the weights) and kept until :meth:`close` or the end
    of a ``with`` block. With ``keep_sessions``, a second :meth:`run_all` of the same tensors
    on inputs of the same types reuses the sessions of the first (without it, each segment's
    session is dropped once it ran, which bounds the memory of a single run).

    Example:
        >>> import numpy as np
        >>> from onnx import helper
        >>> graph = helper.make_graph(
        ...     [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["y"], ["z"])],
        ...     "g", [helper.make_tensor_value_info("x", 1, [2])],
        ...     [helper.make_tensor_value_info("z", 1, [2])])
        >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        >>> x = np.array([-1.0, 2.0], np.float32)
        >>> with Runner(model) as runner:
        ...     runner.infer({"x": x})["z"].tolist()
        ...     runner.run_subgraph({"y": np.array([5.0, 6.0], np.float32)}, ["z"])["z"].tolist()
        ...     with runner.run_all({"x": x}) as store:
        ...         sorted(store), store["y"].tolist()
        [-0.0, -2.0]
        [-5.0, -6.0]
        (['x', 'y', 'z'], [0.0, 2.0])
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        subgraph_cache_size: int = 16,
        keep_sessions: bool = False,
    ) -> None:
        import onnx

        self.model: onnx.ModelProto = model if isinstance(model, onnx.ModelProto) else model.model
        self.node_modules: dict[str, str] = dict(getattr(model, "node_modules", {}))
        self.providers = tuple(providers)
        self.subgraph_cache_size = subgraph_cache_size
        self.keep_sessions = keep_sessions
        self._index: GraphIndex | None = None
        self._session: onnxruntime.InferenceSession | None = None
        self._subgraph_sessions: collections.OrderedDict[
            tuple[Any, ...], onnxruntime.InferenceSession
        ] = collections.OrderedDict()
        self._types: dict[tuple[Any, ...], dict[str, onnx.TypeProto]] = {}
        self._segment_sessions: dict[Any, Any] = {}
        self._shared: dict[str, np.ndarray] | None = None
        # a live export's weights, read from its model in place (exporters._live)
        self._live: Mapping[str, np.ndarray] = getattr(model, "weights", None) or {}
        self._bound: dict[str, np.ndarray] | None = None  # the views the sessions read

    # -- lifetime --------------------------------------------------------------------------

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every session. The runner can be used again; sessions are rebuilt."""
        self._session = None
        self._subgraph_sessions.clear()
        self._segment_sessions.clear()
        self._shared = None
        self._bound = None

    def _check_bound(self) -> None:
        """Drop the sessions built on views of tensors the model no longer holds (a
        parameter replaced rather than written in place): the next run rebuilds them."""
        if not self._live or self._bound is None:
            return
        if not same_memory(current_arrays(self._live), self._bound):
            logger.debug("the model's tensors moved: sessions rebuilt on the new memory")
            self.close()

    @property
    def index(self) -> GraphIndex:
        """Producers, readers and initializers of the model (built once)."""
        if self._index is None:
            self._index = GraphIndex.from_model(self.model)
        return self._index

    @property
    def input_names(self) -> tuple[str, ...]:
        """Declared graph inputs that are not initializers."""
        return tuple(self.index.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.index.outputs

    @property
    def shared_weights(self) -> dict[str, np.ndarray]:
        """The large initializers as arrays, read in place by the sessions of a runner that
        keeps them (made once: its sessions copy no weights)."""
        if self._shared is None:
            weights = WeightsOnDemand(self.model)
            self._shared = {name: weights[name] for name in weights.names()}
        return self._shared

    def _sharing(self) -> Mapping[str, np.ndarray]:
        """The weights sessions read in place: a live export's views of its model's tensors;
        the rest, with ``keep_sessions``, the runner's arrays (sessions live together: one
        array each beats a copy each), else arrays made for each session and dropped with it
        (one copy of a segment's weights instead of three: the segment model's, its serialised
        bytes and ORT's)."""
        rest = self.shared_weights if self.keep_sessions else WeightsOnDemand(self.model)
        if not self._live:
            return rest
        if self._bound is None:
            self._bound = current_arrays(self._live)
        return collections.ChainMap(self._bound, rest)  # type: ignore[arg-type]

    def _create_session(self, model: onnx.ModelProto, **kwargs: Any) -> Any:
        return create_session(
            model, self.providers, self.node_modules, shared=self._sharing(), **kwargs
        )

    def _inference_session(self) -> onnxruntime.InferenceSession:
        self._check_bound()
        if self._session is None:
            self._session = self._create_session(self.model)
        return self._session

    def initializer_value(self, name: str) -> np.ndarray:
        """The value of initializer ``name`` (read from the model for a live export)."""
        if name in self._live:
            return np.array(self._live[name])
        return onnx_array(self.index.initializers[name])

    def _run(
        self,
        session: onnxruntime.InferenceSession,
        output_names: Sequence[str],
        feeds: Mapping[str, np.ndarray],
    ) -> list[np.ndarray]:
        return run_session(session, output_names, feeds, self.node_modules)

    def _types_for(self, feeds: Mapping[str, np.ndarray] | None) -> dict[str, onnx.TypeProto]:
        """Inferred tensor types: with the feeds' concrete shapes, or the declared ones."""
        from onnx import helper

        input_types: dict[str, tuple[int, Sequence[int]]] = {}
        if feeds is not None:
            for name in self.index.inputs:
                value = feeds[name]
                input_types[name] = (helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
        key = tuple(sorted((name, t, tuple(s)) for name, (t, s) in input_types.items()))
        if key not in self._types:
            self._types[key] = self.index.infer_types(input_types)
        return self._types[key]

    # -- feeds -----------------------------------------------------------------------------

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``feeds`` against the declared graph inputs and return them as arrays.

        Raises:
            InputError: a name missing or unknown, or a dtype, rank or fixed dimension that
                differs from the declaration; the message names the input.
        """
        declared = self.index.inputs
        for name in declared:
            if name not in feeds:
                raise InputError(
                    f"missing input {name!r}: the model expects {list(declared)}, got {list(feeds)}"
                )
        for name in feeds:
            if name not in declared:
                hint = (
                    "; it is an intermediate tensor: use run_subgraph to feed it"
                    if name in self.index.producer or name in self.index.initializers
                    else ""
                )
                raise InputError(
                    f"unexpected input {name!r}: the model expects {list(declared)}{hint}"
                )
        arrays = {name: np.asarray(feeds[name]) for name in declared}
        for name, value in arrays.items():
            check_value(name, value, declared[name].type, "input")
        return arrays

    # -- infer -----------------------------------------------------------------------------

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph outputs for ``feeds`` (graph input name -> array)."""
        arrays = self.check_feeds(feeds)
        session = self._inference_session()
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, self._run(session, names, arrays)))

    # -- run_all ---------------------------------------------------------------------------

    def run_all(
        self,
        feeds: Mapping[str, np.ndarray],
        *,
        tensors: Iterable[str] | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        store: ActivationStore | None = None,
    ) -> ActivationStore:
        """Run the graph and record every node output (or ``tensors``) with the graph inputs.

        Args:
            feeds: graph input name -> array.
            tensors: the names to record; node outputs, graph inputs or initializers. Default:
                every node output.
            chunk_size: at most this many recorded tensors per session.
            memory_budget: bytes of activations to hold in RAM (default
                :data:`DEFAULT_MEMORY_BUDGET`): a store created here keeps half of it, and each
                session's recorded outputs are estimated to fit in the other half.
            store: the store to fill; by default a new one, which the caller should close.

        Returns:
            The store, graph inputs first, then the recorded tensors in graph order. Values that
            are not tensors (sequences, maps) are not recorded.
        """
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        arrays = self.check_feeds(feeds)
        self._check_bound()
        index = self.index
        wanted = self._wanted(tensors)
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
        owned = store is None
        if store is None:
            store = ActivationStore(budget // 2)
        try:
            for name, value in arrays.items():
                store.put(name, value.copy())  # a snapshot: the caller may reuse its buffers
            for name in wanted:
                if name in index.initializers and name not in index.producer:
                    store.put(name, self.initializer_value(name))
            computed = [name for name in wanted if name in index.producer]
            if computed:
                run_segments(
                    index,
                    arrays,
                    self._types_for(arrays),
                    computed,
                    store,
                    budget // 2,
                    chunk_size,
                    providers=self.providers,
                    node_modules=self.node_modules,
                    sessions=self._segment_sessions if self.keep_sessions else None,
                    shared=self._sharing(),
                )
        except BaseException:
            if owned:
                store.close()
            raise
        return store

    def _wanted(self, tensors: Iterable[str] | None) -> list[str]:
        index = self.index
        if tensors is None:
            return [name for name in index.node_outputs() if name not in index.inputs]
        wanted = list(dict.fromkeys(tensors))
        for name in wanted:
            if not (name in index.producer or name in index.inputs or name in index.initializers):
                raise InputError(
                    f"unknown tensor {name!r}: no node of the graph produces it and it is neither "
                    "a graph input nor an initializer"
                )
        return [name for name in wanted if name not in index.inputs]

    # -- run_subgraph ----------------------------------------------------------------------

    def run_subgraph(
        self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Compute ``outputs`` from values given for any tensors of the graph.

        Only the nodes between the fed tensors and ``outputs`` run; a fed tensor replaces the value
        its producer would compute (a fed initializer replaces the weight). Sessions are cached by
        the fed names, their dtypes and ranks, and the outputs.

        Raises:
            InputError: an unknown name, a fed value contradicting the tensor's inferred type, or
                ``outputs`` that depend on tensors not fed.
        """
        index = self.index
        known = index.producer.keys() | index.inputs.keys() | index.initializers.keys()
        arrays = {name: np.asarray(value) for name, value in feeds.items()}
        for name in [*arrays, *outputs]:
            if name not in known:
                raise InputError(f"unknown tensor {name!r}: not a tensor of the graph")
        types = self._types_for(None)
        for name, value in arrays.items():
            check_value(name, value, types.get(name), "fed tensor")
        result = {name: arrays[name] for name in outputs if name in arrays}
        computed = list(dict.fromkeys(n for n in outputs if n not in arrays))
        if not computed:
            return result
        node_indices, unresolved = index.ancestors(computed, stop=arrays)
        if unresolved:
            raise InputError(
                f"cannot compute {computed} from the fed tensors {sorted(arrays)}: "
                f"they also depend on {unresolved}; feed those too"
            )
        read = {n for i in node_indices for n in index.node_inputs[i]}
        used = sorted(name for name in arrays if name in read)
        key = (
            tuple((name, arrays[name].dtype.str, arrays[name].ndim) for name in used),
            tuple(computed),
        )
        self._check_bound()
        session = self._subgraph_sessions.get(key)
        if session is None:
            model = index.build(
                node_indices,
                [input_value_info(n, arrays[n].dtype, arrays[n].ndim) for n in used],
                [output_value_info(n, types.get(n)) for n in computed],
                shared=self._sharing(),
            )
            session = self._create_session(model, owned=True)
            self._subgraph_sessions[key] = session
            while len(self._subgraph_sessions) > self.subgraph_cache_size:
                self._subgraph_sessions.popitem(last=False)
        else:
            self._subgraph_sessions.move_to_end(key)
        values = self._run(session, computed, {name: arrays[name] for name in used})
        result.update(zip(computed, values))
        return {name: result[name] for name in outputs}

    def __repr__(self) -> str:
        return (
            f"Runner(nodes={len(self.model.graph.node)}, providers={list(self.providers)}, "
            f"subgraph_sessions={len(self._subgraph_sessions)})"
        )
