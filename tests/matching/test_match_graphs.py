"""match_graphs on real torch/paddle exports: the zoo, renamed copies and the special cases.

Ground truth: zoo pairs share attribute names (the renamed copies map back through the
renaming), the special cases say theirs in ``models.Case.truth``; tensor pairs are checked
against the values both graphs compute in onnxruntime, weights are copied through
``param_pairs`` and the outputs compared.
"""

from __future__ import annotations

import copy
import functools
import json
from types import SimpleNamespace
from typing import Any

import pytest

from padiff_ir.ir import build_graph
from padiff_ir.matching import Matching, match_graphs
from padiff_ir.pairing import LayerMap
from tests.conftest import ZOO_NAMES, zoo_export, zoo_pair
from tests.matching import oracle
from tests.matching.models import CASES, renamed

_BATCH_NORM = {"running_mean": "_mean", "running_var": "_variance"}


@functools.cache
def _zoo(name: str, rename: bool) -> tuple[oracle.Exported, Any, dict[str, str]]:
    """The export pair, the torch model used, and the truth A module -> B module."""
    pair = zoo_pair(name)
    exported_b = zoo_export(name, "paddle")
    if rename:
        torch_model, mapping = renamed(pair.torch_model)
        from padiff_ir.exporters import export

        exported_a = export(torch_model, pair.inputs)
        truth = {new: old for old, new in mapping.items()}
    else:
        torch_model, exported_a = pair.torch_model, zoo_export(name, "torch")
        truth = {m: m for m in (*exported_a.modules, "", *torch_model.state_dict())}
    from padiff_ir.ir import canonicalize

    case = oracle.Exported(
        exported_a,
        exported_b,
        canonicalize(build_graph(exported_a)),
        canonicalize(build_graph(exported_b)),
        oracle.activation_values(exported_a, pair.inputs),
        oracle.activation_values(exported_b, pair.inputs),
    )
    return case, torch_model, truth


@functools.cache
def _special(name: str) -> tuple[Any, oracle.Exported]:
    case = CASES[name]()
    return case, oracle.export_case(case.torch_model, case.paddle_model, case.inputs)


@functools.cache
def _matched(name: str, rename: bool = False) -> Matching:
    case = _zoo(name, rename)[0]
    return match_graphs(case.graph_a, case.graph_b)


def _param_truth(name: str, truth: dict[str, str]) -> dict[str, str]:
    """Torch parameter name -> paddle parameter name for a zoo pair."""
    out = {}
    for a, original in truth.items():
        head, _, leaf = original.rpartition(".")
        b = f"{head}.{_BATCH_NORM.get(leaf, leaf)}" if head else _BATCH_NORM.get(leaf, leaf)
        out[a] = b
    return out


def _check_quality(
    matching: Matching,
    case: oracle.Exported,
    truth: dict[str, str],
    torch_model: Any,
    paddle_model: Any,
    inputs: dict[str, Any],
) -> None:
    precision, recall, wrong, missed = oracle.module_scores(matching, case.graph_a, truth)
    assert precision == 1.0, f"wrong module pairs {wrong}"
    assert recall >= 0.98, f"missed modules {missed}"
    tensor_precision, bad, checked = oracle.tensor_precision(matching, case)
    assert checked >= len(matching.tensor_pairs) // 2
    assert tensor_precision >= 0.99, f"pairs with different values: {bad}"
    diff, not_written = oracle.outputs_after_copy(
        matching, copy.deepcopy(torch_model), copy.deepcopy(paddle_model), inputs
    )
    assert diff <= 1e-5, f"outputs differ by {diff} after the weight copy; unwritten {not_written}"


# -- the zoo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rename", [False, True], ids=["names", "renamed"])
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_pair_quality(name, rename):
    case, torch_model, truth = _zoo(name, rename)
    matching = _matched(name, rename)
    _check_quality(
        matching, case, truth, torch_model, zoo_pair(name).paddle_model, zoo_pair(name).inputs
    )
    params = _param_truth(name, truth)
    for pair in matching.param_pairs:
        assert [params[a] for a in pair.a] == list(pair.b), pair
    consumed = {i.param_name for i in case.graph_a.tensors.values() if i.param_name}
    assert {a for p in matching.param_pairs for a in p.a} == consumed
    assert not [u for u in matching.unmatched if u.kind == "tensor"]


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_renaming_one_side_changes_only_names(name):
    plain, renamed_matching = _matched(name), _matched(name, True)
    truth = _zoo(name, True)[2]  # new name -> old name

    def original(path: str) -> str:
        return truth.get(path, path)

    def rank(graph, tensor: str) -> int:
        producer = graph.tensors[tensor].producer
        return graph.ops[producer].index if producer else -1

    graph_plain, graph_renamed = _zoo(name, False)[0].graph_a, _zoo(name, True)[0].graph_a

    def tensors(matching: Matching, graph) -> list[tuple]:
        return sorted(
            (tuple(rank(graph, t) for t in p.a), p.b, p.evidence, p.confidence)
            for p in matching.tensor_pairs
        )

    assert tensors(plain, graph_plain) == tensors(renamed_matching, graph_renamed)
    assert {(p.a, p.b, p.black_box) for p in plain.module_pairs} == {
        (original(p.a), p.b, p.black_box) for p in renamed_matching.module_pairs
    }
    assert [(p.a, p.b, p.transform) for p in plain.param_pairs] == [
        (tuple(original(a) for a in p.a), p.b, p.transform) for p in renamed_matching.param_pairs
    ]
    assert len(plain.unmatched) == len(renamed_matching.unmatched)


