"""The graph panes of the report in headless Chromium, on ViTPose-tiny with a culprit.

The two panes move together (selection, "Show in graph", scrolling, zoom), labels are
horizontal and fit their boxes, statuses have their own styles and a legend, each pane has a
minimap, the drawing saves as SVG and PNG, and B's symbolic shapes show as the run's.
Every test ends with no console error and no network request.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from padiff_ir.report import render_html

CULPRIT = "backbone.blocks.1.norm2"
SVG_NS = "{http://www.w3.org/2000/svg}"

#: Where an element sits in its pane's visible area: its centre and the area's size.
PLACE = """sel => {
  const g = document.querySelector(sel);
  if (!g) return null;
  const scroll = g.closest('.pane-scroll');
  const box = scroll.getBoundingClientRect(), r = g.getBoundingClientRect();
  return {x: (r.left + r.right) / 2 - box.left, y: (r.top + r.bottom) / 2 - box.top,
          w: scroll.clientWidth, h: scroll.clientHeight, top: scroll.scrollTop,
          max: scroll.scrollHeight - scroll.clientHeight};
}"""


@pytest.fixture
def tiny_report(tiny_data, tmp_path, open_report):
    return open_report(render_html(tiny_data, tmp_path / "demo.html"))


def _place(page, selector: str) -> dict:
    place = page.evaluate(PLACE, selector)
    assert place is not None, f"nothing matches {selector}"
    return place


def _assert_in_view(place: dict, *, centred: bool = False) -> None:
    assert 0 <= place["x"] <= place["w"] and 0 <= place["y"] <= place["h"], place
    at_limit = place["top"] <= 1 or place["top"] >= place["max"] - 1
    if centred and not at_limit:
        assert abs(place["y"] - place["h"] / 2) < 0.15 * place["h"], place


def _scroll_panes(page, where: str) -> None:
    page.evaluate(
        "where => document.querySelectorAll('.pane-scroll').forEach(s => "
        "{ s.scrollTop = where === 'end' ? s.scrollHeight : 0; })",
        where,
    )
    page.wait_for_timeout(100)


def test_selecting_a_node_centres_its_partner_in_the_other_pane(tiny_report):
    page = tiny_report.page
    page.click("[data-action='Expand all']")
    _scroll_panes(page, "top")
    page.locator(".unit[data-side=a][data-kind=op]").filter(
        has_text="LayerNormalization"
    ).last.click()
    page.wait_for_timeout(100)
    _assert_in_view(_place(page, ".unit.selected[data-side=a]"), centred=True)
    _assert_in_view(_place(page, ".unit.partner[data-side=b]"), centred=True)
    page.locator(".unit[data-side=b][data-kind=op]").filter(
        has_text="LayerNormalization"
    ).first.click()
    page.wait_for_timeout(100)
    _assert_in_view(_place(page, ".unit.partner[data-side=a]"), centred=True)
    tiny_report.assert_clean()


def test_show_in_graph_scrolls_both_panes(tiny_report):
    page = tiny_report.page
    page.click("[data-action='Expand all']")
    _scroll_panes(page, "end")
    page.click(f"#culprits [data-reveal-module='{CULPRIT}']")
    page.wait_for_timeout(100)
    for selector in (".frame.selected[data-side=a]", ".frame.partner[data-side=b]"):
        assert page.get_attribute(selector, "data-path") == CULPRIT  # expanded: its frame
        _assert_in_view(_place(page, f"{selector} > text"), centred=True)
    page.click("[data-reveal-first]")
    page.wait_for_timeout(100)
    _assert_in_view(_place(page, ".unit.selected[data-side=a]"))
    _assert_in_view(_place(page, ".unit.partner[data-side=b]"))
    tiny_report.assert_clean()


def test_panes_scroll_and_zoom_together(tiny_report):
    page = tiny_report.page
    page.click("[data-action='Expand all']")
    _scroll_panes(page, "top")
    centre = """side => {
      const s = document.querySelector('.pane-scroll[data-side=' + side + ']');
      const box = s.getBoundingClientRect(), cy = box.top + s.clientHeight / 2;
      let best = null, d = Infinity;
      for (const g of s.querySelectorAll('.unit[data-kind=op]')) {
        const r = g.getBoundingClientRect(), e = Math.abs((r.top + r.bottom) / 2 - cy);
        if (e < d) { d = e; best = g.dataset.module; }
      }
      return [s.scrollTop, best];
    }"""
    page.evaluate(
        "() => { const s = document.querySelector('.pane-scroll[data-side=a]'); "
        "s.scrollTop = (s.scrollHeight - s.clientHeight) * 0.6; }"
    )
    page.wait_for_timeout(300)
    top_a, module_a = page.evaluate(centre, "a")
    top_b, module_b = page.evaluate(centre, "b")
    assert top_a > 0 and top_b > 0, "B followed A"
    assert module_a.split(".")[:3] == module_b.split(".")[:3], (module_a, module_b)
    widths = page.eval_on_selector_all(".pane svg", "els => els.map(e => +e.getAttribute('width'))")
    page.click("[data-action='+']")
    zoomed = page.eval_on_selector_all(".pane svg", "els => els.map(e => +e.getAttribute('width'))")
    assert zoomed == pytest.approx([w * 1.25 for w in widths])
    tiny_report.assert_clean()


def test_labels_are_horizontal_and_fit_their_boxes(tiny_report):
    page = tiny_report.page
    for action in ("Reset", "Expand all"):
        page.click(f"[data-action='{action}']")
        assert page.locator(".pane svg text[transform]").count() == 0, "no rotated text"
        overflow = page.evaluate(
            """() => {
              const bad = [];
              for (const svg of document.querySelectorAll('.pane svg')) {
                const width = svg.viewBox.baseVal.width;
                for (const g of svg.querySelectorAll('.unit')) {
                  const box = g.querySelector('rect.box').getBBox();
                  const m = g.transform.baseVal.consolidate().matrix;
                  if (m.e < 0 || m.e + box.width > width + 1) bad.push('outside: ' + g.dataset.key);
                  for (const t of g.querySelectorAll(':scope > text'))
                    if (t.getBBox().x + t.getBBox().width > box.width + 1) bad.push(t.textContent);
                }
                for (const f of svg.querySelectorAll('.frame')) {
                  const label = f.querySelector('text'), t = label.getBBox();
                  const r = f.querySelector('rect').getBBox();
                  if (t.x + t.width > r.x + r.width + 1) bad.push(label.textContent);
                }
              }
              return bad;
            }"""
        )
        assert overflow == [], overflow
    label = page.eval_on_selector(
        f".pane[data-side=a] .frame-label[data-path='{CULPRIT}']", "e => e.firstChild.textContent"
    )
    assert label == "⊖ norm2 · LayerNorm"
    tiny_report.assert_clean()


def test_statuses_have_their_own_styles_and_a_legend(tiny_report):
    page = tiny_report.page
    page.click(f"#culprits [data-reveal-module='{CULPRIT}']")
    statuses = page.eval_on_selector_all(
        ".pane[data-side=a] .unit", "els => els.map(e => [e.dataset.id, e.getAttribute('class')])"
    )
    by_id = dict(statuses)
    assert "culprit" in by_id[CULPRIT].split()
    assert "inherited" in by_id["backbone.blocks.1.mlp"].split()
    assert "agree" in by_id["backbone.blocks.1.norm1"].split()
    style = """sel => { const g = document.querySelector(sel), r = g.querySelector('rect.box');
      const s = getComputedStyle(r);
      return [getComputedStyle(g).opacity, s.stroke, s.strokeWidth, s.strokeDasharray]; }"""
    culprit = page.evaluate(style, f".pane[data-side=b] .unit[data-id='{CULPRIT}']")
    inherited = page.evaluate(style, ".pane[data-side=b] .unit[data-id='backbone.blocks.1.mlp']")
    agree = page.evaluate(style, ".pane[data-side=b] .unit[data-id='backbone.blocks.1.norm1']")
    assert float(agree[0]) < 1 <= float(culprit[0]), "what agrees is dimmed"
    assert culprit[1:] != inherited[1:] != agree[1:]
    legend = page.text_content("#legend")
    for word in ("culprit", "inherited", "accumulated", "agrees (dimmed)", "unmatched"):
        assert word in legend
    tiny_report.assert_clean()


def test_minimap_shows_and_moves_the_view(tiny_report):
    page = tiny_report.page
    page.click("[data-action='Expand all']")
    _scroll_panes(page, "top")
    sizes = page.eval_on_selector_all(".minimap", "els => els.map(e => [e.width, e.height])")
    assert len(sizes) == 2 and all(w > 10 and h > 10 for w, h in sizes)
    page.locator(".minimap[data-side=a]").scroll_into_view_if_needed()
    box = page.locator(".minimap[data-side=a]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 3)
    page.wait_for_timeout(300)
    tops = page.eval_on_selector_all(".pane-scroll", "els => els.map(e => e.scrollTop)")
    assert tops[0] > 0 and tops[1] > 0, "A moved, and B followed"
    tiny_report.assert_clean()


def test_svg_and_png_export_of_the_current_view(tiny_report, tmp_path):
    page = tiny_report.page
    page.click(f"#culprits [data-reveal-module='{CULPRIT}']")
    page.click(".unit.selected[data-side=a] .toggle")
    with page.expect_download() as download:
        page.click("[data-action=SVG]")
    assert download.value.suggested_filename == "padiff-graphs.svg"
    saved = Path(download.value.path())
    root = ET.parse(saved).getroot()  # valid XML
    assert root.tag == f"{SVG_NS}svg" and float(root.get("width")) > 0
    texts = {"".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")}
    shown = page.eval_on_selector_all(
        ".pane svg .unit > text, .pane svg .frame-label", "els => els.map(e => e.textContent)"
    )
    assert shown and set(shown) <= texts
    assert any("LayerNormalization" in t for t in texts)
    assert len(list(root.iter(f"{SVG_NS}style"))) == 1, "styled without the page"
    with page.expect_download() as download:
        page.click("[data-action=PNG]")
    assert download.value.suggested_filename == "padiff-graphs.png"
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tiny_report.assert_clean()


def test_symbolic_shapes_show_as_run(tiny_report, tiny_data):
    symbolic = [
        n
        for n in tiny_data["graphs"]["b"]["nodes"]
        if any(not isinstance(d, int) for d in n.get("shape") or [])
    ]
    assert symbolic, "paddle2onnx leaves symbolic dims (unk__...) in B's graph"
    page = tiny_report.page
    page.click("[data-action='Expand all']")
    texts = page.eval_on_selector_all(
        ".pane svg .unit text.sub", "els => els.map(e => e.textContent)"
    )
    assert texts and not [t for t in texts if "unk__" in t]
    assert sum("?" in t for t in texts) <= 1, "dims the run bound show as numbers"
    tiny_report.assert_clean()


def test_batches_tab_lists_every_batch(tiny_data, tmp_path, open_report):
    batches = {
        "kind": "batches",
        "ok": False,
        "first_failing": 1,
        "prepare_s": 3.0,
        "check_s": [0.4, 0.5],
        "batches": [{**tiny_data, "ok": True, "culprits": []}, tiny_data],
    }
    report = open_report(render_html(batches, tmp_path / "batches.html"))
    page = report.page
    assert "2 batches, 1 diverged" in page.text_content("#summary")
    assert "shown here: batch 1" in page.text_content("#summary")
    page.click("[data-tab=batches]")
    rows = page.locator("#tab-batches tbody tr")
    assert rows.count() == 2 and CULPRIT in rows.nth(1).text_content()
    report.assert_clean()


def test_a_call_site_culprit_shows_where_it_belongs(tmp_path, open_report):
    import padiff_ir
    from tests.compare.call_site_pairs import example_input, pair

    model_a, model_b = pair(ceil_mode=True)  # A calls one pool three times, B has three pools
    result = padiff_ir.match(model_a, model_b, example_input())
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("pool#2", "pool2")]
    report = open_report(render_html(result, tmp_path / "calls.html"))
    page = report.page
    page.click("#culprits [data-reveal-module='pool']")
    assert page.eval_on_selector_all(
        ".pane[data-side=a] .selected", "els => els.map(e => e.dataset.id || e.dataset.path)"
    ) == ["pool"]
    partner = page.eval_on_selector_all(
        ".pane[data-side=b] .partner", "els => els.map(e => e.dataset.id || e.dataset.path)"
    )
    assert partner == ["pool2"], "the culprit call's own module on B"
    _assert_in_view(_place(page, ".pane[data-side=b] .partner"))
    calls = page.eval_on_selector_all(
        "#panel tr[data-call]", "els => els.map(e => [e.dataset.call, e.children[1].textContent])"
    )
    assert calls == [["pool#1", "ok"], ["pool#2", "culprit"], ["pool#3", "inherited"]]
    report.assert_clean()
