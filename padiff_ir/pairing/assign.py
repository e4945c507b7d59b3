"""Copy weights from one model to the other: ``assign_weight(target, source)``.

The argument order follows PaDiff: ``assign_weight(paddle_model, torch_model)`` copies the torch
weights into the paddle model. Either model may be torch or paddle (or a
:class:`~padiff_ir.frameworks.wrapper.PadiffModel` wrapper), the same framework included.

Parameters are paired by a :class:`~padiff_ir.matching.types.Matching`: the one given, or the
one :func:`~padiff_ir.pairing.graphs.pair_models` makes for the two models (the same every entry
point gets). A matching pairs
A with B, A being the torch side for a torch/paddle pair; each pair's transform turns A's layout
into B's, and its inverse is applied when the target is A. Which model is A is checked against
the parameter names of the matching, so a matching of either orientation works.

Nothing is written unless everything fits. Every parameter and persistent buffer of the target
must receive a value: those left without a source raise :class:`WeightAssignError`, all listed
at once, except the documented skips (torch's ``num_batches_tracked`` when the source is
paddle, modules ignored by the layer map) which the :class:`AssignReport` lists with reasons.
Targets keep their dtype and device.

The report's dataclasses and the coverage check live in :mod:`padiff_ir.pairing._coverage`
(``AssignReport``, ``CopiedWeight`` and ``SkippedWeight`` are re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from padiff_ir._paths import join, leaf
from padiff_ir.errors import LayoutError, MatchError, WeightAssignError
from padiff_ir.exporters import model_tensors
from padiff_ir.frameworks import Framework, framework_of, unwrap_model
from padiff_ir.hints import Inputs, Model, Module, Tensor
from padiff_ir.matching.transform_types import IDENTITY, ModuleTransform
from padiff_ir.matching.transforms import SKIPPED_TENSORS, get_weight_transform
from padiff_ir.matching.types import Matching, ParamPair
from padiff_ir.pairing._coverage import (
    AssignReport,
    CopiedWeight,
    SkippedWeight,
    coverage,
    tensor_shape,
    unread_buffers,
)
from padiff_ir.pairing.graphs import pair_models
from padiff_ir.pairing.layer_map import LayerMap, named_modules

__all__ = ["AssignReport", "CopiedWeight", "SkippedWeight", "assign_weight", "auto_layer_map"]

logger = logging.getLogger(__name__)


def auto_layer_map(
    model_a: Model, model_b: Model, inputs: Inputs = None, *, layer_map: LayerMap | None = None
) -> LayerMap:
    """A layer map pinning every module pair the matching finds (to inspect and edit).

    The pairs are those :func:`padiff_ir.match` and :func:`padiff_ir.auto_diff` use for the same
    models and inputs (:func:`~padiff_ir.pairing.graphs.pair_models`); without ``inputs``, the
    module trees are matched. The ignores and black boxes of ``layer_map`` are kept.

    Example:
        >>> import paddle, torch
        >>> t = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        >>> p = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.ReLU())
        >>> auto_layer_map(t, p, torch.zeros(2, 4)).pairs
        {'': '', '0': '0', '1': '1'}
    """
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    base = (LayerMap.coerce(layer_map) or LayerMap()).resolve(model_a, model_b)
    matching = pair_models(model_a, model_b, inputs, layer_map=base)
    result = LayerMap.from_matching(matching)
    for name in ("ignored_a", "ignored_b", "ignored_self_a", "ignored_self_b"):
        getattr(result, name).update(getattr(base, name))
    result.black_box_a |= base.black_box_a
    result.black_box_b |= base.black_box_b
    return result


def _orient_by_default(target: Model, source: Model) -> bool:
    """True when the target is model A: A is the torch model, or the source for one framework."""
    framework_t, framework_s = framework_of(target), framework_of(source)
    return framework_t.name != framework_s.name and framework_t.reference


def _stateless(*models: Model) -> set[str]:
    """Names of the models' non-persistent buffers (RoPE ``inv_freq``): derived from the
    config, no part of the state; a pair of them is compared through what it computes and
    never copied."""
    names: set[str] = set()
    for model in models:
        fw = framework_of(model)
        names |= set(model_tensors(model, fw.name)) - set(fw.named_tensors(model))
    return names


def _matching_orientation(matching: Matching, target: Model, source: Model) -> bool:
    names_t = set(framework_of(target).named_tensors(target))
    names_s = set(framework_of(source).named_tensors(source))
    stateless = _stateless(target, source)
    names_a = {n for p in matching.param_pairs for n in p.a if n not in stateless}
    names_b = {n for p in matching.param_pairs for n in p.b if n not in stateless}
    target_is_a = names_a <= names_t and names_b <= names_s
    source_is_a = names_a <= names_s and names_b <= names_t
    if target_is_a and source_is_a:
        framework_a = matching.stats.get("framework_a")
        framework_t, framework_s = framework_of(target).name, framework_of(source).name
        if framework_a and framework_t != framework_s:
            return framework_t == framework_a
        return _orient_by_default(target, source)
    if target_is_a or source_is_a:
        return target_is_a
    missing = sorted((names_a - names_s - names_t) | (names_b - names_s - names_t))[:10]
    raise WeightAssignError(
        "the matching's parameter names do not belong to these two models "
        f"(e.g. {', '.join(map(repr, missing)) or 'A and B names mixed'}); pass the matching "
        "computed for these models"
    )


def _resolve_layer_map(
    layer_map: LayerMap | None, model_a: Model, model_b: Model
) -> tuple[LayerMap, bool]:
    """The resolved layer map, and whether A/B had to be swapped for its paths to fit."""
    layer_map = LayerMap.coerce(layer_map) or LayerMap()
    try:
        return layer_map.resolve(model_a, model_b), False
    except MatchError as err:
        if not layer_map.is_resolved:
            raise
        try:
            return layer_map.resolve(model_b, model_a), True
        except MatchError:
            raise err from None


def assign_weight(
    target: Model,
    source: Model,
    layer_map: LayerMap | None = None,
    *,
    matching: Matching | None = None,
    inputs: Inputs = None,
) -> AssignReport:
    """Copy the weights of ``source`` into ``target`` (PaDiff order: target first).

    Args:
        target: the model written to (torch module, paddle layer or wrapper).
        source: the model read from.
        layer_map: pins, ignores and black boxes, paths from A (the torch model; for two models
            of one framework, ``source``) to B, or PaDiff-style objects. Its ignored target
            modules are skipped.
        matching: parameter pairs to use (from ``match_graphs``); when absent,
            :func:`~padiff_ir.pairing.graphs.pair_models` pairs the models: the matching an
            earlier ``match``/``auto_layer_map``/``auto_diff`` call made for these models, else
            one made on ``inputs`` if given, else on the module trees.
        inputs: example inputs for the matching (a run beats the definition order).

    Returns:
        An :class:`AssignReport`.

    Raises:
        WeightAssignError: target tensors left without a source (all listed), shape conflicts
            (both sides' names and shapes), or a missing registered weight transform.
        LayoutError: a fused layout could not be proven by probing (none or several reproduce
            the modules' outputs), or, without inputs, cannot be probed.

    Example:
        >>> import paddle, torch
        >>> t = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        >>> p = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.ReLU())
        >>> report = assign_weight(p, t)
        >>> report.summary()
        'copied 2 tensor group(s) torch -> paddle'
        >>> bool((p[0].weight.numpy() == t[0].weight.detach().numpy().T).all())
        True
    """
    target, source = unwrap_model(target), unwrap_model(source)
    matching, resolved, target_is_a = _oriented_matching(
        target, source, layer_map, matching, inputs
    )
    plan = _plan(target, source, matching, target_is_a)
    skipped = _check(plan, matching, resolved)
    for tensor, array in plan.writes:
        plan.target.write(tensor, array)
    report = AssignReport(
        plan.source.name, plan.target.name, tuple(plan.copied), skipped, tuple(plan.unused)
    )
    logger.debug("%s", report.summary())
    return report


def _oriented_matching(
    target: Model,
    source: Model,
    layer_map: LayerMap | None,
    matching: Matching | None,
    inputs: Inputs,
) -> tuple[Matching, LayerMap, bool]:
    """The matching to copy by, the resolved layer map, and whether the target is model A.

    Raises:
        LayoutError: the matching leaves a fused layout unsettled (never copied in a guessed
            order).
    """
    if matching is not None:
        target_is_a = _matching_orientation(matching, target, source)
        model_a, model_b = (target, source) if target_is_a else (source, target)
        resolved, _ = _resolve_layer_map(layer_map, model_a, model_b)
    else:
        target_is_a = _orient_by_default(target, source)
        model_a, model_b = (target, source) if target_is_a else (source, target)
        resolved, swapped = _resolve_layer_map(layer_map, model_a, model_b)
        if swapped:
            target_is_a = not target_is_a
            model_a, model_b = model_b, model_a
        matching = pair_models(model_a, model_b, inputs, layer_map=resolved)
    unsettled = matching.stats.get("layouts_unsettled")
    if unsettled:  # a fused layout probing could not prove: never copied in a guessed order
        raise LayoutError(str(unsettled))
    return matching, resolved, target_is_a


@dataclass
class _CopyPlan:
    """What a copy writes where (planned before anything is written), and what it found wrong."""

    target: Framework
    source: Framework
    target_model: Any
    source_model: Any
    target_is_a: bool
    tensors_t: dict[str, Any]
    tensors_s: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    writes: list[tuple[Any, np.ndarray]] = field(default_factory=list)
    written: dict[int, str] = field(default_factory=dict)  # id(target tensor) -> its sources
    used: set[int] = field(default_factory=set)  # id(source tensor)
    copied: list[CopiedWeight] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def record(self, name: str, array: np.ndarray, source_names: tuple[str, ...]) -> None:
        """Plan writing ``array`` into target tensor ``name``."""
        tensor = self.tensors_t[name]
        if id(tensor) in self.written:
            if any(t is tensor and np.array_equal(a, array) for t, a in self.writes):
                return  # a tied tensor, given the same value twice
            self.problems.append(
                f"target {name!r} receives two values (from {self.written[id(tensor)]} and "
                f"{', '.join(source_names)}); fix the matching or pin the layers"
            )
            return
        self.written[id(tensor)] = ", ".join(source_names)
        self.writes.append((tensor, array))


def _plan(target: Model, source: Model, matching: Matching, target_is_a: bool) -> _CopyPlan:
    """Every write the matching's parameter pairs ask for, each value made (nothing written)."""
    fw_t, fw_s = framework_of(target), framework_of(source)
    plan = _CopyPlan(
        fw_t,
        fw_s,
        target,
        source,
        target_is_a,
        fw_t.named_tensors(target),
        fw_s.named_tensors(source),
    )
    stateless = _stateless(target, source)
    modules = dict(named_modules(source)), dict(named_modules(target))
    for pair in matching.param_pairs:
        names_s, names_t = (pair.b, pair.a) if target_is_a else (pair.a, pair.b)
        if stateless >= {*names_s, *names_t}:
            logger.debug("not copied (non-persistent buffers): %s -> %s", names_s, names_t)
            continue
        _plan_pair(plan, pair, modules)
    tensors_t, tensors_s = plan.tensors_t, plan.tensors_s
    for name_t, name_s in unread_buffers(matching, target_is_a, tensors_t, tensors_s, plan.written):
        plan.record(name_t, fw_s.to_numpy(tensors_s[name_s]), (name_s,))
        plan.used.add(id(tensors_s[name_s]))
        plan.copied.append(CopiedWeight((name_s,), (name_t,), IDENTITY))
    return plan


def _plan_pair(
    plan: _CopyPlan, pair: ParamPair, modules: tuple[dict[str, Module], dict[str, Module]]
) -> None:
    """Plan the writes of one parameter pair (through its transform, inverted when the target
    is A, or a registered weight transform of its modules)."""
    target_is_a, tensors_t, tensors_s = plan.target_is_a, plan.tensors_t, plan.tensors_s
    names_s, names_t = (pair.b, pair.a) if target_is_a else (pair.a, pair.b)
    module_s, module_t = (
        (pair.module_b, pair.module_a) if target_is_a else (pair.module_a, pair.module_b)
    )
    unknown = [f"source {n!r}" for n in names_s if n not in tensors_s]
    unknown += [f"target {n!r}" for n in names_t if n not in tensors_t]
    if unknown:
        plan.problems.append(f"the matching names tensors the models lack: {', '.join(unknown)}")
        return
    plan.used.update(id(tensors_s[n]) for n in names_s)
    if isinstance(pair.transform, ModuleTransform):
        plan.problems += _module_copy(names_t, module_s, module_t, *modules, plan.record)
        plan.copied.append(CopiedWeight(names_s, names_t, pair.transform))
        return
    arrays = [plan.source.to_numpy(tensors_s[n]) for n in names_s]
    shapes_t = [tensor_shape(tensors_t[n]) for n in names_t]
    transform = pair.transform if not target_is_a else pair.transform.invert()
    try:
        results = transform.apply(arrays, target_shapes=shapes_t)
    except WeightAssignError as err:
        plan.problems.append(
            f"shape conflict: {plan.source.name} {_describe(names_s, tensors_s)} cannot fill "
            f"{plan.target.name} {_describe(names_t, tensors_t)} ({err})"
        )
        return
    for name, array in zip(names_t, results):
        plan.record(name, array, names_s)
    plan.copied.append(CopiedWeight(names_s, names_t, transform))


def _check(plan: _CopyPlan, matching: Matching, resolved: LayerMap) -> tuple[SkippedWeight, ...]:
    """The documented skips of a plan; the source tensors it copies nowhere go to
    ``plan.unused``.

    Raises:
        WeightAssignError: the plan leaves target tensors without a value or found other
            problems (all listed).
    """
    framework_s, framework_t = plan.source.name, plan.target.name
    target_side = "a" if plan.target_is_a else "b"
    skipped, missing = coverage(
        plan.tensors_t, plan.written, matching, resolved, target_side, framework_s, framework_t
    )
    problems = plan.problems + missing
    skipped_source = []
    seen: set[int] = set()
    for name, tensor in plan.tensors_s.items():
        if id(tensor) in plan.used or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        last = leaf(name)
        if last in SKIPPED_TENSORS and framework_s != framework_t:
            skipped_source.append(SkippedWeight(name, "source", SKIPPED_TENSORS[last]))
        else:
            plan.unused.append(name)
    if problems:
        if missing and plan.unused:
            problems.append(
                f"{framework_s} tensors copied nowhere (no layout of them fits the targets "
                f"above): {_describe(tuple(plan.unused[:12]), plan.tensors_s)}"
            )
        raise WeightAssignError(
            f"cannot copy the weights of {framework_s} {type(plan.source_model).__name__} into "
            f"{framework_t} {type(plan.target_model).__name__}; {len(problems)} problem(s):\n  - "
            + "\n  - ".join(problems)
            + "\nPin the layers with a LayerMap, ignore the ones to leave alone, or register a "
            "weight transform for layers whose parameters differ."
        )
    if plan.unused:
        logger.warning(
            "%d source tensor(s) copied nowhere: %s", len(plan.unused), ", ".join(plan.unused[:10])
        )
    return tuple(skipped + skipped_source)


def _describe(names: tuple[str, ...], tensors: Mapping[str, Tensor]) -> str:
    return ", ".join(f"{n!r} {tensor_shape(tensors[n])}" for n in names)


def _module_copy(
    names_t: tuple[str, ...],
    module_s: str,
    module_t: str,
    modules_s: Mapping[str, Module],
    modules_t: Mapping[str, Module],
    record: Any,
) -> list[str]:
    """Run a registered weight transform; return problems."""
    source_module, target_module = modules_s[module_s], modules_t[module_t]
    class_s, class_t = type(source_module).__name__, type(target_module).__name__
    fn = get_weight_transform(class_s, class_t)
    if fn is None:
        return [
            f"no weight transform registered for {class_s} {module_s!r} -> {class_t} "
            f"{module_t!r}; call register_weight_transform({class_s!r}, {class_t!r}, fn)"
        ]
    values = fn(source_module, target_module)
    if values is None:  # the function wrote the target itself
        return []
    from padiff_ir.frameworks.inputs import to_numpy

    problems = []
    given = {join(module_t, k): v for k, v in values.items()}
    for name in names_t:
        if name not in given:
            problems.append(
                f"weight transform {class_s} -> {class_t} gave no value for target {name!r}"
            )
    for name, value in given.items():
        if name not in names_t:
            problems.append(f"weight transform {class_s} -> {class_t} names unknown {name!r}")
            continue
        array = to_numpy(value, what=f"value for {name!r}")
        record(name, array, (f"{class_s} {module_s!r}",))
    return problems
