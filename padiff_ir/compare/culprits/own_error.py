"""Own error vs inherited error: find the modules that diverge by themselves.

A module's outputs can fail because its inputs already differ (inherited error) or because it
computes differently (own error). For every module pair of the layer_map, B's module is rerun
from **A's** values of its input tensors (PaDiff's ``single_step``, done on the ONNX graph with
:meth:`padiff_ir.runtime.Runner.run_subgraph`); comparing that with A's outputs removes the
error accumulated upstream. The culprits are the failing modules none of whose submodules fails
by itself; a container fails by itself only through its own ops (else its status is
``accumulated``); when outputs diverge but no module does, the divergence is accumulated rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from padiff_ir._paths import depth, strictly_within
from padiff_ir.compare.culprits.explain import attribute_diffs, op_structure_diffs
from padiff_ir.compare.match_result import ModuleResult, ModuleStatus
from padiff_ir.compare.values import ComparedTensors
from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.ir.graph import Graph
from padiff_ir.matching.types import Matching, ModulePair
from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays

__all__ = [
    "EagerMeasure",
    "ModuleInputs",
    "depth",
    "is_inside",
    "measure_module",
    "module_result",
    "measure_modules",
    "worst",
]

logger = logging.getLogger(__name__)


class EagerMeasure(Protocol):
    """Measures a module pair on the eager runs and reads its modules' settings (see
    :mod:`padiff_ir.compare.culprits.eager_modules`)."""

    def measure(self, pair: ModulePair, depth: int, *, own_error: bool = True) -> ModuleResult: ...

    def settings(self, pair: ModulePair) -> list[str]: ...


def worst(metrics: Sequence[TensorMetrics | None]) -> TensorMetrics | None:
    """The failing metric with the largest error, else the largest error; ``None`` if none."""
    present = [m for m in metrics if m is not None]
    if not present:
        return None
    return max(present, key=lambda m: (not m.ok, m.max_abs if np.isfinite(m.max_abs) else 1e300))


@dataclass(frozen=True)
class ModuleInputs:
    """What measuring a module needs: both stores, B's runner, tolerances (and the
    comparisons of the check so far, reused)."""

    store_a: Mapping[str, Any]
    store_b: Mapping[str, Any]
    runner_b: Any
    tolerance: Tolerance
    compared: ComparedTensors | None = None
    layouts: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)


def _compare_lists(
    names_a: Sequence[str],
    names_b: Sequence[str],
    values_a: Mapping[str, Any],
    values_b: Mapping[str, Any],
    tolerance: Tolerance,
    compared: ComparedTensors | None = None,
    layouts: Mapping[tuple[str, str], tuple[int, ...]] | None = None,
) -> TensorMetrics | None:
    found = []
    for name_a, name_b in zip(names_a, names_b):
        if name_a in values_a and name_b in values_b:
            perm = (layouts or {}).get((name_a, name_b))
            if perm is not None and len(perm) == np.ndim(
                values_b[name_b]
            ):  # B's value brought to A's layout, as the tensor pair says
                value_b = np.transpose(np.asarray(values_b[name_b]), perm)
                found.append(compare_arrays(values_a[name_a], value_b, tolerance))
            elif compared is not None:
                found.append(compared.compare(name_a, name_b, tolerance))
            else:
                found.append(compare_arrays(values_a[name_a], values_b[name_b], tolerance))
    return worst(found)


def measure_module(
    pair: ModulePair, ctx: ModuleInputs, depth: int, *, own_error: bool = True
) -> ModuleResult:
    """Outputs as run, inputs as run, and the own error of B's module fed A's inputs.

    ``own_error=False`` skips the rerun (a container whose culprit is already known inside).
    """
    stores = (ctx.store_a, ctx.store_b, ctx.tolerance, ctx.compared, ctx.layouts)
    output = _compare_lists(pair.outputs_a, pair.outputs_b, *stores)
    inputs = _compare_lists(pair.inputs_a, pair.inputs_b, *stores)
    own = None
    # Own error only matters where the outputs fail: an aligned module needs no rerun.
    measurable = len(pair.inputs_a) == len(pair.inputs_b) and bool(pair.outputs_b)
    if own_error and output is not None and not output.ok and measurable:
        feeds: dict[str, np.ndarray] = {}
        complete = True
        for name_a, name_b in zip(pair.inputs_a, pair.inputs_b):
            if name_a not in ctx.store_a or name_b not in ctx.store_b:
                complete = False
                break
            value = np.asarray(ctx.store_a[name_a])
            target = np.asarray(ctx.store_b[name_b])
            perm = ctx.layouts.get((name_a, name_b))
            if perm is not None and len(perm) == value.ndim:  # A's value into B's layout
                value = np.transpose(value, np.argsort(perm))
            if value.size != target.size:
                complete = False
                break
            feeds[name_b] = value.reshape(target.shape).astype(target.dtype, copy=False)
        outputs_b = [n for n in pair.outputs_b if n in ctx.store_b]
        if complete and outputs_b:
            try:
                recomputed = ctx.runner_b.run_subgraph(feeds, outputs_b)
                own = _compare_lists(
                    pair.outputs_a,
                    pair.outputs_b,
                    ctx.store_a,
                    recomputed,
                    ctx.tolerance,
                    layouts=ctx.layouts,
                )
            except (InputError, ExecutionError) as err:
                logger.debug("own error of %s <-> %s not measured: %s", pair.a, pair.b, err)
    return module_result(pair, output, own, inputs, depth)


def module_result(
    pair: ModulePair,
    output: TensorMetrics | None,
    own: TensorMetrics | None,
    inputs: TensorMetrics | None,
    depth: int,
) -> ModuleResult:
    """A module pair's result, its status read from its outputs and its own error."""
    if output is None:
        status = ModuleStatus.UNMEASURED
    elif output.ok:
        status = ModuleStatus.OK
    elif own is None:
        status = ModuleStatus.UNMEASURED
    elif own.ok:
        status = ModuleStatus.INHERITED
    else:
        status = ModuleStatus.CULPRIT
    return ModuleResult(
        a=pair.site_a,
        b=pair.site_b,
        class_a=pair.class_a,
        class_b=pair.class_b,
        output=output,
        own=own,
        inputs=inputs,
        status=status,
        depth=depth,
    )


