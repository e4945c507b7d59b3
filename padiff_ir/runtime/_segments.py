"""The segmented run behind :meth:`~padiff_ir.runtime.Runner.run_all`: every intermediate in
bounded memory.

ONNX Runtime returns all requested outputs of a run at once, so exposing every tensor of a big
model in one session holds all its activations in RAM together. Instead, the graph's nodes are
cut, in order, into *segments* (:func:`plan_segments`) whose exposed outputs are estimated
(:func:`estimate_bytes`, from shape inference with the actual input shapes) to fit in a byte
budget, or hold at most ``chunk_size`` outputs. Segment *k* is a model of its own whose graph
inputs are the tensors it reads from earlier segments; they are fed from the store (memory maps
for spilled ones), and its outputs go into the store as soon as the run returns
(:func:`run_segments`). Every node runs exactly once on the same values as in a single session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.errors import ExecutionError
from padiff_ir.runtime._graph_index import (
    GraphIndex,
    elem_type,
    input_value_info,
    output_value_info,
    static_shape,
)
from padiff_ir.runtime._session import create_session, run_session
from padiff_ir.runtime.store import ActivationStore

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = ["SegmentRun", "estimate_bytes", "plan_segments", "run_segments"]

logger = logging.getLogger(__name__)


def estimate_bytes(
    names: Sequence[str], types: Mapping[str, onnx.TypeProto], feeds: Mapping[str, np.ndarray]
) -> dict[str, int]:
    """Bytes of each tensor of ``names`` from its inferred type; the largest size seen (or the
    largest feed) for a tensor whose shape is unknown."""
    from onnx import helper

    sizes: dict[str, int] = {}
    unknown: list[str] = []
    for name in names:
        shape = static_shape(types.get(name))
        if shape is None:
            unknown.append(name)
            continue
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type(types[name]))).itemsize
        sizes[name] = math.prod(shape) * itemsize
    if unknown:  # assume the worst seen so far
        fallback = max([*sizes.values(), *(v.nbytes for v in feeds.values()), 0])
        logger.debug("%d tensors of unknown size counted as %d bytes", len(unknown), fallback)
        sizes.update(dict.fromkeys(unknown, fallback))
    return sizes


def plan_segments(
    index: GraphIndex,
    node_indices: Sequence[int],
    recorded: set[str],
    sizes: Mapping[str, int],
    segment_bytes: int,
    chunk_size: int | None,
) -> tuple[list[list[int]], dict[str, int]]:
    """Nodes cut in order into segments, and for each tensor read across segments the last
    segment that reads it.

    A segment is closed when its recorded outputs would exceed ``segment_bytes`` or
    ``chunk_size`` tensors (a segment holds at least one node).
    """
    segments: list[list[int]] = [[]]
    used_bytes = used_count = 0
    for node_index in node_indices:
        outputs = [n for n in index.nodes[node_index].output if n in recorded]
        extra = sum(sizes[n] for n in outputs)
        full = used_bytes + extra > segment_bytes or (
            chunk_size is not None and used_count + len(outputs) > chunk_size
        )
        if segments[-1] and full:
            segments.append([])
            used_bytes = used_count = 0
        segments[-1].append(node_index)
        used_bytes += extra
        used_count += len(outputs)
    segment_of = {
        name: position
        for position, segment in enumerate(segments)
        for node_index in segment
        for name in index.nodes[node_index].output
        if name
    }
    last_reader: dict[str, int] = {}
    for position, segment in enumerate(segments):
        for node_index in segment:
            for name in index.node_inputs[node_index]:
                if segment_of.get(name, position) < position:
                    last_reader[name] = position
    return segments, last_reader


class SegmentRun:
    """The state of one segmented run: where each value lives between sessions.

    Recorded tensors go to ``store``; tensors only read by later segments go to ``scratch`` and
    are dropped after their last reader; values that are not tensors (sequences, maps) are not
    recorded and are kept in RAM while a later segment reads them.
    """

    def __init__(
        self,
        feeds: Mapping[str, np.ndarray],
        types: Mapping[str, onnx.TypeProto],
        recorded: set[str],
        last_reader: Mapping[str, int],
        store: ActivationStore,
        scratch: ActivationStore,
    ) -> None:
        self.feeds = feeds
        self.types = types
        self.recorded = recorded
        self.last_reader = last_reader
        self.store = store
        self.scratch = scratch
        self.others: dict[str, Any] = {}

    def put(self, name: str, value: Any, position: int) -> None:
        if not isinstance(value, np.ndarray):
            if name in self.recorded:
                logger.debug("%r is a %s, not a tensor: not recorded", name, type(value).__name__)
            if self.last_reader.get(name, -1) > position:
                self.others[name] = value
        elif name in self.recorded:
            self.store.put(name, value)
        else:
            self.scratch.put(name, value)

    def value(self, name: str, position: int) -> Any:
        for source in (self.store, self.scratch, self.others):
            if name in source:
                return source[name]
        raise ExecutionError(
            f"tensor {name!r}, read by session {position + 1}, was not recorded by an earlier "
            "session (its type may be unknown to ONNX and ORT); run without chunking (a larger "
            "memory_budget and no chunk_size)"
        )

    def value_info(self, name: str, value: Any) -> onnx.ValueInfoProto:
        if isinstance(value, np.ndarray):
            return input_value_info(name, value.dtype, value.ndim)
        if name not in self.types:
            raise ExecutionError(
                f"cannot feed {name!r} (a {type(value).__name__}) to a later session: its type is "
                "unknown; run without chunking (a larger memory_budget and no chunk_size)"
            )
        return output_value_info(name, self.types[name])

    def forget(self, position: int) -> None:
        """Drop what only segments up to ``position`` read."""
        for name, reader in self.last_reader.items():
            if reader == position:
                if name in self.scratch:
                    self.scratch.discard(name)
                self.others.pop(name, None)


def _segment_session(
    model: onnx.ModelProto,
    exposed: list[str],
    providers: Sequence[str],
    node_modules: Mapping[str, str],
    shared: Mapping[str, np.ndarray],
) -> tuple[onnxruntime.InferenceSession, list[str]]:
    """A session of one segment; outputs of a type ORT rejects are dropped from it."""
    try:
        return create_session(model, providers, node_modules, owned=True, shared=shared), exposed
    except ExecutionError:
        untyped = {o.name for o in model.graph.output if not o.HasField("type")}
        if not untyped:
            raise
    logger.debug("onnxruntime rejected outputs of unknown type; not recording %s", sorted(untyped))
    kept = [o for o in model.graph.output if o.name not in untyped]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    session = create_session(model, providers, node_modules, owned=True, shared=shared)
    return session, [n for n in exposed if n not in untyped]


def _run_segment(
    index: GraphIndex,
    run: SegmentRun,
    position: int,
    segment: Sequence[int],
    providers: Sequence[str],
    node_modules: Mapping[str, str],
    sessions: dict[Any, Any] | None,
    shared: Mapping[str, np.ndarray],
) -> None:
    produced = [n for i in segment for n in index.nodes[i].output if n]
    produced_set = set(produced)
    read = dict.fromkeys(
        name
        for i in segment
        for name in index.node_inputs[i]
        if name not in produced_set and name not in index.initializers
    )
    inputs, values = [], {}
    for name in read:
        if name in run.feeds:
            inputs.append(index.inputs[name])
            values[name] = run.feeds[name]
        else:
            values[name] = run.value(name, position)
            inputs.append(run.value_info(name, values[name]))
    exposed = [n for n in produced if n in run.recorded or run.last_reader.get(n, -1) > position]
    key = (
        tuple(segment),
        tuple(exposed),
        tuple((i.name, i.SerializeToString()) for i in inputs),
    )
    cached = sessions.get(key) if sessions is not None else None
    if cached is None:
        outputs = [output_value_info(n, run.types.get(n)) for n in exposed]
        model = index.build(segment, inputs, outputs, shared=shared)
        cached = _segment_session(model, exposed, providers, node_modules, shared)
        del model
        if sessions is not None:
            sessions[key] = cached
    session, exposed = cached
    results = run_session(session, exposed, values, node_modules)
    del values, session
    results.reverse()
    for name in exposed:
        run.put(name, results.pop(), position)


def run_segments(
    index: GraphIndex,
    feeds: Mapping[str, np.ndarray],
    types: Mapping[str, onnx.TypeProto],
    computed: Sequence[str],
    store: ActivationStore,
    segment_bytes: int,
    chunk_size: int | None,
    *,
    providers: Sequence[str],
    node_modules: Mapping[str, str],
    sessions: dict[Any, Any] | None = None,
    shared: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Compute ``computed`` from ``feeds`` segment by segment, recording them into ``store``.

    ``sessions`` (kept by the caller between runs) holds each segment's session: a later run
    of the same segments reuses them instead of building them again. The initializers in
    ``shared`` are read by the sessions from those arrays, not copied into each.
    """
    sizes = estimate_bytes(computed, types, feeds)
    recorded = set(computed)
    node_indices, _ = index.ancestors(computed, stop=feeds)
    segments, last_reader = plan_segments(
        index, node_indices, recorded, sizes, segment_bytes, chunk_size
    )
    logger.debug(
        "run_all: %d tensors (about %d bytes) in %d session(s)",
        len(computed),
        sum(sizes.values()),
        len(segments),
    )
    with ActivationStore(segment_bytes) as scratch:  # read by later segments, not recorded
        run = SegmentRun(feeds, types, recorded, last_reader, store, scratch)
        for position, segment in enumerate(segments):
            _run_segment(
                index, run, position, segment, providers, node_modules, sessions, shared or {}
            )
            run.forget(position)
