"""ONNX Runtime sessions for the runner: options, building, errors, and checking feeds.

Every session runs with graph optimisations off (``ORT_DISABLE_ALL``) so each node runs as
written, logs only errors, and its idle threads sleep rather than spin (a spinning pool slowed
the torch and paddle runs between graph runs several times over). ORT failures become
:class:`~padiff_ir.errors.ExecutionError` naming the node (and its module, when the graph is
attributed) if ORT's message names one; values that contradict a tensor's type become
:class:`~padiff_ir.errors.InputError` naming the tensor.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.runtime._graph_index import elem_type

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = ["check_value", "create_session", "execution_error", "run_session"]

logger = logging.getLogger(__name__)

_PROTOBUF_LIMIT = 2**31 - 2**24  # models larger than this are handed to ORT with external data
_NODE_NAME_PATTERNS = (re.compile(r"Name:'([^']*)'"), re.compile(r"\bNode \(([^)]*)\)"))


# -- sessions ------------------------------------------------------------------------------


def _session_options() -> onnxruntime.SessionOptions:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    # idle ORT threads must not spin: the frameworks' eager runs share the cores between runs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # no arena: a run that exposes every intermediate would keep its peak reserved
    options.enable_cpu_mem_arena = False
    return options


def execution_error(err: Exception, action: str, node_modules: Mapping[str, str]) -> ExecutionError:
    """An :class:`ExecutionError` for ORT's ``err``, naming the node (and module) ORT names."""
    message = str(err).strip()
    where = ""
    for pattern in _NODE_NAME_PATTERNS:
        match = pattern.search(message)
        if match:
            node = match.group(1)
            module = node_modules.get(node)
            where = f" at node {node!r}" + (f" (module {module!r})" if module is not None else "")
            break
    hint = ""
    if "bfloat16" in message:  # ORT's python binding has no numpy type for it
        hint = (
            ". onnxruntime cannot hand bfloat16 tensors to numpy: compare the models in float32 "
            "(model.float() / model.to(dtype='float32')), or with padiff_ir.auto_diff"
        )
    return ExecutionError(f"onnxruntime failed to {action}{where}: {message}{hint}")


def create_session(
    model: onnx.ModelProto,
    providers: Sequence[str],
    node_modules: Mapping[str, str],
    *,
    owned: bool = False,
    shared: Mapping[str, np.ndarray] | None = None,
) -> onnxruntime.InferenceSession:
    """An ORT session for ``model``; past the protobuf limit the weights go through a temporary
    external-data file (``model`` is copied first unless ``owned``).

    Initializers that ``model`` declares as shared external data
    (:func:`~padiff_ir._shared_weights.external_stub`) become graph inputs that
    :func:`run_session` feeds from the arrays of ``shared``: ORT reads them where they are at
    each run (its ways to take an initializer from memory copy it, so a write made in place
    after the session was built would not be seen), and the session holds no copy of them.
    """
    import onnxruntime

    options = _session_options()
    try:
        model, weights = _weights_as_inputs(model, shared or {}, owned)
        if model.ByteSize() < _PROTOBUF_LIMIT:
            session = onnxruntime.InferenceSession(
                model.SerializeToString(), options, providers=list(providers)
            )
            session._padiff_ir_weights = weights  # fed by run_session, kept alive with it
            return session
        import onnx

        if not owned and not weights:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            model = copy
        with tempfile.TemporaryDirectory(
            prefix="padiff_ir_model_", ignore_cleanup_errors=True
        ) as directory:
            path = os.path.join(directory, "model.onnx")
            logger.debug("model of %d bytes goes to ORT through %s", model.ByteSize(), path)
            onnx.save_model(model, path, save_as_external_data=True, location="model.onnx.data")
            session = onnxruntime.InferenceSession(path, options, providers=list(providers))
            session._padiff_ir_weights = weights
            return session
    except Exception as err:
        raise execution_error(err, "build a session", node_modules) from err


def _weights_as_inputs(
    model: onnx.ModelProto, shared: Mapping[str, np.ndarray], owned: bool
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """``model`` with the initializers it declares as shared turned into graph inputs (in a
    copy unless ``owned``), and the arrays to feed them."""
    import onnx
    from onnx import helper

    from padiff_ir._shared_weights import SHARED_LOCATION

    stubs = [
        t
        for t in model.graph.initializer
        if t.data_location == t.EXTERNAL
        and any(e.key == "location" and e.value == SHARED_LOCATION for e in t.external_data)
    ]
    if not stubs:
        return model, {}
    if not owned:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return _weights_as_inputs(copy, shared, True)
    names = {t.name for t in stubs}
    declared = {value.name for value in model.graph.input}
    kept = [t for t in model.graph.initializer if t.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    model.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in stubs
        if t.name not in declared
    )
    return model, {t.name: np.ascontiguousarray(shared[t.name]) for t in stubs}


# -- feeds ---------------------------------------------------------------------------------


def run_session(
    session: onnxruntime.InferenceSession,
    output_names: Sequence[str],
    feeds: Mapping[str, np.ndarray],
    node_modules: Mapping[str, str],
) -> list[np.ndarray]:
    """Run ``session`` for ``output_names``; an ORT failure becomes an :class:`ExecutionError`."""
    weights = getattr(session, "_padiff_ir_weights", None)
    try:
        return session.run(list(output_names), {**weights, **feeds} if weights else dict(feeds))
    except Exception as err:
        raise execution_error(err, "run the graph", node_modules) from err


def _describe(dtype: object, shape: Sequence[object] | None) -> str:
    dims = "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"
    return f"{dtype}{dims}"


def check_value(name: str, value: np.ndarray, type_proto: onnx.TypeProto | None, what: str) -> None:
    """Raise :class:`InputError` when ``value`` contradicts the known type of ``name``."""
    from onnx import helper

    element = elem_type(type_proto)
    if type_proto is None or not element:
        return
    expected_dtype = np.dtype(helper.tensor_dtype_to_np_dtype(element))
    dims: list[object] | None = None
    if type_proto.tensor_type.HasField("shape"):
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in type_proto.tensor_type.shape.dim
        ]
    got = _describe(value.dtype, value.shape)
    expected = _describe(expected_dtype, dims)
    if value.dtype != expected_dtype:
        raise InputError(f"{what} {name!r}: expected {expected}, got {got} (dtype differs)")
    if dims is None:
        return
    if len(dims) != value.ndim:
        raise InputError(f"{what} {name!r}: expected {expected}, got {got} (rank differs)")
    for axis, (want, size) in enumerate(zip(dims, value.shape)):
        if isinstance(want, int) and want != size:
            raise InputError(
                f"{what} {name!r}: expected {expected}, got {got} (dimension {axis} differs)"
            )
