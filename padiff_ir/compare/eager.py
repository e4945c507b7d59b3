"""Run a model eagerly once, keeping every module's outputs: the ground truth for the export.

An exporter can change what a model computes: paddle2onnx 2.1 writes ``GELU(approximate=True)``
as the exact erf GELU, so the ONNX graph of a model with a tanh GELU agrees with a model that
has the exact one. :func:`run_eager` records each module's eager outputs (first call) so that
the ONNX activations can be checked against them (:func:`export_fidelity`): a module whose
ONNX outputs differ from its eager outputs is where the exporter lost something.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from padiff_ir._inputs import ModelInputs
from padiff_ir.runtime import ActivationStore

__all__ = ["EagerRun", "run_eager"]

logger = logging.getLogger(__name__)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _flatten(v)]
    return [value]


def _to_numpy(value: Any) -> np.ndarray | None:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    paddle = sys.modules.get("paddle")
    if paddle is not None and isinstance(value, paddle.Tensor):
        return np.asarray(value.numpy())
    return None


@dataclass
class EagerRun:
    """A model's eager outputs and each module's outputs (first call), in a spilling store.

    Attributes:
        outputs: the model's outputs, flattened, as numpy arrays.
        modules: module path -> keys in ``store`` of its outputs, in order.
        inputs: module path -> keys in ``store`` of its tensor inputs, in order.
        store: the arrays; close it (or use ``with``) when done.
    """

    outputs: list[np.ndarray]
    store: ActivationStore
    modules: dict[str, list[str]] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)

    def module_outputs(self, path: str) -> list[np.ndarray]:
        return [self.store[key] for key in self.modules.get(path, [])]

    def module_inputs(self, path: str) -> list[np.ndarray]:
        return [self.store[key] for key in self.inputs.get(path, [])]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> EagerRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put_all(run: EagerRun, prefix: str, values: Any) -> list[str]:
    keys = []
    for index, tensor in enumerate(_flatten(values)):
        array = _to_numpy(tensor)
        if array is None:
            continue
        key = f"{prefix}{index}"
        run.store.put(key, np.array(array, copy=True))
        keys.append(key)
    return keys


def _record(run: EagerRun, path: str, outputs: Any, inputs: Any = ()) -> None:
    if path in run.modules:
        return
    run.modules[path] = _put_all(run, f"{path}#", outputs)
    run.inputs[path] = _put_all(run, f"{path}<", inputs)


def run_eager(model: Any, framework: str, inputs: ModelInputs, *,
              memory_budget: int | None = None, modules: bool = True) -> EagerRun:
    """Run ``model`` once in eval mode without gradients, recording module outputs.

    The model's mode flags and RNG state are restored; the hooks are always removed.

    Raises:
        InputError: the model does not run on ``inputs`` (names the framework's complaint).
    """
    from padiff_ir.exporters._state import preserved_paddle_state, preserved_torch_state

    store = ActivationStore(memory_budget) if memory_budget else ActivationStore()
    run = EagerRun(outputs=[], store=store)
    handles = []
    try:
        if framework == "torch":
            import torch

            args, kwargs = inputs.to_torch()
            with preserved_torch_state(model), torch.no_grad():
                if modules:
                    for path, module in model.named_modules():
                        if path:
                            handles.append(module.register_forward_hook(
                                lambda m, i, o, path=path: _record(run, path, o, i)))
                result = model(*args, **kwargs)
        else:
            import paddle

            args, kwargs = inputs.to_paddle()
            with preserved_paddle_state(model), paddle.no_grad():
                if modules:
                    for path, layer in model.named_sublayers():
                        handles.append(layer.register_forward_post_hook(
                            lambda m, i, o, path=path: _record(run, path, o, i)))
                result = model(*args, **kwargs)
    except Exception as err:
        from padiff_ir.exporters._export import eager_failure

        store.close()
        raise eager_failure(model, framework, inputs, err) from err
    finally:
        for handle in handles:
            handle.remove()
    run.outputs = [a for a in (_to_numpy(t) for t in _flatten(result)) if a is not None]
    _record(run, "", result)
    return run


def module_output_metrics(run: EagerRun, path: str, names: Sequence[str],
                          values: Mapping[str, Any], tolerance: Any) -> Any:
    """Eager outputs of module ``path`` vs the graph's tensors ``names`` (worst metric)."""
    from padiff_ir.compare.localize import worst
    from padiff_ir.metrics import compare_arrays

    eager = run.module_outputs(path)
    if not eager or len(eager) != len(names) or any(n not in values for n in names):
        return None
    return worst([compare_arrays(values[n], e, tolerance) for n, e in zip(names, eager)])
