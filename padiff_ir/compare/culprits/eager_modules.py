"""A module pair measured on the eager runs: for modules the graphs cannot measure.

The graphs measure a module's own error by rerunning B's subgraph from A's values; that needs
the module's tensors in both exports, of the same sizes. Two cases escape it:

* a module one export drops (a ``Dropout`` is the identity in eval mode and leaves no op,
  while paddle's ``mode="downscale_in_infer"`` exports a Scale): its pair, completed from the
  eager traces, has no graph tensors;
* a module downstream of a shape change (a pooling ``ceil_mode`` slip makes 13x13 of 12x12):
  B's subgraph has fixed shapes and cannot take A's values.

Both models ran eagerly once with every module call recorded (:mod:`.eager`). Here A's module
call and B's are compared as run, and B's module object is called on A's recorded inputs: its
own error, whatever the shapes upstream (B's module fed A's inputs, PaDiff's single step).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.compare.culprits.own_error import module_result, worst
from padiff_ir.compare.eager import EagerRun
from padiff_ir.compare.match_result import ModuleResult
from padiff_ir.frameworks import flatten_tensors, get_framework, preserved_state
from padiff_ir.hints import Model
from padiff_ir.matching.types import ModulePair
from padiff_ir.metrics import TensorMetrics, Tolerance, broadcast_alike, compare_arrays

__all__ = ["EagerModules", "eager_modules"]

logger = logging.getLogger(__name__)


def _compare(
    values_a: list[np.ndarray], values_b: list[np.ndarray], tolerance: Tolerance
) -> TensorMetrics | None:
    if not values_a or len(values_a) != len(values_b):
        return None
    return worst(
        [compare_arrays(*broadcast_alike(x, y), tolerance) for x, y in zip(values_a, values_b)]
    )


@dataclass(frozen=True)
class EagerModules:
    """Both eager runs and B's modules: what measuring a module pair eagerly needs.

    Attributes:
        run_a / run_b: the eager runs (every module call's inputs and outputs).
        model_a / model_b: the models (B's modules are called on A's inputs; both modules'
            settings explain a culprit).
        framework_a / framework_b: their framework names.
        tolerance: as for the graphs.
    """

    run_a: EagerRun
    run_b: EagerRun
    model_a: Model
    model_b: Model
    framework_a: str
    framework_b: str
    tolerance: Tolerance

    def modules_b(self) -> Mapping[str, Any]:
        return dict(get_framework(self.framework_b).named_modules(self.model_b))

    def settings(self, pair: ModulePair) -> list[str]:
        """The settings that differ between the pair's two modules, in words
        (:func:`padiff_ir.pairing.settings.layer_differences`)."""
        from padiff_ir.pairing.settings import layer_differences

        module_a = dict(get_framework(self.framework_a).named_modules(self.model_a)).get(pair.a)
        module_b = self.modules_b().get(pair.b)
        if module_a is None or module_b is None:
            return []
        label = pair.site_a if pair.site_a == pair.site_b else f"{pair.site_a} / {pair.site_b}"
        return layer_differences(label, module_a, module_b, self.framework_a, self.framework_b)

    def measure(self, pair: ModulePair, depth: int, *, own_error: bool = True) -> ModuleResult:
        """Outputs and inputs of the two module calls as run; with ``own_error``, when the
        outputs differ, B's module called on A's inputs vs A's outputs."""
        outputs_a = self.run_a.module_outputs(pair.a, pair.call_a)
        inputs_a = self.run_a.module_inputs(pair.a, pair.call_a)
        inputs_b = self.run_b.module_inputs(pair.b, pair.call_b)
        output = _compare(outputs_a, self.run_b.module_outputs(pair.b, pair.call_b), self.tolerance)
        inputs = _compare(inputs_a, inputs_b, self.tolerance)
        own = None
        if own_error and output is not None and not output.ok and pair.b:
            own = self._own(pair, inputs_a, inputs_b, outputs_a)
        return module_result(pair, output, own, inputs, depth)

    def _own(
        self,
        pair: ModulePair,
        inputs_a: list[np.ndarray],
        inputs_b: list[np.ndarray],
        outputs_a: list[np.ndarray],
    ) -> TensorMetrics | None:
        """B's module called on A's inputs (in B's dtypes) vs A's outputs."""
        module = self.modules_b().get(pair.b)
        if module is None or not inputs_a or len(inputs_a) != len(inputs_b):
            return None
        framework = get_framework(self.framework_b)
        args = tuple(
            framework.as_input(np.asarray(x).astype(y.dtype, copy=False), None, None)
            for x, y in zip(inputs_a, inputs_b)
        )
        try:
            with preserved_state(module), framework.no_grad():
                result = framework.run(module, args, {})
        except Exception as err:  # a module that takes more than its tensors: not measured
            reraise_interruption(err)
            logger.debug("eager own error of %s not measured: %s", pair.site_b, err)
            return None
        outputs_b = [framework.to_numpy(t) for t in flatten_tensors(result, framework)]
        return _compare(outputs_a, outputs_b, self.tolerance)


def eager_modules(
    run_a: EagerRun | None,
    run_b: EagerRun | None,
    models: tuple[Any, Any],
    frameworks: tuple[str, str],
    tolerance: Tolerance,
) -> EagerModules | None:
    """The eager measure of a comparison, when both models ran eagerly (not ONNX files)."""
    if run_a is None or run_b is None:
        return None
    return EagerModules(run_a, run_b, *models, *frameworks, tolerance)
