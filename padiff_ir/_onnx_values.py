"""ONNX tensors to numpy and back, every dtype read as its numbers.

``onnx.numpy_helper.to_array`` gives a bfloat16 tensor as its raw 16-bit patterns (``uint16``):
compared or copied as numbers, a weight of 1.0 reads as 16256. :func:`onnx_array` is the one
reader of an ONNX tensor's values (initializers, constant attributes): bfloat16 is widened to
float32, exactly; :func:`onnx_tensor` writes values back in a tensor's own dtype (bfloat16
rounded to nearest even, as the frameworks round).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["bfloat16_bits", "onnx_array", "onnx_tensor"]

_BFLOAT16 = 16  # onnx.TensorProto.BFLOAT16


def onnx_array(tensor: onnx.TensorProto) -> np.ndarray:
    """The values of ``tensor`` as numpy numbers (bfloat16 as float32).

    Example:
        >>> from onnx import TensorProto, helper
        >>> onnx_array(helper.make_tensor("w", TensorProto.BFLOAT16, [2], [1.0, -2.5]))
        array([ 1. , -2.5], dtype=float32)
    """
    from onnx import numpy_helper

    if tensor.data_type != _BFLOAT16 or tensor.data_location == tensor.EXTERNAL:
        return numpy_helper.to_array(tensor)
    # numpy_helper misreads raw bfloat16 data (onnx 1.17): the patterns are read here
    if tensor.HasField("raw_data"):
        bits = np.frombuffer(tensor.raw_data, dtype="<u2")
    else:
        bits = np.asarray(tensor.int32_data, dtype=np.uint32).astype(np.uint16)
    widened = bits.astype(np.uint32) << 16
    return widened.view(np.float32).reshape(tuple(tensor.dims))


def bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 ``values`` rounded to bfloat16 (to nearest, ties to even), as their bit patterns.

    Example:
        >>> bfloat16_bits(np.array([1.0, 1.00390625, -2.5], np.float32))
        array([16256, 16256, 49184], dtype=uint16)
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(values)
    return np.where(nan, 0x7FC0, rounded).astype(np.uint16)


def onnx_tensor(values: np.ndarray, name: str, data_type: int) -> onnx.TensorProto:
    """A tensor named ``name`` of ONNX dtype ``data_type`` holding ``values`` (numbers).

    Example:
        >>> from onnx import TensorProto
        >>> tensor = onnx_tensor(np.array([0.5, 3.0]), "w", TensorProto.BFLOAT16)
        >>> onnx_array(tensor)
        array([0.5, 3. ], dtype=float32)
    """
    from onnx import helper, numpy_helper

    if data_type == _BFLOAT16:
        bits = bfloat16_bits(np.asarray(values, np.float32))
        return helper.make_tensor(name, data_type, list(bits.shape), bits.tobytes(), raw=True)
    dtype = helper.tensor_dtype_to_np_dtype(data_type)
    return numpy_helper.from_array(np.asarray(values).astype(dtype), name)
