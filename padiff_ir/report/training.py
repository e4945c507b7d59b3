"""The report's view of an auto_diff result (training mode), from ``DiffResult.to_dict()``.

A DiffResult holds, per step, the loss of each side, every matched layer's output and gradients,
the parameter gradients, and the weights and optimizer state after the update. The report shows:

* per step, loss A vs B and their difference (line charts);
* steps x layers grids of the max abs difference, one per kind of tensor (layer outputs, layer
  gradients, parameter gradients, weights after the step, optimizer state, running statistics),
  each cell's metrics in the side panel;
* a table of steps and a table of layers (worst error, first failing step).

The page's script reads ``payload["training"]`` (built here) and nothing else of the steps, so
the raw per-step lists are not embedded twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, cast

from padiff_ir._result import Verdict
from padiff_ir.native.diff_result import STEP_LISTS
from padiff_ir.report.result_json import DiffJson, EntryJson, StepJson, diff_json
from padiff_ir.report.view import (
    Fact,
    ReportView,
    SummaryView,
    TabView,
    environment_facts,
    format_error,
    to_float,
    tolerance_text,
)

__all__ = ["diff_view", "training_data"]

logger = logging.getLogger(__name__)

#: (title, step key, entry kinds or None for all) of each steps x rows grid, in page order.
_SECTIONS = (
    ("layer outputs (forward)", "forward", ("output",)),
    ("gradients at layer outputs and inputs (backward)", "backward", None),
    ("parameter gradients", "grads", None),
    ("weights after the step", "weights", None),
    ("optimizer state after the step", "optimizer_state", None),
    ("running statistics after the forward", "buffers", None),
)


def _number(value: object) -> float | None:
    number = to_float(value)
    return None if number is None or math.isnan(number) else number


def _where(module: str) -> str:
    return module or "<root>"


def _entries(step: StepJson, key: str) -> list[EntryJson]:
    """The entries of one of a step's lists (``forward``, ``grads``...); none when absent."""
    return list(cast("Iterable[EntryJson]", step.get(key, ())))


def _row_label(entry: EntryJson) -> str:
    if "name_a" in entry:  # a parameter
        label = entry.get("name_a", "")
        if entry.get("name_b") and entry.get("name_b") != label:
            label += f" / {entry['name_b']}"
        kind = entry.get("kind", "")
        return label if kind in ("weight", "grad", "buffer") else f"{label} · {kind}"
    label = _where(entry.get("module_a", ""))
    if entry.get("module_b", "") != entry.get("module_a", ""):
        label += f" / {_where(entry.get('module_b', ''))}"
    if entry.get("call"):
        label += f" (call {entry['call']})"
    if entry.get("position"):
        label += f" [{entry['position']}]"
    kind = entry.get("kind", "")
    return label if kind == "output" else f"{label} · {kind}"


def _section(
    title: str, key: str, kinds: tuple[str, ...] | None, steps: list[StepJson]
) -> dict[str, Any] | None:
    rows: dict[str, int] = {}
    order: dict[str, float] = {}
    for step in steps:
        for entry in _entries(step, key):
            if kinds is not None and entry.get("kind") not in kinds:
                continue
            label = _row_label(entry)
            if label not in rows:
                rows[label] = len(rows)
                order[label] = float(entry.get("order", 0.0) or 0.0)
    if not rows:
        return None
    values: list[list[float | None]] = [[None] * len(steps) for _ in rows]
    metrics: list[list[Any]] = [[None] * len(steps) for _ in rows]
    for j, step in enumerate(steps):
        for entry in _entries(step, key):
            if kinds is not None and entry.get("kind") not in kinds:
                continue
            i = rows[_row_label(entry)]
            m = entry.get("metrics") or {}
            values[i][j] = _number(m.get("max_abs"))
            metrics[i][j] = m
    return {"title": title, "key": key, "rows": list(rows), "values": values, "metrics": metrics}


def _worst(entries: list[EntryJson]) -> str:
    failing = [e for e in entries if not (e.get("metrics") or {}).get("ok", True)]
    pool = failing or entries
    if not pool:
        return ""
    entry = max(pool, key=lambda e: _number((e.get("metrics") or {}).get("max_abs")) or 0.0)
    error = format_error((entry.get("metrics") or {}).get("max_abs"))
    return f"{_row_label(entry)} {error}" + (" FAIL" if failing else "")


def _step_ok(step: StepJson) -> bool:
    for key in STEP_LISTS:
        if any(not (e.get("metrics") or {}).get("ok", True) for e in _entries(step, key)):
            return False
    loss = step.get("loss")
    return loss is None or bool(loss.get("ok", True))


def _layers(steps: list[StepJson]) -> list[dict[str, Any]]:
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for step in steps:
        for key, column in (("forward", "forward"), ("backward", "grad")):
            for entry in _entries(step, key):
                row = table.setdefault(
                    (entry.get("module_a", ""), entry.get("module_b", "")),
                    {
                        "a": entry.get("module_a", ""),
                        "b": entry.get("module_b", ""),
                        "class": entry.get("class_a", ""),
                        "forward": None,
                        "grad": None,
                        "first_step": None,
                    },
                )
                m = entry.get("metrics") or {}
                value = _number(m.get("max_abs"))
                if value is not None and (row[column] is None or value > row[column]):
                    row[column] = value
                if not m.get("ok", True) and row["first_step"] is None:
                    row["first_step"] = step.get("index")
    return list(table.values())


