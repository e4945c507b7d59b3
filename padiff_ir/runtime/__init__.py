"""Running exported graphs: every intermediate tensor, in bounded memory.

:class:`Runner` runs an ONNX model in onnxruntime with graph optimisations off; :func:`run_all`
records every node output into an :class:`ActivationStore`, which keeps arrays in RAM up to a byte
budget and spills the rest to memory-mapped ``.npy`` files; :func:`run_subgraph` recomputes some
tensors from values given for any others.

Example:
    >>> import numpy as np
    >>> from onnx import helper
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["y"], ["z"])],
    ...     "g", [helper.make_tensor_value_info("x", 1, [2])],
    ...     [helper.make_tensor_value_info("z", 1, [2])])
    >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    >>> with run_all(model, {"x": np.array([-1.0, 2.0], np.float32)}) as store:
    ...     list(store), store["y"].tolist(), store.summary("z").minimum
    (['x', 'y', 'z'], [0.0, 2.0], -2.0)
"""

from __future__ import annotations

from padiff_ir.runtime._weights import current_arrays
from padiff_ir.runtime.calls import run_all, run_subgraph
from padiff_ir.runtime.runner import DEFAULT_MEMORY_BUDGET, DEFAULT_PROVIDERS, Runner
from padiff_ir.runtime.store import DEFAULT_STORE_BUDGET, ActivationStore, TensorSummary

__all__ = [
    # running
    "Runner",
    "run_all",
    "run_subgraph",
    "DEFAULT_PROVIDERS",
    "DEFAULT_MEMORY_BUDGET",
    "current_arrays",
    # storing
    "ActivationStore",
    "TensorSummary",
    "DEFAULT_STORE_BUDGET",
]
