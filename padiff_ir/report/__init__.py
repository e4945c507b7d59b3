"""The HTML report and the Model Explorer export of a result.

A report is one offline HTML file rendered from a result's JSON alone (never by running a
model): the verdict, the first divergence and the culprits; the two graphs side by side,
coloured by error, with the module hierarchy collapsible and a panel of every node's metrics;
tables of all pairs, the layer map (downloadable) and what stayed unmatched; for auto_diff
results, the losses, gradients, weights and optimizer states step by step.

Example:
    >>> from padiff_ir.report import build_view
    >>> view = build_view({"kind": "match", "ok": False, "tolerance": {"atol": 1e-5,
    ...                    "rtol": 1e-5, "mode": "strict"}})
    >>> str(view.summary.verdict)
    'diverged'
"""

from __future__ import annotations

from padiff_ir.ir.views import graph_view, source_line
from padiff_ir.report.html_report import render_html, render_html_text, result_dict
from padiff_ir.report.model_explorer import model_explorer_data, to_model_explorer
from padiff_ir.report.view import ReportError, ReportView, build_view

__all__ = [
    # writing reports
    "render_html",
    "render_html_text",
    "to_model_explorer",
    # the data behind them
    "build_view",
    "graph_view",
    "model_explorer_data",
    "result_dict",
    "source_line",
    "ReportView",
    # errors
    "ReportError",
]
