"""The float64 shadows ``auto_diff(..., tolerance="auto")`` measures noise with.

Before the call changes the models, :func:`shadow_copies` makes A's float64 shadow (and, where
the *working dtype*, the lower precision of the two models, is not A's own, A's copy in it),
each with a copy of A's optimizer where the framework can make one
(:meth:`Framework.cast_copy_trained`), and B's float64 shadow with its optimizer (after
``auto_init``, so it holds the weights B starts from). :func:`shadow_run` compares a copy with
its shadow through the call's steps, as the call compares A with B: its metrics are that
model's rounding, entry by entry. Without a copy, A's values as the call computed them (kept
by the call, :mod:`padiff_ir.native._replay`) stand for the copy and only the shadow runs.
B's shadow only runs where B leaves A's noise (:func:`padiff_ir.native._noise.measured_call`);
its copy in B's own dtype is cast back from the shadow (a float32 or 16-bit value survives
float64 exactly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.frameworks import Framework
from padiff_ir.hints import Model, Optimizer
from padiff_ir.matching.transform_types import IDENTITY
from padiff_ir.matching.types import Matching, ParamPair
from padiff_ir.metrics import Tolerance
from padiff_ir.native._replay import StepRecord
from padiff_ir.native._run import TrainingRun
from padiff_ir.native.diff_result import DiffResult
from padiff_ir.pairing.assign import assign_weight
from padiff_ir.pairing.noise_floor import lower_precision

__all__ = ["Copies", "Shadow", "b_working", "shadow_copies", "shadow_run"]

logger = logging.getLogger(__name__)

_WORKING = ("float32", "float16", "bfloat16")
_LOOSE = Tolerance(atol=1e30, rtol=0.0, mode="strict")  # the shadow runs only measure


@dataclass(frozen=True)
class Shadow:
    """One model's float64 shadow and the copy to compare it with, with their optimizers
    (copies of the model's, stepping the copies; None where it cannot be copied so). Without
    a copy (``working`` None) the model as the call ran it is replayed against the shadow."""

    shadow: Model
    working: Model | None = None
    shadow_optimizer: Optimizer | None = None
    working_optimizer: Optimizer | None = None

    @property
    def trained(self) -> bool:
        """Whether the shadow (and the copy) step with the call's optimizer."""
        if self.shadow_optimizer is None:
            return False
        return self.working is None or self.working_optimizer is not None


@dataclass(frozen=True)
class Copies:
    """A's shadow (and copy in the working dtype ``dtype``, where that is not A's own);
    B's float64 shadow (None where B cannot be copied); each model's own dtype."""

    a: Shadow
    dtype: str
    b: Callable[[], Shadow | None] | None = None  # made before the call or after, see _b_shadow
    dtype_a: str = "float32"
    dtype_b: str = "float32"


def _label(ops: Framework, model: Model) -> str:
    dtype, _ = ops.first_float(model)
    return ops.dtype_label(dtype) if dtype is not None else "float32"


def _copy(
    ops: Framework, model: Model, optimizer: Optimizer | None, dtype: str
) -> tuple[Model, Optimizer | None]:
    """``model`` (with ``optimizer``, where given and copyable) cast to ``dtype``."""
    if optimizer is not None:
        try:
            return ops.cast_copy_trained(model, optimizer, dtype)
        except NotImplementedError:
            pass
    return ops.cast_copy(model, dtype), None


def shadow_copies(run: TrainingRun) -> Copies | None:
    """The shadows (and A's copy in the working dtype where A computes in another), made
    before the call changes A and B (None, with a note on ``run``, where the working dtype
    has no float64 comparison here or A cannot be copied)."""
    dtype_a, dtype_b = _label(run.ops_a, run.model_a), _label(run.ops_b, run.model_b)
    dtype = lower_precision(dtype_a, dtype_b)
    if dtype not in _WORKING:
        run.notes.append(f"tolerance='auto': a {dtype} model's noise is not measured here")
        return None
    trained = run.backward and run.optimizer_a is not None and run.optimizer_a.instance is not None
    optimizer = run.optimizer_a.instance if trained and run.optimizer_a else None
    try:
        shadow, shadow_opt = _copy(run.ops_a, run.model_a, optimizer, "float64")
        working, working_opt = None, None
        if dtype != dtype_a:  # A as run is not in the working dtype: a copy in it is
            working, working_opt = _copy(run.ops_a, run.model_a, optimizer, dtype)
    except Exception as err:
        reraise_interruption(err)
        run.notes.append(f"tolerance='auto': A could not be copied in float64 ({err})")
        return None
    a = Shadow(shadow, working, shadow_opt, working_opt)
    if trained and not a.trained:
        run.notes.append(
            f"tolerance='auto': {run.fw_a}'s optimizer is not copied: post-step "
            "weights and optimizer states keep the fixed tolerance"
        )
    return Copies(a, dtype, _b_shadow(run, a.trained), dtype_a, dtype_b)


def _b_shadow(run: TrainingRun, trained: bool) -> Callable[[], Shadow | None] | None:
    """B's float64 shadow with its optimizer, holding the weights B starts the call from
    (A's, where ``auto_init`` copies them: done here first, the call's copy repeats it). Made
    now where the call's optimizer steps B; otherwise later, only if needed (B's weights do
    not change; its buffers, which a forward may update, are kept now and written back)."""
    optimizer = run.optimizer_b.instance if trained and run.optimizer_b else None
    stepped = run.backward and run.optimizer_b is not None
    try:
        if run.auto_init:
            assign_weight(run.model_b, run.model_a, matching=run.matching)
        if not stepped:
            trainable = run.ops_b.named_parameters(run.model_b)
            buffers = {
                name: run.ops_b.to_numpy(tensor)
                for name, tensor in run.ops_b.named_state(run.model_b).items()
                if name not in trainable and run.ops_b.is_floating(tensor)
            }
            return lambda: _later_b_shadow(run, buffers)
        shadow, shadow_opt = _copy(run.ops_b, run.model_b, optimizer, "float64")
    except Exception as err:
        reraise_interruption(err)
        logger.info("B could not be copied in float64 (%s): its noise is A's", err)
        return None
    if trained and shadow_opt is None:
        return None  # B's steps could not be followed: A's noise alone, as before
    made = Shadow(shadow, None, shadow_opt)
    return lambda: made


def _later_b_shadow(run: TrainingRun, buffers: dict[str, Any]) -> Shadow | None:
    """B's float64 shadow made after the call: B's weights, the buffers it started with."""
    try:
        shadow = run.ops_b.cast_copy(run.model_b, "float64")
        state = run.ops_b.named_state(shadow)
        for name, array in buffers.items():
            run.ops_b.write(state[name], array)
    except Exception as err:
        reraise_interruption(err)
        logger.info("B could not be copied in float64 (%s): its noise is A's", err)
        return None
    return Shadow(shadow)


def b_working(run: TrainingRun, b: Shadow, dtype: str) -> Shadow | None:
    """B's shadow with its copy in B's dtype, cast back from the shadow (None, with a note,
    where the cast fails)."""
    try:
        working, working_opt = _copy(run.ops_b, b.shadow, b.shadow_optimizer, dtype)
    except Exception as err:
        reraise_interruption(err)
        run.notes.append(f"tolerance='auto': B's own noise is not measured ({err})")
        return None
    return Shadow(b.shadow, working, b.shadow_optimizer, working_opt)


def shadow_run(
    run: TrainingRun, copies: Shadow, side: str = "a", records: list[StepRecord] | None = None
) -> DiffResult | None:
    """``copies.working`` compared with ``copies.shadow`` through the call's steps, as ``run``
    compares A with B (``side``: whose model they copy; the metrics are its rounding; None,
    with a note, where it fails: an op without a float64 or 16-bit kernel). Without a copy,
    A's ``records`` (the call's own run of A) are replayed against the shadow: only the
    shadow runs. Without copied optimizers, one step without an update."""
    loss_step = run.loss_a if side == "a" else run.loss_b
    loss = loss_step.fn if loss_step is not None else None
    steps = run.steps if copies.trained else 1
    if copies.working is None:
        if not records:
            return None
        steps = min(steps, len(records))
        models = (run.model_a, copies.shadow)
        own = run.optimizer_a.value if run.optimizer_a is not None else None
        optimizers = [own, copies.shadow_optimizer]
    else:
        models = (copies.shadow, copies.working)
        optimizers = [copies.shadow_optimizer, copies.working_optimizer]
    try:
        noise = TrainingRun.prepare(
            *models,
            run.inputs_a if side == "a" else run.inputs_b,
            auto_init=False,
            layer_map=None,
            tolerance=_LOOSE,
            single_step=run.single_step,
            diff_phase=run.diff_phase,
            loss_fn=[loss, loss] if loss is not None else None,
            optimizer=optimizers if copies.trained else None,
            steps=steps,
            blacklist=(),
            whitelist=(),
            matching=_onto_itself(run.matching, side),
            disable_random_layers=run.disable_random,
            workers=run.workers,
        )
        if copies.working is None:
            noise.replayed = list(records[:steps]) if records else []
        return noise.execute()
    except Exception as err:
        reraise_interruption(err)
        logger.info("the float64 shadow of %s did not run: %s", side.upper(), err)
        run.notes.append(f"tolerance='auto': {side.upper()}'s copies did not run ({err})")
        return None


_SIDE_FIELDS = ("{}", "class_{}", "call_{}", "outputs_{}", "inputs_{}")
"""A module pair's fields of one side (``a``, ``class_a``...), ``{}`` the side."""


def _onto_itself(matching: Matching, side: str) -> Matching:
    """One side of ``matching`` paired with itself (a shadow and its copy share the names)."""
    other = "b" if side == "a" else "a"
    pairs = [  # the other side's fields made this side's: a pair of one module with itself
        replace(p, **{f.format(other): getattr(p, f.format(side)) for f in _SIDE_FIELDS})
        for p in matching.module_pairs
    ]
    params: dict[str, ParamPair] = {}
    for p in matching.param_pairs:  # a fused group's parts one by one: the copy's own layout
        module = p.module_a if side == "a" else p.module_b
        used = p.also_used_in if side == "a" else ()
        for name in p.a if side == "a" else p.b:
            params.setdefault(
                name,
                replace(
                    p,
                    a=(name,),
                    b=(name,),
                    module_a=module,
                    module_b=module,
                    transform=IDENTITY,
                    also_used_in=used,
                ),
            )
    return Matching(
        module_pairs=pairs, param_pairs=list(params.values()), stats=dict(matching.stats)
    )
