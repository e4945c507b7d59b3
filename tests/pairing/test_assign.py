"""assign_weight between real torch and paddle models: outputs agree after the copy."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch
from torch import nn

from padiff_ir.errors import WeightAssignError
from padiff_ir.frameworks.wrapper import PadiffModel, create_model, unwrap_model
from padiff_ir.matching import _registry, transforms
from padiff_ir.matching.types import Matching, ParamPair
from padiff_ir.pairing import LayerMap, pair_models
from padiff_ir.pairing.assign import AssignReport, assign_weight, auto_layer_map
from tests.conftest import ZOO_NAMES
from tests.matching.native_models import PAIRS, PaddleMlp, TorchMlp, randomize, run

ATOL = 1e-5


def _max_diff(pair, dtype_t=None, dtype_p=None) -> float:
    out_t = run(pair.torch_model, pair.inputs, dtype_t)
    out_p = run(pair.paddle_model, pair.inputs, dtype_p)
    assert out_t.shape == out_p.shape
    return float(np.abs(out_t.astype(np.float64) - out_p.astype(np.float64)).max())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_both_directions_make_outputs_agree(name):
    pair = PAIRS[name]()
    assert _max_diff(pair) > 1e-3  # unrelated random weights to begin with
    report = assign_weight(pair.paddle_model, pair.torch_model, inputs=pair.inputs)
    assert isinstance(report, AssignReport)
    assert (report.source_framework, report.target_framework) == ("torch", "paddle")
    assert _max_diff(pair) <= ATOL
    randomize(pair.torch_model, 7)
    assert _max_diff(pair) > 1e-3
    assign_weight(pair.torch_model, pair.paddle_model, inputs=pair.inputs)
    assert _max_diff(pair) <= ATOL


@pytest.mark.parametrize("name", ["mlp", "cnn_renamed_wrapped", "mha", "transformer_layer", "lstm"])
def test_static_matching_suffices_when_definition_order_agrees(name):
    pair = PAIRS[name]()
    assign_weight(pair.paddle_model, pair.torch_model)
    assert _max_diff(pair) <= ATOL


def test_batch_norm_running_stats_copied():
    pair = PAIRS["cnn"]()
    report = assign_weight(pair.paddle_model, pair.torch_model)
    np.testing.assert_array_equal(
        pair.paddle_model.bn2._variance.numpy(), pair.torch_model.bn2.running_var.numpy()
    )
    np.testing.assert_array_equal(
        pair.paddle_model.bn1._mean.numpy(), pair.torch_model.bn1.running_mean.numpy()
    )
    skipped = {s.name: s for s in report.skipped}
    assert skipped["bn1.num_batches_tracked"].side == "source"
    assert "no paddle counterpart" in skipped["bn1.num_batches_tracked"].reason
    pair.torch_model.bn1.num_batches_tracked.fill_(5)
    report = assign_weight(pair.torch_model, pair.paddle_model)  # not an error: a documented skip
    assert int(pair.torch_model.bn1.num_batches_tracked) == 5
    assert {s.side for s in report.skipped} == {"target"}


def test_target_dtype_is_kept():
    pair = PAIRS["mlp"]()
    pair.torch_model.double()
    assign_weight(pair.torch_model, pair.paddle_model, inputs=pair.inputs)
    assert pair.torch_model.fc1.weight.dtype == torch.float64
    assert _max_diff(pair, "float64") <= ATOL
    pair.paddle_model.to(dtype="float64")
    randomize(pair.paddle_model, 3)
    assign_weight(pair.paddle_model, pair.torch_model, inputs=pair.inputs)
    assert pair.paddle_model.fc1.weight.dtype == paddle.float64
    assert _max_diff(pair, "float64", "float64") <= 1e-12


class PaddleMlpExtra(PaddleMlp):
    def __init__(self) -> None:
        super().__init__()
        self.extra = paddle.nn.Linear(4, 4)

    def forward(self, x):
        return self.extra(super().forward(x))


def test_target_parameter_without_source_is_an_error():
    torch_model, paddle_model = TorchMlp(), PaddleMlpExtra()
    before = paddle_model.fc1.weight.numpy().copy()
    x = np.zeros((2, 8), np.float32)
    with pytest.raises(WeightAssignError) as info:
        assign_weight(paddle_model, torch_model, inputs={"x": x})
    message = str(info.value)
    assert "target 'extra.weight' [4, 4] has no source" in message
    assert "target 'extra.bias' [4] has no source" in message
    np.testing.assert_array_equal(paddle_model.fc1.weight.numpy(), before)  # nothing written
    # The other way round the extra layer is merely unused.
    report = assign_weight(torch_model, paddle_model, inputs={"x": x})
    assert set(report.unused) == {"extra.weight", "extra.bias"}


class PaddleMlpWide(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(8, 16)
        self.act = paddle.nn.ReLU()
        self.fc2 = paddle.nn.Linear(16, 16)
        self.fc3 = paddle.nn.Linear(16, 5)

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def test_shape_conflict_names_both_sides():
    with pytest.raises(WeightAssignError) as info:
        assign_weight(PaddleMlpWide(), TorchMlp())
    message = str(info.value)
    assert "target 'fc3.weight' [16, 5] has no source" in message
    assert "target 'fc3.bias' [5] has no source" in message
    assert "torch tensors copied nowhere" in message
    assert "'fc3.weight' [4, 16], 'fc3.bias' [4]" in message


def test_pins_are_followed():
    # Two layers of one shape: structure pairs 0-0 and 1-1; the pins cross them.
    torch_model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    paddle_model = paddle.nn.Sequential(paddle.nn.Linear(8, 8), paddle.nn.Linear(8, 8))
    layer_map = LayerMap({"0": "1", "1": "0"})
    assign_weight(paddle_model, torch_model, layer_map)
    np.testing.assert_array_equal(
        paddle_model[1].weight.numpy(), torch_model[0].weight.detach().numpy().T
    )
    np.testing.assert_array_equal(
        paddle_model[0].weight.numpy(), torch_model[1].weight.detach().numpy().T
    )
    # PaDiff style: objects, either order, through .map.
    layer_map = LayerMap()
    layer_map.map = {paddle_model[0]: torch_model[0], torch_model[1]: paddle_model[1]}
    assign_weight(paddle_model, torch_model, layer_map)
    np.testing.assert_array_equal(
        paddle_model[0].weight.numpy(), torch_model[0].weight.detach().numpy().T
    )


def test_explicit_matching_in_either_orientation():
    pair = PAIRS["mha"]()
    matching = pair_models(pair.paddle_model, pair.torch_model)  # A is paddle here
    assign_weight(pair.paddle_model, pair.torch_model, matching=matching)
    assert _max_diff(pair) <= ATOL
    randomize(pair.paddle_model, 4)
    matching = pair_models(pair.torch_model, pair.paddle_model)
    # Only the parameter pairs, through JSON, as the ONNX matcher would hand them over.
    matching = Matching.from_dict({"param_pairs": matching.to_dict()["param_pairs"]})
    assign_weight(pair.paddle_model, pair.torch_model, matching=matching)
    assert _max_diff(pair) <= ATOL
    randomize(pair.torch_model, 5)
    assign_weight(pair.torch_model, pair.paddle_model, matching=matching)  # inverse transforms
    assert _max_diff(pair) <= ATOL
    wrong = Matching(param_pairs=[ParamPair(("attn.nope",), ("attn.q_proj.weight",))])
    with pytest.raises(WeightAssignError, match="do not belong to these two models"):
        assign_weight(pair.paddle_model, pair.torch_model, matching=wrong)


def test_ignored_target_module_is_skipped():
    torch_model, paddle_model = TorchMlp(), PaddleMlpExtra()
    layer_map = LayerMap(ignored_b={"extra"})
    report = assign_weight(paddle_model, torch_model, layer_map)
    assert {s.name for s in report.skipped} == {"extra.weight", "extra.bias"}
    assert all(s.reason == "ignored by the layer map" for s in report.skipped)


class TorchFused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(6, 18)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return q * k + v


class PaddleSplit(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.q = paddle.nn.Linear(6, 6)
        self.k = paddle.nn.Linear(6, 6)
        self.v = paddle.nn.Linear(6, 6)

    def forward(self, x):
        return self.q(x) * self.k(x) + self.v(x)


def test_registered_weight_transform(monkeypatch):
    monkeypatch.setattr(_registry, "_WEIGHT_TRANSFORMS", {})

    def fused_to_split(src, dst):
        weight = src.qkv.weight.detach().numpy()
        bias = src.qkv.bias.detach().numpy()
        values = {}
        for i, name in enumerate("qkv"):
            values[f"{name}.weight"] = weight[6 * i : 6 * i + 6].T
            values[f"{name}.bias"] = bias[6 * i : 6 * i + 6]
        return values

    transforms.register_weight_transform("TorchFused", "PaddleSplit", fused_to_split)
    torch_model = nn.Sequential(nn.Linear(4, 6), TorchFused())
    paddle_model = paddle.nn.Sequential(paddle.nn.Linear(4, 6), PaddleSplit())
    randomize(torch_model, 0)
    report = assign_weight(paddle_model, torch_model)
    assert {"module": "custom:PaddleSplit|TorchFused"} in [
        c.transform.to_dict() for c in report.copied
    ]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(paddle_model(paddle.to_tensor(x)).numpy(), expected, atol=ATOL)
    with pytest.raises(WeightAssignError, match="register_weight_transform\\('PaddleSplit'"):
        assign_weight(torch_model, paddle_model)


def test_padiff_workflow_with_wrappers():
    pair = PAIRS["cnn_renamed_wrapped"]()
    torch_model = create_model(pair.torch_model)
    torch_model.auto_layer_map("base")
    paddle_model = create_model(pair.paddle_model)
    paddle_model.auto_layer_map("raw")
    assert isinstance(torch_model, PadiffModel) and torch_model.role == "base"
    assert unwrap_model(paddle_model) is pair.paddle_model
    layer_map = auto_layer_map(torch_model, paddle_model, pair.inputs)
    assert layer_map.pairs["fc"] == "classifier"
    assign_weight(paddle_model, torch_model, layer_map)
    assert _max_diff(pair) <= ATOL


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_pairs(name):
    from tests.conftest import zoo_pair

    pair = zoo_pair(name)
    torch_model, paddle_model = pair.torch_model, pair.paddle_model
    saved = {k: v.numpy().copy() for k, v in paddle_model.state_dict().items()}
    try:
        randomize(paddle_model, 11)
        assign_weight(paddle_model, torch_model, inputs=pair.inputs)
        out_t = run(torch_model, pair.inputs)
        out_p = run(paddle_model, pair.inputs)
        np.testing.assert_allclose(out_p, out_t, atol=1e-4, rtol=1e-4)
    finally:
        for key, value in saved.items():
            paddle_model.state_dict()[key].set_value(value)


def test_same_framework_copy_includes_batch_norm_counter():
    source = randomize(PAIRS["cnn"]().torch_model, 1)
    target = randomize(PAIRS["cnn"]().torch_model, 2)
    source.bn1.num_batches_tracked.fill_(3)
    report = assign_weight(target, source)
    assert report.skipped == () and report.unused == ()
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_padiff_map_black_box_attention():
    pair = PAIRS["transformer_layer"]()
    layer_map = LayerMap()
    layer_map.map = {pair.paddle_model.self_attn: pair.torch_model.self_attn}
    report = assign_weight(pair.paddle_model, pair.torch_model, layer_map, inputs=pair.inputs)
    assert _max_diff(pair) <= ATOL
    fused = next(c for c in report.copied if c.source == ("self_attn.in_proj_weight",))
    assert fused.target == (
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
    )
