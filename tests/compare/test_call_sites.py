"""Issue 11's cases on real torch.nn / paddle.nn layers: a shared layer's call, a dropout one
export drops, several culprits at once; each culprit named on both sides with its reason."""

from __future__ import annotations

import paddle
import pytest

import padiff_ir
from padiff_ir.exporters import export
from padiff_ir.ir import build_graph
from padiff_ir.pairing.call_sites import module_calls
from tests.compare.call_site_pairs import PaddleSharedPool, example_input, pair


def _culprits(result) -> list[tuple[str, str]]:
    return [(c.module_a, c.module_b) for c in result.culprits]


def test_exports_record_which_call_made_each_op():
    model_a, _ = pair()
    torch_calls = module_calls(build_graph(export(model_a, example_input())))
    paddle_calls = module_calls(build_graph(export(PaddleSharedPool().eval(), example_input())))
    for calls in (torch_calls, paddle_calls):
        assert list(calls) == ["pool"]
        assert list(calls["pool"]) == [0, 1, 2]
        assert all(len(ops) == 1 for ops in calls["pool"].values())


def test_the_call_of_a_shared_layer_is_the_culprit():
    model_a, model_b = pair(ceil_mode=True)
    result = padiff_ir.match(model_a, model_b, example_input())
    assert not result
    assert _culprits(result) == [("pool#2", "pool2")], str(result)
    culprit = result.culprits[0]
    assert "ceil_mode False in model A (torch) vs True in model B (paddle)" in culprit.explanation
    assert "MaxPool ceil_mode 0 vs 1" in culprit.attribute_diffs
    sites = [(p.site_a, p.site_b) for p in result.layer_map]
    assert ("pool#1", "pool1") in sites and ("pool#3", "pool3") in sites
    statuses = {m.a: m.status.value for m in result.modules}
    assert statuses["conv3"] == "inherited"  # B's conv3 fed A's 12x12 input agrees
    assert statuses["pool#3"] == "inherited"
    assert "culprit: pool#2 (MaxPool2d) <-> pool2 (MaxPool2D)" in str(result)
    assert result.first_divergence.module_a == "pool#2"
    again = padiff_ir.MatchResult.from_dict(result.to_dict())
    assert again.culprits == result.culprits


def test_the_call_is_named_on_b_when_b_shares_the_layer():
    model_a, model_b = pair(ceil_mode=True)
    result = padiff_ir.match(model_b, model_a, example_input())
    assert _culprits(result) == [("pool2", "pool#2")], str(result)


def test_a_dropout_one_export_drops_is_paired_and_blamed_eagerly():
    model_a, model_b = pair(dropout_mode="downscale_in_infer")
    result = padiff_ir.match(model_a, model_b, example_input())
    assert _culprits(result) == [("drop", "drop")], str(result)
    culprit = result.culprits[0]
    assert "'downscale_in_infer' in model B scales outputs by (1 - p)" in culprit.explanation
    assert culprit.own_error > 1.0
    assert not result.accumulated


def test_every_culprit_is_reported_in_data_flow_order():
    model_a, model_b = pair(ceil_mode=True, dropout_mode="downscale_in_infer")
    result = padiff_ir.match(model_a, model_b, example_input())
    assert _culprits(result) == [("pool#2", "pool2"), ("drop", "drop")], str(result)
    text = str(result)
    assert text.index("culprit: pool#2") < text.index("culprit: drop")


@pytest.mark.parametrize("ceil_mode", [False])
def test_aligned_pair_has_no_culprit(ceil_mode):
    model_a, model_b = pair(ceil_mode=ceil_mode)
    result = padiff_ir.match(model_a, model_b, example_input())
    assert result, str(result)
    assert result.culprits == []
    assert isinstance(model_b, paddle.nn.Layer)


def test_auto_diff_single_step_names_every_call_and_layer():
    model_a, model_b = pair(ceil_mode=True, dropout_mode="downscale_in_infer")
    result = padiff_ir.auto_diff(
        model_a, model_b, example_input(), single_step=True, atol=1e-5, rtol=1e-4
    )
    assert [(c.module_a, c.module_b) for c in result.culprits] == [
        ("pool#2", "pool2"),
        ("drop", "drop"),
    ], str(result)
    assert "ceil_mode False in model A (torch) vs True" in result.culprits[0].message
    assert "downscale_in_infer" in result.culprits[1].message
    assert result.first_difference.module_a == "pool#2"
    again = padiff_ir.DiffResult.from_dict(result.to_dict())
    assert again.culprits == result.culprits
