"""16-bit floating values held in numpy, bfloat16 included.

numpy has float16 but no bfloat16; ``ml_dtypes`` (onnx's and onnx-ir's bfloat16) adds one. A
bfloat16 model's inputs are held in it, so the values a model is fed are its own dtype's (a
float32 array would not be taken by a bfloat16 model). ``ml_dtypes``' bfloat16 is no subtype
of ``np.floating``: :func:`is_floating` answers for it too. A framework's ``to_numpy`` still
reads a bfloat16 tensor as float32 (what the comparison measures); only inputs are held in
bfloat16.

Example:
    >>> import numpy as np
    >>> x = held_in(np.array([1.0, 1.00390625], np.float32), "bfloat16")
    >>> x.dtype.name, is_floating(x.dtype), widened(x).tolist()
    ('bfloat16', True, [1.0, 1.0])
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["BFLOAT16", "held_in", "is_bfloat16", "is_floating", "numpy_dtype", "widened"]

logger = logging.getLogger(__name__)

BFLOAT16 = "bfloat16"


def numpy_dtype(name: DTypeLike) -> np.dtype:
    """The numpy dtype of a dtype or its name (``"bfloat16"``: ``ml_dtypes``')."""
    if isinstance(name, str) and name == BFLOAT16:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def is_bfloat16(dtype: DTypeLike) -> bool:
    """Whether ``dtype`` is ``ml_dtypes``' bfloat16."""
    return np.dtype(dtype).name == BFLOAT16 if not isinstance(dtype, str) else dtype == BFLOAT16


def is_floating(dtype: DTypeLike) -> bool:
    """Whether ``dtype`` is a floating dtype, bfloat16 included."""
    return is_bfloat16(dtype) or np.issubdtype(np.dtype(dtype), np.floating)


def widened(array: np.ndarray) -> np.ndarray:
    """``array`` with a bfloat16 one as float32 (exact; others as they are)."""
    return array.astype(np.float32) if is_bfloat16(array.dtype) else array


def held_in(array: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """A floating ``array`` rounded to ``dtype`` (a name such as ``"bfloat16"`` or a numpy
    dtype; to nearest, ties to even); anything else as it is."""
    if not is_floating(array.dtype):
        return array
    return widened(array).astype(numpy_dtype(dtype), copy=False)
