"""The report of the decoder-LLM pair (the zoo's llama, ``match(..., assign_weights=True)``).

Paddle's model cannot export, so ``match`` falls back to comparing the models module by
module (``MatchResult.fallback``): the report says so, draws each side's module outputs in run
order, folds the identical decoder layers into one box with one strip cell per layer, and
keeps the panes in step. Every test ends with no console error and no network request.
"""

from __future__ import annotations

import re

from padiff_ir.compare import MatchResult
from padiff_ir.report import render_html

PLACE = """sel => {
  const g = document.querySelector(sel);
  if (!g) return null;
  const s = g.closest('.pane-scroll');
  const box = s.getBoundingClientRect(), r = g.getBoundingClientRect();
  const x = (r.left + r.right) / 2 - box.left, y = (r.top + r.bottom) / 2 - box.top;
  return x >= 0 && y >= 0 && x <= s.clientWidth && y <= s.clientHeight;
}"""


def _ids(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.id)")


def test_llm_report_shows_the_native_fallback(llama_data, tmp_path, open_report):
    assert llama_data["fallback"]["side"] == "B" and not llama_data["graphs"]
    assert len(llama_data["layouts"]) == 2  # fused q/k/v and gate/up, found by probing
    assert MatchResult.from_dict(llama_data).to_dict()["layouts"] == llama_data["layouts"]
    path = render_html(llama_data, tmp_path / "llama.html")
    assert path.stat().st_size < 20e6
    report = open_report(path)
    page = report.page
    summary = page.text_content("#summary")
    assert "native fallback" in summary and "could not be exported" in summary
    for side in ("a", "b"):
        title = page.text_content(f".pane[data-side={side}] .pane-title")
        assert f"{len(llama_data['pairs'])} module outputs in run order" in title
    assert _ids(page, ".unit[data-side=a][data-kind=fold]") == ["model.layers"]
    assert _ids(page, ".unit[data-side=b][data-kind=fold]") == ["llama.layers"]
    page.click(".unit[data-side=a] .strip .cell[data-path='model.layers.1']")
    assert _ids(page, ".pane[data-side=a] .unit.selected") == ["model.layers.1"]
    assert _ids(page, ".pane[data-side=b] .unit.partner") == ["llama.layers.1"]
    assert page.evaluate(PLACE, ".pane[data-side=b] .unit.partner")
    page.click(".unit[data-side=a][data-id='model.layers.1'] .toggle")
    page.locator(".unit[data-side=a][data-kind=op]").filter(has_text="LlamaRMSNorm").first.click()
    panel = page.text_content("#panel")
    assert "max_abs" in panel and "shape_b" in panel
    assert page.evaluate(PLACE, ".pane[data-side=b] .unit.partner")
    page.click(".unit[data-side=a][data-id='model.layers.1.self_attn']")
    layouts = page.eval_on_selector_all(
        "#panel li[data-layout]", "els => els.map(e => e.textContent)"
    )
    assert len(layouts) == 1 and "fused_qkv_grouped(heads=4, kv_heads=2, head_dim=16" in layouts[0]
    page.click(".unit[data-side=b][data-id='llama.layers.1.mlp']")
    assert "fused_order(order=[1, 0])" in page.text_content("#panel li[data-layout]")
    assert "fused_qkv_grouped" in page.text_content("#summary"), "the layouts found are listed"
    report.assert_clean()


def test_24_layer_decoder_folds_to_one_block_and_a_24_cell_strip(
    llama24_data, tmp_path, open_report
):
    path = render_html(llama24_data, tmp_path / "llama24.html")
    assert path.stat().st_size < 20e6
    report = open_report(path)
    page = report.page
    for side, layers in (("a", "model.layers"), ("b", "llama.layers")):
        assert _ids(page, f".unit[data-side={side}][data-kind=fold]") == [layers]
        cells = page.eval_on_selector_all(
            f".unit[data-side={side}] .strip .cell", "els => els.map(e => e.dataset.path)"
        )
        assert cells == [f"{layers}.{k}" for k in range(24)]
        assert not _ids(page, f".unit[data-side={side}][data-module^='{layers}.']")
    page.click(".unit[data-side=a] .strip .cell[data-path='model.layers.17']")
    for side, layers in (("a", "model.layers"), ("b", "llama.layers")):
        blocks = [
            i
            for i in _ids(page, f".unit[data-side={side}][data-kind=module]")
            if re.fullmatch(rf"{re.escape(layers)}\.\d+", i)
        ]
        assert blocks == [f"{layers}.{k}" for k in range(24)], "unfolded on both sides"
    assert _ids(page, ".pane[data-side=a] .unit.selected") == ["model.layers.17"]
    assert _ids(page, ".pane[data-side=b] .unit.partner") == ["llama.layers.17"]
    assert page.evaluate(PLACE, ".pane[data-side=a] .unit.selected")
    assert page.evaluate(PLACE, ".pane[data-side=b] .unit.partner")
    page.click(".pane[data-side=a] .frame-label[data-path='model.layers']")
    assert _ids(page, ".unit[data-side=a][data-kind=fold]") == ["model.layers"], "folds back"
    assert _ids(page, ".unit[data-side=b][data-kind=fold]") == ["llama.layers"]
    report.assert_clean()


def test_a_real_hugging_face_llama_report_folds_and_marks_the_broken_layer(tmp_path, open_report):
    """``transformers``' own LlamaForCausalLM (4 layers, tiny config, no download) against the
    zoo's paddle port with a RMSNorm epsilon bug in layer 2: the folded strip marks that cell,
    and opening it shows the culprit with its partner in view."""
    import padiff_ir
    from padiff_ir.zoo import get_pair
    from tests.hf_models import hf_causal_lm, hf_inputs

    hf = hf_causal_lm("Llama", layers=4)
    port = get_pair("llama", "tiny", overrides={"layers": 4}, seed=1)
    port.paddle_model.llama.layers[2].input_layernorm.variance_epsilon = 1e-1
    inputs = hf_inputs(port.inputs["input_ids"])
    result = padiff_ir.match(hf, port.paddle_model, inputs, assign_weights=True)
    assert not result and result.culprits[0].module_a == "model.layers.2.input_layernorm"
    status = {m.a: m.status.value for m in result.modules}
    assert status["model.layers.2"] == "contains-culprit" and status["model.layers.1"] == "ok"
    page = open_report(result.to_html(tmp_path / "hf.html")).page
    classes = page.eval_on_selector_all(
        ".unit[data-side=a] .strip .cell",
        "els => els.map(e => [e.dataset.path, e.getAttribute('class')])",
    )
    assert [path for path, _ in classes] == [f"model.layers.{k}" for k in range(4)]
    assert "contains-culprit" in classes[2][1].split()
    assert not any("culprit" in c for _, c in classes[:2])
    page.click(".unit[data-side=a] .strip .cell[data-path='model.layers.2']")
    assert _ids(page, ".pane[data-side=b] .unit.partner") == ["llama.layers.2"]
    assert page.evaluate(PLACE, ".pane[data-side=b] .unit.partner")
    assert "model.layers.2.input_layernorm" in page.text_content("#summary")
