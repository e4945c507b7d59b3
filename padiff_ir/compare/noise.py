"""Each compared tensor's numerical noise, measured on the models at hand (``tolerance="auto"``).

A fixed ``atol`` judges a logit in the thousands and a normalised activation near 1e-3 alike.
Here the noise of every module call is measured instead, as torch's dynamo accuracy check does
for a compiled graph:

1. A runs eagerly in the *working dtype* (the lower precision of the two models': float32 for
   two float32 models, float16 for a float16 port of a float32 model, bfloat16 for a bfloat16
   one, its inputs held in ``ml_dtypes``' bfloat16: :mod:`padiff_ir.frameworks.half`), every
   module call recorded (:func:`~padiff_ir.compare.eager.run_eager`); where ``match`` already
   ran A so (its eager stage, with ``tolerance="auto"``), that run is the one judged with;
2. a float64 *shadow* of A (a copy with its weights cast, :meth:`Framework.cast_copy`) runs on
   the same inputs; ``RMSE(A_working, A64)`` is each tensor's rounding error, its noise;
3. B runs eagerly (``match``'s own run of B, likewise); B passes a tensor when
   ``RMSE(B, A64) <= m * noise + floor`` (``m = 2``; 3 for a 16-bit working dtype or a tensor
   under 1000 elements; the floor a few units in the last place of the working dtype times
   the tensor's root mean square, for exact values);
4. for each module whose outputs leave their noise, its *own* error: B's module fed the
   shadow's inputs (in B's dtype) against the shadow's outputs, judged against A's module
   alone on the same inputs, its own noise. A layer is a culprit when its own error leaves its
   own noise, whatever the scale of its activations.

Where A cannot run in float64 (an op without a float64 kernel), the noise is the spread of A
under inputs and weights perturbed at the working dtype's epsilon (a private RNG; a copy of A,
so that token-id inputs, which cannot move, still give a spread) and B is measured against A
as run. The shadow is released when the measurement is done.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
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
from padiff_ir.frameworks.half import BFLOAT16, held_in, is_floating, numpy_dtype, widened
from padiff_ir.hints import Model, Module
from padiff_ir.matching.types import ModulePair
from padiff_ir.metrics import broadcast_alike, common_positions
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


Sums = tuple[float, float, int, float, float]
"""Sum of squared differences, sum of squared reference values, element count, largest
difference, largest reference value."""

_CHUNK = 1 << 18  # elements per pass: a chunk stays in cache through its sums
_SLIPPED: Sums = (math.inf, 0.0, 1, math.inf, 0.0)  # a shape slip or NaN moved: no rounding


def _sums(reference: list[np.ndarray], values: list[np.ndarray]) -> Sums | None:
    """The :data:`Sums` of two lists of tensors (None where they cannot be paired; an
    infinite difference where a tensor has another number of elements: a shape slip is no
    rounding)."""
    return _sums_many(reference, (values,))[0]


def _sums_many(reference: list[np.ndarray], lists: Sequence[list[np.ndarray]]) -> list[Sums | None]:
    """:func:`_sums` of each list of ``lists`` against ``reference``, each reference tensor
    read once for all of them."""
    totals = {
        k: [0.0, 0.0, 0.0, 0.0, 0.0]
        for k, values in enumerate(lists)
        if reference and len(values) == len(reference)
    }
    slipped: set[int] = set()
    for index, ref in enumerate(reference):
        ref = np.asarray(ref)
        floating = np.issubdtype(ref.dtype, np.floating)
        shared: dict[int, np.ndarray] = {}  # the values whose tensor pairs with ``ref`` as is
        for k in sorted(totals.keys() - slipped):
            ref_k, value = broadcast_alike(ref, np.asarray(lists[k][index]))
            if ref_k.size != value.size:
                slipped.add(k)
            elif floating and ref_k.shape == ref.shape:
                shared[k] = value.ravel()
            elif floating:  # broadcast against this value only
                _add(totals, slipped, k, _one_sums(ref_k.ravel(), value.ravel()))
        if not shared:
            continue
        many = _finite_sums(ref.ravel(), list(shared.values()))
        for position, (k, value) in enumerate(shared.items()):
            found = many[position] if many is not None else _one_sums(ref.ravel(), value)
            _add(totals, slipped, k, found)
    return [
        None if k not in totals else _SLIPPED if k in slipped else _as_sums(totals[k])
        for k in range(len(lists))
    ]


def _add(totals: dict[int, list[float]], slipped: set[int], k: int, sums: Sums | None) -> None:
    """``sums`` added to the running total ``k`` (None: it slipped)."""
    if sums is None:
        slipped.add(k)
        return
    total = totals[k]
    total[0] += sums[0]
    total[1] += sums[1]
    total[2] += sums[2]
    total[3], total[4] = max(total[3], sums[3]), max(total[4], sums[4])


def _as_sums(total: list[float]) -> Sums:
    return total[0], total[1], int(total[2]), total[3], total[4]


def _one_sums(ref: np.ndarray, value: np.ndarray) -> Sums | None:
    """:data:`Sums` of two flat arrays (None: NaNs at other places)."""
    found = _finite_sums(ref, [value])
    return found[0] if found is not None else _sums_with_non_finite(ref, value)


def _dot(x: np.ndarray) -> float:
    # einsum without BLAS: numpy's BLAS threads fight the frameworks' thread pools
    return float(np.einsum("i,i->", x, x))


def _finite_sums(ref: np.ndarray, values: list[np.ndarray]) -> list[Sums] | None:
    """:data:`Sums` of each flat array of ``values`` against the flat ``ref``, in float64, a
    cache-sized chunk at a time (one pass over memory, ``ref`` read once); None where a
    value is not finite."""
    size = int(ref.size)
    step = max(min(_CHUNK, size), 1)
    diff, exact = np.empty(step), np.empty(step)
    scale = peak = 0.0
    found = [[0.0, 0.0] for _ in values]  # squared differences, largest difference
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, size, step):
            chunk, n = slice(start, start + step), min(step, size - start)
            r = exact[:n]
            np.copyto(r, ref[chunk])  # in float64
            for value, sums in zip(values, found):
                d = diff[:n]
                np.subtract(value[chunk], r, out=d)
                sums[0] += _dot(d)
                sums[1] = max(sums[1], float(np.abs(d, out=d).max()))
            scale += _dot(r)
            peak = max(peak, float(np.abs(r, out=r).max()))
    every = (scale, peak, *(x for sums in found for x in sums))
    if not all(math.isfinite(x) for x in every):
        return None
    return [(squared, scale, size, largest, peak) for squared, largest in found]


def _sums_with_non_finite(ref: np.ndarray, value: np.ndarray) -> Sums | None:
    """:data:`Sums` where a side holds NaN or Inf: over the positions finite on both sides
    (None where the NaNs are not at the same places)."""
    ref64, value64 = ref.astype(np.float64), value.astype(np.float64)
    if not np.array_equal(np.isnan(ref64), np.isnan(value64)):
        return None
    diff = value64 - ref64
    finite = np.isfinite(diff) & np.isfinite(ref64)
    diff, ref64 = diff[finite], ref64[finite]
    if not diff.size:
        return 0.0, 0.0, 0, 0.0, 0.0
    return (
        float(np.dot(diff, diff)),
        float(np.dot(ref64, ref64)),
        int(diff.size),
        float(np.abs(diff).max()),
        float(np.abs(ref64).max()),
    )


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
    own_sums = _sums(other_exact, other) if other_exact is not None else None
    noise_sums, error_sums = _sums_many(exact, (working, other))
    return _floor(noise_sums, error_sums, own_sums, dtype)


def _floor(
    noise_sums: Sums | None, error_sums: Sums | None, own_sums: Sums | None, dtype: str
) -> NoiseFloor | None:
    """:func:`floor_of` from the sums of A's rounding, of B's error and of B's own rounding."""
    if noise_sums is None or error_sums is None or not noise_sums[2]:
        return None
    count = noise_sums[2]
    noise = math.sqrt(noise_sums[0] / count)
    peak_noise = noise_sums[3]
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
    return replace(inputs, arrays=tuple(held_in(a, dtype) for a in inputs.arrays))


