"""The ``match`` pipeline: export, match, run and compare two models node by node.

Stages (each timed in ``MatchResult.timings``, see :class:`~padiff_ir.pairing.stages.Stage`):

0. **eager**: both framework models run once (their outputs, and each module's inputs and
   outputs, for the export-fidelity check);
1. **export** both models with attribution (an ONNX file is used as it is);
2. **ir**: graph IR and canonicalising passes;
3. **match**: tensor pairs, module pairs (the layer_map), parameter pairs;
4. **assign** (with ``assign_weights=True``): A's weights copied into B through the
   parameter map, into B's model and its exported graph alike (:mod:`.weights`);
5. **run** both graphs in onnxruntime recording the tensors the comparison reads;
6. **compare** every matched tensor pair and the outputs (:mod:`.pairs`);
7. **localize**: each module's own error (B's module fed A's inputs), culprits, explanations
   (:mod:`.culprits`);
8. **fidelity**: does each exported graph reproduce its eager model? (:mod:`.culprits.fidelity`).

Stages 1-4 depend on the models and the input signature only: they prepare a
:class:`~padiff_ir.pairing.pair.ModelPair` (:data:`~padiff_ir.pairing.pair.PREPARATION`,
:mod:`.prepared`; what is kept across calls lives in the one cache,
:mod:`padiff_ir.pairing.cache`); stages 5-8 check it on the inputs (:mod:`.check`). A model
that cannot be exported is compared natively (:func:`.native_match.answer_natively`), as in
:class:`~.comparison.Comparison`. The eager runs of stage 0 record the models' outputs only;
every module is recorded only when an export's outputs depart from its model's.

:func:`padiff_ir.match` is the public entry; it builds a
:class:`~padiff_ir.compare.options.MatchOptions` and calls :func:`match` here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from padiff_ir.compare.check import EagerPair, checker
from padiff_ir.compare.eager import eager_side, run_eager_pair
from padiff_ir.compare.match_result import MatchResult
from padiff_ir.compare.native_match import answer_natively
from padiff_ir.compare.options import MatchOptions
from padiff_ir.compare.prepared import prepare_pair
from padiff_ir.compare.verify import verified
from padiff_ir.errors import ExportError, MatchError
from padiff_ir.exporters import FRAMEWORK_LOCK, detect_framework
from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.inputs import split_inputs
from padiff_ir.frameworks.rounding import rounded_inputs
from padiff_ir.hints import Inputs, Model
from padiff_ir.pairing.pair import ModelPair
from padiff_ir.pairing.stages import Stage, StageTimer

__all__ = ["match", "resolve_sides"]

logger = logging.getLogger(__name__)


def _resolve_layer_map(layer_map: Any, model_a: Model, model_b: Model, files: bool) -> Any:
    """``layer_map`` as a :class:`LayerMap` of paths (None stays None).

    Raises:
        OptionError: ``layer_map`` is neither a LayerMap nor a dict.
        MatchError: object entries with a model given as a file, or a bad pin.
    """
    from padiff_ir.pairing.layer_map import LayerMap

    layer_map = LayerMap.coerce(layer_map)
    if layer_map is None:
        return None
    if files and not layer_map.is_resolved:
        raise MatchError(
            "a layer_map of module objects needs both models as objects; with an "
            "ONNX file, pin module paths instead"
        )
    if not files:  # object entries become paths; every path is checked against the models
        layer_map = layer_map.resolve(model_a, model_b)
    return layer_map


def match(model_a: Model, model_b: Model, inputs: Inputs, options: MatchOptions) -> MatchResult:
    """Compare two models node by node; find the first divergence and its cause.

    See :func:`padiff_ir.match` for the arguments and the result; ``options`` holds its
    keyword arguments.
    """
    from padiff_ir.frameworks.wrapper import unwrap_model

    # one comparison at a time: the frameworks' global state is shared
    with FRAMEWORK_LOCK, contextlib.ExitStack() as eager_runs:
        model_a, model_b, framework_a, framework_b, options = resolve_sides(
            model_a, model_b, options, unwrap_model
        )
        raw_a, raw_b = split_inputs(inputs, framework_a, framework_b)
        sides = rounded_sides((model_a, framework_a, raw_a), (model_b, framework_b, raw_b))
        result, eager = _match(sides, inputs, options, eager_runs)
        if options.auto_tolerance:  # judged in units of measured noise, on the same sides
            from padiff_ir.compare.noise_verdict import judged_by_noise

            with StageTimer(options.progress).stage(Stage.NOISE):  # timed in the result
                result = judged_by_noise(result, *sides, options.memory_budget, eager)
        return result


def _train_mode_notes(sides: tuple[tuple[str, Model, str], ...]) -> list[str]:
    notes = []
    for label, model, framework in sides:
        if framework != "onnx" and getattr(model, "training", False):
            notes.append(
                f"model {label} ({framework} {type(model).__name__}) is in train mode: "
                "match compares both models in eval mode (no dropout, normalisation "
                "by running statistics) and leaves the mode as it was; use "
                "padiff_ir.auto_diff to compare them training"
            )
    return notes


Side = tuple[Any, str, Any]  # model, framework, raw inputs


def rounded_sides(side_a: Side, side_b: Side) -> tuple[Side, Side]:
    """Both sides with their floating inputs rounded through both models' dtypes and held in
    their own model's (:func:`~padiff_ir.frameworks.rounding.rounded_inputs`: a float16 model
    against a float32 one); sides with an ONNX file as given."""
    (model_a, framework_a, raw_a), (model_b, framework_b, raw_b) = side_a, side_b
    if "onnx" in (framework_a, framework_b):
        return side_a, side_b
    fw_a, fw_b = get_framework(framework_a), get_framework(framework_b)
    raw_a, raw_b = rounded_inputs(raw_a, fw_a, model_a, raw_b, fw_b, model_b)
    return (model_a, framework_a, raw_a), (model_b, framework_b, raw_b)


def resolve_sides(
    model_a: Model, model_b: Model, options: MatchOptions, unwrap_model: Callable[[Model], Model]
) -> tuple[Any, Any, str, str, MatchOptions]:
    """Both models unwrapped, their frameworks, and ``options`` with its layer map resolved
    (a bad layer map fails before the slow export)."""
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    framework_a, framework_b = detect_framework(model_a), detect_framework(model_b)
    files = "onnx" in (framework_a, framework_b)
    options = dataclasses.replace(
        options, layer_map=_resolve_layer_map(options.layer_map, model_a, model_b, files)
    )
    return model_a, model_b, framework_a, framework_b, options


def _match(
    sides: tuple[Side, Side],
    inputs: Inputs,
    options: MatchOptions,
    eager_runs: contextlib.ExitStack,
) -> tuple[MatchResult, EagerPair]:
    """One ``match`` on resolved sides (models unwrapped, inputs split and rounded) and
    ``options`` with its layer map resolved; with the eager runs of both models on those
    inputs as the models now are (closed with ``eager_runs``). With ``tolerance="auto"``
    they record every module: the noise measurement judges with them."""
    timer = StageTimer(options.progress)
    side_a, side_b = sides
    (model_a, framework_a, raw_a), (model_b, framework_b, raw_b) = side_a, side_b
    budget, recorded = options.memory_budget, bool(options.auto_tolerance)
    with timer.stage(Stage.EAGER):
        eager = run_eager_pair((side_a, side_b), eager_runs, memory_budget=budget, modules=recorded)
    notes = _train_mode_notes((("A", model_a, framework_a), ("B", model_b, framework_b)))
    try:
        # a later call on the same models reuses this one's sessions (pairing.kept)
        prepared = prepare_pair(side_a, side_b, inputs, options, timer, reuse=True)
    except ExportError as err:  # match still answers: module by module, natively
        native = answer_natively(err, (side_a, side_b), inputs, options, timer, notes)
        return native, _current(eager, options)
    try:
        if options.assign_weights and eager[1] is not None and framework_a != "onnx":
            # B's eager run predates its new weights
            eager[1].close()
            rerun = eager_side(*side_b, "B", budget, modules=recorded)
            eager = (eager[0], eager_runs.enter_context(rerun) if rerun else None)

        def by_module() -> EagerPair:
            if all(run is None or run.by_module for run in eager):
                return eager
            return run_eager_pair((side_a, side_b), eager_runs, memory_budget=budget, modules=True)

        check = checker((raw_a, raw_b), eager, by_module, options, timer, notes)

        def prepare_fresh(fresh: tuple[bool, bool]) -> ModelPair:
            return prepare_pair(side_a, side_b, inputs, options, timer, reuse=True, fresh=fresh)

        # a graph served by fingerprint that departs from its model is exported again
        try:
            prepared, result = verified(prepared, check, prepare_fresh, ModelPair.release)
        except ExportError as err:  # the fresh export failed: as a first export failing
            native = answer_natively(err, (side_a, side_b), inputs, options, timer, notes)
            return native, _current(eager, options)
        return result, eager
    finally:
        prepared.release()


def _current(eager: EagerPair, options: MatchOptions) -> EagerPair:
    """The eager runs still true of the models after a native answer (which with
    ``assign_weights`` gives B A's weights: B's run predates them)."""
    return (eager[0], None) if options.assign_weights else eager
