"""build_view: the summary and the page's data from a result's JSON alone."""

from __future__ import annotations

import doctest
import importlib

import pytest

from padiff_ir.report import ReportError, build_view


@pytest.mark.parametrize(
    "module", ["padiff_ir.report", "padiff_ir.report.view", "padiff_ir.report.html_report"]
)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted >= 1


def test_match_summary_names_the_culprit_and_its_attribute(tiny_data):
    view = build_view(tiny_data)
    summary = view.summary
    assert view.kind == "match" and not summary.ok and summary.verdict == "diverged"
    assert "torch VitPose (A)" in summary.headline and "paddle VitPose (B)" in summary.headline
    (culprit,) = summary.culprits
    assert culprit.target == "backbone.blocks.1.norm2"
    assert culprit.own_error.endswith("e-03") and culprit.inherited_error.endswith("e-07")
    assert any("epsilon 1e-06 vs 0.001" in d for d in culprit.attribute_diffs)
    assert dict((f.label, f.value) for f in summary.first_divergence)["module"].startswith(
        "backbone.blocks.1.norm2"
    )
    labels = [f.label for f in view.environment]
    assert {"tolerance", "torch", "paddle", "onnx", "opset A", "opset B"} <= set(labels)


def test_every_pair_is_placed_on_its_nodes(tiny_data):
    index = build_view(tiny_data).payload["index"]
    graphs = tiny_data["graphs"]
    for side in ("a", "b"):
        node_pair = index["node_pair"][side]
        assert len(node_pair) == len(graphs[side]["nodes"])
        placed = {p for p in node_pair if p >= 0}
        assert len(placed) >= 0.9 * len(tiny_data["pairs"])
        for i, p in enumerate(node_pair):
            if p >= 0:
                assert set(graphs[side]["nodes"][i]["out"]) & set(tiny_data["pairs"][p][side])
    assert index["first_divergence"] is not None
    first = tiny_data["pairs"][index["first_divergence"]]
    assert first["a"] == tiny_data["first_divergence"]["a"]
    assert index["module_partner"]["a"]["backbone.blocks.1.norm2"] == "backbone.blocks.1.norm2"
    unmatched_ops = [u for u in tiny_data["unmatched"] if u["kind"] == "op"]
    assert unmatched_ops and sum(len(index["node_unmatched"][s]) for s in "ab") > 0


def test_a_result_without_graphs_still_has_a_view(tiny_data):
    del tiny_data["graphs"]
    view = build_view(tiny_data)
    assert view.summary.culprits
    graphs = view.payload["graphs"]  # drawn as module outputs in run order
    for side in ("a", "b"):
        assert graphs[side]["kind"] == "modules"
        assert len(graphs[side]["nodes"]) == len(tiny_data["pairs"])
        assert graphs[side]["edges"][0] == [0, 1]
    assert view.payload["index"]["has_graphs"] is True
    assert view.payload["index"]["node_pair"]["a"] == list(range(len(tiny_data["pairs"])))


def test_auto_diff_view(diff_data):
    view = build_view(diff_data)
    assert view.kind == "auto_diff" and view.summary.verdict == "diverged"
    assert any("learning rate" in cause for cause in view.summary.causes)
    stages = dict((f.label, f.value) for f in view.summary.first_divergence)
    assert stages["stage"] == "optimizer" and stages["step"] == "0"
    training = view.payload["training"]
    assert "steps" not in view.payload  # the raw steps are summarised, not embedded twice
    assert [s["step"] for s in training["steps"]] == [0, 1, 2, 3]
    assert training["steps"][0]["loss_diff"] < 1e-5 < training["steps"][3]["loss_diff"]
    titles = [s["title"] for s in training["sections"]]
    assert titles[:3] == [
        "layer outputs (forward)",
        "gradients at layer outputs and inputs (backward)",
        "parameter gradients",
    ]
    assert "weights after the step" in titles and "optimizer state after the step" in titles
    for section in training["sections"]:
        assert len(section["values"]) == len(section["rows"])
        assert all(len(row) == 4 for row in section["values"])
    assert {row["a"] for row in training["layers"]} >= {"fc1", "fc2", "fc3"}


