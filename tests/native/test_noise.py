"""``auto_diff(..., tolerance="auto")``: outputs, gradients and the loss judged against the
noise of a float64 shadow of A run through the same step."""

from __future__ import annotations

import paddle
import pytest
import torch

from benchmarks._bugs import BUGS
from padiff_ir.errors import OptionError
from padiff_ir.native import DiffResult, auto_diff
from tests.native.helpers import fresh_pair

_TIGHT = {"atol": 1e-6, "rtol": 1e-6, "compare_mode": "strict"}


def _hot_cnn():
    """The zoo's cnn with its first convolution scaled: activations in the thousands before
    the BatchNorm, gradients of their own sizes (B gets A's weights through auto_init)."""
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    with torch.no_grad():
        torch_model.conv1.weight.mul_(1000.0)
    return torch_model, paddle_model, inputs


def test_rounding_in_the_thousands_fails_a_tight_tolerance_and_passes_auto():
    torch_model, paddle_model, inputs = _hot_cnn()
    fixed = auto_diff(torch_model, paddle_model, inputs, **_TIGHT)
    assert not fixed.ok  # float32 rounding of numbers in the thousands is above 1e-6
    result = auto_diff(torch_model, paddle_model, inputs, tolerance="auto", auto_init=False)
    assert result.ok and result.first_difference is None, result.noise.sentence
    noise = result.noise
    assert noise is not None and noise.method == "float64 shadow" and noise.dtype == "float32"
    assert noise.sentence.startswith("aligned within numerical noise (worst ")
    stages = {e.stage for e in noise.entries}
    assert {"forward", "backward", "grads", "loss"} <= stages
    conv1 = next(e for e in noise.entries if e.label == "conv1" and e.kind == "output")
    assert conv1.floor.scale > 100 and conv1.floor.noise > 1e-6  # noise grows with the values
    assert all(e.floor.ratio <= 1.0 for e in noise.entries)
    assert "tolerance auto (float64 shadow, float32): aligned within numerical noise" in str(
        result
    ).replace("\n   ", "")


@pytest.mark.parametrize("bug", ["cnn-relu-as-elu", "cnn-bn-epsilon", "cnn-maxpool-as-avgpool"])
def test_an_injected_bug_is_still_named_first(bug):
    injected = next(b for b in BUGS if b.name == bug)
    torch_model, paddle_model, inputs = _hot_cnn()
    injected.apply(paddle_model)
    result = auto_diff(torch_model, paddle_model, inputs, tolerance="auto")
    assert not result.ok
    first = result.first_difference
    assert (first.stage, first.module_a, first.module_b) == ("forward", *injected.culprit)
    assert result.noise.sentence.startswith(f"diverged: `{injected.culprit[0]}` output error ")
    assert "x its measured noise bound" in first.message


def test_the_floors_round_trip_through_json(tmp_path):
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    result = auto_diff(torch_model, paddle_model, inputs, tolerance="auto")
    path = tmp_path / "diff.json"
    result.to_json(path)
    loaded = DiffResult.load(path)
    assert loaded.noise == result.noise and loaded.options["tolerance"] == "auto"


def test_explicit_tolerances_keep_todays_behaviour_and_bad_values_are_refused():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    result = auto_diff(torch_model, paddle_model, inputs, atol=1e-6, rtol=1e-5)
    assert result.noise is None and "tolerance" not in result.options
    with pytest.raises(OptionError, match="'auto'"):
        auto_diff(torch_model, paddle_model, inputs, tolerance="measured")


def test_the_user_model_is_left_as_it_was():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    before = {k: v.clone() for k, v in torch_model.state_dict().items()}
    auto_diff(torch_model, paddle_model, inputs, tolerance="auto")
    after = torch_model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


def test_a_fused_qkv_gradient_is_judged_against_its_parts_noise():
    from padiff_ir.zoo import get_pair

    pair = get_pair("llama", "tiny")  # q/k/v in torch, one fused qkv_proj in paddle
    result = auto_diff(
        pair.torch_model, pair.paddle_model, pair.inputs, tolerance="auto", auto_init=False
    )
    assert result.ok, result.noise.sentence
    fused = [e for e in result.noise.entries if e.kind == "grad" and "+" in e.label]
    assert fused and all(e.floor.numel > 0 and e.floor.ok for e in fused)


def _adam(torch_model, paddle_model, lr_b: float = 0.001):
    return [
        torch.optim.Adam(torch_model.parameters(), lr=0.001),
        paddle.optimizer.Adam(lr_b, parameters=paddle_model.parameters()),
    ]


def test_post_step_weights_and_adam_states_have_their_own_floors():
    torch_model, paddle_model, inputs = _hot_cnn()
    optimizer = _adam(torch_model, paddle_model)
    result = auto_diff(
        torch_model, paddle_model, inputs, tolerance="auto", optimizer=optimizer, steps=2
    )
    assert result.ok, result.noise.sentence
    judged = {(e.stage, e.step) for e in result.noise.entries}
    assert {("weights", 0), ("optimizer_state", 0), ("weights", 1), ("grads", 1)} <= judged
    kinds = {e.kind for e in result.noise.entries if e.stage == "optimizer_state"}
    assert {"exp_avg", "exp_avg_sq"} <= kinds


def test_a_learning_rate_difference_is_still_an_optimizer_difference_under_auto():
    torch_model, paddle_model, inputs = _hot_cnn()
    optimizer = _adam(torch_model, paddle_model, lr_b=0.002)
    result = auto_diff(torch_model, paddle_model, inputs, tolerance="auto", optimizer=optimizer)
    first = result.first_difference
    assert not result.ok and (first.stage, first.step, first.kind) == ("optimizer", 0, "weight")
    assert all(e.floor.ok for e in result.noise.entries if e.stage in ("forward", "grads"))
    assert "its noise" in result.noise.sentence


def test_the_report_header_gives_the_verdict_in_units_of_noise(tmp_path):
    from padiff_ir.report.training import diff_view

    torch_model, paddle_model, inputs = _hot_cnn()
    aligned = auto_diff(torch_model, paddle_model, inputs, tolerance="auto")
    injected = next(b for b in BUGS if b.name == "cnn-relu-as-elu")
    injected.apply(paddle_model)
    diverged = auto_diff(torch_model, paddle_model, inputs, tolerance="auto")
    for result, status in ((aligned, "ok"), (diverged, "fail")):
        facts = diff_view(result.to_dict()).summary.facts
        noise = next(f for f in facts if f.label.startswith("numerical noise"))
        assert noise.status == status and noise.value == result.noise.sentence
    page = tmp_path / "report.html"
    aligned.to_html(page)
    assert "numerical noise (float64 shadow, float32)" in page.read_text()
