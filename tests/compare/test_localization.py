"""Injected bugs are located at the right module, as the culprit, with the reason named."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

import padiff_ir
from padiff_ir.zoo import get_pair
from tests.compare import bugs


def _culprit_paths(result) -> list[str]:
    return [c.module_a for c in result.culprits]


def _check(result, module: str) -> None:
    assert not result, str(result)
    assert _culprit_paths(result) == [module], str(result)
    assert not result.accumulated
    culprit = result.culprits[0]
    assert culprit.module_b == module
    assert culprit.own_error > result.tolerance.atol
    text = str(result)
    assert f"culprit: {module}" in text


def test_layernorm_epsilon_in_one_block():
    pair = get_pair("vit")
    pair.paddle_model.blocks[1].norm1._epsilon = 1e-3
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.1.norm1")
    assert "LayerNormalization epsilon 1e-06 vs 0.001" in result.culprits[0].attribute_diffs
    # only the differing attribute is named (axis -1 and 2 are the same axis)
    assert all("axis" not in d for d in result.culprits[0].attribute_diffs)
    assert result.first_divergence.module_a == "blocks.1.norm1"


def test_gelu_tanh_vs_exact_found_although_the_exporter_hides_it():
    # paddle2onnx writes GELU(approximate=True) as the exact erf GELU: only the eager check
    # sees this bug; it must still be pinned on the GELU layer.
    pair = get_pair("vit")
    pair.paddle_model.blocks[0].mlp.act = paddle.nn.GELU(approximate=True)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.0.mlp.act")
    assert result.export_fidelity["b"].ok is False
    assert result.export_fidelity["b"].module == "blocks.0.mlp.act"
    assert result.export_fidelity["a"].ok is True
    assert not result.eager_outputs[0].ok


def test_missing_residual_add():
    pair = get_pair("vit")
    pair.paddle_model.blocks[1].__class__ = bugs.NoResidualBlock
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.1")
    assert any("Add" in line for line in result.culprits[0].explanation.split(";")), (
        result.culprits[0].explanation
    )


def test_linear_weight_not_copied():
    pair = get_pair("vit")
    weight = pair.paddle_model.blocks[1].mlp.fc1.weight
    weight.set_value(weight.numpy() + 0.05)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.1.mlp.fc1")
    assert any("blocks.1.mlp.fc1.weight" in d for d in result.culprits[0].param_diffs)


def test_conv_weight_not_copied():
    pair = get_pair("cnn")
    weight = pair.paddle_model.conv2.weight
    weight.set_value(np.zeros(weight.shape, np.float32))
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "conv2")
    assert any("conv2.weight" in d for d in result.culprits[0].param_diffs)


def test_softmax_over_the_wrong_axis():
    pair = get_pair("vit")
    pair.paddle_model.blocks[0].attn.__class__ = bugs.WrongSoftmaxAttention
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.0.attn")
    assert any(d.startswith("Softmax axis") for d in result.culprits[0].attribute_diffs), (
        result.culprits[0]
    )


def test_batchnorm_epsilon():
    pair = get_pair("cnn")
    pair.paddle_model.bn2._epsilon = 0.5
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "bn2")
    assert "BatchNormalization epsilon 1e-05 vs 0.5" in result.culprits[0].attribute_diffs


def test_extra_scale_factor_in_attention():
    pair = get_pair("vit")
    pair.paddle_model.blocks[1].attn.__class__ = bugs.ExtraScaleAttention
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "blocks.1.attn")
    assert "Mul" in result.culprits[0].explanation


def test_conv_padding_off_by_one():
    pair = get_pair("cnn")
    conv = pair.paddle_model.conv2
    wider = paddle.nn.Conv2D(conv._in_channels, conv._out_channels, 3, padding=2)
    wider.weight.set_value(conv.weight.numpy())
    wider.bias.set_value(conv.bias.numpy())
    pair.paddle_model.conv2 = wider
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "conv2")
    first = result.first_divergence
    assert first.module_a == "conv2"
    assert first.metrics.shape_a != first.metrics.shape_b
    assert any(d.startswith("Conv pads") for d in result.culprits[0].attribute_diffs)


def test_activation_of_another_kind_found_on_both_paths():
    # torch ReLU ported as paddle ELU, read by a pooling layer (no anchor): the two ops pair by
    # their position, so the culprit is the activation itself, not the pooling after it
    pair = get_pair("cnn")
    pair.paddle_model.relu2 = paddle.nn.ELU()
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    _check(result, "relu2")
    culprit = result.culprits[0]
    assert (culprit.class_a, culprit.class_b) == ("ReLU", "ELU")
    assert "different op: Relu vs Elu" in culprit.explanation, culprit.explanation
    assert result.first_divergence.module_a == "relu2"
    native = padiff_ir.auto_diff(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        single_step=True,
        diff_phase="forward",
        auto_init=False,
        atol=1e-5,
        rtol=1e-5,
        compare_mode="strict",
    )
    assert [(c.module_a, c.module_b) for c in native.culprits] == [("relu2", "relu2")]
    assert "ReLU in A vs ELU in B" in native.culprits[0].message


@pytest.mark.parametrize("depth", [24])
def test_accumulated_rounding_blames_no_layer(depth):
    # A deep stack of tanh-linear layers run in float32 on one side and float64 on the other:
    # every layer's own error is ~1e-6, but the chaotic map (gain 3) amplifies it to O(1).
    import torch

    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        layer = torch.nn.Linear(32, 32)
        torch.nn.init.orthogonal_(layer.weight, gain=3.0)
        layers += [layer, torch.nn.Tanh()]
    model_a = torch.nn.Sequential(*layers).eval()
    model_b = torch.nn.Sequential(
        *[
            type(m)(32, 32).double() if isinstance(m, torch.nn.Linear) else torch.nn.Tanh()
            for m in layers
        ]
    ).eval()
    model_b.load_state_dict({k: v.double() for k, v in model_a.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 32))
    result = padiff_ir.match(
        model_a,
        model_b,
        ({"input": torch.tensor(x, dtype=torch.float32)}, {"input": torch.tensor(x)}),
        atol=1e-5,
        rtol=0,
    )
    assert not result
    assert result.culprits == []
    assert result.accumulated
    assert "no culprit" in str(result)