def test_vit_structure():
    matching = _matched("vit")
    by_module = matching.module_map()
    assert by_module["blocks.1.attn"] == "blocks.1.attn"
    gelu = next(p for p in matching.module_pairs if p.a == "blocks.0.mlp.act")
    assert gelu.black_box  # Gelu vs paddle's Erf decomposition
    assert not next(p for p in matching.module_pairs if p.a == "blocks.0.mlp.fc1").black_box
    assert gelu.outputs_a and len(gelu.outputs_a) == len(gelu.outputs_b)
    head = next(p for p in matching.tensor_pairs if p.op_a == "Gather" and p.module_a == "")
    assert head.op_b == "Slice"  # x[:, 0] is Gather on torch, Slice + Squeeze on paddle
    erf = [u for u in matching.unmatched if u.op_type == "Erf"]
    assert erf and all("Gelu" in u.reason for u in erf)


def test_cnn_pooling_and_batch_norm_roles():
    matching = _matched("cnn")
    pool = next(p for p in matching.tensor_pairs if p.op_a == "ReduceMean")
    assert pool.op_b == "GlobalAveragePool"
    stats = {p.a[0]: p.b[0] for p in matching.param_pairs if ".bn" in f".{p.a[0]}"}
    assert stats["bn1.running_var"] == "bn1._variance"
    assert stats["bn2.running_mean"] == "bn2._mean"


def test_values_confirm_pairs():
    case = _zoo("vit", False)[0]
    matching = match_graphs(
        case.graph_a,
        case.graph_b,
        values_a=oracle.fingerprints(case.values_a),
        values_b=oracle.fingerprints(case.values_b),
    )
    assert matching.stats["values_used"]
    confirmed = [p for p in matching.tensor_pairs if "values" in p.evidence]
    assert len(confirmed) >= len(matching.tensor_pairs) // 2
    assert not [p for p in matching.tensor_pairs if "values-differ" in p.evidence]
    plain = _matched("vit")
    assert [(p.a, p.b) for p in matching.tensor_pairs] == [(p.a, p.b) for p in plain.tensor_pairs]


def test_raw_graphs_are_canonicalised():
    case = _zoo("mlp", False)[0]
    raw = match_graphs(build_graph(case.exported_a), build_graph(case.exported_b))
    assert [(p.a, p.b) for p in raw.tensor_pairs] == [
        (p.a, p.b) for p in _matched("mlp").tensor_pairs
    ]


def test_json_round_trip():
    matching = _matched("bert")
    data = json.loads(json.dumps(matching.to_dict()))
    again = Matching.from_dict(data)
    assert again.to_dict() == matching.to_dict()


# -- special cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_case_quality(name):
    case, exported = _special(name)
    matching = match_graphs(exported.graph_a, exported.graph_b)
    truth = {**{m: m for m in (*exported.graph_a.modules, "")}, **case.truth}
    if case.truth:
        truth = {"": "", **case.truth}
    _check_quality(matching, exported, truth, case.torch_model, case.paddle_model, case.inputs)


def _special_matching(name: str) -> Matching:
    exported = _special(name)[1]
    return match_graphs(exported.graph_a, exported.graph_b)


def test_mha_fused_in_proj_vs_three_projections():
    matching = _special_matching("mha")
    weight = next(p for p in matching.param_pairs if p.a == ("attn.in_proj_weight",))
    assert weight.b == ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight")
    assert weight.transform.to_dict() == {"transpose": [1, 0], "split": 1, "sections": [16, 16, 16]}
    bias = next(p for p in matching.param_pairs if p.a == ("attn.in_proj_bias",))
    assert bias.transform.to_dict() == {"split": 0, "sections": [16, 16, 16]}
    attn = next(p for p in matching.module_pairs if p.a == "attn")
    assert attn.b == "attn" and attn.black_box
    assert attn.outputs_a and attn.inputs_a == attn.inputs_b == ("x",)
    groups = [p for p in matching.tensor_pairs if p.is_group]
    assert groups and all(len(p.a) == 1 and len(p.b) == 3 for p in groups)
    # each slice of the fused projection pairs with its own projection
    slices = {p.b[0]: p.a[0] for p in matching.tensor_pairs if p.op_a == "Gather"}
    assert len(slices) == 3
    fused = {u.name: u.reason for u in matching.unmatched if u.kind == "module"}
    assert "fused" in fused["attn.q_proj"]


