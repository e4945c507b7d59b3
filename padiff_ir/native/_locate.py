"""Find the first difference of a run and say what it suggests.

Stages run in the order of :data:`~padiff_ir.native.diff_result.STAGES`; within the forward stage
entries are ordered by completion (layer outputs, then running statistics of the same layer),
within the backward stage in the order a backward pass reaches them (a layer's output gradient,
its parameter gradients, then the gradient it passes to its input). The first failing entry of
the first failing step is the answer. Its message reads the entries around it: a layer whose
output gradient agrees but whose input or parameter gradient does not computes its own backward
differently; weights that differ after the update while the gradients agreed point at the
optimizers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from padiff_ir._paths import split_call_site, strictly_within
from padiff_ir.native.diff_result import FirstDifference, LayerDiff, ParamDiff, StepResult
from padiff_ir.pairing.settings import setting_family

__all__ = ["culprits", "first_difference"]

logger = logging.getLogger(__name__)


def _entries(step: StepResult) -> Iterable[tuple[str, Any]]:
    for given in step.inputs:
        yield "input", given
    for weight in step.initial_weights:
        yield "weights", weight
    forward: list[LayerDiff | ParamDiff] = [*step.forward, *step.buffers]
    for item in sorted(forward, key=lambda e: e.order):
        yield "forward", item
    if step.loss is not None:
        yield "loss", step.loss
    backward: list[LayerDiff | ParamDiff] = [*step.backward, *step.grads]
    for item in sorted(backward, key=lambda e: (e.order, _rank(e))):
        yield "backward", item
    for weight in [*step.weights, *step.optimizer_state]:
        yield "optimizer", weight


def _rank(entry: LayerDiff | ParamDiff) -> int:
    if isinstance(entry, ParamDiff):
        return 1
    return 0 if entry.kind == "output_grad" else 2


def first_difference(
    steps: list[StepResult],
    *,
    single_step: bool = False,
    config_differences: Iterable[str] = (),
) -> FirstDifference | None:
    """The earliest failing entry of ``steps``, with a message; ``None`` when all agree."""
    configs = list(config_differences)
    for step in steps:
        if step.ok:
            continue
        for stage, item in _entries(step):
            ok = item.ok if hasattr(item, "ok") else bool(item)
            if not ok:
                return _describe(stage, item, step, single_step, configs)
    return None


def culprits(
    steps: list[StepResult],
    first: FirstDifference | None,
    *,
    single_step: bool = False,
    config_differences: Iterable[str] = (),
) -> list[FirstDifference]:
    """Every layer whose own forward differs, in the order the layers ran.

    In single-step mode each B layer ran on A's layer inputs, so every failing layer output of
    the first step is a layer that computes differently by itself, also downstream of another
    (each call of a layer called several times on its own). Otherwise only the first
    difference is known to be one, when it is a layer's.
    """
    if not single_step or not steps:
        return [first] if first is not None and first.module_a else []
    configs = list(config_differences)
    step = steps[0]
    entries = sorted(step.forward, key=lambda e: e.order)
    found: dict[tuple[str, str], FirstDifference] = {}
    for item in entries:
        if item.kind != "output" or item.ok:
            continue
        site = f"{item.module_a}#{item.call + 1}" if item.call else item.module_a
        if site in step.inputs_differ:
            owner = _owner(item, entries)
            if owner is not None:  # the code of the layer around it differs
                key = (owner.module_a, owner.module_b)
                found.setdefault(key, _between(owner, item, step, configs))
                continue
        key = (item.module_a, item.module_b)
        found.setdefault(key, _layer("forward", item, step, True, configs))
    return list(found.values())


def _owner(item: LayerDiff, entries: list[LayerDiff]) -> LayerDiff | None:
    """The innermost layer around ``item`` among the compared ones."""
    path = split_call_site(item.module_a)[0]
    around = [
        e
        for e in entries
        if strictly_within(path, split_call_site(e.module_a)[0]) and e.kind == "output"
    ]
    return max(around, key=lambda e: len(e.module_a), default=None)


def _between(
    owner: LayerDiff, item: LayerDiff, step: StepResult, configs: list[str]
) -> FirstDifference:
    """The layer whose own code, between its sublayers, computes differently."""
    text = (
        f"{owner.label()} ({owner.class_a}): fed model A's values, its sublayer "
        f"{item.label()} still receives different inputs, so the code of this layer between "
        "its sublayers computes differently (an op, an axis, a constant, a missing residual)"
    ) + _related(configs, owner.module_a, owner.module_b)
    return FirstDifference(
        "forward",
        step.index,
        item.metrics,
        text,
        owner.module_a,
        owner.module_b,
        owner.class_a,
        owner.class_b,
        kind="output",
        name_a="output[0]",
        name_b="output[0]",
    )


def _related(configs: list[str], *names: str) -> str:
    """The configuration differences of the named layers (or ``optimizer``), as a sentence."""
    hits = [c for c in configs for n in names if n and n in c.split(":", 1)[0].split(" / ")]
    return f". Configuration: {'; '.join(dict.fromkeys(hits))}." if hits else ""


def _layer_grads_ok(step: StepResult, module_a: str) -> bool | None:
    """Whether the output gradients of ``module_a`` agree in ``step`` (``None``: none seen)."""
    grads = [e for e in step.backward if e.module_a == module_a and e.kind == "output_grad"]
    return all(e.ok for e in grads) if grads else None


def _describe(
    stage: str, item: Any, step: StepResult, single_step: bool, configs: list[str]
) -> FirstDifference:
    index = step.index
    if stage == "input":
        return FirstDifference(
            "input",
            index,
            item.metrics,
            f"model input {item.name!r} differs before any layer runs ({item.metrics.reason}): "
            "the two data pipelines disagree (PaDiff's check_dataloader); compare the datasets, "
            "transforms, sampling order and dtype conversion",
            name_a=item.name,
            name_b=item.name,
            kind="input",
        )
    if stage == "loss":
        root = [e for e in step.forward if e.module_a == "" and e.kind == "output"]
        outputs_ok = all(e.ok for e in root) if root else None
        why = (
            "the model outputs agree, so the loss functions compute differently (reduction, "
            "weighting, target)"
            if outputs_ok
            else "the model outputs already differ"
            if outputs_ok is False
            else "compare the loss functions (reduction, weighting, target)"
        )
        return FirstDifference(
            "loss",
            index,
            item,
            f"loss {step.loss_a!r} (A) vs {step.loss_b!r} (B): {item.reason}; {why}",
            kind="loss",
        )
    if isinstance(item, LayerDiff):
        return _layer(stage, item, step, single_step, configs)
    return _param(stage, item, step, configs)


def _layer(
    stage: str, item: LayerDiff, step: StepResult, single_step: bool, configs: list[str]
) -> FirstDifference:
    reason = item.metrics.reason
    layer = f"{item.label()} ({item.class_a})"
    if item.kind == "output":
        if single_step:
            text = (
                f"{layer}: fed model A's inputs, model B's layer computes a different "
                f"output ({reason}); this layer's own forward differs"
            )
            family_a = setting_family(item.class_a, base=item.base_a)
            if item.class_a and family_a != setting_family(item.class_b, base=item.base_b):
                text += f" (different layer classes: {item.class_a} in A vs {item.class_b} in B)"
        else:
            text = (
                f"{layer}: first layer whose output differs ({reason}); the layers before "
                "it agree, so the difference starts here (or in code between layers just "
                "before it). If it is small, rounding may have accumulated: run with "
                "single_step=True to measure each layer's own error"
            )
    elif "no gradient" in reason:
        text = f"{layer}: {reason}; one model trains through this tensor and the other does not"
    elif item.kind == "output_grad":
        text = (
            f"{layer}: the gradient reaching this layer's output differs ({reason}); the "
            "layers after it, or the loss, pass back different gradients"
        )
    else:
        text = (
            f"{layer}: the gradient reaching this layer's output agrees but the gradient it "
            f"passes to its input differs ({reason}): its backward computes differently "
            "from what its forward implies (a custom autograd function, a detach or "
            "stop_gradient, a different gradient formula)"
        )
    text += _related(configs, item.module_a, item.module_b)
    return FirstDifference(
        stage,
        step.index,
        item.metrics,
        text,
        item.module_a,
        item.module_b,
        item.class_a,
        item.class_b,
        kind=item.kind,
        name_a=f"{item.kind}[{item.position}]",
        name_b=f"{item.kind}[{item.position}]",
    )


def _param(stage: str, item: ParamDiff, step: StepResult, configs: list[str]) -> FirstDifference:
    reason = item.metrics.reason
    names = f"{item.name_a}" + (f" / {item.name_b}" if item.name_b != item.name_a else "")
    if stage == "weights":
        text = (
            f"{names} differs before the step ({reason}): the models do not start from the "
            "same weights; call assign_weight first or pass auto_init=True"
        )
    elif stage == "forward":
        text = (
            f"{names}: running statistics differ after the forward while the layer "
            f"outputs agree ({reason}); the layers update them differently in training "
            "mode (a BatchNorm momentum convention; torch's unbiased vs paddle's biased "
            "running variance)"
        )
    elif stage == "backward":
        grads_ok = _layer_grads_ok(step, item.module_a)
        if grads_ok:
            text = (
                f"gradient of {names} differs ({reason}) while the gradient reaching its "
                "layer's output agrees: the layer's backward with respect to its parameters "
                "differs (a custom autograd function, a detach, a different formula)"
            )
        else:
            text = f"gradient of {names} differs ({reason})"
    else:
        what = "weights" if item.kind == "weight" else f"optimizer state {item.kind!r} of"
        text = (
            f"{what} {names} differ after the optimizer step ({reason}) although the "
            "gradients agree: the optimizers update differently (learning rate, weight "
            "decay, momentum, epsilon, update rule)"
        )
        text += _related(configs, "optimizer")
    if stage in ("forward", "backward"):
        text += _related(configs, item.module_a, item.module_b)
    return FirstDifference(
        stage,
        step.index,
        item.metrics,
        text,
        item.module_a,
        item.module_b,
        name_a=item.name_a,
        name_b=item.name_b,
        kind=item.kind,
    )
