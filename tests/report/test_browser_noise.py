"""The report's module panel shows a module's errors in units of its measured noise
(``tolerance="auto"``), read from the result's JSON alone."""

from __future__ import annotations

from padiff_ir.compare.noise_result import ModuleNoise, NoiseFloor, NoiseVerdict
from padiff_ir.report import render_html

CULPRIT = "backbone.blocks.1.norm2"


def test_module_panel_shows_the_noise_band(tiny_data, tmp_path, open_report):
    verdict = NoiseVerdict(
        method="float64 shadow",
        dtype="float32",
        multiplier=2.0,
        modules=(
            ModuleNoise(
                CULPRIT,
                CULPRIT,
                output=NoiseFloor(noise=1e-7, error=2.4e-4, bound=2.1e-7, scale=1.0, numel=4096),
                own=NoiseFloor(noise=1e-7, error=2.4e-4, bound=2.1e-7, scale=1.0, numel=4096),
            ),
        ),
        culprits=(CULPRIT,),
        sentence=f"diverged: `{CULPRIT}` own error 1143x its noise",
    )
    data = {**tiny_data, "noise": verdict.to_dict()}
    report = open_report(render_html(data, tmp_path / "noise.html"))
    page = report.page
    page.click(f"#culprits [data-reveal-module='{CULPRIT}']")
    panel = page.text_content("#panel")
    assert "numerical noise (float64 shadow, float32)" in panel
    assert page.text_content("#panel tr[data-noise=own]").endswith("1142.9x noise")
    report.assert_clean()
