"""Initializers an onnxruntime session reads from memory instead of from the graph.

A live export (:mod:`padiff_ir.exporters._live`) and a runner's light model
(:meth:`padiff_ir.runtime.runner.Runner`) declare large initializers as external data at
:data:`SHARED_LOCATION` (:func:`external_stub`); the session makes them graph inputs and each
run feeds them the arrays as they are now (:func:`current_arrays`). Both floors use these, so
they live on the ground floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["SHARED_LOCATION", "current_arrays", "external_stub"]

#: The ``location`` of an initializer whose data the session gets from memory.
SHARED_LOCATION = "padiff_ir.shared_memory"


def external_stub(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """An initializer with ``tensor``'s name, type and dims, its data marked external.

    Example:
        >>> from onnx import TensorProto, helper
        >>> stub = external_stub(helper.make_tensor("w", TensorProto.FLOAT, [2, 3], [0.0] * 6))
        >>> stub.data_location == TensorProto.EXTERNAL, {e.key: e.value for e in stub.external_data}
        (True, {'location': 'padiff_ir.shared_memory', 'offset': '0', 'length': '24'})
    """
    import onnx
    from onnx import helper

    stub = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
    stub.data_location = onnx.TensorProto.EXTERNAL
    itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    length = str(math.prod(tensor.dims) * itemsize)
    for key, value in (("location", SHARED_LOCATION), ("offset", "0"), ("length", length)):
        entry = stub.external_data.add()
        entry.key, entry.value = key, value
    return stub


def current_arrays(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every array of ``weights`` as it is now (a live export's views are read again from
    its model: see :meth:`padiff_ir.exporters._live.LiveWeights.arrays`)."""
    arrays = getattr(weights, "arrays", None)
    return dict(arrays()) if callable(arrays) else dict(weights)