def test_encoder_layer_is_n_to_m():
    matching = _special_matching("encoder_layer")
    assert any(p.is_group for p in matching.tensor_pairs)
    assert matching.module_map()["layer.self_attn"] == "layer.self_attn"
    residuals = [p for p in matching.tensor_pairs if p.op_a == "Add" and p.module_a == "layer"]
    assert len(residuals) == 2


def test_lstm_pairs_gates_by_role():
    matching = _special_matching("lstm")
    lstm = [p for p in matching.param_pairs if p.module_a == "lstm"]
    assert {(p.a[0], p.b[0]) for p in lstm} == {
        (n, n)
        for n in ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0")
    }
    assert all(p.transform.to_dict() == {} for p in lstm)
    assert any(p.op_a == "LSTM" and p.op_b == "LSTM" for p in matching.tensor_pairs)


def test_extra_container_on_one_side():
    matching = _special_matching("nested")
    assert matching.module_map() == {"": "", "body.0.0": "fc1", "body.0.1": "act", "body.1": "fc2"}
    reasons = {u.name: u.reason for u in matching.unmatched if u.kind == "module"}
    assert set(reasons) == {"body", "body.0"}


def test_layer_called_twice():
    matching = _special_matching("twice")
    fc = [p for p in matching.param_pairs if p.module_a == "fc"]
    assert len(fc) == 2 and matching.stats["param_conflicts"] == 0
    fc_outputs = [
        p for p in matching.tensor_pairs if p.module_a == "fc" and "raw" not in p.evidence
    ]
    assert len(fc_outputs) == 2
    pair = next(p for p in matching.module_pairs if p.a == "fc")
    assert len(pair.inputs_a) == len(pair.inputs_b) == 2  # one per call


def test_residual_order_and_one_sided_no_ops():
    matching = _special_matching("residual")
    adds = [p for p in matching.tensor_pairs if p.op_a == p.op_b == "Add" and p.module_a == ""]
    assert len(adds) == 2  # x + f(x) on one side, f(x) + x on the other
    reasons = {u.name: u.reason for u in matching.unmatched if u.kind == "module"}
    assert set(reasons) == {"drop", "skip"} and "no op" in reasons["drop"]


def test_different_layout_chains():
    matching = _special_matching("layout")
    fc = next(p for p in matching.module_pairs if p.a == "fc")
    assert fc.inputs_a and len(fc.inputs_a) == len(fc.inputs_b)
    assert not fc.black_box


# -- the layer map ---------------------------------------------------------------------------


def _layer_map(**fields: Any) -> LayerMap:
    return LayerMap(**fields)


def test_layer_map_ignores_modules():
    case = _zoo("vit", False)[0]
    matching = match_graphs(
        case.graph_a, case.graph_b, layer_map=_layer_map(ignored_a={"head"}, ignored_b={"head"})
    )
    assert "head" not in matching.module_map()
    about_head = [u for u in matching.unmatched if "head" in (u.module, u.name)]
    assert {(u.side, u.kind, u.name) for u in about_head} == {
        (side, kind, name)
        for side in "ab"
        for kind, name in (("module", "head"), ("tensor", "head.weight"), ("tensor", "head.bias"))
    }
    assert {u.reason for u in about_head} == {"ignored by the layer map"}
    assert not [p for p in matching.param_pairs if p.module_a == "head"]


def test_layer_map_black_box_keeps_boundary_only():
    case = _zoo("vit", False)[0]
    matching = match_graphs(
        case.graph_a,
        case.graph_b,
        layer_map=_layer_map(black_box_a={"blocks.0.attn"}, black_box_b={"blocks.0.attn"}),
    )
    pair = next(p for p in matching.module_pairs if p.a == "blocks.0.attn")
    assert pair.black_box and pair.outputs_a
    inside = [p for p in matching.tensor_pairs if p.module_a == "blocks.0.attn"]
    assert {t for p in inside for t in p.a} <= set(pair.outputs_a)


def test_layer_map_pins_win():
    exported = _special("nested")[1]
    matching = match_graphs(
        exported.graph_a, exported.graph_b, layer_map=_layer_map(pairs={"body.0": "fc1"})
    )
    pinned = next(p for p in matching.module_pairs if p.a == "body.0")
    assert pinned.b == "fc1" and "pinned" in pinned.evidence
    assert matching.module_map()["body.1"] == "fc2"


def test_unresolved_layer_map_is_refused():
    from padiff_ir.errors import MatchError

    case = _zoo("mlp", False)[0]
    with pytest.raises(MatchError, match="resolve"):
        match_graphs(
            case.graph_a, case.graph_b, layer_map=SimpleNamespace(pairs={}, is_resolved=False)
        )
