"""``auto_diff(..., tolerance="auto")``: every compared tensor judged against its own noise.

A fixed tolerance judges a loss in the thousands and a gradient near 1e-6 alike. Here, before
the call runs, A is copied into a float64 *shadow* (:mod:`padiff_ir.native._shadow`). The call
keeps A's values as it compares them, step by step (:mod:`padiff_ir.native._replay`); then the
shadow runs through the same steps (same inputs, same loss, the same layer pairs on both: A's)
and is compared with A's kept values, A not run again, so every layer output, output and input
gradient, parameter gradient, running statistic and the loss gets its *noise*: the mean
absolute rounding error ``mean |A - A64|`` of that tensor, at one extra run of A in float64.
The working dtype is the lower precision of the two models: where it is not A's own (a
bfloat16 port of a float32 model), a copy of A in it is compared with the shadow instead.

The call's own comparisons give each tensor's *error*, ``mean |A - B|`` (B against A as run),
and an entry passes where

    error <= noise_bound(noise, scale, dtype, numel) + noise_A

``noise_bound`` being the bound ``match``'s measured noise uses (``m * noise`` plus a few units
in the last place times the tensor's size, :mod:`padiff_ir.pairing.noise_floor`); the extra
``noise_A`` is A's own rounding, since B is measured against A as run, not the shadow (triangle
inequality: ``|B - A| <= |B - A64| + |A64 - A|``). ``m`` is 3 after an optimizer update and for
tensors under 1000 elements, whose noise (one draw of a few numbers; the loss: one) is taken to
reach at least the step's median relative noise; optimizer states may also move by
``epsilon / (1 - beta)`` of their size (a port holding its decay rates in float32).

Where B leaves A's noise, B's own float64 shadow (B cast with its optimizer, from the weights B
started the call with) runs through the same steps too, and each tensor's noise is the larger
of A's rounding and B's: a port that rounds more than its reference (another kernel, another
summation order, Adam's first update turning a gradient's rounding into a sign) passes; a bug,
which B's float64 run keeps, does not. Where A's copy cannot run in the working dtype (paddle
has no 16-bit CPU kernels for matmul or convolution), B's own rounding is the noise (B in its
16-bit dtype against its float64 shadow). Where the two models hold their weights in different
dtypes, the starting weights are judged by the rounding of that cast.

Where A's optimizer is copied with its model (:meth:`Framework.cast_copy_trained`: torch's and
paddle's), the copies step too and post-step weights and optimizer states have floors, step by
step; otherwise the copies run one step without an update, later steps take its floors, and
weights, states and the inputs keep the fixed tolerance. The copies are released after the
measurement. Cost: the call plus A's shadow through the same steps (A's copy too where the
working dtype is not A's; B's shadow and copy where B leaves A's noise).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from padiff_ir.metrics import TensorMetrics
from padiff_ir.native._locate import culprits, first_difference
from padiff_ir.native._run import TrainingRun
from padiff_ir.native._shadow import Shadow, b_working, shadow_copies, shadow_run
from padiff_ir.native.diff_result import (
    DiffResult,
    FirstDifference,
    LayerDiff,
    ParamDiff,
    StepResult,
)
from padiff_ir.native.noise_result import NoiseEntry, TrainingNoise
from padiff_ir.pairing.noise_floor import SMALL, NoiseFloor, epsilon_of, noise_bound, times_noise

__all__ = ["floor_from", "judge_against_noise", "measured_call"]

logger = logging.getLogger(__name__)

_MEASURED = ("forward", "buffers", "backward", "grads", "weights", "optimizer_state")
_SMALL_FACTOR = 4.0  # m + 1 times the typical level, as a measured noise is bounded


def _key(stage: str, item: LayerDiff | ParamDiff, side: str = "a") -> tuple[Any, ...]:
    """``item``'s key in a shadow run of ``side``'s model (which pairs that model with
    itself: its names on both sides)."""
    if isinstance(item, LayerDiff):
        module = item.module_a if side == "a" else item.module_b
        return (stage, item.kind, module, item.call, item.position)
    return (stage, item.kind, item.name_a if side == "a" else item.name_b)


def _reference(
    reference: dict[tuple[Any, ...], TensorMetrics],
    stage: str,
    item: LayerDiff | ParamDiff,
    side: str = "a",
) -> TensorMetrics | None:
    """The shadow run's metrics for ``item``; a fused group's (``q+k+v``) pooled from its
    parts, measured one by one (a layout moves elements, the means over them stay)."""
    found = reference.get(_key(stage, item, side))
    name = "" if isinstance(item, LayerDiff) else item.name_a if side == "a" else item.name_b
    if found is not None or "+" not in name:
        return found
    parts = [reference.get((stage, item.kind, part)) for part in name.split("+")]
    known = [p for p in parts if p is not None and p.numel]
    if len(known) != len(parts):
        return None
    numel = sum(p.numel for p in known)
    return replace(
        known[0],
        numel=numel,
        mean_abs=sum(p.mean_abs * p.numel for p in known) / numel,
        abs_mean_a=sum(p.abs_mean_a * p.numel for p in known) / numel,
        mean_a=sum(p.mean_a * p.numel for p in known) / numel,
        max_abs=max(p.max_abs for p in known),
    )


def _label(item: LayerDiff | ParamDiff) -> str:
    return item.label() if isinstance(item, LayerDiff) else item.name_a


def floor_from(
    metrics: TensorMetrics,
    noise: TensorMetrics,
    dtype: str,
    relative: float = 0.0,
    base: float = 2.0,
    own: TensorMetrics | None = None,
) -> NoiseFloor | None:
    """B's entry (``metrics``: A vs B) against the shadow run's same entry (``noise``: A64
    vs A; with ``own``, B64 vs B, the larger of the two roundings); None where a verdict is
    not about rounding (shapes, non-finite values)."""
    if metrics.shape_a != metrics.shape_b or metrics.numel != noise.numel or not metrics.numel:
        return None
    if metrics.nan_a or metrics.nan_b or metrics.inf_a or metrics.inf_b:
        return None
    rounding, peak = noise.mean_abs, noise.max_abs
    if own is not None and own.numel == noise.numel and math.isfinite(own.mean_abs):
        rounding, peak = max(rounding, own.mean_abs), max(peak, own.max_abs)
    bound = noise_bound(rounding, noise.abs_mean_a, dtype, metrics.numel, base)
    bound += noise.mean_abs  # B is measured against A as run: A's own rounding on top
    bound += relative * noise.abs_mean_a
    return NoiseFloor(
        noise=rounding,
        error=metrics.mean_abs,
        bound=bound,
        scale=noise.abs_mean_a,
        numel=metrics.numel,
        peak_noise=peak,
        peak=max(abs(noise.mean_a), noise.abs_mean_a),
    )


def _judged(metrics: TensorMetrics, floor: NoiseFloor) -> TensorMetrics:
    if floor.ok:
        return replace(metrics, ok=True, reason="")
    return replace(
        metrics,
        ok=False,
        reason=f"mean error {floor.error:.3g} is {floor.ratio:.1f}x its measured noise bound "
        f"{floor.bound:.3g}",
    )


def _references(step: StepResult) -> dict[tuple[Any, ...], TensorMetrics]:
    """One step of the shadow run: each entry's metrics (its noise) by key."""
    return {_key(stage, item): item.metrics for stage in _MEASURED for item in getattr(step, stage)}


