"""Live exports: graphs whose weights onnxruntime reads from the models themselves.

A graph that ``match`` or a :class:`~padiff_ir.compare.comparison.Comparison` runs needs no
copy of the weights: the framework tensors are in memory already, and torch's ``numpy()`` and
paddle's DLPack give arrays that share their memory. :func:`filled_export` with ``live`` turns
an export cache skeleton (:mod:`padiff_ir.exporters._cache`: the exported graph, its
parameter initializers holding no values) into an :class:`ExportedGraph` whose parameter
initializers are declared as shared external data
(:func:`~padiff_ir._shared_weights.external_stub`) and whose
:attr:`ExportedGraph.weights` gives, for each, the view of the model's tensor
(:class:`LiveWeights`). Initializers without a view (bfloat16, strided tensors, tensors off
the CPU) get a copy of the model's value, as every one does without ``live``.

What this buys: the exported protos no longer hold the weights (BERT-base: 2 x 440 MB), nor do
onnxruntime's sessions (they read the views), and a later export of the same models writes
nothing. A weight changed in place (an optimizer step, ``assign_weight``) is what the next
session run reads; a tensor replaced by another one (``module.weight = Parameter(...)``) gives
other views, which :class:`~padiff_ir.runtime.Runner` notices (:meth:`LiveWeights.arrays`) and
rebuilds its sessions for.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir._shared_weights import current_arrays, external_stub
from padiff_ir.exporters._graph import ExportedGraph
from padiff_ir.frameworks import get_framework
from padiff_ir.hints import Model

if TYPE_CHECKING:
    import onnx

__all__ = ["LiveWeights", "filled_export", "materialized", "model_tensors"]

logger = logging.getLogger(__name__)


def model_tensors(model: Model, framework: str) -> dict[str, Any]:
    """Every parameter and buffer (persistent or not) of ``model`` by each of its names."""
    fw = get_framework(framework)
    tensors: dict[str, Any] = {}
    for path, module in fw.all_module_paths(model):
        for name, tensor in fw.own_tensors(module):
            tensors.setdefault(f"{path}.{name}" if path else name, tensor)
    return tensors


class LiveWeights(Mapping[str, np.ndarray]):
    """Initializer name -> an array sharing the memory of the model's tensor (read when asked:
    a tensor replaced on the model gives its new memory).

    Args:
        model, framework: the source model.
        names: initializer name -> the model's parameter or buffer name.
    """

    def __init__(self, model: Model, framework: str, names: Mapping[str, str]) -> None:
        try:  # weakly: what keeps an export (a later match's sessions) keeps no model alive
            self._model: Callable[[], Any] = weakref.ref(model)
        except TypeError:
            self._model = lambda: model
        self._framework = framework
        self._names = dict(names)

    def _tensors(self) -> dict[str, Any]:
        from padiff_ir.errors import InputError

        model = self._model()
        if model is None:
            raise InputError(
                f"the {self._framework} model this graph reads its weights from was deleted"
            )
        return model_tensors(model, self._framework)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every initializer's view of the model's tensor as it is now.

        Raises:
            InputError: a tensor is gone or no longer has the exported shape and dtype (the
                model changed after it was exported; export it again).
        """
        from padiff_ir.errors import InputError

        fw = get_framework(self._framework)
        tensors = self._tensors()
        out = {}
        for initializer, name in self._names.items():
            tensor = tensors.get(name)
            array = fw.view(tensor) if tensor is not None else None
            if array is None:
                raise InputError(
                    f"the {self._framework} model's tensor {name!r} is gone, or no longer a "
                    "tensor its graph can read in place (moved off the CPU, made bfloat16 or "
                    "strided), since the graph was exported: compare again (a new match, or "
                    "Comparison.refresh())"
                )
            out[initializer] = array
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        fw = get_framework(self._framework)
        tensor = self._tensors()[self._names[name]]
        array = fw.view(tensor)
        if array is None:
            raise KeyError(name)
        return array

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LiveWeights({self._framework}, {len(self)} tensors)"


def filled_export(
    skeleton: onnx.ModelProto, model: Model, framework: str, *, live: bool
) -> ExportedGraph | None:
    """``skeleton``'s graph with ``model``'s current tensors: with ``live`` read in place
    where a tensor allows it (else, and without ``live``, copied in); None when a tensor of
    the model no longer fits the skeleton (shape, dtype, or gone)."""
    import onnx
    from onnx import helper

    fw = get_framework(framework)
    model_proto = onnx.ModelProto()
    model_proto.CopyFrom(skeleton)  # a skeleton holds no weights: a small copy
    exported = ExportedGraph.from_model(model_proto)
    tensors = model_tensors(model, framework)
    read_in_place: dict[str, str] = {}
    for tensor in model_proto.graph.initializer:
        name = exported.parameters.get(tensor.name)
        if name is None:
            continue
        if name not in tensors:
            return None
        expected = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
        view = fw.view(tensors[name]) if live else None
        if view is not None and view.dtype == expected and list(view.shape) == list(tensor.dims):
            tensor.CopyFrom(external_stub(tensor))
            read_in_place[tensor.name] = name
            continue
        value = np.ascontiguousarray(fw.to_numpy(tensors[name]))
        if value.dtype != expected or list(value.shape) != list(tensor.dims):
            return None
        tensor.raw_data = value.tobytes()
    if live:
        exported.weights = LiveWeights(model, framework, read_in_place)
        logger.debug("live export: %d parameters read in place", len(read_in_place))
    return exported


def materialized(exported: ExportedGraph) -> onnx.ModelProto:
    """``exported``'s model with the values of its live weights written in (a copy; the model
    itself when it has none): a file others can read."""
    import onnx
    from onnx import numpy_helper

    if not exported.weights:
        return exported.model
    model = onnx.ModelProto()
    model.CopyFrom(exported.model)
    arrays = current_arrays(exported.weights)
    for tensor in model.graph.initializer:
        if tensor.name in arrays:
            tensor.CopyFrom(numpy_helper.from_array(np.asarray(arrays[tensor.name]), tensor.name))
    return model
