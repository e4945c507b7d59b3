"""The report's view of a match over several batches, from ``BatchResults.to_dict()``.

The graphs, pairs and culprits shown are those of one batch: the first that diverges (the
first batch when all agree). A "Batches" tab lists every batch (verdict, worst pair, time),
and the summary says which batch is shown. Every batch comes from one export, so the graphs
are the same for all; each batch's own data is in the JSON the report was made from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from padiff_ir._result import Verdict
from padiff_ir.compare.batches import BatchResults
from padiff_ir.report.view import (
    Fact,
    ReportView,
    TabView,
    format_error,
    match_result,
    match_view,
)

__all__ = ["batch_rows", "batches_view"]

logger = logging.getLogger(__name__)


def _typed(data: Mapping[str, Any]) -> BatchResults:
    """The batch results a ``BatchResults.to_dict()`` holds.

    Raises:
        ReportError: a batch is no match result's dictionary.
    """
    batches = tuple(match_result(batch) for batch in data.get("batches", ()))
    return BatchResults(
        batches, float(data.get("prepare_s") or 0.0), tuple(data.get("check_s", ()))
    )


def batch_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per batch: index, verdict, worst pair's module and error, culprits, seconds.

    Examples:
        >>> batch = {"ok": True, "pairs": [], "culprits": [], "tolerance": {}}
        >>> batch_rows({"batches": [batch], "check_s": [0.5]})[0]["verdict"]
        'aligned'
    """
    results = _typed(data)
    times = results.check_s
    rows = []
    for index, (batch, worst) in enumerate(zip(results.results, results.worst)):
        rows.append(
            {
                "batch": index,
                "verdict": str(Verdict.of(batch.ok)),
                "worst_module": worst.module_a if worst is not None else "",
                "worst_op": worst.op_a if worst is not None else "",
                "max_abs": worst.metrics.max_abs if worst is not None else None,
                "culprits": [c.module_a for c in batch.culprits],
                "seconds": times[index] if index < len(times) else None,
            }
        )
    return rows


def batches_view(data: Mapping[str, Any], title: str | None = None) -> ReportView:
    """The view of the batch to show, with the list of every batch added."""
    batches = list(data.get("batches", ()))
    if not batches:
        from padiff_ir.errors import ReportError

        raise ReportError("the BatchResults dictionary holds no batch: nothing to show")
    first = data.get("first_failing")
    shown = int(first) if first is not None else 0
    view = match_view(batches[shown], title)
    rows = batch_rows(data)
    failing = [r["batch"] for r in rows if r["verdict"] != "aligned"]
    fact = Fact(
        "batches",
        f"{len(rows)} batches, {len(failing)} diverged"
        + (f" (first: batch {failing[0]})" if failing else "")
        + f"; shown here: batch {shown} (worst error {format_error(rows[shown]['max_abs'])}); "
        "every batch is in the Batches tab",
        "fail" if failing else "ok",
    )
    summary = replace(
        view.summary,
        ok=bool(data.get("ok")),
        facts=(fact, *view.summary.facts),
    )
    payload = dict(view.payload)
    payload["batches"] = {"shown": shown, "rows": rows, "prepare_s": data.get("prepare_s")}
    tabs = (*view.tabs[:1], TabView("batches", "Batches"), *view.tabs[1:])
    logger.debug("report of %d batches, showing batch %d", len(rows), shown)
    return replace(view, summary=summary, tabs=tabs, payload=payload)
