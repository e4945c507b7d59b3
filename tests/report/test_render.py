"""render_html and the report CLI, without a browser (Model Explorer: test_model_explorer.py)."""

from __future__ import annotations

import json
import re
from argparse import Namespace

import pytest
from markupsafe import escape

from padiff_ir.compare import MatchResult
from padiff_ir.report import ReportError, render_html, render_html_text
from padiff_ir.report.commands import main as report_main
from padiff_ir.report.commands import report_command
from tests.report._results import synthetic_result

HOSTILE_MODULE = "<script>alert('module')</script>"
HOSTILE_ATTRIBUTE = "</script><img src=x onerror=alert('attr')>"


def _payload(text: str) -> dict:
    block = re.search(
        r'<script type="application/json" id="padiff-data">(.*?)</script>', text, flags=re.S
    )
    assert block, "the data block is missing"
    return json.loads(block.group(1))


def test_report_is_one_offline_file(tiny_data, tmp_path):
    path = render_html(tiny_data, tmp_path / "sub" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "default-src 'none'" in text  # the page may not request anything
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", text)
    assert not re.search(r"@import|url\(", text)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert text.count("<script") == 2  # the data block and our script


def test_payload_round_trips_the_result(tiny_data, tmp_path):
    text = render_html(tiny_data, tmp_path / "r.html").read_text(encoding="utf-8")
    payload = _payload(text)
    assert payload["pairs"] == json.loads(json.dumps(tiny_data["pairs"]))
    assert payload["graphs"] == json.loads(json.dumps(tiny_data["graphs"]))
    assert MatchResult.from_dict(payload) == MatchResult.from_dict(tiny_data)


def test_summary_is_rendered_as_html(tiny_data):
    text = render_html_text(tiny_data, title="my report")
    assert "<title>my report</title>" in text
    culprits = text[text.index('id="culprits"') : text.index('id="tabs"')]
    assert "backbone.blocks.1.norm2 ↔ backbone.blocks.1.norm2" in culprits
    assert "LayerNormalization epsilon 1e-06 vs 0.001" in culprits
    assert "DIVERGED" in text


def test_renders_from_a_result_object_and_a_saved_file(tiny_data, tmp_path):
    result = MatchResult.from_dict(tiny_data)
    result.graphs = tiny_data["graphs"]  # what match() stores
    from_object = _payload(render_html(result, tmp_path / "a.html").read_text("utf-8"))
    assert from_object["graphs"]["a"]["nodes"]
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(tiny_data), encoding="utf-8")
    from_file = _payload(render_html(saved, tmp_path / "b.html").read_text("utf-8"))
    assert from_file["culprits"] == from_object["culprits"]


def test_untrusted_strings_are_escaped(tmp_path):
    data = synthetic_result(3, 8, module_name=HOSTILE_MODULE)
    data["graphs"]["a"]["nodes"][0]["attrs"]["pads"] = HOSTILE_ATTRIBUTE
    data["notes"] = [HOSTILE_ATTRIBUTE]
    text = render_html(data, tmp_path / "hostile.html").read_text(encoding="utf-8")
    assert HOSTILE_MODULE not in text and HOSTILE_ATTRIBUTE not in text
    assert "<img" not in text
    assert str(escape(HOSTILE_MODULE)) in text  # shown as text in the summary
    payload = _payload(text)
    assert payload["graphs"]["a"]["nodes"][0]["attrs"]["pads"] == HOSTILE_ATTRIBUTE
    assert payload["culprits"][0]["module_a"].startswith(HOSTILE_MODULE)


def test_thousands_of_nodes_stay_under_20_mb(tmp_path):
    data = synthetic_result(100, 40)  # 4,000 data ops and pairs per side
    path = render_html(data, tmp_path / "big.html")
    size = path.stat().st_size
    assert size < 20e6, f"{size / 1e6:.1f} MB"
    assert len(_payload(path.read_text("utf-8"))["graphs"]["b"]["nodes"]) == 4000


def test_non_finite_values_are_valid_json(tiny_data):
    tiny_data["culprits"][0]["own_error"] = float("nan")
    tiny_data["pairs"][0]["metrics"]["max_abs"] = float("inf")
    payload = _payload(render_html_text(tiny_data))
    assert payload["culprits"][0]["own_error"] == "nan"
    assert payload["pairs"][0]["metrics"]["max_abs"] == "inf"


def test_auto_diff_result_renders(diff_data, tmp_path):
    from padiff_ir.native import DiffResult

    text = render_html(diff_data, tmp_path / "diff.html").read_text("utf-8")
    assert "DIVERGED in training" in text and "learning rate 0.01" in text
    assert _payload(text)["training"]["sections"]
    from_object = render_html(DiffResult.from_dict(diff_data), tmp_path / "object.html")
    assert _payload(from_object.read_text("utf-8")) == _payload(text)


def test_bad_inputs_raise_report_error(tmp_path):
    with pytest.raises(ReportError, match="not JSON"):
        (tmp_path / "x.json").write_text("{", encoding="utf-8")
        render_html(tmp_path / "x.json", tmp_path / "x.html")
    with pytest.raises(ReportError, match="cannot read"):
        render_html(tmp_path / "missing.json", tmp_path / "x.html")
    with pytest.raises(ReportError, match="cannot make a report"):
        render_html(object(), tmp_path / "x.html")


def test_cli_report_command(tiny_data, tmp_path, capsys):
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(tiny_data), encoding="utf-8")
    args = Namespace(
        result=str(saved),
        output=str(tmp_path / "out.html"),
        title=None,
        model_explorer=str(tmp_path / "me"),
    )
    assert report_command(args) == 0
    assert (tmp_path / "out.html").stat().st_size > 10_000
    assert (tmp_path / "me" / "sync_navigation_a_to_b.json").exists()
    assert "wrote" in capsys.readouterr().out
    assert report_main([str(saved)]) == 0 and saved.with_suffix(".html").exists()
    assert report_main([str(tmp_path / "nothing.json")]) == 2


def test_script_never_writes_markup():
    from importlib import resources

    from padiff_ir.report.html_report import SCRIPT_PARTS, report_script

    folder = resources.files("padiff_ir.report").joinpath("templates", "script")
    parts = sorted(p.name for p in folder.iterdir() if p.name.endswith(".js"))
    assert sorted(SCRIPT_PARTS) == parts
    for name in SCRIPT_PARTS:
        assert len(folder.joinpath(name).read_text().splitlines()) < 400, name
    script = report_script()
    assert script.count("(function () {") == 1 and script.rstrip().endswith("})();")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "fetch(",
        "XMLHttpRequest",
        "import(",
    ):
        assert sink not in script, sink


def test_layout_library_is_vendored_with_its_licence(tiny_data):
    from importlib import resources

    from padiff_ir.report.html_report import VENDORED

    folder = resources.files("padiff_ir.report").joinpath("templates", "vendor")
    text = render_html_text(tiny_data)
    for script, licence in VENDORED:
        assert folder.joinpath(script).read_text()[:200] in text  # inlined, unchanged
        assert "Copyright (c) 2012-2014 Chris Pettitt" in folder.joinpath(licence).read_text()
    assert "Permission is hereby granted" in text  # the MIT notice travels with the code
    assert "sourceMappingURL" not in text  # nothing asks for a file beside the report
