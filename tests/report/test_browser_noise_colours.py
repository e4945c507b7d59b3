"""Under ``tolerance="auto"`` the report colours modules and ops by their error in units of
their measured noise (``report/noise_index.py``), from the result's JSON alone: a real aligned
pair is green throughout, a real epsilon bug below the fixed atol is red at its LayerNorm."""

from __future__ import annotations

import functools
import json

import padiff_ir
from padiff_ir.report import render_html
from padiff_ir.report.noise_index import noise_index
from tests.compare.test_noise import _epsilon_pair, _inputs, _pair

NORM = "1"  # the LayerNorm of tests.compare.test_noise._pair


@functools.cache
def _result(buggy: bool) -> str:
    """``match(..., tolerance="auto")`` of Linear -> LayerNorm -> Linear and its paddle port;
    ``buggy``: B's epsilon 1e-6 against A's 1e-5 on small-variance inputs (the fixed atol
    passes it)."""
    if not buggy:
        model_a, model_b = _pair()
    else:
        model_a, model_b = _epsilon_pair()
    result = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    assert result.ok is not buggy and result.noise is not None
    return result.to_json(indent=None)


def _units(page) -> list[tuple[str, str, str]]:
    """``(side, module, class)`` of every drawn op and module that has a noise colour."""
    return page.eval_on_selector_all(
        "svg g.unit[data-noise]",
        "els => els.map(e => [e.dataset.side, e.dataset.module, e.getAttribute('class')])",
    )


def test_noise_index_levels_a_real_culprit():
    index = noise_index(json.loads(_result(buggy=True)))
    assert index is not None
    norm = index["modules"]["a"][NORM]
    assert norm["level"] == "fail" and norm["own_level"] == "fail" and norm["own"] > 10
    assert index["modules"]["a"]["0"]["level"] == "ok"  # the Linear before it
    assert noise_index(json.loads(_result(buggy=False)))["modules"]["a"][NORM]["level"] == "ok"
    assert noise_index({"ok": True}) is None  # a fixed tolerance: no noise colours


def test_an_aligned_pair_is_green_and_a_bug_red_in_units_of_noise(tmp_path, open_report):
    aligned = open_report(render_html(json.loads(_result(False)), tmp_path / "aligned.html"))
    page = aligned.page
    units = _units(page)
    assert units and all("noise-ok" in cls for _, _, cls in units), units
    assert page.get_attribute("#legend", "data-scale") == "noise"
    assert "aligned within numerical noise" in page.text_content("table.facts")
    aligned.assert_clean()

    buggy = open_report(render_html(json.loads(_result(True)), tmp_path / "buggy.html"))
    page = buggy.page
    units = _units(page)
    norm = [cls.split() for _, module, cls in units if module == NORM]
    assert len(norm) == 2 and all({"noise-fail", "culprit"} <= set(c) for c in norm), units
    assert all("noise-ok" in cls for _, module, cls in units if module == "0"), units
    assert "diverged: `1` own error" in page.text_content("table.facts")
    page.click("[data-tab=pairs]")  # the pairs' status is the noise's: the norm fails it
    assert page.locator("#tab-pairs th", has_text="× noise").count() == 1
    page.check("#tab-pairs input[type=checkbox]")  # failing pairs only
    rows = [r.split("\t") for r in page.locator("#tab-pairs tbody tr:visible").all_inner_texts()]
    assert rows and all(r[1] in ("FAIL", "warn") for r in rows), rows  # #, status, × noise...
    assert any(r[1] == "FAIL" and r[3] == NORM for r in rows), rows
    buggy.assert_clean()
