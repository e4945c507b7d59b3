"""``pair_models``: the one matching of two models (ONNX graphs, eager traces or module trees),
and the parameter transforms, on torch/paddle pairs."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from padiff_ir.errors import InputError, MatchError, WeightAssignError
from padiff_ir.matching.transforms import (
    apply_inverse,
    apply_transform,
    class_family,
    invert_transform,
    layout_transform,
)
from padiff_ir.pairing import LayerMap, pair_models
from tests.matching.native_models import PAIRS


@pytest.fixture(scope="module")
def pairs():
    return {name: make() for name, make in PAIRS.items()}


def match_modules(model_a, model_b, inputs=None, *, layer_map=None, mode="trace"):
    """The matching of two models on eager traces (``mode="onnx"``: exported graphs)."""
    resolved = (layer_map or LayerMap()).resolve(model_a, model_b)
    return pair_models(
        model_a, model_b, inputs, layer_map=resolved, export=mode == "onnx", reuse=False
    )


# -- module pairs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["onnx", "trace", "static"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "mha", "lstm", "gru", "deconv_embedding"])
def test_same_names_pair_identically(pairs, name, mode):
    pair = pairs[name]
    inputs = None if mode == "static" else pair.inputs
    matching = match_modules(pair.torch_model, pair.paddle_model, inputs, mode=mode)
    assert all(p.a == p.b for p in matching.module_pairs)
    alone = [u.name for u in matching.unmatched if u.kind == "module"]
    if mode == "onnx":  # the exported graphs show the insides of attention and RNN layers
        assert all(name.startswith(("attn.", "rnn.")) for name in alone), alone
    else:  # trace graphs keep those layers whole
        assert alone == []
    assert matching.stats["graphs"] == mode
    assert matching.stats["framework_a"] == "torch"


def test_renamed_layers_and_extra_sequential(pairs):
    pair = pairs["cnn_renamed_wrapped"]
    matching = match_modules(pair.torch_model, pair.paddle_model, pair.inputs)
    assert matching.module_map() == {
        "": "",
        "conv1": "body.0",
        "bn1": "body.1",
        "relu": "body.2",
        "pool": "body.3",
        "conv2": "body.4",
        "bn2": "body.5",
        "avg": "body.7",
        "fc": "classifier",
    }
    unmatched = {u.name: u.reason for u in matching.unmatched if u.side == "b"}
    assert "a container the other side does not have" in unmatched["body"]
    assert unmatched["body.8"].startswith("Flatten present in model B only")


def test_call_order_beats_definition_order(pairs):
    pair = pairs["chain_swapped"]
    traced = match_modules(pair.torch_model, pair.paddle_model, pair.inputs)
    assert traced.module_map() == {"": "", "first": "a", "second": "b", "out": "head"}
    # Without inputs only the definition order is known: the two 8x8 layers pair the other way.
    static = match_modules(pair.torch_model, pair.paddle_model)
    assert static.module_map()["first"] == "b"
    assert static.module_map()["out"] == "head"  # a unique signature crosses the order


def test_dropout_on_one_side_only(pairs):
    pair = pairs["dropout_one_side"]
    matching = match_modules(pair.torch_model, pair.paddle_model, pair.inputs)
    assert matching.module_map() == {"": "", "fc1": "fc1", "act": "act", "fc2": "fc2"}
    [dropout] = [u for u in matching.unmatched if u.kind == "module"]
    assert (dropout.side, dropout.name, dropout.reason) == (
        "a",
        "drop",
        "Dropout present in model A only (no layer of that class on the other side)",
    )


def test_transformer_layer_traced_through_fast_path(pairs):
    pair = pairs["transformer_layer"]
    matching = match_modules(pair.torch_model, pair.paddle_model, pair.inputs)
    order = [p.a for p in matching.module_pairs]
    # Call order (post-norm): attention, norm1, feed-forward, norm2; not definition order.
    assert order.index("norm1") < order.index("linear1") < order.index("norm2")
    assert torch.backends.mha.get_fastpath_enabled()


def test_param_pairs_and_transforms(pairs):
    matching = match_modules(pairs["mha"].torch_model, pairs["mha"].paddle_model)
    by_a = {p.a: p for p in matching.param_pairs}
    fused = by_a[("attn.in_proj_weight",)]
    assert fused.b == ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight")
    assert fused.transform.to_dict() == {"transpose": [1, 0], "split": 1, "sections": [16, 16, 16]}
    assert by_a[("attn.out_proj.weight",)].transform.to_dict() == {"transpose": [1, 0]}
    cnn = match_modules(pairs["cnn"].torch_model, pairs["cnn"].paddle_model)
    by_a = {p.a[0]: p for p in cnn.param_pairs}
    assert by_a["bn1.running_var"].b == ("bn1._variance",)
    assert by_a["conv1.weight"].transform.to_dict() == {}
    assert by_a["fc.weight"].transform.to_dict() == {"transpose": [1, 0]}
    [counter, _] = [u for u in cnn.unmatched if u.kind == "tensor"]
    assert counter.name == "bn1.num_batches_tracked"
    assert "no paddle counterpart" in counter.reason


def test_paddle_first_reverses_the_transforms(pairs):
    pair = pairs["mha"]
    matching = match_modules(pair.paddle_model, pair.torch_model, pair.inputs)
    assert matching.stats["framework_a"] == "paddle"
    by_b = {p.b: p for p in matching.param_pairs}
    fused = by_b[("attn.in_proj_weight",)]
    assert fused.a == ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight")
    assert fused.transform.to_dict() == {"transpose": [1, 0], "concat": 0, "sections": [16, 16, 16]}


def test_per_framework_input_pair_in_either_order(pairs):
    pair = pairs["mlp"]
    x = pair.inputs["x"]
    for inputs in (
        ({"x": torch.from_numpy(x)}, {"x": paddle.to_tensor(x)}),
        ({"x": paddle.to_tensor(x)}, {"x": torch.from_numpy(x)}),  # PaDiff's order
        (paddle.to_tensor(x), torch.from_numpy(x)),
    ):
        matching = match_modules(pair.torch_model, pair.paddle_model, inputs)
        assert matching.stats["graphs"] == "trace"
        assert all(p.a == p.b for p in matching.module_pairs)


def test_flags_rng_and_hooks_left_alone(pairs):
    pair = pairs["dropout_one_side"]
    pair.torch_model.train()
    pair.torch_model.fc2.eval()
    pair.paddle_model.train()
    flags_t = [m.training for m in pair.torch_model.modules()]
    flags_p = [m.training for m in pair.paddle_model.sublayers(include_self=True)]
    rng_t = torch.get_rng_state()
    rng_p = paddle.get_rng_state("cpu")
    try:
        match_modules(pair.torch_model, pair.paddle_model, pair.inputs)
        assert [m.training for m in pair.torch_model.modules()] == flags_t
        assert [m.training for m in pair.paddle_model.sublayers(include_self=True)] == flags_p
        assert torch.equal(torch.get_rng_state(), rng_t)
        after = paddle.rand([4]).numpy()
        paddle.set_rng_state(rng_p, "cpu")
        np.testing.assert_array_equal(paddle.rand([4]).numpy(), after)
        for module in pair.torch_model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks
        for layer in pair.paddle_model.sublayers(include_self=True):
            assert not layer._forward_pre_hooks and not layer._forward_post_hooks
    finally:
        pair.torch_model.eval()
        pair.paddle_model.eval()


def test_failing_forward_is_an_input_error(pairs):
    pair = pairs["mlp"]
    bad = np.zeros((2, 5), np.float32)
    with pytest.raises(InputError, match="torch model TorchMlp on the given inputs failed"):
        match_modules(pair.torch_model, pair.paddle_model, {"x": bad})
    with pytest.raises(InputError, match="paddle model PaddleMlp on the given inputs failed"):
        match_modules(pair.torch_model, pair.paddle_model, ({"x": pair.inputs["x"]}, {"x": bad}))
    for module in pair.torch_model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    for layer in pair.paddle_model.sublayers(include_self=True):
        assert not layer._forward_pre_hooks and not layer._forward_post_hooks


def test_pins_scope_and_black_box(pairs):
    pair = pairs["mlp"]
    layer_map = LayerMap({"fc2": "fc2"})
    layer_map.black_box("fc1", "fc1")
    matching = match_modules(pair.torch_model, pair.paddle_model, layer_map=layer_map)
    by_a = {p.a: p for p in matching.module_pairs}
    assert by_a["fc2"].evidence == ("pinned",)
    assert by_a["fc1"].black_box and not by_a["fc2"].black_box
    whole = match_modules(pair.torch_model, pair.paddle_model, layer_map=LayerMap(black_box_b={""}))
    assert [(p.a, p.b, p.black_box) for p in whole.module_pairs] == [("", "", True)]
    assert len(whole.param_pairs) == 6  # weights still pair inside a black box
    with pytest.raises(MatchError, match="'fc9' is not a module of model A; did you mean"):
        match_modules(pair.torch_model, pair.paddle_model, layer_map=LayerMap({"fc9": "fc1"}))


def test_ignored_modules_are_reported(pairs):
    pair = pairs["cnn"]
    layer_map = LayerMap(ignored_b={"bn2"})
    matching = match_modules(pair.torch_model, pair.paddle_model, layer_map=layer_map)
    assert "bn2" not in matching.module_map()
    reasons = {(u.side, u.kind, u.name): u.reason for u in matching.unmatched}
    assert reasons[("b", "module", "bn2")] == "ignored by the layer map"
    assert reasons[("b", "tensor", "bn2._variance")] == "ignored by the layer map"
    # Ignoring a unit layer (attention) itself ignores all of it.
    mha = pairs["mha"]
    layer_map = LayerMap(ignored_self_a={"attn"})
    matching = match_modules(mha.torch_model, mha.paddle_model, layer_map=layer_map)
    assert matching.module_map() == {"": ""}
    ignored = {u.name for u in matching.unmatched if u.side == "a" and u.kind == "tensor"}
    assert ignored == {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                       "attn.out_proj.bias"}  # fmt: skip


# -- transforms -----------------------------------------------------------------------------------


def test_transform_round_trips():
    rng = np.random.default_rng(0)
    fused = rng.standard_normal((12, 4))
    transform = {"transpose": [1, 0], "split": 1, "sections": [4, 4, 4]}
    pieces = apply_transform(transform, [fused], target_shapes=[[4, 4]] * 3)
    np.testing.assert_array_equal(pieces[1], fused[4:8].T)
    [back] = apply_inverse(transform, pieces, target_shapes=[[12, 4]])
    np.testing.assert_array_equal(back, fused)
    assert invert_transform(invert_transform(transform)).to_dict() == transform
    # A split along B's axis 2 of a permuted 3-D array is undone by a concat along A's axis.
    cube = rng.standard_normal((2, 6, 4))
    split = {"transpose": [2, 0, 1], "split": 2, "sections": [2, 4]}
    halves = apply_transform(split, [cube], target_shapes=[[4, 2, 2], [4, 2, 4]])
    np.testing.assert_array_equal(halves[0], cube[:, :2].transpose(2, 0, 1))
    inverse = {"transpose": [1, 2, 0], "concat": 1, "sections": [2, 4]}
    assert invert_transform(split).to_dict() == inverse
    np.testing.assert_array_equal(apply_inverse(split, halves)[0], cube)
    [moved] = apply_transform({"transpose": [2, 0, 1]}, [cube])
    np.testing.assert_array_equal(apply_inverse({"transpose": [2, 0, 1]}, [moved])[0], cube)
    with pytest.raises(WeightAssignError, match=r"gives shape\(s\) \[\[4, 12\]\]"):
        apply_transform({"transpose": [1, 0]}, [fused], target_shapes=[[12, 4]])


def test_families_and_layouts():
    assert class_family("Conv2d") == class_family("Conv2D") == "conv2d"
    assert class_family("BatchNorm2d") == class_family("BatchNorm2D") == "batchnorm"
    assert class_family("MultiheadAttention") == class_family("MultiHeadAttention")
    assert class_family("ModuleList") == class_family("LayerList") == "list"
    assert class_family("RNN", "torch") == class_family("SimpleRNN", "paddle")
    assert layout_transform("linear", "weight", "torch", [3, 3], "torch", [3, 3]).to_dict() == {}
    assert layout_transform("linear", "weight", "paddle", [3, 5], "torch", [5, 3]).to_dict() == {
        "transpose": [1, 0]
    }
    assert layout_transform("linear", "weight", "torch", [3, 5], "paddle", [3, 5]) is None
    assert layout_transform("convtranspose2d", "weight", "torch", [4, 3, 3, 3], "paddle",
                            [4, 3, 3, 3]).to_dict() == {}  # fmt: skip
