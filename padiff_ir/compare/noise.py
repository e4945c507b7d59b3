"""Each compared tensor's numerical noise, measured on the models at hand (``tolerance="auto"``).

A fixed ``atol`` judges a logit in the thousands and a normalised activation near 1e-3 alike.
Here the noise of every module call is measured instead, as torch's dynamo accuracy check does
for a compiled graph:

1. A runs eagerly in the *working dtype* (the lower precision of the two models': float32 for
   two float32 models, float16 for a float16 port of a float32 model), every module call
   recorded (:func:`~padiff_ir.compare.eager.run_eager`);
2. a float64 *shadow* of A (a copy with its weights cast, :meth:`Framework.cast_copy`) runs on
   the same inputs; ``RMSE(A_working, A64)`` is each tensor's rounding error, its noise;
3. B runs eagerly; B passes a tensor when ``RMSE(B, A64) <= m * noise + floor`` (``m = 2``; 3
   for a 16-bit working dtype or a tensor under 1000 elements; the floor a few units in the
   last place of the working dtype times the tensor's root mean square, for exact values);
4. for each module whose outputs leave their noise, its *own* error: B's module fed the
   shadow's inputs (in B's dtype) against the shadow's outputs, judged against A's module
   alone on the same inputs, its own noise. A layer is a culprit when its own error leaves its
   own noise, whatever the scale of its activations.

Where A cannot run in float64 (an op without a float64 kernel), the noise is the spread of A
under inputs perturbed at the working dtype's epsilon (a private RNG) and B is measured
against A as run. The shadow is released when the measurement is done.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.compare.eager import EagerRun, run_eager
from padiff_ir.compare.noise_result import ModuleNoise, NoiseFloor
from padiff_ir.errors import PadiffError
from padiff_ir.frameworks import (
    ModelInputs,
    flatten_tensors,
    get_framework,
    normalize_inputs,
    preserved_state,
)
from padiff_ir.hints import Model, Module
from padiff_ir.matching.types import ModulePair
from padiff_ir.metrics import broadcast_alike
from padiff_ir.pairing.noise_floor import SMALL as _SMALL
from padiff_ir.pairing.noise_floor import epsilon_of, lower_precision, multiplier_of, noise_bound

__all__ = ["NoiseMeasurement", "Side", "epsilon_of", "measure_noise", "multiplier_of"]

logger = logging.getLogger(__name__)


class NoiseUnmeasured(PadiffError):
    """The noise of a pair could not be measured (the message says why)."""


@dataclass(frozen=True)
class Side:
    """One model as the measurement runs it: the model, its framework name, its inputs."""

    model: Any
    framework: str
    inputs: Any


@dataclass(frozen=True)
class NoiseMeasurement:
    """What :func:`measure_noise` measured (see :class:`NoiseVerdict` for the words)."""

    method: str
    dtype: str
    multiplier: float
    outputs: tuple[NoiseFloor, ...]
    modules: tuple[ModuleNoise, ...]
    seconds: tuple[tuple[str, float], ...]


def _sums(
    reference: list[np.ndarray], values: list[np.ndarray]
) -> tuple[float, float, int, float, float] | None:
    """Sum of squared differences, sum of squared reference values, the element count, the
    largest difference and the largest reference value of two lists of tensors (None where
    they cannot be paired; an infinite difference where a tensor has another number of
    elements: a shape slip is no rounding)."""
    if not reference or len(reference) != len(values):
        return None
    squared = scale = peak_diff = peak = 0.0
    count = 0
    for ref, value in zip(reference, values):
        ref, value = broadcast_alike(np.asarray(ref), np.asarray(value))
        if ref.size != value.size:
            return (math.inf, 0.0, 1, math.inf, 0.0)
        if not np.issubdtype(ref.dtype, np.floating):
            continue
        ref64 = ref.astype(np.float64).ravel()
        diff = value.astype(np.float64).ravel() - ref64
        finite = np.isfinite(diff) & np.isfinite(ref64)
        if not finite.all():
            if not np.array_equal(np.isnan(ref64), np.isnan(value.astype(np.float64).ravel())):
                return (math.inf, 0.0, 1, math.inf, 0.0)
            diff, ref64 = diff[finite], ref64[finite]
        squared += float(np.dot(diff, diff))
        scale += float(np.dot(ref64, ref64))
        count += int(diff.size)
        if diff.size:
            peak_diff = max(peak_diff, float(np.abs(diff).max()))
            peak = max(peak, float(np.abs(ref64).max()))
    return squared, scale, count, peak_diff, peak


def floor_of(
    exact: list[np.ndarray],
    working: list[np.ndarray],
    other: list[np.ndarray],
    dtype: str,
    other_exact: list[np.ndarray] | None = None,
) -> NoiseFloor | None:
    """``other`` (B) and ``working`` (A in the working dtype) against ``exact`` (A's shadow)
    as one :class:`NoiseFloor` (None where the tensors cannot be paired). With
    ``other_exact`` (B's own float64 shadow) the noise is the larger of A's rounding and B's:
    a port may round more than its reference (another BLAS, another summation order)."""
    noise_sums, error_sums = _sums(exact, working), _sums(exact, other)
    if noise_sums is None or error_sums is None or not noise_sums[2]:
        return None
    count = noise_sums[2]
    noise = math.sqrt(noise_sums[0] / count)
    peak_noise = noise_sums[3]
    own_sums = _sums(other_exact, other) if other_exact is not None else None
    if own_sums is not None and own_sums[2] and math.isfinite(own_sums[0]):
        noise = max(noise, math.sqrt(own_sums[0] / own_sums[2]))
        peak_noise = max(peak_noise, own_sums[3])
    error = math.sqrt(error_sums[0] / max(error_sums[2], 1))
    scale = math.sqrt(noise_sums[1] / count)
    bound = noise_bound(noise, scale, dtype, count)
    return NoiseFloor(
        noise=noise,
        error=error,
        bound=bound,
        scale=scale,
        numel=count,
        peak_noise=peak_noise,
        peak=noise_sums[4],
    )


def _cast_inputs(inputs: ModelInputs, dtype: str) -> ModelInputs:
    arrays = tuple(
        a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a for a in inputs.arrays
    )
    return replace(inputs, arrays=arrays)


def _perturbed(inputs: ModelInputs, dtype: str) -> ModelInputs:
    """Floating inputs moved by one epsilon of ``dtype`` up or down (a private RNG)."""
    rng = np.random.default_rng(0)
    epsilon = epsilon_of(dtype)
    arrays = tuple(
        (a * (1 + epsilon * rng.choice((-1.0, 1.0), size=a.shape))).astype(a.dtype)
        if np.issubdtype(a.dtype, np.floating)
        else a
        for a in inputs.arrays
    )
    return replace(inputs, arrays=arrays)


def _dtype_of(side: Side) -> str:
    framework = get_framework(side.framework)
    dtype = framework.first_float(side.model)[0]
    return framework.dtype_label(dtype) if dtype is not None else "float32"


def working_dtype(side_a: Side, side_b: Side) -> str:
    """The lower precision of the two models' dtypes (float32 when neither has weights)."""
    return lower_precision(_dtype_of(side_a), _dtype_of(side_b))


@contextlib.contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start


def _run(model: Model, framework: str, inputs: ModelInputs, budget: int | None) -> EagerRun:
    return run_eager(model, framework, inputs, memory_budget=budget, modules=True)


@dataclass
class _Runs:
    """The eager runs one measurement judges with (B's float64 shadow only when asked)."""

    exact: EagerRun
    working: EagerRun
    b: EagerRun
    models: tuple[Any, Any]  # A in the working dtype, A's float64 shadow (None: perturbation)
    b_exact: EagerRun | None = None
    b_shadow: Any = None


def measure_noise(
    side_a: Side, side_b: Side, pairs: Sequence[ModulePair], *, memory_budget: int | None = None
) -> NoiseMeasurement:
    """Every module pair of ``pairs`` and the model outputs measured against their noise.

    Where B leaves A's noise, B's own float64 shadow is run too, and each tensor's noise is
    the larger of A's rounding and B's (a faithful port that rounds more passes; a bug, whose
    float64 run departs from A's, does not).

    Raises:
        NoiseUnmeasured: a model is an ONNX file, or A does not run in the working dtype.
    """
    if "onnx" in (side_a.framework, side_b.framework):
        raise NoiseUnmeasured("the noise is measured on framework models, not ONNX files")
    dtype = working_dtype(side_a, side_b)
    if dtype == "bfloat16":
        raise NoiseUnmeasured("a bfloat16 model's inputs cannot be held in numpy")
    framework_a = get_framework(side_a.framework)
    inputs_a, inputs_b = normalize_inputs(side_a.inputs), normalize_inputs(side_b.inputs)
    seconds: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        working_model = side_a.model
        if _dtype_of(side_a) != dtype:
            working_model = framework_a.cast_copy(side_a.model, dtype)
        with _timed(seconds, "reference"):
            working = stack.enter_context(
                _run(working_model, side_a.framework, _cast_inputs(inputs_a, dtype), memory_budget)
            )
        method, exact, shadow_model = _exact_run(side_a, inputs_a, dtype, seconds, memory_budget)
        stack.enter_context(exact)
        with _timed(seconds, "b"):
            run_b = stack.enter_context(
                _run(side_b.model, side_b.framework, inputs_b, memory_budget)
            )
        if method == "perturbation":  # B is measured against A as run; A's spread is the noise
            exact, working = working, exact
        runs = _Runs(exact, working, run_b, (working_model, shadow_model))
        with _timed(seconds, "judge"):
            outputs, modules = _floors(runs, pairs, side_a, side_b, dtype)
        beyond = not all(f.ok for f in outputs) or any(
            m.output is not None and not m.output.ok for m in modules
        )
        if beyond and method == "float64 shadow":
            with _timed(seconds, "b_shadow"):
                runs.b_shadow, runs.b_exact = _b_shadow_run(side_b, inputs_b, memory_budget)
            if runs.b_exact is not None:
                stack.enter_context(runs.b_exact)
                with _timed(seconds, "judge"):
                    outputs, modules = _floors(runs, pairs, side_a, side_b, dtype)
        del runs, shadow_model
    return NoiseMeasurement(
        method=method,
        dtype=dtype,
        multiplier=multiplier_of(dtype, _SMALL),
        outputs=outputs,
        modules=tuple(modules),
        seconds=tuple(seconds.items()),
    )


def _floors(
    runs: _Runs, pairs: Sequence[ModulePair], side_a: Side, side_b: Side, dtype: str
) -> tuple[tuple[NoiseFloor, ...], list[ModuleNoise]]:
    """The outputs' floors and each module pair's (own error where its outputs fail)."""
    outputs = _output_floors(runs, dtype)
    modules = []
    for pair in pairs:
        output = floor_of(
            runs.exact.module_outputs(pair.a, pair.call_a),
            runs.working.module_outputs(pair.a, pair.call_a),
            runs.b.module_outputs(pair.b, pair.call_b),
            dtype,
            runs.b_exact.module_outputs(pair.b, pair.call_b) if runs.b_exact else None,
        )
        own = None
        if output is not None and not output.ok and runs.models[1] is not None:
            own = _own_floor(pair, runs, side_a, side_b, dtype)
        modules.append(ModuleNoise(pair.site_a, pair.site_b, output, own))
    return outputs, modules


def _b_shadow_run(
    side_b: Side, inputs: ModelInputs, budget: int | None
) -> tuple[Any, EagerRun | None]:
    """B's float64 shadow and its run (``(None, None)`` where B cannot run in float64)."""
    shadow = None
    try:
        shadow = get_framework(side_b.framework).cast_copy(side_b.model, "float64")
        return shadow, _run(shadow, side_b.framework, _cast_inputs(inputs, "float64"), budget)
    except Exception as err:
        reraise_interruption(err)
        logger.info("B does not run in float64 (%s): its noise is A's", err)
        return None, None


def _exact_run(
    side_a: Side, inputs: ModelInputs, dtype: str, seconds: dict[str, float], budget: int | None
) -> tuple[str, EagerRun, Any]:
    """A's float64 shadow run (its model kept for own errors); where A cannot run in float64,
    A in the working dtype on perturbed inputs."""
    framework = get_framework(side_a.framework)
    with _timed(seconds, "shadow"):
        shadow = None
        try:
            shadow = framework.cast_copy(side_a.model, "float64")
            run = _run(shadow, side_a.framework, _cast_inputs(inputs, "float64"), budget)
            return "float64 shadow", run, shadow
        except Exception as err:  # no float64 kernel, a dtype fixed in the model's code
            reraise_interruption(err)
            logger.info(
                "A does not run in float64 (%s): the noise is measured by perturbation", err
            )
            del shadow
        model = side_a.model
        if _dtype_of(side_a) != dtype:
            model = framework.cast_copy(side_a.model, dtype)
        run = _run(model, side_a.framework, _perturbed(_cast_inputs(inputs, dtype), dtype), budget)
        return "perturbation", run, None


def _output_floors(runs: _Runs, dtype: str) -> tuple[NoiseFloor, ...]:
    floors = []
    for index, reference in enumerate(runs.exact.outputs):
        if index >= len(runs.working.outputs) or index >= len(runs.b.outputs):
            break
        b_exact = runs.b_exact.outputs[index : index + 1] if runs.b_exact else None
        floor = floor_of(
            [reference], [runs.working.outputs[index]], [runs.b.outputs[index]], dtype, b_exact
        )
        if floor is not None:
            floors.append(floor)
    return tuple(floors)


def _own_floor(
    pair: ModulePair, runs: _Runs, side_a: Side, side_b: Side, dtype: str
) -> NoiseFloor | None:
    """B's module and A's (working dtype) fed the shadow's inputs, against the shadow's
    outputs: the module's own error against its own noise (and B's module in float64, with
    B's shadow: B's own rounding)."""
    inputs_exact = runs.exact.module_inputs(pair.a, pair.call_a)
    inputs_b = runs.b.module_inputs(pair.b, pair.call_b)
    if not pair.a or not pair.b or not inputs_exact or len(inputs_exact) != len(inputs_b):
        return None
    working_module = _module(side_a.framework, runs.models[0], pair.a)
    module_b = _module(side_b.framework, side_b.model, pair.b)
    if working_module is None or module_b is None:
        return None
    dtypes_a = [dtype if np.issubdtype(x.dtype, np.floating) else x.dtype for x in inputs_exact]
    outputs_working = _call(side_a.framework, working_module, inputs_exact, dtypes_a)
    outputs_b = _call(side_b.framework, module_b, inputs_exact, [y.dtype for y in inputs_b])
    if outputs_working is None or outputs_b is None:
        return None
    outputs_b_exact = None
    shadow_b = _module(side_b.framework, runs.b_shadow, pair.b) if runs.b_shadow else None
    if shadow_b is not None:
        exact_dtypes = [
            np.float64 if np.issubdtype(y.dtype, np.floating) else y.dtype for y in inputs_b
        ]
        outputs_b_exact = _call(side_b.framework, shadow_b, inputs_exact, exact_dtypes)
    exact_outputs = runs.exact.module_outputs(pair.a, pair.call_a)
    return floor_of(exact_outputs, outputs_working, outputs_b, dtype, outputs_b_exact)


def _module(framework: str, model: Model, path: str) -> Module | None:
    return dict(get_framework(framework).named_modules(model)).get(path)


def _call(
    framework_name: str, module: Module, inputs: list[np.ndarray], dtypes: Sequence[DTypeLike]
) -> list[np.ndarray] | None:
    """``module`` called on ``inputs`` cast to ``dtypes`` (None where it does not take them:
    a module that needs more than its tensors)."""
    framework = get_framework(framework_name)
    args = tuple(
        framework.as_input(np.asarray(x).astype(d, copy=False), None, None)
        for x, d in zip(inputs, dtypes)
    )
    try:
        with preserved_state(module), framework.no_grad():
            result = framework.run(module, args, {})
    except Exception as err:
        reraise_interruption(err)
        logger.debug("own noise of %s not measured: %s", type(module).__name__, err)
        return None
    return [framework.to_numpy(t) for t in flatten_tensors(result, framework)]
