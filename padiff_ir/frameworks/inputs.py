"""Normalise user inputs (arrays or framework tensors; positional or keyword) to numpy.

A model's inputs can be given as one array, a sequence of arrays, or a dict from forward-argument
name to array; each array may be a numpy array, a torch tensor or a paddle tensor. The result,
:class:`ModelInputs`, is framework-neutral and converts to either framework on demand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.errors import InputError
from padiff_ir.frameworks.detect import framework_of_type
from padiff_ir.hints import Inputs, Tensor

if TYPE_CHECKING:
    from padiff_ir.frameworks._base import Framework

__all__ = ["ModelInputs", "normalize_inputs", "to_numpy"]

_SUPPORTED_DTYPES = {
    *("bfloat16", "float16", "float32", "float64"),
    *("int32", "int64", "bool", "uint8", "int8"),
}


def to_numpy(value: object, *, what: str = "input") -> np.ndarray:
    """Convert a numpy array, framework tensor or number to a numpy array (a copy; a tensor is
    read by its framework's :meth:`~padiff_ir.frameworks.Framework.to_numpy`, the one reader of
    every dtype: bfloat16 as float32)."""
    kind = framework_of_type(value)
    if kind is not None:
        from padiff_ir.frameworks import get_framework

        framework = get_framework(kind)
        if framework.is_tensor(value):
            return framework.to_numpy(value)
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (int, float, bool, np.generic)):
        return np.asarray(value)
    raise InputError(
        f"{what} is a {type(value).__module__}.{type(value).__qualname__}; expected a numpy array, "
        "a torch tensor or a paddle tensor"
    )


@dataclass(frozen=True)
class ModelInputs:
    """Framework-neutral model inputs.

    Attributes:
        arrays: the input values as numpy arrays, in order.
        names: forward-argument names when given as a dict, else ``None`` per position.
    """

    arrays: tuple[np.ndarray, ...]
    names: tuple[str | None, ...]

    @property
    def keyword(self) -> bool:
        return any(n is not None for n in self.names)

    def __len__(self) -> int:
        return len(self.arrays)

    def describe(self) -> str:
        parts = []
        for name, arr in zip(self.names, self.arrays):
            label = f"{name}=" if name else ""
            parts.append(f"{label}{arr.dtype}{list(arr.shape)}")
        return ", ".join(parts)

    def to_torch(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` of torch tensors."""
        from padiff_ir.frameworks import get_framework

        return self.arguments_for(get_framework("torch"))

    def to_paddle(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` of paddle tensors."""
        from padiff_ir.frameworks import get_framework

        return self.arguments_for(get_framework("paddle"))

    def arguments_for(self, framework: Framework) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` of ``framework``'s tensors (:meth:`Framework.as_input`)."""
        return self._split([framework.as_input(a, None, None) for a in self.arrays])

    def _split(self, values: Sequence[Tensor]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self.keyword:
            return (), {n: v for n, v in zip(self.names, values) if n is not None}
        return tuple(values), {}


def normalize_inputs(inputs: Inputs) -> ModelInputs:
    """Turn user inputs into :class:`ModelInputs`.

    Examples:
        >>> import numpy as np
        >>> m = normalize_inputs({"x": np.zeros((2, 3), np.float32)})
        >>> m.names, m.arrays[0].shape
        (('x',), (2, 3))
        >>> normalize_inputs([np.zeros(2), np.ones(3, np.int64)]).describe()
        'float64[2], int64[3]'
    """
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InputError("no inputs given: pass at least one array")
        names: list[str | None] = []
        arrays = []
        for key, value in inputs.items():
            if not isinstance(key, str):
                raise InputError(f"input dict keys must be argument names (str), got {key!r}")
            names.append(key)
            arrays.append(to_numpy(value, what=f"input {key!r}"))
    elif isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)):
        if not inputs:
            raise InputError("no inputs given: pass at least one array")
        arrays = [to_numpy(v, what=f"input #{i}") for i, v in enumerate(inputs)]
        names = [None] * len(arrays)
    else:
        arrays = [to_numpy(inputs)]
        names = [None]
    for name, arr in zip(names, arrays):
        if arr.dtype.name not in _SUPPORTED_DTYPES:
            raise InputError(
                f"input {name or ''} has dtype {arr.dtype}; supported: "
                f"{', '.join(sorted(_SUPPORTED_DTYPES))}"
            )
    return ModelInputs(tuple(arrays), tuple(names))


def _framework_of_inputs(inputs: Inputs) -> str | None:
    values = (
        inputs.values()
        if isinstance(inputs, Mapping)
        else (
            inputs
            if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes))
            else [inputs]
        )
    )
    kinds = {framework_of_type(v) for v in values}
    return kinds.pop() if len(kinds) == 1 else None


def split_inputs(inputs: Inputs, framework_a: str, framework_b: str) -> tuple[Any, Any]:
    """Each model's inputs: the same inputs for both, or a per-model pair put in order.

    A pair is two parts of different frameworks (dicts, sequences or single tensors), matched to
    the two models by tensor type whatever its order, such as the seed's
    ``({'x': paddle_tensor}, {'x': torch_tensor})``; or two dicts with the same keys (A's, then
    B's). Anything else is one set of inputs for both models.

    Examples:
        >>> import numpy as np
        >>> a, b = split_inputs({"x": np.zeros(2)}, "torch", "paddle")
        >>> a is b
        True
        >>> a, b = split_inputs(({"x": np.zeros(2)}, {"x": np.ones(2)}), "torch", "paddle")
        >>> float(a["x"][0]), float(b["x"][0])
        (0.0, 1.0)
    """
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        return inputs, inputs
    first, second = inputs
    kinds = [_framework_of_inputs(part) for part in inputs]
    if kinds[0] and kinds[1] and kinds[0] != kinds[1]:
        by_kind = dict(zip(kinds, inputs))
        if framework_a in by_kind and framework_b in by_kind:
            return by_kind[framework_a], by_kind[framework_b]
        if framework_a == framework_b or "onnx" in (framework_a, framework_b):
            return first, second  # an ONNX side takes either; keep the given order
    structured = all(isinstance(part, (Mapping, tuple, list)) for part in inputs)
    if structured and kinds[0] and kinds[0] == kinds[1] == framework_a == framework_b:
        return first, second
    if isinstance(first, Mapping) and isinstance(second, Mapping) and first.keys() == second.keys():
        return first, second
    return inputs, inputs
