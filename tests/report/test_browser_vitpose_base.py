"""The report of a ViTPose-B pair (a ViT-B-size graph) in headless Chromium.

The one test module that builds ViTPose-B (two exports and a match run: about two minutes).
Time-to-interactive is measured by ``benchmarks/bench_report.py``, not asserted here.
"""

from __future__ import annotations

import re

import pytest

from padiff_ir.report import render_html

pytestmark = pytest.mark.slow

CULPRIT = "backbone.blocks.5.norm2"


@pytest.fixture(scope="module")
def base_report_path(tmp_path_factory):
    from tests.report._results import vitpose_result

    data = vitpose_result("base", culprit=CULPRIT)
    assert [c["module_a"] for c in data["culprits"]] == [CULPRIT]
    return render_html(data, tmp_path_factory.mktemp("report") / "vitpose_base.html")


def test_vitpose_base_report_is_small_and_offline(base_report_path, open_report):
    assert base_report_path.stat().st_size < 20e6
    report = open_report(base_report_path)
    report.assert_clean()


def test_vitpose_base_opens_with_blocks_folded_and_expands_on_click(base_report_path, open_report):
    report = open_report(base_report_path)
    page = report.page
    for side in ("a", "b"):
        folds = page.eval_on_selector_all(
            f".unit[data-side={side}][data-kind=fold]", "els => els.map(e => e.dataset.id)"
        )
        assert folds == ["backbone.blocks"], "12 identical blocks, one box"
        cells = page.eval_on_selector_all(
            f".unit[data-side={side}] .strip .cell", "els => els.map(e => e.dataset.path)"
        )
        assert cells == [f"backbone.blocks.{k}" for k in range(12)]
        inside = page.locator(f".unit[data-side={side}][data-module^='backbone.blocks.']")
        assert inside.count() == 0, "nothing inside the blocks is drawn yet"
    culprit_cells = page.eval_on_selector_all(
        ".unit[data-side=a] .strip .cell.contains-culprit", "els => els.map(e => e.dataset.path)"
    )
    assert culprit_cells == ["backbone.blocks.5"], "the strip points at the culprit's block"
    page.click(".unit[data-side=a] .strip .cell[data-path='backbone.blocks.5']")
    ids = page.eval_on_selector_all(
        ".unit[data-side=a][data-kind=module]", "els => els.map(e => e.dataset.id)"
    )
    blocks = [i for i in ids if re.fullmatch(r"backbone\.blocks\.\d+", i)]
    assert blocks == [f"backbone.blocks.{k}" for k in range(12)], ids
    page.dblclick(".unit[data-side=a][data-id='backbone.blocks.5']")
    children = page.eval_on_selector_all(
        ".unit[data-side=a][data-module^='backbone.blocks.5']",
        "els => els.map(e => e.dataset.module)",
    )
    assert {"backbone.blocks.5.norm1", "backbone.blocks.5.attn", CULPRIT} <= set(children)
    assert page.locator(".unit[data-side=b][data-module^='backbone.blocks.5.']").count() > 3
    report.assert_clean()


def test_vitpose_base_culprit_is_shown(base_report_path, open_report):
    report = open_report(base_report_path)
    page = report.page
    assert CULPRIT in page.text_content("#culprits")
    page.click(f"[data-reveal-module='{CULPRIT}']")
    selected = page.eval_on_selector_all(".unit.selected", "els => els.map(e => e.dataset.id)")
    assert selected == [CULPRIT]
    page.click(".unit.selected .toggle")
    ops = page.locator(f".unit[data-kind=op][data-module='{CULPRIT}']")
    assert ops.count() == 2 and "LayerNormalization" in ops.first.text_content()
    ops.first.click()
    assert "epsilon" in page.text_content("#panel")
    report.assert_clean()
