"""``match`` without ONNX: compare two framework models module by module when one cannot export.

Paddle LLM libraries wrap ``forward`` so that ``paddle.jit.save`` refuses the model; the torch
exporter refuses data-dependent Python. :func:`match_natively` still answers: the models run
eagerly in eval mode with hooks on every module pair of the one matching
(:func:`~padiff_ir.pairing.graphs.pair_models`, on eager traces), each pair's outputs are
compared as run (error inherited from upstream included), and, where a pair fails, B's module
is fed A's module inputs to measure its own error (``auto_diff(single_step=True)``'s
mechanism). A module pair whose own error fails is a culprit; the pairs are the module outputs
(no op-level pairs: there is no graph to run). The result says which side fell back and why
(``MatchResult.fallback``). Every entry point of ``match`` answers so
(:func:`answer_natively`): one call and batches alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir._paths import depth, within
from padiff_ir.compare.culprits import culprit_of
from padiff_ir.compare.culprits.own_error import module_result
from padiff_ir.compare.match_result import (
    Culprit,
    Fallback,
    MatchResult,
    ModelInfo,
    ModuleResult,
    ModuleStatus,
    PairResult,
)
from padiff_ir.compare.options import MatchOptions
from padiff_ir.errors import ExportError, InputError
from padiff_ir.frameworks import framework_of, preserved_state
from padiff_ir.hints import Inputs, Model
from padiff_ir.matching.transform_types import Transform
from padiff_ir.metrics import TensorMetrics
from padiff_ir.pairing.pair import Side
from padiff_ir.pairing.stages import Stage, StageTimer

if TYPE_CHECKING:
    from padiff_ir.native.diff_result import DiffResult, LayerDiff

__all__ = ["answer_natively", "fallback_of", "match_natively"]

logger = logging.getLogger(__name__)


def _forward(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    options: MatchOptions,
    *,
    single_step: bool,
    init: bool,
) -> Any:
    from padiff_ir.native import auto_diff

    tolerance = options.tolerance
    with contextlib.ExitStack() as stack:
        stack.enter_context(preserved_state(model_a))
        stack.enter_context(preserved_state(model_b))
        return auto_diff(
            model_a,
            model_b,
            inputs,
            auto_init=init,
            layer_map=options.layer_map,
            atol=tolerance.atol,
            rtol=tolerance.rtol,
            compare_mode=tolerance.mode,
            single_step=single_step,
            diff_phase="forward",
            disable_random_layers=True,
        )


def _by_pair(result: DiffResult) -> dict[tuple[str, str], list[LayerDiff]]:
    found: dict[tuple[str, str], list[LayerDiff]] = {}
    for diff in result.steps[0].forward if result.steps else ():
        found.setdefault((diff.module_a, diff.module_b), []).append(diff)
    return found


def _worst(diffs: list[LayerDiff]) -> TensorMetrics | None:
    if not diffs:
        return None
    failing = [d.metrics for d in diffs if not d.ok]
    return failing[0] if failing else max((d.metrics for d in diffs), key=lambda m: m.max_abs)


def match_natively(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    options: MatchOptions,
    timer: StageTimer,
    fallback: Fallback,
    notes: list[str],
) -> MatchResult:
    """Compare ``model_a`` and ``model_b`` module by module (see the module docstring).

    ``fallback`` says which side could not be exported and why; it is kept in the result.
    """
    with timer.stage(Stage.COMPARE):
        run = _forward(
            model_a, model_b, inputs, options, single_step=False, init=options.assign_weights
        )
    fed = None
    if options.localize and not run.ok:
        with timer.stage(Stage.LOCALIZE):
            fed = _forward(model_a, model_b, inputs, options, single_step=True, init=False)
    as_run, own = _by_pair(run), _by_pair(fed) if fed is not None else {}
    layouts = _layouts(model_a, model_b, inputs, options)
    pairs: list[PairResult] = []
    for index, diff in enumerate(d for ds in as_run.values() for d in ds):
        suffix = f"#{diff.call}" if diff.call else ""
        pairs.append(
            PairResult(
                index=index,
                a=(f"{diff.module_a or '<root>'}{suffix}:output[{diff.position}]",),
                b=(f"{diff.module_b or '<root>'}{suffix}:output[{diff.position}]",),
                module_a=diff.module_a,
                module_b=diff.module_b,
                op_a=diff.class_a,
                op_b=diff.class_b,
                metrics=diff.metrics,
                evidence=("eager-module",),
            )
        )
    pairs.sort(key=lambda p: p.index)
    modules = _modules(run, as_run, own)
    culprits = _culprits(modules, run)
    outputs = [
        dataclasses.replace(p, index=i)
        for i, p in enumerate(p for p in pairs if p.module_a == "" and p.module_b == "")
    ]
    failing = [p for p in pairs if not p.ok]
    ok = run.ok and not failing
    notes = [*notes, *run.notes]
    accumulated = not ok and not culprits and fed is not None
    if accumulated:
        notes.append(
            "the outputs drift apart but no module differs by itself beyond tolerance: "
            "rounding error accumulated, no single culprit"
        )
    return MatchResult(
        ok=ok,
        tolerance=options.tolerance,
        outputs=outputs,
        pairs=pairs,
        modules=modules,
        first_divergence=failing[0] if failing else None,
        culprits=culprits,
        accumulated=accumulated,
        layer_map=list(run.layer_map),
        unmatched=list(run.unmatched),
        model_a=ModelInfo.from_dict(run.model_a),
        model_b=ModelInfo.from_dict(run.model_b),
        timings=dict(timer.timings),
        environment=dict(run.environment),
        notes=notes,
        fallback=fallback,
        layouts=layouts,
    )


def _layouts(
    model_a: Model, model_b: Model, inputs: Inputs, options: MatchOptions
) -> dict[str, Transform]:
    """The parameter layouts of the matching ``auto_diff`` just used (remembered for the pair,
    so this asks nothing new of the models)."""
    from padiff_ir.frameworks.wrapper import unwrap_model
    from padiff_ir.pairing import LayerMap, pair_models
    from padiff_ir.pairing.layout_probes import found_layouts

    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    layer_map = (LayerMap.coerce(options.layer_map) or LayerMap()).resolve(model_a, model_b)
    try:
        matching = pair_models(model_a, model_b, inputs, layer_map=layer_map)
    except InputError:  # as auto_diff did: the module trees
        matching = pair_models(model_a, model_b, None, layer_map=layer_map)
    return found_layouts(matching)


def _modules(run: DiffResult, as_run: dict, own: dict) -> list[ModuleResult]:
    """Each module pair's outputs as run and, where measured, its own error; a failing module
    with a culprit inside contains that one (as in ``localize.measure_modules``: fed A's
    values, a container's children are too, so its own error says nothing of theirs)."""
    modules = [
        module_result(
            pair,
            _worst(as_run.get((pair.a, pair.b), [])),
            _worst(own.get((pair.a, pair.b), [])) if own else None,
            None,
            depth(pair.a),
        )
        for pair in run.layer_map
    ]
    culprit_paths = [m.a for m in modules if m.status is ModuleStatus.CULPRIT]
    return [
        dataclasses.replace(m, status=ModuleStatus.CONTAINS_CULPRIT)
        if m.output is not None
        and not m.output.ok
        and any(p != m.a and within(p, m.a) for p in culprit_paths)
        else m
        for m in modules
    ]


def _culprits(modules: list[ModuleResult], run: DiffResult) -> list[Culprit]:
    """The culprits, explained in the words ``match`` uses, from the settings that
    ``auto_diff`` found different in each."""
    culprits = []
    for module in modules:
        if module.status is not ModuleStatus.CULPRIT:
            continue
        settings = [
            d.split(": ", 1)[-1]
            for d in run.config_differences
            if module.a and (module.a in d or (module.b and module.b in d))
        ]
        culprits.append(culprit_of(module, settings=settings, inherited_error=0.0))
    return culprits


def answer_natively(
    err: ExportError,
    sides: tuple[Side, Side],
    inputs: Inputs,
    options: MatchOptions,
    timer: StageTimer,
    notes: list[str],
) -> MatchResult:
    """The answer of every ``match`` entry point (one call, batches) when a model cannot be
    exported: the models compared module by module on ``inputs`` (:func:`match_natively`),
    the result saying which side fell back and why.

    Raises:
        ``err`` when a side is an ONNX file (nothing to run natively); the interrupt inside
        ``err`` as itself.
    """
    reraise_interruption(err)
    (model_a, framework_a, _), (model_b, framework_b, _) = sides
    if "onnx" in (framework_a, framework_b):
        raise err
    side = err.side or "B"
    fallback = fallback_of(model_a if side == "A" else model_b, side, err)
    logger.warning("match: %s", fallback.reason)
    return match_natively(model_a, model_b, inputs, options, timer, fallback, notes)


def fallback_of(model: Model, side: str, err: Exception) -> Fallback:
    """Which side fell back and why, for :attr:`MatchResult.fallback`."""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return Fallback(
        side, framework_of(model).name, type(model).__name__, f"{type(err).__name__}: {reason}"
    )
