"""Run a model eagerly once, keeping every module's outputs: the ground truth for the export.

An exporter can change what a model computes: paddle2onnx 2.1 writes ``GELU(approximate=True)``
as the exact erf GELU, so the ONNX graph of a model with a tanh GELU agrees with a model that
has the exact one. :func:`run_eager` records each module's eager outputs (first call) so that
the ONNX activations can be checked against them (:func:`export_fidelity`): a module whose
ONNX outputs differ from its eager outputs is where the exporter lost something.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import DtypeKernelError, InputError
from padiff_ir.frameworks import (
    Framework,
    ModelInputs,
    flatten_tensors,
    get_framework,
    installed,
    preserved_state,
)
from padiff_ir.hints import Inputs, Model, Outputs
from padiff_ir.metrics import Tolerance
from padiff_ir.runtime import ActivationStore

__all__ = ["EagerRun", "eager_side", "run_eager", "run_eager_pair"]

logger = logging.getLogger(__name__)


@dataclass
class EagerRun:
    """A model's eager outputs and each module call's inputs and outputs, in a spilling store.

    Attributes:
        outputs: the model's outputs, flattened, as numpy arrays.
        modules: ``(module path, call)`` -> keys in ``store`` of its outputs, in order (call 0
            is the first call of the module).
        inputs: ``(module path, call)`` -> keys in ``store`` of its tensor inputs, in order.
        store: the arrays; close it (or use ``with``) when done.
        by_module: whether every module's inputs and outputs were recorded (else only the
            model's outputs, a plain forward's cost).
    """

    outputs: list[np.ndarray]
    store: ActivationStore
    by_module: bool = True
    modules: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    inputs: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def module_outputs(self, path: str, call: int | None = None) -> list[np.ndarray]:
        """The outputs of ``call`` of module ``path`` (its first call by default)."""
        return [self.store[key] for key in self.modules.get((path, call or 0), [])]

    def module_inputs(self, path: str, call: int | None = None) -> list[np.ndarray]:
        """The tensor inputs of ``call`` of module ``path`` (its first call by default)."""
        return [self.store[key] for key in self.inputs.get((path, call or 0), [])]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> EagerRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put_all(run: EagerRun, prefix: str, values: Outputs, framework: Framework) -> list[str]:
    keys = []
    for index, tensor in enumerate(flatten_tensors(values, framework)):
        key = f"{prefix}{index}"
        run.store.put(key, framework.to_numpy(tensor))
        keys.append(key)
    return keys


def _record(
    run: EagerRun,
    path: str,
    outputs: Outputs,
    inputs: Inputs,
    framework: Framework,
    arrays: list[np.ndarray] | None = None,
) -> None:
    """One module call recorded; its inputs as ``arrays`` (read before the call: an in-place
    module overwrites them) where given."""
    call = run.calls.get(path, 0)
    run.calls[path] = call + 1
    run.modules[(path, call)] = _put_all(run, f"{path}#{call}#", outputs, framework)
    if arrays is None:
        run.inputs[(path, call)] = _put_all(run, f"{path}#{call}<", inputs, framework)
        return
    keys = []
    for index, array in enumerate(arrays):
        run.store.put(f"{path}#{call}<{index}", array)
        keys.append(f"{path}#{call}<{index}")
    run.inputs[(path, call)] = keys


def run_eager(
    model: Model,
    framework: str,
    inputs: ModelInputs,
    *,
    memory_budget: int | None = None,
    modules: bool = True,
    paths: Collection[str] | None = None,
) -> EagerRun:
    """Run ``model`` once in eval mode without gradients, recording every module call's
    inputs and outputs (with ``paths``: only those modules').

    The model's mode flags and RNG state are restored; the hooks are always removed.

    Raises:
        InputError: the model does not run on ``inputs`` (names the framework's complaint).
    """
    fw = get_framework(framework)
    store = ActivationStore(memory_budget) if memory_budget else ActivationStore()
    run = EagerRun(outputs=[], store=store, by_module=modules and paths is None)

    # inputs are read as a module is called: an in-place activation (ReLU(inplace=True))
    # overwrites its input before the post-hook sees it
    pending: dict[str, list[list[np.ndarray]]] = {}

    def pre_hook(path: str) -> Any:
        def read(module: Any, args: Any, kwargs: Any) -> None:
            inputs = [fw.to_numpy(t) for t in flatten_tensors(args, fw)]
            pending.setdefault(path, []).append(inputs)

        return read

    def post_hook(path: str) -> Any:
        return lambda module, args, output: _record(
            run, path, output, args, fw, pending[path].pop() if pending.get(path) else None
        )

    hooks = (
        [
            (module, pre_hook(path), post_hook(path))
            for path, module in fw.named_modules(model)
            if path and (paths is None or path in paths)
        ]
        if modules
        else []
    )
    args, kwargs = inputs.arguments_for(fw)
    try:
        with preserved_state(model), fw.no_grad(), installed(fw, hooks):
            result = fw.run(model, args, kwargs)
    except Exception as err:
        reraise_interruption(err)
        from padiff_ir.exporters import eager_failure

        store.close()
        raise eager_failure(model, framework, inputs, err) from err
    run.outputs = [fw.to_numpy(t) for t in flatten_tensors(result, fw)]
    _record(run, "", result, (), fw)
    return run


def module_output_metrics(
    run: EagerRun,
    path: str,
    names: Sequence[str],
    values: Mapping[str, np.ndarray],
    tolerance: Tolerance,
    call: int | None = None,
) -> Any:
    """Eager outputs of module ``path`` (its ``call``) vs the graph's tensors ``names``
    (worst metric)."""
    from padiff_ir.compare.culprits.own_error import worst
    from padiff_ir.metrics import compare_arrays

    eager = run.module_outputs(path, call)
    if not eager or len(eager) != len(names) or any(n not in values for n in names):
        return None
    return worst([compare_arrays(values[n], e, tolerance) for n, e in zip(names, eager)])


def eager_side(
    model: Model,
    framework: str,
    raw_inputs: Inputs,
    label: str,
    memory_budget: int | None,
    modules: bool,
) -> EagerRun | None:
    """One model run eagerly on its inputs (None for an ONNX file); see :func:`run_eager`."""
    if framework == "onnx":
        return None
    from padiff_ir.exporters import check_signature
    from padiff_ir.frameworks import normalize_inputs

    inputs = normalize_inputs(raw_inputs)
    check_signature(model, inputs)
    try:
        return run_eager(model, framework, inputs, memory_budget=memory_budget, modules=modules)
    except DtypeKernelError as err:  # the model cannot run here at all, whatever its inputs
        raise DtypeKernelError(
            f"model {label} ({framework}): {err}",
            framework=err.framework,
            op=err.op,
            dtype=err.dtype,
        ) from err
    except InputError as err:
        raise InputError(f"model {label} ({framework}) does not run on the inputs: {err}") from err


def run_eager_pair(
    sides: Sequence[tuple[Model, str, Inputs]],
    stack: contextlib.ExitStack,
    *,
    memory_budget: int | None = None,
    modules: bool = False,
) -> tuple[EagerRun | None, EagerRun | None]:
    """Both models of ``sides`` (``(model, framework, raw inputs)``, A then B) run eagerly;
    ``None`` for an ONNX side. The runs are closed with ``stack``.

    Raises:
        InputError: a model does not run on its inputs (naming the model, A or B).
    """
    runs = []
    for label, (model, framework, raw) in zip("AB", sides):
        run = eager_side(model, framework, raw, label, memory_budget, modules)
        if run is not None:
            stack.enter_context(run)
        runs.append(run)
    return runs[0], runs[1]