def _moved(values: np.ndarray, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """``values`` each moved by one epsilon of ``dtype``, up or down at random."""
    return values * (1 + epsilon_of(dtype) * rng.choice((-1.0, 1.0), size=values.shape))


def _perturbed(inputs: ModelInputs, dtype: str) -> ModelInputs:
    """Floating inputs moved by one epsilon of ``dtype`` up or down (a private RNG)."""
    rng = np.random.default_rng(0)
    arrays = tuple(
        held_in(_moved(widened(a), dtype, rng), a.dtype.name) if is_floating(a.dtype) else a
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
    output_order: tuple[int, ...] = ()  # B's output paired with each of A's (by key)
    b_exact: EagerRun | None = None
    b_shadow: Any = None
    # what a second judgment (with B's shadow) reuses of the first: per pair or output, the
    # sums of A's rounding and of B's error; per pair, its modules' outputs on the shadow's
    # inputs; per model, its modules by path
    sums: dict[Any, tuple[Sums | None, Sums | None]] = field(default_factory=dict)
    called: dict[Any, tuple[list[np.ndarray] | None, list[np.ndarray] | None]] = field(
        default_factory=dict
    )
    modules: dict[int, dict[str, Module]] = field(default_factory=dict)

    def floor(
        self, key: Any, exact: list[np.ndarray], working: list[np.ndarray], other: list[np.ndarray]
    ) -> tuple[Sums | None, Sums | None]:
        """The sums of A's rounding and of B's error of ``key`` (a pair or an output), once."""
        if key not in self.sums:
            noise_sums, error_sums = _sums_many(exact, (working, other))
            self.sums[key] = (noise_sums, error_sums)
        return self.sums[key]

    def module(self, framework: str, model: Model, path: str) -> Module | None:
        """``model``'s module at ``path`` (the model's modules listed once)."""
        if id(model) not in self.modules:
            self.modules[id(model)] = dict(get_framework(framework).named_modules(model))
        return self.modules[id(model)].get(path)


def measure_noise(
    side_a: Side,
    side_b: Side,
    pairs: Sequence[ModulePair],
    *,
    memory_budget: int | None = None,
    recorded: tuple[EagerRun | None, EagerRun | None] = (None, None),
    output_order: Sequence[int] = (),
) -> NoiseMeasurement:
    """Every module pair of ``pairs`` and the model outputs measured against their noise
    (A's output ``i`` against B's ``output_order[i]``: outputs returned as a dict pair by
    key, as the comparison paired them; by position where not given).

    ``recorded``: the eager runs of A and B the caller already made on these sides' inputs
    (:func:`~padiff_ir.compare.eager.run_eager`), reused where they recorded every module
    (A's only where it ran in the working dtype): then only A's float64 shadow runs here.
    The caller closes them.

    Where B leaves A's noise, B's own float64 shadow is run too, and each tensor's noise is
    the larger of A's rounding and B's (a faithful port that rounds more passes; a bug, whose
    float64 run departs from A's, does not).

    Raises:
        NoiseUnmeasured: a model is an ONNX file, or A does not run in the working dtype.
    """
    if "onnx" in (side_a.framework, side_b.framework):
        raise NoiseUnmeasured("the noise is measured on framework models, not ONNX files")
    dtype = working_dtype(side_a, side_b)
    framework_a = get_framework(side_a.framework)
    inputs_a, inputs_b = normalize_inputs(side_a.inputs), normalize_inputs(side_b.inputs)
    seconds: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        working_model = side_a.model
        if _dtype_of(side_a) != dtype:
            working_model = framework_a.cast_copy(side_a.model, dtype)
        working = _reusable(recorded[0], inputs_a, dtype, working_model is side_a.model)
        if working is None:
            with _timed(seconds, "reference"):
                working = stack.enter_context(
                    _run(
                        working_model,
                        side_a.framework,
                        _cast_inputs(inputs_a, dtype),
                        memory_budget,
                    )
                )
        method, exact, shadow_model = _exact_run(side_a, inputs_a, dtype, seconds, memory_budget)
        stack.enter_context(exact)
        run_b = _reusable(recorded[1], inputs_b, None, True)
        if run_b is None:
            with _timed(seconds, "b"):
                run_b = stack.enter_context(
                    _run(side_b.model, side_b.framework, inputs_b, memory_budget)
                )
        if method == "perturbation":  # B is measured against A as run; A's spread is the noise
            exact, working = working, exact
        runs = _Runs(exact, working, run_b, (working_model, shadow_model), tuple(output_order))
        with _timed(seconds, "judge"):
            outputs, modules = _floors(runs, pairs, side_a, side_b, dtype)
        beyond = not all(f.ok for f in outputs) or any(
            m.output is not None and not m.output.ok for m in modules
        )
        if beyond and method == "float64 shadow":
            with _timed(seconds, "b_shadow"):
                beyond_b = {  # B's modules out of A's noise: the only ones B's noise can change
                    pair.b
                    for pair, module in zip(pairs, modules)
                    if module.output is not None and not module.output.ok
                }
                runs.b_shadow, runs.b_exact = _b_shadow_run(
                    side_b, inputs_b, memory_budget, beyond_b
                )
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


def _reusable(
    run: EagerRun | None, inputs: ModelInputs, dtype: str | None, as_given: bool
) -> EagerRun | None:
    """``run`` where it is the one the measurement would make: every module recorded, the
    model as given (``as_given``) on inputs already in ``dtype`` (None: any)."""
    if run is None or not run.by_module or not as_given:
        return None
    floating = [a for a in inputs.arrays if is_floating(a.dtype)]
    if dtype is not None and any(a.dtype != numpy_dtype(dtype) for a in floating):
        return None
    return run


def _floors(
    runs: _Runs, pairs: Sequence[ModulePair], side_a: Side, side_b: Side, dtype: str
) -> tuple[tuple[NoiseFloor, ...], list[ModuleNoise]]:
    """The outputs' floors and each module pair's (own error where its outputs fail)."""
    outputs = _output_floors(runs, dtype)
    modules = []
    for pair in pairs:
        exact = runs.exact.module_outputs(pair.a, pair.call_a)
        values_b = runs.b.module_outputs(pair.b, pair.call_b)
        take_a, take_b = common_outputs(exact, values_b)  # extras (attention weights) left out
        other = _taken(values_b, take_b)
        noise_sums, error_sums = runs.floor(
            (pair.a, pair.call_a, pair.b, pair.call_b),
            _taken(exact, take_a),
            _taken(runs.working.module_outputs(pair.a, pair.call_a), take_a),
            other,
        )
        own_sums = None
        if runs.b_exact is not None:
            exact_b = runs.b_exact.module_outputs(pair.b, pair.call_b)
            own_sums = _sums(_taken(exact_b, take_b), other)
        output = _floor(noise_sums, error_sums, own_sums, dtype)
        own = None
        if output is not None and not output.ok and runs.models[1] is not None:
            own = _own_floor(pair, runs, side_a, side_b, dtype)
        modules.append(ModuleNoise(pair.site_a, pair.site_b, output, own))
    return outputs, modules


def common_outputs(
    outputs_a: Sequence[np.ndarray], outputs_b: Sequence[np.ndarray]
) -> tuple[list[int], list[int]]:
    """The positions of A's and of B's module outputs compared with each other: all, by
    position, for equal counts; where one side returns extras (attention weights, caches)
    the outputs both return, in order by shape, as the comparison pairs them
    (:func:`~padiff_ir.metrics.common_positions`).

    Examples:
        >>> common_outputs([np.zeros((2, 3)), np.zeros((2, 4, 3, 3))], [np.zeros((2, 3))])
        ([0], [0])
        >>> logits, weights, indices = np.zeros((16, 4)), np.zeros((16, 2)), np.zeros((16, 2), int)
        >>> common_outputs([logits, weights, indices], [indices, weights])  # a router
        ([2, 1], [0, 1])
    """
    positions = common_positions(  # integers (a router's indices) pair only with integers
        [tuple(np.shape(a)) for a in outputs_a],
        [tuple(np.shape(b)) for b in outputs_b],
        [np.asarray(a).dtype.kind in "biu" for a in outputs_a],
        [np.asarray(b).dtype.kind in "biu" for b in outputs_b],
    )
    taken = [(a, b) for b, a in enumerate(positions) if a is not None]
    return [a for a, _ in taken], [b for _, b in taken]


def _taken(values: list[np.ndarray], positions: list[int]) -> list[np.ndarray]:
    """``values`` at ``positions`` (none where a position is missing: another run's count)."""
    if any(p >= len(values) for p in positions):
        return []
    return [values[p] for p in positions]


def _b_shadow_run(
    side_b: Side, inputs: ModelInputs, budget: int | None, paths: Collection[str]
) -> tuple[Any, EagerRun | None]:
    """B's float64 shadow and its run recording the modules at ``paths`` (those out of A's
    noise: within it, a larger noise changes nothing), ``(None, None)`` where B cannot run
    in float64."""
    shadow = None
    try:
        shadow = get_framework(side_b.framework).cast_copy(side_b.model, "float64")
        run = run_eager(
            shadow,
            side_b.framework,
            _cast_inputs(inputs, "float64"),
            memory_budget=budget,
            paths=frozenset(paths),
        )
        return shadow, run
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
        model = _perturbed_copy(side_a, dtype)
        try:
            run = _run(
                model, side_a.framework, _perturbed(_cast_inputs(inputs, dtype), dtype), budget
            )
        finally:
            del model  # the perturbed weights are released with the run's values kept
        return "perturbation", run, None


def _perturbed_copy(side: Side, dtype: str) -> Model:
    """A copy of the side's model in ``dtype`` with every floating parameter and buffer
    moved by one epsilon of ``dtype`` up or down (a private RNG): the rounding a model's
    weights carry, felt also where the inputs are integers (token ids) and moving them
    perturbs nothing."""
    framework = get_framework(side.framework)
    copy = framework.cast_copy(side.model, dtype)
    rng = np.random.default_rng(1)
    tensors = {id(t): t for t in framework.named_state(copy).values()}  # tied ones once
    with framework.no_grad():
        for tensor in tensors.values():
            if not framework.is_floating(tensor) or not framework.numel(tensor):
                continue
            values = framework.to_numpy(tensor)
            framework.write(tensor, _moved(values, dtype, rng).astype(values.dtype))
    return copy


def _output_floors(runs: _Runs, dtype: str) -> tuple[NoiseFloor, ...]:
    floors = []
    for index, reference in enumerate(runs.exact.outputs):
        at = runs.output_order[index] if index < len(runs.output_order) else index  # by key
        if index >= len(runs.working.outputs) or at >= len(runs.b.outputs):
            break
        other = [runs.b.outputs[at]]
        noise_sums, error_sums = runs.floor(
            index, [reference], [runs.working.outputs[index]], other
        )
        own_sums = _sums(runs.b_exact.outputs[at : at + 1], other) if runs.b_exact else None
        floor = _floor(noise_sums, error_sums, own_sums, dtype)
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
    key = (pair.a, pair.call_a, pair.b, pair.call_b)
    if key not in runs.called:  # the first judgment's calls serve the second
        working_module = runs.module(side_a.framework, runs.models[0], pair.a)
        module_b = runs.module(side_b.framework, side_b.model, pair.b)
        if working_module is None or module_b is None:
            return None
        dtypes_a = [dtype if is_floating(x.dtype) else x.dtype for x in inputs_exact]
        runs.called[key] = (
            _call(side_a.framework, working_module, inputs_exact, dtypes_a),
            _call(side_b.framework, module_b, inputs_exact, _fed_dtypes(inputs_b, side_b)),
        )
    outputs_working, outputs_b = runs.called[key]
    if outputs_working is None or outputs_b is None:
        return None
    outputs_b_exact = None
    shadow_b = runs.module(side_b.framework, runs.b_shadow, pair.b) if runs.b_shadow else None
    if shadow_b is not None:
        exact_dtypes = [np.float64 if is_floating(y.dtype) else y.dtype for y in inputs_b]
        outputs_b_exact = _call(side_b.framework, shadow_b, inputs_exact, exact_dtypes)
    exact_outputs = runs.exact.module_outputs(pair.a, pair.call_a)
    take_a, take_b = common_outputs(exact_outputs, outputs_b)
    return floor_of(
        _taken(exact_outputs, take_a),
        _taken(outputs_working, take_a),
        _taken(outputs_b, take_b),
        dtype,
        _taken(outputs_b_exact, take_b) if outputs_b_exact is not None else None,
    )


def _fed_dtypes(inputs: list[np.ndarray], side: Side) -> list[DTypeLike]:
    """The dtypes a module of ``side``'s model takes its recorded ``inputs`` in: a bfloat16
    model's floating ones were recorded widened to float32 (a framework reads bfloat16 so)."""
    bfloat16 = _dtype_of(side) == BFLOAT16
    return [BFLOAT16 if bfloat16 and is_floating(x.dtype) else x.dtype for x in inputs]


def _call(
    framework_name: str, module: Module, inputs: list[np.ndarray], dtypes: Sequence[DTypeLike]
) -> list[np.ndarray] | None:
    """``module`` called on ``inputs`` cast to ``dtypes`` (None where it does not take them:
    a module that needs more than its tensors)."""
    framework = get_framework(framework_name)
    args = tuple(
        framework.as_input(
            held_in(x, d) if is_floating(d) else np.asarray(x).astype(d, copy=False), None, None
        )
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
