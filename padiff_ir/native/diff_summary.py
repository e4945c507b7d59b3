"""Terminal summary of a :class:`~padiff_ir.native.diff_result.DiffResult`, as wide as the terminal.

The verdict and the first difference, the configuration differences, one row per step (inputs,
layers, loss values, gradients, weights, optimizer state), then the failing entries of the
first failing step. Rendered from the result's data alone, with :mod:`padiff_ir._terminal`
(rich): plain text unless ``color`` is asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from padiff_ir._terminal import (
    MIN_WIDTH,
    Cell,
    Column,
    line,
    render,
    table,
    terminal_width,
    wrapped,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from padiff_ir.native.diff_result import DiffResult, StepResult

__all__ = ["render_summary"]

_STEP_COLUMNS = (
    Column("step", width=4, justify="right"),
    Column("inputs", width=8),
    Column("forward", width=10),
    Column("loss A", width=12, justify="right"),
    Column("loss B", width=12, justify="right"),
    Column("loss", width=4),
    Column("layer grad", width=10),
    Column("param grad", width=10),
    Column("optimizer", width=10),
)


def _num(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.6g}"


def _wrap(text: str, width: int, style: str = "") -> list[Text]:
    return wrapped(text, width, indent="  ", more="  ", style=style)


def _ratio(counts: tuple[int, int]) -> Cell:
    ok, total = counts
    if not total:
        return "-"
    return ("ok", "green") if ok == total else (f"{total - ok}/{total} bad", "bold red")


def _step_row(step: StepResult) -> list[Cell]:
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
    loss: Cell = "-" if step.loss is None else ("ok", "green") if step.loss.ok else ("BAD", "red")
    return [
        str(step.index),
        _ratio(counts["inputs"]),
        _ratio(layers),
        _num(step.loss_a),
        _num(step.loss_b),
        loss,
        _ratio(backward),
        _ratio(counts["grads"]),
        _ratio(optimizer),
    ]


def _failures(step: StepResult, width: int, limit: int = 8) -> list[RenderableType]:
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
    columns = (
        Column("  kind", width=13),
        Column("name", width=20, flexible=True),
        Column("max abs", width=11, justify="right"),
        Column("reason", width=20, flexible=True),
    )
    rows: list[list[Cell]] = [
        [f"  {kind}", name, _num(metrics.max_abs), metrics.reason]
        for kind, name, metrics in bad[:limit]
    ]
    parts: list[RenderableType] = [table(columns, rows, width - 1)]
    if len(bad) > limit:
        parts.append(line(f"  ... {len(bad) - limit} more (result.steps[{step.index}])"))
    return parts


def render_summary(result: DiffResult, *, width: int | None = None, color: bool = False) -> str:
    """The terminal summary of ``result``, ``width`` columns wide (default: the terminal's);
    ANSI colours with ``color``."""
    width = max(MIN_WIDTH, width) if width is not None else terminal_width()
    a, b = result.model_a, result.model_b
    verdict = "ALIGNED" if result.ok else "DIVERGED"
    tol = result.tolerance
    options = result.options
    parts: list[RenderableType] = [
        line(
            f"auto_diff: {verdict}",
            spans=[(verdict, "bold green" if result.ok else "bold red")],
        ),
        *_wrap(
            f"model A: {a.get('framework', '?')} {a.get('class', '?')}   model B: "
            f"{b.get('framework', '?')} {b.get('class', '?')}   ({len(result.layer_map)} layer "
            "pairs)",
            width,
        ),
        *_wrap(
            f"{'single_step' if options.get('single_step') else 'normal'} mode, diff_phase "
            f"{options.get('diff_phase', '?')}, compare {tol.mode} (atol {tol.atol:g}, rtol "
            f"{tol.rtol:g}), {len(result.steps)} step(s)",
            width,
        ),
    ]
    if result.noise is not None:
        parts += _wrap(
            f"tolerance auto ({result.noise.method}, {result.noise.dtype}): "
            f"{result.noise.sentence}",
            width,
            style="green" if result.ok else "red",
        )
    first = result.first_difference
    if first is not None:
        where = first.module_a or first.name_a or "-"
        parts.append(line(f"First difference: stage {first.stage}, step {first.step}, {where}"))
        parts += _wrap(first.message, width, style="red")
    if len(result.culprits) > 1 or (
        result.culprits and first is not None and result.culprits[0].module_a != first.module_a
    ):
        parts.append(line(f"Culprits ({len(result.culprits)}, in the order the layers ran):"))
        for culprit in result.culprits:
            parts += _wrap(f"- {culprit.message}", width, style="red")
    if result.config_differences:
        parts.append(line("Configuration differences:"))
        for text in result.config_differences:
            parts += _wrap(f"- {text}", width)
    if result.random_layers:
        parts.append(line("Random layers:"))
        for text in result.random_layers:
            parts += _wrap(f"- {text}", width)
    if result.steps:
        rows = [_step_row(step) for step in result.steps[:20]]
        parts.append(table(_STEP_COLUMNS, rows, sum(c.width + 2 for c in _STEP_COLUMNS) - 2))
        if len(result.steps) > 20:
            parts.append(line(f"  ... {len(result.steps) - 20} more steps"))
        failing = next((s for s in result.steps if not s.ok), None)
        if failing is not None:
            parts.append(line(f"Differences in step {failing.index}:"))
            parts += _failures(failing, width)
    if result.notes:
        parts.append(line("Notes:"))
        for note in result.notes:
            parts += _wrap(f"- {note}", width)
    return render(parts, width, color=color)
