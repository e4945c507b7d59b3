"""Decoder-LLM ports: fused, grouped and permuted parameter layouts found without being told.

The zoo's ``llama`` pair is a Hugging Face style torch decoder (split q/k/v and gate/up,
rotate-half RoPE) against a PaddleNLP style port (one ``qkv_proj`` grouped per key-value head,
one ``gate_up_fused_proj``, neighbour-pair RoPE, a matmul output head, a wrapped ``forward``
that ``paddle.jit.save`` refuses). Every layout variant is one pair; the zoo's hand-written
converter is the ground truth the discovered layouts must reproduce.
"""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.pairing import pair_models
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.zoo import get_pair
from padiff_ir.zoo.llm_weights import llama_torch_to_paddle
from tests.hf_models import hf_causal_lm, hf_inputs

VARIANTS = {
    "default": {},
    "qkv-concat": {"qkv_layout": "concat"},
    "qkv-per-head": {"qkv_layout": "interleaved", "kv_heads": 4},
    "mqa": {"kv_heads": 1},
    "gate-up": {"gate_up_layout": "gate_up"},
    "gate-up-interleaved": {"gate_up_layout": "interleaved"},
    "rope-half": {"rope": "half"},
    "gemma-norm": {"norm_offset": True},
    "tied": {"tie_embeddings": True},
    "qwen2-bias": {"qkv_bias": True},
}


def _logits(model, ids: np.ndarray) -> np.ndarray:
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            return model(torch.from_numpy(ids)).numpy()
    return model(paddle.to_tensor(ids)).numpy()


def _fresh(overrides, seed):
    return get_pair("llama", "tiny", overrides=overrides, seed=seed)