def test_auto_diff_view_of_older_and_newer_json(diff_data):
    """A DiffResult JSON written before some keys existed (no ``buffers``, ``mode``, ``order``,
    ``random_layers``, ``first_difference``) or after new ones were added still renders: a missing
    key renders as absent, an unknown one is ignored."""
    fresh = build_view(diff_data).payload["training"]
    for step in diff_data["steps"]:
        for key in ("buffers", "mode"):
            step.pop(key, None)
        step["a_later_list"] = [{"kind": "new"}]
        for entry in step["forward"]:
            entry.pop("order", None)
            entry["a_later_field"] = 1.5
    for key in ("random_layers", "first_difference", "options"):
        diff_data.pop(key)
    diff_data["a_later_section"] = {"x": 1}
    view = build_view(diff_data)
    training = view.payload["training"]
    assert view.summary.verdict == "diverged" and view.summary.first_divergence == ()
    assert view.summary.culprit_note == "No first difference recorded."
    assert [s["mode"] for s in training["steps"]] == ["normal"] * 4
    assert [s["loss_diff"] for s in training["steps"]] == [s["loss_diff"] for s in fresh["steps"]]
    titles = [s["title"] for s in training["sections"]]
    assert "running statistics after the forward" not in titles
    assert titles[0] == "layer outputs (forward)" and training["layers"] == fresh["layers"]


@pytest.mark.parametrize("bad", [[1, 2], {"kind": "histogram"}, {"kind": "match"}])
def test_unreadable_results_raise_report_error(bad):
    with pytest.raises(ReportError):
        build_view(bad)


def test_eager_outputs_and_export_fidelity_are_summarised(tiny_data):
    metrics = tiny_data["outputs"][0]["metrics"]
    tiny_data["eager_outputs"] = [dict(tiny_data["outputs"][0], a=["eager#0"], b=["eager#0"])]
    tiny_data["export_fidelity"] = {
        "a": {"checked": True, "ok": True, "max_abs": 0.0},
        "b": {
            "checked": True,
            "ok": False,
            "max_abs": 0.5,
            "module": "backbone.blocks.0.attn",
            "module_class": "Attention",
        },
    }
    facts = {f.label: f for f in build_view(tiny_data).summary.facts}
    assert facts["eager output #0"].status == ("ok" if metrics["ok"] else "fail")
    assert facts["export A"].status == "ok"
    assert facts["export B"].status == "fail"
    assert "backbone.blocks.0.attn (Attention)" in facts["export B"].value


def test_stale_exports_and_exporter_faults_are_summarised(tiny_data):
    tiny_data["stale_exports"] = ["B"]
    tiny_data["exporter_faults"] = [
        {"side": "B", "explanation": "paddle2onnx wrote LeakyRelu alpha=0; the model's ..."}
    ]
    facts = {f.label: f for f in build_view(tiny_data).summary.facts}
    assert facts["cache B"].status == "warn" and "stale" in facts["cache B"].value
    assert facts["exporter fault B"].value.startswith("paddle2onnx wrote LeakyRelu alpha=0")


def test_run_shapes_replace_symbolic_dims(tiny_data):
    index = build_view(tiny_data).payload["index"]
    nodes = tiny_data["graphs"]["b"]["nodes"]
    symbolic = [
        i for i, n in enumerate(nodes) if any(not isinstance(d, int) for d in n["shape"] or [])
    ]
    run = index["run_shape"]["b"]
    assert symbolic and set(run) == {str(i) for i in symbolic}
    for i, pair in enumerate(index["node_pair"]["b"]):
        if str(i) in run and pair >= 0 and len(tiny_data["pairs"][pair]["b"]) == 1:
            assert run[str(i)] == tiny_data["pairs"][pair]["metrics"]["shape_b"]
    resolved = [shape for shape in run.values() if all(isinstance(d, int) for d in shape)]
    assert len(resolved) >= len(run) - 1, "bound dims resolve unpaired nodes too"


def test_call_sites_are_indexed_under_their_layer(tiny_data):
    module = dict(tiny_data["modules"][-1])
    calls = [{**module, "a": "pool#1", "b": "pool#1"}, {**module, "a": "pool#2", "b": "pool#2"}]
    calls[1]["status"] = "culprit"
    tiny_data["modules"] += calls
    index = build_view(tiny_data).payload["index"]
    first = len(tiny_data["modules"]) - 2
    assert index["calls"]["a"]["pool"] == [first, first + 1]
    assert index["module_result"]["a"]["pool"] == first + 1, "the failing call stands for it"
    assert index["module_partner"]["b"]["pool"] == "pool"
