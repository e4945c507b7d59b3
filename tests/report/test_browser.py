"""The report in headless Chromium: loads offline without errors, and its views respond.

Reports of the demo's pair (ViTPose-tiny, with a culprit), of an auto_diff run, of a synthetic
pair of 4,000 ops per side, and of a result whose module names and attributes hold markup.
The ViTPose-B report is tested in ``test_browser_vitpose_base.py``.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from padiff_ir.report import render_html
from tests.report._results import synthetic_result
from tests.report.conftest import ARTIFACTS

CULPRIT = "backbone.blocks.1.norm2"


@pytest.fixture
def tiny_report(tiny_data, tmp_path, open_report):
    return open_report(render_html(tiny_data, tmp_path / "demo.html"))


def _units(page, selector: str = "") -> list[dict]:
    return page.eval_on_selector_all(
        f".unit{selector}",
        "els => els.map(e => ({side: e.dataset.side, kind: e.dataset.kind, "
        "id: e.dataset.id, module: e.dataset.module, cls: e.getAttribute('class')}))",
    )


def test_demo_report_loads_offline_without_errors(tiny_report):
    tiny_report.assert_clean()
    page = tiny_report.page
    assert page.text_content("#verdict") == "DIVERGED"
    for side in ("a", "b"):
        assert _units(page, f"[data-side={side}]"), f"graph {side} is drawn"


def test_culprit_is_shown_and_revealed_in_both_graphs(tiny_report):
    page = tiny_report.page
    assert page.is_visible("#culprits .culprit")
    assert CULPRIT in page.text_content("#culprits .culprit-title")
    assert "epsilon 1e-06 vs 0.001" in page.text_content("#culprits")
    page.click(f"#culprits [data-reveal-module='{CULPRIT}']")
    selected = _units(page, ".selected")
    assert [(u["side"], u["id"]) for u in selected] == [("a", CULPRIT)]
    assert "culprit" in selected[0]["cls"]
    assert [(u["side"], u["id"]) for u in _units(page, ".partner")] == [("b", CULPRIT)]
    assert "own" in page.text_content("#panel") and "culprit" in page.text_content("#panel")
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    tiny_report.assert_clean()


def test_clicking_a_node_opens_its_panel(tiny_report):
    page = tiny_report.page
    node = page.locator(".unit[data-side=a][data-kind=op]").filter(has_text="LayerNormalization")
    node.first.click()
    panel = page.text_content("#panel")
    assert "LayerNormalization" in panel and "max_abs" in panel and "cosine" in panel
    assert "torch_models.py" in panel  # the torch source line from the export's metadata
    assert page.locator("#panel svg.histogram rect").count() == 15
    partners = _units(page, ".partner")
    assert partners and all(u["side"] == "b" and u["kind"] == "op" for u in partners)
    page.locator("#panel a.link").filter(has_text="LayerNormalization").last.click()
    assert _units(page, ".selected")[0]["side"] == "b"
    tiny_report.assert_clean()


def test_expanding_a_module_shows_its_ops(tiny_report):
    page = tiny_report.page
    page.click("[data-action='Collapse all']")
    assert not _units(page, f"[data-module^='{CULPRIT}']"), "collapsed to the top modules"
    path = ""
    for part in CULPRIT.split("."):
        path = f"{path}.{part}" if path else part
        if path == "backbone.blocks.1":  # identical blocks are folded: open from the strip
            assert _units(page, "[data-kind=fold][data-id='backbone.blocks'][data-side=a]")
            page.click(f".unit[data-side=a] .strip .cell[data-path='{path}']")
        assert _units(page, f"[data-kind=module][data-id='{path}'][data-side=a]")
        page.click(f".unit[data-side=a][data-id='{path}'] .toggle")
    ops = _units(page, f"[data-kind=op][data-module='{CULPRIT}']")
    assert {u["side"] for u in ops} == {"a", "b"}, "the partner module expands with it"
    assert page.locator(f".frame[data-path='{CULPRIT}']").count() == 2
    page.click(f".frame-label[data-path='{CULPRIT}'] >> nth=0")
    assert not _units(page, f"[data-kind=op][data-module='{CULPRIT}']")
    tiny_report.assert_clean()


def test_search_by_module_path_and_op(tiny_report):
    page = tiny_report.page
    page.fill("#search", "norm2")
    page.wait_for_selector(".search-results div")
    entries = page.locator(".search-results div").all_text_contents()
    assert any("blocks.1.norm2" in e for e in entries)
    assert page.locator(".unit.hit").count() >= 2
    page.locator(".search-results div").filter(has_text="LayerNormalization").first.click()
    assert _units(page, ".selected")[0]["module"].endswith("norm2")
    page.fill("#search", "Softmax")
    page.wait_for_selector(".search-results div")
    assert all(
        "Softmax" in e
        for e in page.locator(".search-results div").all_text_contents()
        if not e.endswith("search")
    )


def test_pairs_table_sorts_and_filters(tiny_report, tiny_data):
    page = tiny_report.page
    page.click("[data-tab=pairs]")
    rows = page.locator("#tab-pairs tbody tr")
    assert rows.count() == len(tiny_data["pairs"])
    page.locator("#tab-pairs th", has_text="max abs").first.click()  # numbers sort descending
    first = rows.first.locator("td").all_text_contents()
    worst = max(float(p["metrics"]["max_abs"]) for p in tiny_data["pairs"])
    assert float(first[7]) == pytest.approx(worst, rel=1e-2)
    page.check("#tab-pairs input[type=checkbox]")
    failing = sum(1 for p in tiny_data["pairs"] if not p["metrics"]["ok"])
    assert rows.count() == failing
    page.fill("#tab-pairs input[type=search]", "mlp.fc2")
    page.wait_for_timeout(300)
    assert 0 < rows.count() < failing
    assert all("mlp.fc2" in t for t in rows.all_text_contents())
    rows.first.click()  # a row opens its node in the graphs
    assert page.is_visible("#tab-graphs") and _units(page, ".selected")
    tiny_report.assert_clean()


def test_layer_map_downloads_as_json(tiny_report, tiny_data):
    page = tiny_report.page
    page.click("[data-tab=layers]")
    assert page.locator("#tab-layers tbody tr").count() == len(tiny_data["layer_map"])
    href = page.get_attribute("#tab-layers a[download='layer_map.json']", "href")
    assert href.startswith("data:application/json")
    downloaded = json.loads(urllib.parse.unquote(href.split(",", 1)[1]))
    assert downloaded == json.loads(json.dumps(tiny_data["layer_map"]))
    page.click("[data-tab=unmatched]")
    assert page.locator("#tab-unmatched tbody tr").count() == len(tiny_data["unmatched"])
    page.click("[data-tab=environment]")
    assert "onnxruntime" in page.text_content("#tab-environment")
    tiny_report.assert_clean()


def test_untrusted_strings_show_as_text(tmp_path, open_report):
    module = "<script>alert('module')</script>"
    attribute = "</script><img src=x onerror=alert('attr')>"
    data = synthetic_result(3, 8, module_name=module)
    data["graphs"]["a"]["nodes"][0]["attrs"]["pads"] = attribute
    report = open_report(render_html(data, tmp_path / "hostile.html"))
    page = report.page
    assert module in page.text_content("#culprits .culprit-title")
    page.click("[data-action='Expand all']")
    page.click(".unit[data-side=a][data-kind=op] >> nth=0")
    assert attribute in page.text_content("#panel")
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    report.assert_clean()  # no dialog was opened by any of the strings


def test_auto_diff_report(diff_data, tmp_path, open_report):
    report = open_report(render_html(diff_data, tmp_path / "diff.html"))
    page = report.page
    assert page.text_content("#verdict") == "DIVERGED"
    assert "learning rate" in page.text_content("#culprits")
    assert page.locator("#tab-training polyline").count() == 3  # loss A, loss B, difference
    grids = page.locator("#tab-training .chart").filter(has_text="gradients")
    assert grids.count() >= 2
    page.locator("#tab-training .chart").filter(has_text="weights after").locator(
        "rect.cell"
    ).last.click()
    assert "max_abs" in page.text_content("#panel")
    page.click("[data-tab=steps]")
    assert page.locator("#tab-steps tbody tr").count() == 4
    page.click("[data-tab=layers]")
    assert page.locator("#tab-layers tbody tr").count() >= 3
    report.assert_clean()


def test_thousands_of_nodes_open_collapsed(tmp_path, open_report):
    path = render_html(synthetic_result(100, 40), tmp_path / "big.html")
    assert path.stat().st_size < 20e6
    report = open_report(path, timeout_ms=30_000)
    page = report.page
    units = _units(page, "[data-side=a]")
    assert [(u["kind"], u["id"]) for u in units] == [("fold", "blocks")]  # 100 blocks folded
    cells = page.eval_on_selector_all(
        ".unit[data-side=a] .strip .cell", "els => els.map(e => e.dataset.path)"
    )
    assert cells == [f"blocks.{k}" for k in range(100)]  # one cell per block
    page.click("#culprits [data-reveal-module]")
    assert _units(page, ".selected")[0]["id"] == "blocks.50.norm"
    page.click("[data-action='Expand all']")  # 4,000 boxes a side: opened as far as fits
    assert "Too many ops" in page.text_content("#graph-note")
    assert 100 <= len(_units(page, "[data-side=a]")) <= 1200
    report.assert_clean()


def test_groups_and_unmatched_ops_are_marked(tmp_path, open_report):
    data = synthetic_result(3, 8)  # pair 1 is a 1:2 group; B's node 3 is unmatched
    report = open_report(render_html(data, tmp_path / "groups.html"))
    page = report.page
    page.click("[data-action='Expand all']")
    assert page.locator(".pane[data-side=b] rect.group-frame").count() == 1
    assert [u["id"] for u in _units(page, ".group[data-side=b]")] == ["b_node_1", "b_node_2"]
    assert [u["id"] for u in _units(page, ".group[data-side=a]")] == ["a_node_1"]
    assert [u["id"] for u in _units(page, ".unmatched")] == ["b_node_3"]
    page.click(".unit[data-side=b][data-id=b_node_3]")
    assert "unmatched" in page.text_content("#panel")
    page.click(".unit[data-side=a][data-id=a_node_1]")
    assert "1:2 group" in page.text_content("#panel")
    assert len(_units(page, ".partner")) == 2
    report.assert_clean()