def is_inside(child: str, parent: str) -> bool:
    """Whether ``child`` lies below ``parent`` (kept for :mod:`.fidelity`; see
    :mod:`padiff_ir._paths`).

    Unlike :func:`padiff_ir._paths.strictly_within`, the root counts as inside itself; every
    caller also asks ``child != parent``.
    """
    return strictly_within(child, parent) or child == parent == ""


def _has_own_evidence(
    module: ModuleResult,
    children: Sequence[ModuleResult],
    pairs: Mapping[str, Any],
    matching: Matching,
    graph_a: Graph,
    graph_b: Graph,
) -> bool:
    """Whether a container's own ops (not its children's) differ in structure or attributes."""
    pair = pairs.get(module.a)
    if pair is None:
        return False
    if op_structure_diffs(pair, graph_a, graph_b, direct=True):
        return True
    inherited = {
        d
        for c in children
        if c.a in pairs
        for d in attribute_diffs(pairs[c.a], matching, graph_a, graph_b)
    }
    return any(d not in inherited for d in attribute_diffs(pair, matching, graph_a, graph_b))


def measure_modules(
    matching: Matching,
    graph_a: Graph,
    graph_b: Graph,
    ctx: ModuleInputs,
    eager: EagerMeasure | None = None,
) -> list[ModuleResult]:
    """Each module pair's outputs, inputs and (where needed) own error, innermost first.

    A container whose culprit is already found inside is not rerun (``contains-culprit``).
    A container's own error includes the rounding accumulated over its children: when none of
    its children fails by itself, it is a culprit only if its own ops differ in structure or
    attributes, else its status is ``accumulated``. A pair the graphs cannot measure (no graph
    tensors: an export dropped the module; or inputs of other sizes than B's graph takes) is
    measured by ``eager`` when given (:class:`~.eager_modules.EagerModules`).
    Every module is measured, also downstream of a first culprit: each culprit is reported.
    """
    pairs = {p.site_a: p for p in matching.module_pairs}
    measured: dict[str, ModuleResult] = {}
    for pair in sorted(matching.module_pairs, key=lambda p: -depth(p.a)):
        children = [m for path, m in measured.items() if strictly_within(path, pair.a)]
        culprit_inside = any(
            c.status in (ModuleStatus.CULPRIT, ModuleStatus.CONTAINS_CULPRIT) for c in children
        )
        module = measure_module(pair, ctx, depth(pair.a), own_error=not culprit_inside)
        unmeasured = module.output is None or (
            module.status == ModuleStatus.UNMEASURED and not module.output.ok
        )
        if eager is not None and unmeasured:
            again = eager.measure(pair, depth(pair.a), own_error=not culprit_inside)
            if again.output is not None:
                module = again
        if culprit_inside and module.output is not None and not module.output.ok:
            module = replace(module, status=ModuleStatus.CONTAINS_CULPRIT)
        elif (
            module.status == ModuleStatus.CULPRIT
            and children
            and not _has_own_evidence(module, children, pairs, matching, graph_a, graph_b)
        ):
            module = replace(module, status=ModuleStatus.ACCUMULATED)
        measured[pair.site_a] = module
    return [measured[p.site_a] for p in matching.module_pairs]