def hyperparameter_rounding(config: dict[str, Any], dtype: str) -> float:
    """How far an optimizer state may move, relative to its size, when a port holds the
    optimizer's decay rates in the working dtype (paddle's Adam: ``beta2 = 0.999`` in float32
    makes ``1 - beta2`` 4.7e-5 relatively off): ``epsilon / min(1 - beta)`` (0 without one).

    Example:
        >>> round(hyperparameter_rounding({"betas": (0.9, 0.999)}, "float32") * 1e4, 2)
        1.19
    """
    rates = [float(b) for b in config.get("betas", ())]
    if config.get("momentum"):
        rates.append(float(config["momentum"]))
    gaps = [1.0 - r for r in rates if 0.0 <= r < 1.0]
    return epsilon_of(dtype) / min(gaps) if gaps else 0.0


def _typical_noise(reference: dict[tuple[Any, ...], TensorMetrics]) -> float:
    """The median relative rounding (noise over mean magnitude) of a step's tensors of at
    least :data:`SMALL` elements: the level a small tensor's noise, measured on a few
    numbers (the loss: on one), is taken to reach at least."""
    levels = sorted(
        m.mean_abs / m.abs_mean_a
        for m in reference.values()
        if m.numel >= SMALL and m.abs_mean_a > 0 and math.isfinite(m.mean_abs)
    )
    return levels[len(levels) // 2] if levels else 0.0


@dataclass(frozen=True)
class _Step:
    """One step's shadow metrics by key: A's rounding and, where measured, B's."""

    a: dict[tuple[Any, ...], TensorMetrics]
    b: dict[tuple[Any, ...], TensorMetrics]
    loss: tuple[TensorMetrics | None, TensorMetrics | None]
    side: str = "a"  # whose shadow run ``a`` is (B's where A's copy could not run)


def _shadow_step(noise: DiffResult, own: DiffResult | None, index: int, side: str) -> _Step:
    """The shadow runs' step ``index`` (steps a run did not take, without a copied
    optimizer, take its last step's noise)."""
    step_a = noise.steps[min(index, len(noise.steps) - 1)]
    step_b = own.steps[min(index, len(own.steps) - 1)] if own and own.steps else None
    return _Step(
        _references(step_a),
        _references(step_b) if step_b is not None else {},
        (step_a.loss, step_b.loss if step_b is not None else None),
        side,
    )


def judge_against_noise(
    result: DiffResult,
    noise: DiffResult,
    dtype: str,
    seconds: float,
    hyper: float = 0.0,
    own: DiffResult | None = None,
    side: str = "a",
    cast: bool = False,
) -> DiffResult:
    """``result`` judged again: each entry the shadow run measured passes or fails by its
    floor (optimizer states also within ``hyper`` of their size, see
    :func:`hyperparameter_rounding`; with ``own``, B's shadow run, the noise is the larger
    of A's rounding and B's; ``side``: whose shadow run ``noise`` is; ``cast``: the models
    hold their weights in different dtypes, the starting weights are judged by the cast's
    rounding); the first difference, culprits and verdict follow (``result.noise`` holds the
    floors)."""
    entries: list[NoiseEntry] = []
    unmeasured = 0
    for step in result.steps:
        if not noise.steps:
            break
        shadow = _shadow_step(noise, own, step.index, side)
        unmeasured += _judge_step(step, shadow, dtype, hyper, entries, cast)
    single = bool(result.options.get("single_step"))
    configs = result.config_differences
    first = first_difference(result.steps, single_step=single, config_differences=configs)
    result.first_difference = first
    result.culprits = culprits(result.steps, first, single_step=single, config_differences=configs)
    result.ok = first is None
    result.options["tolerance"] = "auto"
    words = _sentence(entries, result.first_difference, single)
    method = "float64 shadows of A and B" if own else f"float64 shadow{' of B' * (side == 'b')}"
    result.noise = TrainingNoise(method, dtype, tuple(entries), unmeasured, seconds, words)
    return result


def cast_floor(metrics: TensorMetrics, dtype: str) -> NoiseFloor | None:
    """A tensor one model holds in another dtype than the other (starting weights: a float32
    model's cast to bfloat16) against the rounding of that cast to ``dtype`` alone."""
    if not metrics.numel:
        return None
    if metrics.shape_a != metrics.shape_b or metrics.nan_a or metrics.nan_b:
        return None
    scale = metrics.abs_mean_a
    return NoiseFloor(
        noise=epsilon_of(dtype) / 2 * scale,  # half an ulp: a cast rounds to nearest
        error=metrics.mean_abs,
        bound=noise_bound(0.0, scale, dtype, metrics.numel),
        scale=scale,
        numel=metrics.numel,
        peak_noise=epsilon_of(dtype) / 2 * metrics.max_abs,
        peak=max(abs(metrics.mean_a), scale),
    )


def _judge_cast(step: StepResult, dtype: str, cast: bool, entries: list[NoiseEntry]) -> int:
    """``step``'s starting weights judged by the rounding of a cast where the two models hold
    them in different dtypes (``cast``; else they must be equal: the fixed tolerance); how
    many keep the fixed tolerance."""
    judged, fixed = [], 0
    for item in step.initial_weights:
        floor = cast_floor(item.metrics, dtype) if cast else None
        if floor is None:
            fixed += 1
            judged.append(item)
            continue
        entries.append(NoiseEntry("initial_weights", item.name_a, item.kind, floor, step.index))
        judged.append(replace(item, metrics=_judged(item.metrics, floor)))
    step.initial_weights = judged
    return fixed


def _judge_step(
    step: StepResult,
    shadow: _Step,
    dtype: str,
    hyper: float,
    entries: list[NoiseEntry],
    cast: bool = False,
) -> int:
    """``step``'s entries judged by their floors (appended to ``entries``); how many have
    none."""
    unmeasured = len(step.inputs) + _judge_cast(step, dtype, cast, entries)
    base = 3.0 if step.index else 2.0  # after an update: rounding carried through it
    typical = max(_typical_noise(shadow.a), _typical_noise(shadow.b))
    for stage in _MEASURED:
        judged = []
        for item in getattr(step, stage):
            ref = _reference(shadow.a, stage, item, shadow.side)
            relative = hyper if stage == "optimizer_state" else 0.0
            if item.metrics.numel < SMALL:  # one draw of a few numbers: the step's level
                relative += _SMALL_FACTOR * typical
            own = _reference(shadow.b, stage, item, "b") if shadow.b else None
            floor = floor_from(item.metrics, ref, dtype, relative, base, own) if ref else None
            if floor is None:
                unmeasured += 1
                judged.append(item)
                continue
            entries.append(NoiseEntry(stage, _label(item), item.kind, floor, step.index))
            judged.append(replace(item, metrics=_judged(item.metrics, floor)))
        setattr(step, stage, judged)
    loss_a, loss_b = shadow.loss
    if step.loss is not None and loss_a is not None:
        floor = floor_from(step.loss, loss_a, dtype, _SMALL_FACTOR * typical, base, loss_b)
        if floor is not None:
            entries.append(NoiseEntry("loss", "loss", "loss", floor, step.index))
            step.loss = _judged(step.loss, floor)
    return unmeasured


def _sentence(entries: list[NoiseEntry], first: FirstDifference | None, single_step: bool) -> str:
    """The verdict in units of noise: the worst entry when aligned, else the first
    difference's entry (a layer's own error in single-step mode)."""
    if first is None:
        worst = max(entries, key=lambda e: e.floor.ratio, default=None)
        if worst is None:
            return "aligned (no entry measured against its noise)"
        return (
            f"aligned within numerical noise (worst {worst.floor.ratio:.1f}x noise at "
            f"`{worst.label}` {worst.kind})"
        )
    where = first.module_a or first.name_a
    failing = [e for e in entries if not e.floor.ok and e.step == first.step]
    match = next((e for e in failing if e.kind == first.kind and where in e.label), None)
    if match is None:
        return f"diverged at `{where or first.stage}` (beyond the fixed tolerance; no floor)"
    what = "own error" if single_step and match.kind == "output" else f"{match.kind} error"
    return f"diverged: `{match.label}` {what} {times_noise(match.floor.ratio)}"


def measured_call(run: TrainingRun) -> DiffResult:
    """``run`` executed and judged against A's measured noise; where B leaves it, against
    the larger of A's and B's own; where A's copy does not run in the working dtype (paddle
    has no 16-bit CPU kernels), against B's own (the fixed verdict where no noise can be
    measured)."""
    copies = shadow_copies(run)
    run.keep_a = copies is not None and copies.a.working is None  # A's values replayed
    try:
        result = run.execute()
    finally:
        records, run.records, run.keep_a = run.records, [], False
    if copies is None:
        return result
    start = time.perf_counter()
    dtype, side, b = copies.dtype, "a", copies.b
    noise = shadow_run(run, copies.a, records=records)
    del records
    if noise is None and b is not None and dtype == copies.dtype_b:  # B rounds as the call
        side, noise, b = "b", _b_run(run, b(), copies.dtype_b), None
    dtype_b, cast = copies.dtype_b, copies.dtype_a != copies.dtype_b
    del copies  # A's copies released before B's run
    if noise is None:
        run.notes.append("tolerance='auto': no noise measured; fixed tolerance")
        return result
    hyper = _hyper(run)
    seconds = time.perf_counter() - start
    result = judge_against_noise(result, noise, dtype, seconds, hyper, side=side, cast=cast)
    failing = result.noise is not None and any(not e.floor.ok for e in result.noise.entries)
    own = _b_run(run, b(), dtype_b) if b is not None and failing else None
    del b
    if own is None:
        return result
    seconds = time.perf_counter() - start
    return judge_against_noise(result, noise, dtype, seconds, hyper, own, cast=cast)


def _b_run(run: TrainingRun, b: Shadow | None, dtype: str) -> DiffResult | None:
    """B's copy in ``dtype`` (cast from its shadow) against its shadow (None where either
    step fails)."""
    if b is None:
        return None
    copies = b_working(run, b, dtype)
    return shadow_run(run, copies, "b") if copies is not None else None


def _hyper(run: TrainingRun) -> float:
    """:func:`hyperparameter_rounding` of A's optimizer (0 without one); decay rates are held
    in float32, also by the optimizers of 16-bit weights."""
    if run.optimizer_a is None or run.optimizer_a.instance is None:
        return 0.0
    return hyperparameter_rounding(run.ops_a.optimizer_config(run.optimizer_a.instance), "float32")
