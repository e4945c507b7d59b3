"""``auto_diff(..., tolerance="auto")``: every compared tensor judged against its own noise.

A fixed tolerance judges a loss in the thousands and a gradient near 1e-6 alike. Here, before
the call runs, two copies of A are made (:meth:`Framework.cast_copy`): a float64 *shadow* and
a copy in A's working dtype. The copy is compared with the shadow through the same steps (same
inputs, same loss, the same layer pairs on both: A's) by the training run itself, so every
layer output, output and input gradient, parameter gradient, running statistic and the loss
gets its *noise*: the mean absolute rounding error ``mean |A - A64|`` of that tensor.

The call's own comparisons give each tensor's *error*, ``mean |A - B|`` (B against A as run),
and an entry passes where

    error <= noise_bound(noise, scale, dtype, numel) + noise

``noise_bound`` being the bound ``match``'s measured noise uses (``m * noise`` plus a few units
in the last place times the tensor's size, :mod:`padiff_ir.pairing.noise_floor`); the extra
``noise`` is A's own rounding, since B is measured against A as run, not the shadow (triangle
inequality: ``|B - A| <= |B - A64| + |A64 - A|``). ``m`` is 3 after an optimizer update and for
tensors under 1000 elements, whose noise (one draw of a few numbers; the loss: one) is taken to
reach at least the step's median relative noise; optimizer states may also move by
``epsilon / (1 - beta)`` of their size (a port holding its decay rates in float32). Where A's
optimizer is copied with its model (:meth:`Framework.cast_copy_trained`), the copies step too
and post-step weights and optimizer states have floors, step by step; otherwise the copies run
one step without an update, later steps take its floors, and weights, states and the inputs
keep the fixed tolerance. The copies are released after the measurement.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.hints import Model, Optimizer
from padiff_ir.matching.transform_types import IDENTITY
from padiff_ir.matching.types import Matching
from padiff_ir.metrics import TensorMetrics, Tolerance
from padiff_ir.native._locate import culprits, first_difference
from padiff_ir.native._run import TrainingRun
from padiff_ir.native.diff_result import (
    DiffResult,
    FirstDifference,
    LayerDiff,
    ParamDiff,
    StepResult,
)
from padiff_ir.native.noise_result import NoiseEntry, TrainingNoise
from padiff_ir.pairing.noise_floor import SMALL, NoiseFloor, epsilon_of, noise_bound, times_noise

__all__ = ["floor_from", "judge_against_noise", "measured_call", "shadow_copies", "shadow_run"]

logger = logging.getLogger(__name__)

_MEASURED = ("forward", "buffers", "backward", "grads", "weights", "optimizer_state")
_WORKING = ("float32", "float16")
_SMALL_FACTOR = 4.0  # m + 1 times the typical level, as a measured noise is bounded
_LOOSE = Tolerance(atol=1e30, rtol=0.0, mode="strict")  # the shadow run only measures


@dataclass(frozen=True)
class _Copies:
    """A's float64 shadow and its copy in the working dtype, with their optimizers (copies
    of A's, stepping the copies) where A's optimizer can be copied so."""

    shadow: Model
    working: Model
    dtype: str
    optimizers: tuple[Optimizer, Optimizer] | None = None


def shadow_copies(run: TrainingRun) -> _Copies | None:
    """A's float64 shadow and a copy in its working dtype, made before the call changes A
    (None, with a note on ``run``, where A's dtype has no float64 comparison here)."""
    dtype, _ = run.ops_a.first_float(run.model_a)
    label = run.ops_a.dtype_label(dtype) if dtype is not None else "float32"
    if label not in _WORKING:
        run.notes.append(f"tolerance='auto': a {label} model's noise is not measured here")
        return None
    optimizer = run.optimizer_a.instance if run.optimizer_a is not None else None
    try:
        if optimizer is not None and run.backward:
            try:
                shadow, shadow_opt = run.ops_a.cast_copy_trained(run.model_a, optimizer, "float64")
                working, working_opt = run.ops_a.cast_copy_trained(run.model_a, optimizer, label)
                return _Copies(shadow, working, label, (shadow_opt, working_opt))
            except NotImplementedError:
                run.notes.append(
                    f"tolerance='auto': {run.fw_a}'s optimizer is not copied: post-step "
                    "weights and optimizer states keep the fixed tolerance"
                )
        return _Copies(
            run.ops_a.cast_copy(run.model_a, "float64"),
            run.ops_a.cast_copy(run.model_a, label),
            label,
        )
    except Exception as err:
        reraise_interruption(err)
        run.notes.append(f"tolerance='auto': A could not be copied in float64 ({err})")
        return None


def shadow_run(run: TrainingRun, copies: _Copies) -> DiffResult | None:
    """The working-dtype copy compared with the float64 shadow through the same steps, as
    ``run`` compares A with B (its metrics are the noise; None, with a note, where it
    fails). Without copied optimizers, one step without an update."""
    loss = run.loss_a.fn if run.loss_a is not None else None
    try:
        noise = TrainingRun.prepare(
            copies.shadow,
            copies.working,
            run.inputs_a,
            auto_init=False,
            layer_map=None,
            tolerance=_LOOSE,
            single_step=run.single_step,
            diff_phase=run.diff_phase,
            loss_fn=[loss, loss] if loss is not None else None,
            optimizer=list(copies.optimizers) if copies.optimizers else None,
            steps=run.steps if copies.optimizers else 1,
            blacklist=(),
            whitelist=(),
            matching=_onto_itself(run.matching),
            disable_random_layers=run.disable_random,
            workers=run.workers,
        )
        return noise.execute()
    except Exception as err:
        reraise_interruption(err)
        logger.info("the float64 shadow of A did not run: %s", err)
        run.notes.append(f"tolerance='auto': A did not run in float64 ({err}); fixed tolerance")
        return None


def _onto_itself(matching: Matching) -> Matching:
    """A's side of ``matching`` paired with itself (the shadow and the copy share A's names)."""
    return Matching(
        module_pairs=[
            replace(
                p,
                b=p.a,
                class_b=p.class_a,
                call_b=p.call_a,
                inputs_b=p.inputs_a,
                outputs_b=p.outputs_a,
            )
            for p in matching.module_pairs
        ],
        param_pairs=[  # a fused group's parts one by one: the copy has A's layout
            replace(p, a=(name,), b=(name,), module_b=p.module_a, transform=IDENTITY)
            for p in matching.param_pairs
            for name in p.a
        ],
        stats=dict(matching.stats),
    )


def _key(stage: str, item: LayerDiff | ParamDiff) -> tuple[Any, ...]:
    if isinstance(item, LayerDiff):
        return (stage, item.kind, item.module_a, item.call, item.position)
    return (stage, item.kind, item.name_a)


def _reference(
    reference: dict[tuple[Any, ...], TensorMetrics], stage: str, item: LayerDiff | ParamDiff
) -> TensorMetrics | None:
    """The shadow run's metrics for ``item``; a fused group's (``q+k+v``) pooled from its
    parts, measured one by one (a layout moves elements, the means over them stay)."""
    found = reference.get(_key(stage, item))
    if found is not None or not isinstance(item, ParamDiff) or "+" not in item.name_a:
        return found
    parts = [reference.get((stage, item.kind, name)) for name in item.name_a.split("+")]
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
) -> NoiseFloor | None:
    """B's entry (``metrics``: A vs B) against the shadow run's same entry (``noise``: A64
    vs A); None where a verdict is not about rounding (shapes, non-finite values)."""
    if metrics.shape_a != metrics.shape_b or metrics.numel != noise.numel or not metrics.numel:
        return None
    if metrics.nan_a or metrics.nan_b or metrics.inf_a or metrics.inf_b:
        return None
    bound = noise_bound(noise.mean_abs, noise.abs_mean_a, dtype, metrics.numel, base)
    bound += noise.mean_abs
    bound += relative * noise.abs_mean_a
    return NoiseFloor(
        noise=noise.mean_abs,
        error=metrics.mean_abs,
        bound=bound,
        scale=noise.abs_mean_a,
        numel=metrics.numel,
        peak_noise=noise.max_abs,
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


def judge_against_noise(
    result: DiffResult, noise: DiffResult, dtype: str, seconds: float, hyper: float = 0.0
) -> DiffResult:
    """``result`` judged again: each entry the shadow run measured passes or fails by its
    floor (optimizer states also within ``hyper`` of their size, see
    :func:`hyperparameter_rounding`); the first difference, culprits and verdict follow
    (``result.noise`` holds the floors)."""
    references = [_references(step) for step in noise.steps]
    entries: list[NoiseEntry] = []
    unmeasured = 0
    for step in result.steps:
        if not noise.steps:
            break
        # steps the shadow run did not take (no optimizer copied) take its last step's noise
        shadow_step = noise.steps[min(step.index, len(noise.steps) - 1)]
        reference = references[min(step.index, len(noise.steps) - 1)]
        base = 3.0 if step.index else 2.0  # after an update: rounding carried through it
        typical = _typical_noise(reference)
        for stage in _MEASURED:
            judged = []
            for item in getattr(step, stage):
                ref = _reference(reference, stage, item)
                relative = hyper if stage == "optimizer_state" else 0.0
                if item.metrics.numel < SMALL:  # one draw of a few numbers: the step's level
                    relative += _SMALL_FACTOR * typical
                floor = floor_from(item.metrics, ref, dtype, relative, base) if ref else None
                if floor is None:
                    unmeasured += 1
                    judged.append(item)
                    continue
                entries.append(NoiseEntry(stage, _label(item), item.kind, floor, step.index))
                judged.append(replace(item, metrics=_judged(item.metrics, floor)))
            setattr(step, stage, judged)
        unmeasured += len(step.inputs) + len(step.initial_weights)
        if step.loss is not None and shadow_step.loss is not None:
            floor = floor_from(step.loss, shadow_step.loss, dtype, _SMALL_FACTOR * typical, base)
            if floor is not None:
                entries.append(NoiseEntry("loss", "loss", "loss", floor, step.index))
                step.loss = _judged(step.loss, floor)
    single = bool(result.options.get("single_step"))
    configs = result.config_differences
    first = first_difference(result.steps, single_step=single, config_differences=configs)
    result.first_difference = first
    result.culprits = culprits(result.steps, first, single_step=single, config_differences=configs)
    result.ok = first is None
    result.options["tolerance"] = "auto"
    words = _sentence(entries, result.first_difference, single)
    result.noise = TrainingNoise(
        "float64 shadow", dtype, tuple(entries), unmeasured, seconds, words
    )
    return result


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
    """``run`` executed and judged against A's measured noise (the fixed verdict where the
    noise cannot be measured)."""
    copies = shadow_copies(run)
    result = run.execute()
    if copies is None:
        return result
    start = time.perf_counter()
    dtype = copies.dtype
    noise = shadow_run(run, copies)
    del copies
    if noise is None:
        return result
    hyper = 0.0
    if run.optimizer_a is not None and run.optimizer_a.instance is not None:
        hyper = hyperparameter_rounding(run.ops_a.optimizer_config(run.optimizer_a.instance), dtype)
    return judge_against_noise(result, noise, dtype, time.perf_counter() - start, hyper)
