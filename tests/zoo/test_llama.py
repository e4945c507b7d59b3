"""The zoo's decoder-LLM pair ``"llama"``: a Hugging Face-style torch model and a PaddleNLP-style
paddle port with fused, grouped and permuted layouts, joined by a hand-written converter.

Every layout option of :class:`LlamaConfig` gets a pair of its own; each must agree after the
ground-truth conversion, round-trip exactly, and really differ from the torch layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.errors import ExportError, OptionError, WeightAssignError
from padiff_ir.zoo import (
    ZOO,
    LlamaConfig,
    ModelPair,
    copy_torch_to_paddle,
    get_pair,
    llama_paddle_to_torch,
    llama_torch_to_paddle,
)
from padiff_ir.zoo.llm_torch import LlamaForCausalLM

TOLERANCE = 1e-5

# variant -> (overrides of the tiny config, conversions that ignore the variant's layout)
VARIANTS: dict[str, tuple[dict[str, Any], tuple[dict[str, Any], ...]]] = {
    "default": ({}, ({"qkv_layout": "concat"}, {"gate_up_layout": "gate_up"}, {"rope": "half"})),
    "qkv-concat": ({"qkv_layout": "concat"}, ({"qkv_layout": "grouped"},)),
    "qkv-interleaved": ({"kv_heads": 4, "qkv_layout": "interleaved"}, ({"qkv_layout": "concat"},)),
    "gate-up": ({"gate_up_layout": "gate_up"}, ({"gate_up_layout": "up_gate"},)),
    "gate-up-interleaved": ({"gate_up_layout": "interleaved"}, ({"gate_up_layout": "gate_up"},)),
    "rope-half": ({"rope": "half"}, ({"rope": "interleaved"},)),
    "norm-offset": ({"norm_offset": True}, ({"norm_offset": False},)),
    "tied": ({"tie_embeddings": True}, ({"qkv_layout": "concat"},)),
    "qkv-bias": ({"qkv_bias": True}, ({"qkv_layout": "concat"},)),
    "mqa": ({"kv_heads": 1}, ({"rope": "half"},)),
}


def make(variant: str) -> ModelPair:
    return get_pair("llama", "tiny", overrides=VARIANTS[variant][0])


def torch_logits(pair: ModelPair, **kwargs: Any) -> np.ndarray:
    ids = torch.from_numpy(pair.inputs["input_ids"])
    tensors = {k: torch.from_numpy(v) for k, v in kwargs.items()}
    with torch.no_grad():
        return pair.torch_model(ids, **tensors).numpy()


def paddle_logits(pair: ModelPair, **kwargs: Any) -> np.ndarray:
    ids = paddle.to_tensor(pair.inputs["input_ids"])
    tensors = {k: paddle.to_tensor(v) for k, v in kwargs.items()}
    with paddle.no_grad():
        return pair.paddle_model(ids, **tensors).numpy()


def torch_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}


def paddle_state(model: paddle.nn.Layer) -> dict[str, np.ndarray]:
    return {name: t.numpy() for name, t in model.state_dict().items()}


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_agree_after_the_ground_truth_copy(variant: str) -> None:
    pair = make(variant)
    expected, actual = torch_logits(pair), paddle_logits(pair)
    assert expected.shape == (2, 8, 128) and expected.dtype == actual.dtype == np.float32
    assert np.abs(expected).max() > 0.1
    assert max_difference(expected, actual) <= TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS)
def test_converter_round_trips(variant: str) -> None:
    pair = make(variant)
    config = pair.config
    assert isinstance(config, LlamaConfig)
    torch_arrays, paddle_arrays = torch_state(pair.torch_model), paddle_state(pair.paddle_model)
    converted = llama_torch_to_paddle(torch_arrays, config)
    assert converted.keys() == paddle_arrays.keys()
    for name, array in converted.items():  # what get_pair wrote
        np.testing.assert_array_equal(paddle_arrays[name], array, err_msg=name)
    back = llama_paddle_to_torch(converted, config)
    assert back.keys() == torch_arrays.keys()
    for name, array in back.items():
        np.testing.assert_array_equal(torch_arrays[name], array, err_msg=name)
    again = llama_torch_to_paddle(llama_paddle_to_torch(paddle_arrays, config), config)
    for name, array in again.items():
        np.testing.assert_array_equal(paddle_arrays[name], array, err_msg=name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_paddle_layout_really_differs(variant: str) -> None:
    pair = make(variant)
    expected = torch_logits(pair)
    state = torch_state(pair.torch_model)
    for wrong in VARIANTS[variant][1]:
        naive = dataclasses.replace(pair.config, **wrong)
        pair.paddle_model.set_state_dict(llama_torch_to_paddle(state, naive))
        assert max_difference(expected, paddle_logits(pair)) > 1e-2, wrong


def test_names_and_shapes_differ_from_torch_and_by_name_copy_fails() -> None:
    pair = make("default")
    torch_arrays, paddle_arrays = torch_state(pair.torch_model), paddle_state(pair.paddle_model)
    assert torch_arrays.keys() & paddle_arrays.keys() == {"lm_head.weight"}
    assert torch_arrays["lm_head.weight"].shape == (128, 64)
    assert paddle_arrays["lm_head.weight"].shape == (64, 128)
    layer = "llama.layers.0"
    assert paddle_arrays[f"{layer}.self_attn.qkv_proj.weight"].shape == (64, 128)
    assert paddle_arrays[f"{layer}.mlp.gate_up_fused_proj.weight"].shape == (64, 256)
    assert not any("q_proj" in n or "gate_proj" in n for n in paddle_arrays)
    with pytest.raises(WeightAssignError, match=r"'llama\.layers\.0\.self_attn\.qkv_proj\.weight'"):
        copy_torch_to_paddle(pair.torch_model, pair.paddle_model)


def gradients(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.array(tensor.grad) for name, tensor in state.items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_gradients_agree(variant: str) -> None:
    pair = make(variant)
    ids = pair.inputs["input_ids"]
    labels = np.roll(ids, -1, axis=1).reshape(-1)
    pair.torch_model.train()
    pair.paddle_model.train()
    torch_loss = torch.nn.functional.cross_entropy(
        pair.torch_model(torch.from_numpy(ids)).reshape(-1, 128), torch.from_numpy(labels)
    )
    torch_loss.backward()
    paddle_loss = paddle.nn.functional.cross_entropy(
        pair.paddle_model(paddle.to_tensor(ids)).reshape([-1, 128]), paddle.to_tensor(labels)
    )
    paddle_loss.backward()
    assert abs(torch_loss.item() - float(paddle_loss)) <= TOLERANCE
    torch_grads = gradients(pair.torch_model.state_dict(keep_vars=True))
    paddle_grads = gradients(pair.paddle_model.state_dict())
    embedding = torch_grads["model.embed_tokens.weight"]
    assert np.abs(embedding).max() > 1e-3
    assert max_difference(embedding, paddle_grads["llama.embed_tokens.weight"]) <= TOLERANCE
    # a gradient has its weight's layout, without the offset of a norm's weight
    layout = dataclasses.replace(pair.config, norm_offset=False)
    for name, grad in llama_paddle_to_torch(paddle_grads, layout).items():
        assert max_difference(torch_grads[name], grad) <= TOLERANCE, name


def test_padding_mask_and_legacy_keyword() -> None:
    pair = make("default")
    mask = np.ones((2, 8), dtype=np.int64)
    mask[1, :3] = 0  # left padding in the second sequence
    expected = torch_logits(pair, attention_mask=mask)
    assert max_difference(expected, torch_logits(pair)) > 1e-2
    assert max_difference(expected, paddle_logits(pair, attention_mask=mask)) <= TOLERANCE
    assert max_difference(expected, paddle_logits(pair, attn_mask=mask)) <= TOLERANCE


def test_attention_outputs_differ_in_arity() -> None:
    pair = make("default")
    hidden = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(8, 8, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        output, weights = pair.torch_model.model.layers[0].self_attn(hidden, mask)
    assert output.shape == (2, 8, 64) and weights.shape == (2, 4, 8, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 8))
    with paddle.no_grad():
        result = pair.paddle_model.llama.layers[0].self_attn(
            paddle.to_tensor(hidden.numpy()), paddle.to_tensor(mask.numpy())
        )
    assert isinstance(result, paddle.Tensor)
    assert max_difference(output.numpy(), result.numpy()) <= TOLERANCE


@pytest.mark.parametrize(
    ("module", "attribute", "value"),
    [
        ("self_attn.rotary_emb", "base", 500.0),
        ("input_layernorm", "eps", 1.0),
        ("self_attn", "scaling", 1.0),
    ],
)
def test_injectable_attributes_are_read_at_forward(module: str, attribute: str, value: float):
    pair = make("default")
    before = torch_logits(pair)
    target = pair.torch_model.model.layers[1].get_submodule(module)
    setattr(target, attribute, value)
    assert max_difference(before, torch_logits(pair)) > 1e-3


def test_paddle_model_cannot_go_through_dy2static() -> None:
    pair = make("default")  # to_static converts the layer in place: a pair of its own
    # the decorated forward takes *args: dy2static cannot bind the inputs
    specs = [paddle.static.InputSpec([2, 8], "int64", "input_ids")]
    static = paddle.jit.to_static(pair.paddle_model, input_spec=specs, full_graph=True)
    with pytest.raises(ValueError, match="decorated function `forward` requires 0 arguments"):
        static(paddle.to_tensor(pair.inputs["input_ids"]))


def test_paddle_model_cannot_be_exported_and_torch_model_can() -> None:
    pair = make("default")
    with pytest.raises(ExportError, match="could not trace LlamaForCausalLM.*auto_diff"):
        padiff_ir.export(pair.paddle_model, pair.inputs)
    exported = padiff_ir.export(pair.torch_model, pair.inputs)
    assert "model.layers.1.self_attn.k_proj" in set(exported.node_modules.values())


def test_sizes() -> None:
    assert ZOO["llama"].sizes == ("tiny", "base")
    assert not ZOO["llama"].same_names and not ZOO["llama"].paddle_exports
    pair = make("default")
    assert sum(p.numel() for p in pair.torch_model.parameters()) == 90_432
    assert sum(int(p.numel()) for p in pair.paddle_model.parameters()) == 90_432
    base = ZOO["llama"].configs["base"]
    with torch.device("meta"):
        model = LlamaForCausalLM(base)  # type: ignore[arg-type]
    assert sum(p.numel() for p in model.parameters()) == 430_490_624
    assert base.input_specs() == (("input_ids", (1, 128), "int64"),)


def test_overrides_are_checked() -> None:
    with pytest.raises(OptionError, match="no field 'qkv'.*qkv_layout"):
        get_pair("llama", overrides={"qkv": "concat"})
    with pytest.raises(OptionError, match="'interleaved' needs heads == kv_heads"):
        get_pair("llama", overrides={"qkv_layout": "interleaved"})
    with pytest.raises(OptionError, match="'fused' is not a layout"):
        get_pair("llama", overrides={"gate_up_layout": "fused"})
