"""Match results saved by earlier versions load into the typed result parts and render.

``data/match_gelu_main.json`` (ViT, B's GELU tanh-approximated, which paddle2onnx exports as the
exact GELU: B's graph departs from its eager run) and ``data/match_fallback_main.json`` (the
tiny Llama pair, whose paddle side cannot export: the native fallback) were written by the code
before these parts were typed (main at 2330d2f), their lists cut to 12 entries and their graphs
left out to keep the files small.
"""

from __future__ import annotations

import json
from pathlib import Path

from padiff_ir.compare.facts import NoCulprit, facts
from padiff_ir.compare.match_result import (
    Departure,
    ExportFidelity,
    Fallback,
    MatchResult,
    ModelInfo,
)
from padiff_ir.metrics import Tolerance
from padiff_ir.report import build_view

DATA = Path(__file__).parent / "data"
TYPED = ("model_a", "model_b", "fallback", "export_fidelity", "overrides", "layouts")


def _saved(name: str) -> tuple[dict, MatchResult]:
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data, MatchResult.load(DATA / name)


def test_an_old_result_with_an_export_departure_loads_typed_and_round_trips():
    data, result = _saved("match_gelu_main.json")
    assert result.model_a == ModelInfo("torch", "Vit", 101)
    assert result.fallback is None and data["fallback"] == {}
    assert result.overrides == {"x": Tolerance(atol=1e-3)}
    assert result.export_fidelity["a"] == ExportFidelity(
        True, True, data["export_fidelity"]["a"]["max_abs"]
    )
    departs = result.export_fidelity["b"]
    assert departs.departs and departs.module == "blocks.0.mlp.act"
    assert departs.departures == (
        Departure("blocks.0.mlp.act", "GELU", departs.departures[0].module_max_abs),
    )
    again = json.loads(result.to_json())
    assert {k: again[k] for k in TYPED} == {k: data[k] for k in TYPED}
    assert MatchResult.from_dict(again) == result


def test_an_old_native_fallback_result_loads_typed_and_renders_the_same_facts():
    data, result = _saved("match_fallback_main.json")
    assert result.fallback == Fallback(
        "B", "paddle", "LlamaForCausalLM", data["fallback"]["reason"]
    )
    assert result.model_b.parameters == data["model_b"]["parameters"]
    again = json.loads(result.to_json())
    assert {k: again[k] for k in TYPED} == {k: data[k] for k in TYPED}
    found = facts(result)
    assert found.no_culprit == NoCulprit.AGREE and found.fallback == result.fallback
    assert ("model.norm.weight -> llama.norm.weight", "offset -1.0") in found.layouts
    summary = build_view(data).summary
    labels = {f.label: f.value for f in summary.facts}
    assert (
        labels["models"]
        == found.models()
        == "torch LlamaForCausalLM (A) vs paddle LlamaForCausalLM (B)"
    )
    assert "could not be exported" in labels["native fallback"]
    assert summary.headline.endswith(found.models())
    text = str(result)
    assert found.models() in text and "did not export to ONNX" in text
