"""Terminal summary of a :class:`~padiff_ir.native.result.DiffResult`, readable at 100 columns.

The verdict and the first difference, the configuration differences, one row per step (inputs,
layers, loss values, gradients, weights, optimizer state), then the failing entries of the
first failing step. Rendered from the result's data alone.
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from padiff_ir.native.result import DiffResult, StepResult

__all__ = ["render_summary"]

WIDTH = 100


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.6g}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _ratio(counts: tuple[int, int]) -> str:
    ok, total = counts
    if not total:
        return "-"
    return "ok" if ok == total else f"{total - ok}/{total} bad"


def _step_row(step: StepResult) -> str:
    counts = step.counts()
    layers = (
        counts["forward"][0] + counts["buffers"][0],
        counts["forward"][1] + counts["buffers"][1],
    )
    backward = (counts["backward"][0], counts["backward"][1])
    optimizer = (
        counts["weights"][0] + counts["optimizer_state"][0],
        counts["weights"][1] + counts["optimizer_state"][1],
    )
    loss = "-" if step.loss is None else ("ok" if step.loss.ok else "BAD")
    return (
        f"{step.index:>4}  {_ratio(counts['inputs']):<9}{_ratio(layers):<11}"
        f"{_num(step.loss_a):>13}{_num(step.loss_b):>13}  {loss:<5}{_ratio(backward):<11}"
        f"{_ratio(counts['grads']):<11}{_ratio(optimizer):<11}"
    )


def _failures(step: StepResult, limit: int = 8) -> list[str]:
    rows = []
    entries: list[tuple[str, str, Any]] = []
    for given in step.inputs:
        entries.append(("input", given.name, given.metrics))
    for layer in [*step.forward, *step.backward]:
        entries.append((layer.kind, layer.label(), layer.metrics))
    for item in [
        *step.initial_weights,
        *step.buffers,
        *step.grads,
        *step.weights,
        *step.optimizer_state,
    ]:
        entries.append((item.kind, item.name_a, item.metrics))
    bad = [e for e in entries if not e[2].ok]
    for kind, name, metrics in bad[:limit]:
        rows.append(
            f"  {_cut(kind, 12):<13}{_cut(name, 44):<45}{_num(metrics.max_abs):>11}"
            f"  {_cut(metrics.reason, 27)}"
        )
    if len(bad) > limit:
        rows.append(f"  ... {len(bad) - limit} more (result.steps[{step.index}])")
    return rows


def render_summary(result: DiffResult) -> str:
    """The terminal summary of ``result``."""
    a, b = result.model_a, result.model_b
    verdict = "ALIGNED" if result.ok else "DIVERGED"
    tol = result.tolerance
    options = result.options
    lines = [
        f"auto_diff: {verdict}",
        f"  model A: {a.get('framework', '?')} {a.get('class', '?')}   model B: "
        f"{b.get('framework', '?')} {b.get('class', '?')}   ({len(result.layer_map)} layer "
        "pairs)",
        f"  {'single_step' if options.get('single_step') else 'normal'} mode, diff_phase "
        f"{options.get('diff_phase', '?')}, compare {tol.mode} (atol {tol.atol:g}, rtol "
        f"{tol.rtol:g}), {len(result.steps)} step(s)",
    ]
    first = result.first_difference
    if first is not None:
        where = first.module_a or first.name_a or "-"
        lines.append(f"First difference: stage {first.stage}, step {first.step}, {where}")
        lines += _wrap(first.message)
    if len(result.culprits) > 1 or (
        result.culprits and first is not None and result.culprits[0].module_a != first.module_a
    ):
        lines.append(f"Culprits ({len(result.culprits)}, in the order the layers ran):")
        for culprit in result.culprits:
            lines += _wrap(f"- {culprit.message}")
    if result.config_differences:
        lines.append("Configuration differences:")
        for text in result.config_differences:
            lines += _wrap(f"- {text}")
    if result.random_layers:
        lines.append("Random layers:")
        for text in result.random_layers:
            lines += _wrap(f"- {text}")
    if result.steps:
        lines.append(
            f"{'step':>4}  {'inputs':<9}{'forward':<11}{'loss A':>13}{'loss B':>13}  "
            f"{'loss':<5}{'layer grad':<11}{'param grad':<11}{'optimizer':<11}"
        )
        for step in result.steps[:20]:
            lines.append(_step_row(step))
        if len(result.steps) > 20:
            lines.append(f"  ... {len(result.steps) - 20} more steps")
        failing = next((s for s in result.steps if not s.ok), None)
        if failing is not None:
            lines.append(f"Differences in step {failing.index}:")
            lines += _failures(failing)
    if result.notes:
        lines.append("Notes:")
        for note in result.notes:
            lines += _wrap(f"- {note}")
    return "\n".join(lines)