@pytest.mark.parametrize("variant", VARIANTS)
def test_assign_weight_finds_the_layout_in_both_directions(variant):
    overrides = VARIANTS[variant]
    pair = _fresh(overrides, 0)
    ids = pair.inputs["input_ids"]
    target = _fresh(overrides, 1).paddle_model
    assert np.abs(_logits(target, ids) - _logits(pair.torch_model, ids)).max() > 1e-3
    padiff_ir.assign_weight(target, pair.torch_model, inputs=pair.inputs)
    truth = llama_torch_to_paddle(
        {k: v.detach().numpy() for k, v in pair.torch_model.state_dict().items()}, pair.config
    )
    written = {k: v.numpy() for k, v in target.state_dict().items()}
    for name, array in truth.items():
        np.testing.assert_allclose(written[name], array, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(_logits(target, ids), _logits(pair.torch_model, ids), atol=1e-5)
    split_back = _fresh(overrides, 2).torch_model  # from the fused side into the split side
    padiff_ir.assign_weight(split_back, pair.paddle_model, inputs=pair.inputs)
    np.testing.assert_allclose(_logits(split_back, ids), _logits(pair.paddle_model, ids), atol=1e-5)


def test_layouts_are_named_in_the_layer_map_and_reused_without_inputs(tmp_path):
    pair = _fresh({}, 0)
    layer_map = padiff_ir.auto_layer_map(pair.torch_model, pair.paddle_model, pair.inputs)
    layouts = layer_map.to_dict()["layouts"]  # their JSON form
    qkv = layouts[
        "model.layers.*.self_attn.q_proj.weight+model.layers.*.self_attn.k_proj.weight+"
        "model.layers.*.self_attn.v_proj.weight -> llama.layers.*.self_attn.qkv_proj.weight"
    ]
    assert qkv == {
        "layout": {
            "name": "fused_qkv_grouped",
            "heads": 4,
            "kv_heads": 2,
            "head_dim": 16,
            "rope": "half->interleaved",
        }
    }
    assert {"layout": {"name": "fused_order", "order": [1, 0]}} in layouts.values()
    path = tmp_path / "layer_map.json"
    layer_map.save(path)
    loaded = LayerMap.load(path)
    assert loaded.layouts == layer_map.layouts
    other = _fresh({}, 3)  # models this process never matched: no remembered matching
    ids = other.inputs["input_ids"]
    target = _fresh({}, 4).paddle_model
    padiff_ir.assign_weight(target, other.torch_model, layer_map=loaded)  # no inputs
    np.testing.assert_allclose(_logits(target, ids), _logits(other.torch_model, ids), atol=1e-5)


def test_without_inputs_or_layer_map_the_layouts_are_probed_on_token_ids_never_guessed():
    pair = _fresh({}, 5)
    ids = pair.inputs["input_ids"]
    target = _fresh({}, 6).paddle_model
    padiff_ir.assign_weight(target, pair.torch_model)  # token ids made from the embedding
    np.testing.assert_allclose(_logits(target, ids), _logits(pair.torch_model, ids), atol=1e-5)


def test_without_inputs_and_no_embedding_an_open_layout_is_refused_with_how_to_pass_inputs():
    class Fused(torch.nn.Module):  # q/k/v of one size: a fused [in, 3 * out] has several layouts
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (torch.nn.Linear(8, 8, bias=False) for _ in range(3))

        def forward(self, x):
            return self.q(x) + 2 * self.k(x) + 3 * self.v(x)

    class FusedB(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.qkv = paddle.nn.Linear(8, 24, bias_attr=False)

        def forward(self, x):
            q, k, v = paddle.split(self.qkv(x), 3, axis=-1)
            return q + 2 * k + 3 * v

    target = FusedB()
    before = target.qkv.weight.numpy().copy()
    with pytest.raises(padiff_ir.LayoutError, match="inputs="):
        padiff_ir.assign_weight(target, Fused())
    np.testing.assert_array_equal(target.qkv.weight.numpy(), before)


def test_match_answers_natively_and_is_aligned():
    pair = _fresh({}, 0)
    target = _fresh({}, 1).paddle_model
    result = padiff_ir.match(pair.torch_model, target, pair.inputs, assign_weights=True)
    assert result, str(result)
    assert result.fallback.side == "B" and result.fallback.framework == "paddle"
    assert not result.culprits and not [p for p in result.pairs if not p.ok]
    assert any("returns 2 tensor(s) in model A and 1 in model B" in n for n in result.notes)


def _swap_kv_rows(layer, config) -> None:
    """k and v swapped in one layer's fused weights: a converter's slip."""
    weight = layer.self_attn.qkv_proj.weight.numpy().copy()
    d, group = config.hidden // config.heads, config.heads // config.kv_heads
    width = (group + 2) * d
    for g in range(config.kv_heads):
        k = slice(g * width + group * d, g * width + (group + 1) * d)
        v = slice(g * width + (group + 1) * d, (g + 1) * width)
        weight[:, k], weight[:, v] = weight[:, v].copy(), weight[:, k].copy()
    layer.self_attn.qkv_proj.weight.set_value(weight)


BUGS = {
    "rmsnorm-epsilon": (
        lambda p, c: setattr(p.llama.layers[1].input_layernorm, "variance_epsilon", 1e-1),
        "model.layers.1.input_layernorm",
    ),
    "rope-base": (
        lambda p, c: setattr(p.llama.layers[1].self_attn.rotary_emb, "base", 500.0),
        "model.layers.1.self_attn",
    ),
    "missing-attention-scale": (
        lambda p, c: setattr(p.llama.layers[1].self_attn, "scaling", 1.0),
        "model.layers.1.self_attn",
    ),
    "k-v-swapped": (lambda p, c: _swap_kv_rows(p.llama.layers[1], c), "model.layers.1.self_attn"),
    # in the first layer, where probing looks first: the layouts come from the next layer
    "first-layer-scale": (
        lambda p, c: setattr(p.llama.layers[0].self_attn, "scaling", 1.0),
        "model.layers.0.self_attn",
    ),
}


@pytest.mark.parametrize("bug", BUGS)
def test_an_injected_bug_is_named_at_its_layer(bug):
    inject, expected = BUGS[bug]
    pair = _fresh({}, 0)  # the paddle model holds the ground-truth weights
    inject(pair.paddle_model, pair.config)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert not result
    culprits = [c.module_a for c in result.culprits]
    assert culprits and culprits[0].startswith(expected), str(result)
    diff = padiff_ir.auto_diff(
        pair.torch_model, pair.paddle_model, pair.inputs, auto_init=False, single_step=True,
        atol=1e-5, rtol=1e-4, diff_phase="forward",
    )  # fmt: skip
    assert not diff
    assert diff.first_difference.module_a.startswith(expected), str(diff)


def test_auto_diff_trains_the_port_alike():
    pair = _fresh({}, 0)
    target = _fresh({}, 1).paddle_model

    def loss_torch(logits):
        return logits.float().pow(2).mean()

    def loss_paddle(logits):
        return logits.pow(2).mean()

    result = padiff_ir.auto_diff(
        pair.torch_model,
        target,
        pair.inputs,
        loss_fn=[loss_torch, loss_paddle],
        optimizer=[
            torch.optim.SGD(pair.torch_model.parameters(), lr=0.1),
            paddle.optimizer.SGD(0.1, parameters=target.parameters()),
        ],
        steps=2,
        atol=1e-5,
        rtol=1e-4,
    )
    assert result, str(result)


class _TorchAttention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(16, 16, bias=False)
        self.k_proj = torch.nn.Linear(16, 8, bias=False)
        self.v_proj = torch.nn.Linear(16, 8, bias=False)

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        scores = torch.softmax(q[..., :8] @ k.transpose(-1, -2), -1)
        return scores @ v + q[..., 8:]


class _PaddleAttention(paddle.nn.Layer):
    """The fused rows as ``[v; q; k]``: a layout padiff-ir does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = paddle.nn.Linear(16, 32, bias_attr=False)

    def forward(self, x):
        v, q, k = paddle.split(self.qkv(x), [8, 16, 8], axis=-1)
        scores = paddle.nn.functional.softmax(q[..., :8] @ k.transpose([0, 2, 1]), -1)
        return scores @ v + q[..., 8:]


def test_an_unknown_fused_layout_is_an_error_naming_shapes_and_candidates():
    torch.manual_seed(0)
    model_a, model_b = _TorchAttention(), _PaddleAttention()
    inputs = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    matching = pair_models(model_a, model_b, inputs, reuse=False)  # compared as they are
    message = matching.stats["layouts_unsettled"]
    assert "q_proj.weight [16, 16]" in message and "qkv.weight [16, 32]" in message
    assert "fused_qkv()" in message and "register_transform" in message
    with pytest.raises(padiff_ir.LayoutError, match="register_transform"):  # never copied
        padiff_ir.assign_weight(model_b, model_a, inputs=inputs)


@pytest.mark.parametrize(("name", "overrides"), [("Llama", {}), ("Qwen2", {"qkv_bias": True})])
def test_a_real_hugging_face_decoder_against_the_paddle_port(name, overrides):
    """``transformers``' own classes (tiny configs, no download) on the torch side: keyword
    inputs, a ``ModelOutput`` with a cache, attention returning ``(output, None)``."""
    hf = hf_causal_lm(name, layers=2)
    port = _fresh(overrides, 1)
    ids = port.inputs["input_ids"]
    inputs = hf_inputs(ids)
    result = padiff_ir.match(hf, port.paddle_model, inputs, assign_weights=True)
    assert result, str(result)
    assert result.fallback.side == "B"
    assert any("not tensors, left out" in note for note in result.notes)  # the cache
    diff = padiff_ir.auto_diff(
        hf, port.paddle_model, inputs, auto_init=False, atol=1e-5, rtol=1e-4, compare_mode="mean"
    )
    assert diff, str(diff)
    with torch.no_grad():
        expected = hf(input_ids=torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(_logits(port.paddle_model, ids), expected, atol=1e-5)


def test_gpt2_conv1d_is_a_linear_with_the_paddle_layout():
    """transformers' ``Conv1D`` holds its weight ``[in, out]``, like paddle's ``Linear``."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")

    class Gpt2Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc = pytorch_utils.Conv1D(32, 16)
            self.c_proj = pytorch_utils.Conv1D(16, 32)

        def forward(self, x):
            return self.c_proj(torch.relu(self.c_fc(x)))

    class PaddleMlp(paddle.nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = paddle.nn.Linear(16, 32)
            self.fc2 = paddle.nn.Linear(32, 16)

        def forward(self, x):
            return self.fc2(paddle.nn.functional.relu(self.fc1(x)))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = Gpt2Mlp()
    model_b = PaddleMlp()
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    report = padiff_ir.assign_weight(model_b, model_a, inputs=x)
    assert all(
        c.transform.to_dict() == {} for c in report.copied
    )  # same layout: copied as they are
    with torch.no_grad():
        expected = model_a(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model_b(paddle.to_tensor(x)).numpy(), expected, atol=1e-6)
    assert padiff_ir.match(model_a, model_b, x)


class _TorchGqa(torch.nn.Module):
    """Grouped-query attention, 4 heads of 8, 2 key-value heads; ``head_size`` declares a
    wrong head size (probing tries it first, then the others)."""

    head_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(32, 32, bias=False)
        self.k_proj = torch.nn.Linear(32, 16, bias=False)
        self.v_proj = torch.nn.Linear(32, 16, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, 4, 8).transpose(1, 2)
        k = self.k_proj(x).view(b, t, 2, 8).transpose(1, 2).repeat_interleave(2, 1)
        v = self.v_proj(x).view(b, t, 2, 8).transpose(1, 2).repeat_interleave(2, 1)
        weights = torch.softmax(q @ k.transpose(-1, -2), -1)
        return (weights @ v).transpose(1, 2).reshape(b, t, 32)


class _PaddleGqa(paddle.nn.Layer):
    """The same with one ``qkv`` grouped per key-value head: ``[q0 q1 k0 v0 q2 q3 k1 v1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = paddle.nn.Linear(32, 64, bias_attr=False)

    def forward(self, x):
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape([b, t, 2, 4, 8])
        q = qkv[:, :, :, :2].reshape([b, t, 4, 8]).transpose([0, 2, 1, 3])
        k = paddle.repeat_interleave(qkv[:, :, :, 2].transpose([0, 2, 1, 3]), 2, 1)
        v = paddle.repeat_interleave(qkv[:, :, :, 3].transpose([0, 2, 1, 3]), 2, 1)
        weights = paddle.nn.functional.softmax(q @ k.transpose([0, 1, 3, 2]), -1)
        return (weights @ v).transpose([0, 2, 1, 3]).reshape([b, t, 32])


def test_a_wrongly_declared_head_size_falls_back_to_every_candidate():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = _TorchGqa()
    model_b = _PaddleGqa()
    x = np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32)
    matching = pair_models(model_a, model_b, x, reuse=False)
    (choice,) = matching.stats["layouts"]
    assert choice["transform"]["layout"]["name"] == "fused_qkv_grouped"
    assert choice["transform"]["layout"]["head_dim"] == 8
    assert len(choice["candidates"]) > 3  # the hinted head size (4) did not explain it
    padiff_ir.assign_weight(model_b, model_a, matching=matching)
    with torch.no_grad():
        expected = model_a(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model_b(paddle.to_tensor(x)).numpy(), expected, atol=1e-5)
