"""The large initializers of a model as arrays that onnxruntime sessions read in place.

A model built by :meth:`GraphIndex.build <padiff_ir.runtime._graph_index.GraphIndex.build>`
with ``shared`` names declares those initializers as external data;
:func:`~padiff_ir.runtime._session.create_session` makes them graph inputs, and each run feeds
them these arrays (ORT reads an input where it is; an initializer it would copy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["WeightsOnDemand", "same_memory"]

logger = logging.getLogger(__name__)

SHARED_ELEMENTS = 1024  # initializers this large are shared with the sessions, not copied
SHARED_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13})  # numpy-native ONNX types


class WeightsOnDemand(Mapping[str, np.ndarray]):
    """The large initializers of a model as arrays, each made when asked for (not kept)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self._tensors = {
            t.name: t
            for t in model.graph.initializer
            if math.prod(t.dims) >= SHARED_ELEMENTS
            and t.data_type in SHARED_TYPES
            and t.data_location != t.EXTERNAL
        }

    def names(self) -> list[str]:
        return list(self._tensors)

    def __getitem__(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return np.ascontiguousarray(numpy_helper.to_array(self._tensors[name]))

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


def same_memory(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    """Whether two sets of views are the same memory, name by name (shape and dtype too)."""
    if a.keys() != b.keys():
        return False
    for name, array in a.items():
        other = b[name]
        if (
            array.ctypes.data != other.ctypes.data
            or array.shape != other.shape
            or array.dtype != other.dtype
        ):
            return False
    return True
