"""Render a result as one self-contained HTML file (coverage.py's ``html.py`` is the model).

The page is :file:`templates/report.html` rendered by Jinja2 with autoescaping on; its style
(:file:`report.css`) and script are read from the installed package and inlined. The one
third-party part is the graph layout, `@dagrejs/dagre <https://github.com/dagrejs/dagre>`_
(MIT), vendored under :file:`templates/vendor/` with its licence (:data:`VENDORED`), inlined
with its licence text. The script is kept in parts, one job each, under
:file:`templates/script/` (:data:`SCRIPT_PARTS`); :func:`report_script` joins the vendored code
and the parts, in that order, into one function body run once, so the parts share its scope and
nothing leaks into the page's globals. The result goes in as JSON inside a
``<script type="application/json">`` block, with ``<``, ``>`` and ``&`` written as JSON
``\\u`` escapes so that no string of the result (a module named ``</script>``) can end the
block; the script builds the page with ``textContent`` only. A Content-Security-Policy
``default-src 'none'`` forbids every request, so the page opened from disk stays offline.
"""

from __future__ import annotations

import json
import logging
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from padiff_ir.pairing.environment import padiff_ir_version
from padiff_ir.report.view import ReportError, build_view

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "SCRIPT_PARTS",
    "VENDORED",
    "dump_json_for_html",
    "render_html",
    "render_html_text",
    "report_script",
    "result_dict",
]

logger = logging.getLogger(__name__)

_TEMPLATES = "templates"
_SCRIPT_DIR = "script"
_VENDOR_DIR = "vendor"
#: Third-party scripts inlined before :data:`SCRIPT_PARTS`: (file, licence file) under
#: ``templates/vendor/`` (see its README for versions and sources).
VENDORED = (("dagre.min.js", "dagre.LICENSE"),)
#: The parts of the report's script, in the order they are joined (later parts use earlier ones;
#: ``main.js``, last, draws the page).
SCRIPT_PARTS = (
    "base.js",
    "match_state.js",
    "pane.js",
    "layout.js",
    "selection.js",
    "match.js",
    "sync.js",
    "export.js",
    "training.js",
    "main.js",
)
_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def _finite(value: object) -> Any:
    """``value`` with every non-finite float written as TensorMetrics does (``"nan"``...)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_json_for_html(data: object) -> str:
    """Compact JSON that is safe inside an HTML ``<script>`` element.

    Examples:
        >>> dump_json_for_html({"module": "</script><b>", "err": float("inf")})
        '{"module":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e","err":"inf"}'
    """
    text = json.dumps(_finite(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def result_dict(result: object) -> dict[str, Any]:
    """The JSON dictionary of ``result``: a result object, a dict, or a path to a JSON file.

    Graphs stored on the object as ``result.graphs`` are included when ``to_dict()`` leaves them
    out.
    """
    if isinstance(result, (str, Path)):
        path = Path(result)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ReportError(f"cannot read result file {str(path)!r}: {err}") from err
        except json.JSONDecodeError as err:
            raise ReportError(
                f"{str(path)!r} is not JSON ({err}); pass a file written by result.to_json(path)"
            ) from err
        return data
    if isinstance(result, dict):
        return result
    to_dict = getattr(result, "to_dict", None)
    if to_dict is None:
        raise ReportError(
            f"cannot make a report of a {type(result).__name__}: pass a "
            "MatchResult, a DiffResult, their to_dict() or a saved JSON file"
        )
    data = dict(to_dict())
    graphs = getattr(result, "graphs", None)
    if graphs and not data.get("graphs"):
        data["graphs"] = graphs
    return data


@cache
def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError as err:  # pragma: no cover - jinja2 is a dependency
        raise ReportError("the HTML report needs jinja2: pip install jinja2") from err
    return jinja2.Environment(
        loader=jinja2.PackageLoader("padiff_ir.report", _TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _asset(*parts: str) -> str:
    return resources.files("padiff_ir.report").joinpath(_TEMPLATES, *parts).read_text("utf-8")


@cache
def report_script() -> str:
    """The report's script: the parts of :data:`SCRIPT_PARTS` joined in one strict-mode function.

    Raises:
        ReportError: a part contains ``</script`` (it would end the inline ``<script>``).
    """
    chunks = []
    for name, licence in VENDORED:
        notice = _asset(_VENDOR_DIR, licence).replace("*/", "* /")
        chunks.append(f"/* ---- {_VENDOR_DIR}/{name} ----\n{notice}*/\n{_asset(_VENDOR_DIR, name)}")
    chunks.extend(f"// ---- {name} ----\n{_asset(_SCRIPT_DIR, name)}" for name in SCRIPT_PARTS)
    for chunk in chunks:  # our own assets; guard against an edit that breaks the page
        if "</script" in chunk.lower():
            raise ReportError(f"a part of the report script contains '</script': {chunk[:60]!r}")
    return (
        "/* padiff-ir report: draws the graphs, tables and charts from the JSON block of this "
        'page. */\n(function () {\n"use strict";\n' + "\n".join(chunks) + "})();\n"
    )


def render_html_text(result: object, *, title: str | None = None) -> str:
    """The report of ``result`` (see :func:`render_html`) as a string."""
    from markupsafe import Markup

    data = result_dict(result)
    try:
        view = build_view(data, title=title)
    except ReportError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise ReportError(
            f"the result data cannot be read ({type(err).__name__}: {detail}); "
            "pass a result, its to_dict() or a file written by "
            "result.to_json(path), unedited"
        ) from err
    template = _environment().get_template("report.html")
    return template.render(
        view=view,
        version=padiff_ir_version(),
        css=Markup(_asset("report.css")),
        js=Markup(report_script()),
        data_json=Markup(dump_json_for_html(view.payload)),
    )


def render_html(result: object, path: str | Path, *, title: str | None = None) -> Path:
    """Write the HTML report of ``result`` to ``path``; returns the path.

    ``result`` is a :class:`~padiff_ir.compare.MatchResult`, an auto_diff ``DiffResult``, the
    dictionary of either (``to_dict()``), or the path of a JSON file saved with ``to_json``:
    the report renders from that data alone and runs no model. The file is self-contained
    (style, script and data inline) and makes no network request when opened.

    Raises:
        ReportError: ``result`` is none of the above.
    """
    text = render_html_text(result, title=title)
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    logger.info("wrote report %s (%.1f MB)", out, len(text.encode("utf-8")) / 1e6)
    return out