def training_data(data: Mapping[str, object]) -> dict[str, Any]:
    """What the page's script draws for a DiffResult dictionary: steps, grids, layers."""
    steps = list(diff_json(data).get("steps", ()))
    rows = []
    for step in steps:
        loss = step.get("loss") or {}
        a, b = _number(step.get("loss_a")), _number(step.get("loss_b"))
        diff = _number(loss.get("max_abs")) if loss else None
        if diff is None and a is not None and b is not None:
            diff = abs(a - b)
        rows.append(
            {
                "step": step.get("index"),
                "mode": step.get("mode", "normal"),
                "ok": _step_ok(step),
                "loss_a": a,
                "loss_b": b,
                "loss_diff": diff,
                "worst_forward": _worst(list(step.get("forward", ()))),
                "worst_grad": _worst(list(step.get("backward", ())) + list(step.get("grads", ()))),
                "worst_weight": _worst(list(step.get("weights", ()))),
            }
        )
    sections = [s for s in (_section(t, k, kinds, steps) for t, k, kinds in _SECTIONS) if s]
    return {"steps": rows, "sections": sections, "layers": _layers(steps)}


def _ratio(floor: object) -> float:
    """A floor's error in units of its bound (``NoiseFloor.ratio`` from its JSON form)."""
    if not isinstance(floor, Mapping):
        return 0.0
    error, bound = _number(floor.get("error")) or 0.0, _number(floor.get("bound")) or 0.0
    if error == 0:
        return 0.0
    return error / bound if bound > 0 else float("inf")


def _noise_facts(data: DiffJson) -> list[Fact]:
    """With ``tolerance="auto"``: the verdict in units of measured noise, coloured by the
    worst entry's ratio to its bound."""
    noise = data.get("noise")
    if not noise:
        return []
    worst = max((_ratio(e.get("floor")) for e in noise.get("entries", ())), default=0.0)
    label = f"numerical noise ({noise.get('method', '?')}, {noise.get('dtype', '?')})"
    return [Fact(label, str(noise.get("sentence", "")), "ok" if worst <= 1.0 else "fail")]


def _summary(data: DiffJson) -> SummaryView:
    ok = bool(data.get("ok"))
    model_a, model_b = data.get("model_a") or {}, data.get("model_b") or {}
    label_a = f"{model_a.get('framework', '?')} {model_a.get('class', 'model')} (A)"
    label_b = f"{model_b.get('framework', '?')} {model_b.get('class', 'model')} (B)"
    steps = list(data.get("steps", ()))
    tolerance = data.get("tolerance") or {}
    facts = [
        Fact("models", f"{label_a} vs {label_b}"),
        Fact("tolerance", tolerance_text(tolerance, bool(data.get("noise")))),
        Fact(
            "steps",
            f"{len(steps)} ({sum(1 for s in steps if not _step_ok(s))} failing)",
            "ok" if ok else "fail",
        ),
        Fact("layer pairs", str(len(data.get("layer_map", ())))),
    ]
    facts += _noise_facts(data)
    for key, value in (data.get("options") or {}).items():
        facts.append(Fact(f"option {key}", str(value)))
    if steps:
        last = steps[-1]
        loss_a, loss_b = _number(last.get("loss_a")), _number(last.get("loss_b"))
        if loss_a is not None and loss_b is not None:
            facts.append(
                Fact(f"loss at step {last.get('index')}", f"A {loss_a:.6g} vs B {loss_b:.6g}")
            )
    first = data.get("first_difference")
    first_facts: tuple[Fact, ...] = ()
    note = "The models train alike." if ok else "No first difference recorded."
    if first:
        metrics = first.get("metrics") or {}
        layer = (
            _where(first.get("module_a", ""))
            if first.get("module_a") or first.get("module_b")
            else ""
        )
        tensor = first.get("name_a", "")
        if first.get("name_b") and first.get("name_b") != tensor:
            tensor += f" / {first['name_b']}"
        first_facts = tuple(
            f
            for f in (
                Fact("stage", str(first.get("stage", "")), "fail"),
                Fact("step", str(first.get("step", ""))),
                Fact(
                    "layer",
                    f"{layer} ({first['class_a']})" if layer and first.get("class_a") else layer,
                ),
                Fact("tensor", tensor),
                Fact("kind", str(first.get("kind", ""))),
                Fact("max abs", format_error(metrics.get("max_abs")) if metrics else "", "fail"),
                Fact("reason", str(metrics.get("reason", "")) if metrics else ""),
            )
            if f.value
        )
        note = str(first.get("message", "")) or note
    causes = tuple(data.get("config_differences", ())) + tuple(
        f"random layer: {r}" for r in data.get("random_layers", ())
    )
    verdict = Verdict.of(ok)
    return SummaryView(
        ok=ok,
        verdict=verdict,
        headline=f"{verdict.upper()} in training: {label_a} vs {label_b}",
        facts=tuple(facts),
        first_divergence=first_facts,
        culprits=(),
        culprit_note=note,
        notes=tuple(data.get("notes", ())),
        causes=causes,
        culprit_heading="Why",
    )


def diff_view(data: Mapping[str, object], title: str | None = None) -> ReportView:
    """The :class:`~padiff_ir.report.view.ReportView` of a DiffResult dictionary."""
    payload = {k: v for k, v in data.items() if k != "steps"}
    payload["kind"] = "auto_diff"
    payload["training"] = training_data(data)
    result = diff_json(data)
    summary = _summary(result)
    model_a = (result.get("model_a") or {}).get("class") or "A"
    model_b = (result.get("model_b") or {}).get("class") or "B"
    tabs = (
        TabView("training", "Training steps"),
        TabView("steps", "Steps"),
        TabView("layers", "Layers"),
        TabView("environment", "Environment"),
    )
    return ReportView(
        title=title or f"padiff-ir auto_diff report: {model_a} vs {model_b} ({summary.verdict})",
        kind="auto_diff",
        summary=summary,
        environment=environment_facts(data),
        tabs=tabs,
        payload=payload,
    )
