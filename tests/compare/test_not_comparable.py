"""The verdict comes from outputs and module pairs: op-level pairs that the two sides compute in
another layout or order inside agreeing modules are not comparable (issue 20 b), on real
library layers (torchvision's ConvNeXt block, transformers' BERT self-attention)."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from tests.ports.vision import import_torchvision

HIDDEN, HEADS = 16, 2


class _ChannelsFirstNorm(paddle.nn.Layer):
    """A LayerNorm over the channels of an NCHW tensor, written out (ConvNeXt's official
    ``data_format="channels_first"``)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = self.create_parameter(
            [channels], default_initializer=paddle.nn.initializer.Constant(1.0)
        )
        self.bias = self.create_parameter([channels], is_bias=True)
        self.eps = eps

    def forward(self, x):
        mean = x.mean(axis=1, keepdim=True)
        var = ((x - mean) ** 2).mean(axis=1, keepdim=True)
        x = (x - mean) / paddle.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class _PaddleBlock(paddle.nn.Layer):
    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.dwconv = paddle.nn.Conv2D(channels, channels, 7, padding=3, groups=channels)
        self.norm = _ChannelsFirstNorm(channels, eps)
        self.pwconv1 = paddle.nn.Linear(channels, 4 * channels)
        self.act = paddle.nn.GELU()
        self.pwconv2 = paddle.nn.Linear(4 * channels, channels)
        self.gamma = self.create_parameter(
            [channels, 1, 1], default_initializer=paddle.nn.initializer.Constant(0.5)
        )

    def forward(self, x):
        y = self.norm(self.dwconv(x)).transpose([0, 2, 3, 1])
        y = self.pwconv2(self.act(self.pwconv1(y))).transpose([0, 3, 1, 2])
        return x + self.gamma * y


class _PaddleConvNeXt(paddle.nn.Layer):
    def __init__(self, eps: float) -> None:
        super().__init__()
        self.stem = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.block = _PaddleBlock(8, eps)

    def forward(self, x):
        return self.block(self.stem(x))


def _convnext_pair(eps: float):
    pytest.importorskip("torchvision")  # the [ports] extra (tests/conftest.py shims it)
    convnext = import_torchvision().convnext

    class TorchConvNeXt(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.block = convnext.CNBlock(8, 0.5, 0.0)  # permute, LayerNorm, Linear... permute

        def forward(self, x):
            return self.block(self.stem(x))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = TorchConvNeXt().eval()
        with torch.no_grad():  # norm weights and layer scale away from their init
            for name, param in model_a.named_parameters():
                if "layer_scale" in name or "block.2" in name:
                    param.uniform_(0.5, 1.5)
    model_b = _PaddleConvNeXt(eps)
    model_b.eval()
    x = np.random.RandomState(0).randn(2, 3, 6, 5).astype("float32")  # H != W != C
    padiff_ir.assign_weight(model_b, model_a, inputs=x)
    return model_a, model_b, x


class _PrescaledAttention(paddle.nn.Layer):
    """BERT self-attention that multiplies q by the scale before the score MatMul (``bug``
    scales it wrong)."""

    def __init__(self, bug: float) -> None:
        super().__init__()
        self.query = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.key = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.value = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.bug = bug

    def forward(self, x):
        batch, seq, _ = x.shape
        size = HIDDEN // HEADS

        def heads(t):
            return t.reshape([batch, seq, HEADS, size]).transpose([0, 2, 1, 3])

        q = heads(self.query(x) * (self.bug / math.sqrt(size)))
        scores = paddle.matmul(q, heads(self.key(x)), transpose_y=True)
        context = paddle.matmul(paddle.nn.functional.softmax(scores, axis=-1), heads(self.value(x)))
        return context.transpose([0, 2, 1, 3]).reshape([batch, seq, HIDDEN])


class _PaddleAttentionNet(paddle.nn.Layer):
    def __init__(self, bug: float) -> None:
        super().__init__()
        self.attn = _PrescaledAttention(bug)
        self.out = paddle.nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x):
        return self.out(self.attn(x))


def _attention_pair(bug: float):
    bert = pytest.importorskip("transformers").models.bert.modeling_bert

    class TorchAttentionNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            config = bert.BertConfig(
                hidden_size=HIDDEN, num_attention_heads=HEADS, attention_probs_dropout_prob=0.0
            )
            config._attn_implementation = "eager"  # the scale applied to the scores
            self.attn = bert.BertSelfAttention(config)
            self.out = torch.nn.Linear(HIDDEN, HIDDEN)

        def forward(self, x):
            return self.out(self.attn(x)[0])

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = TorchAttentionNet().eval()
    model_b = _PaddleAttentionNet(bug)
    model_b.eval()
    x = np.random.RandomState(0).randn(2, 5, HIDDEN).astype("float32")
    padiff_ir.assign_weight(model_b, model_a, inputs=x)
    return model_a, model_b, x


def _assert_aligned(result) -> None:
    assert result.ok, str(result)
    assert result.culprits == []
    assert all(m.output is None or m.output.ok for m in result.modules)


def test_channels_last_layernorm_vs_channels_first_is_aligned():
    result = padiff_ir.match(*_convnext_pair(eps=1e-6))
    _assert_aligned(result)  # was: aligned with a culprit at the LayerNorm (inputs reshaped)
    norm = next(m for m in result.modules if m.a == "block.block.2")
    assert norm.b == "block.norm" and norm.output.ok


def test_channels_first_layernorm_bug_is_named():
    result = padiff_ir.match(*_convnext_pair(eps=1e-2))
    assert not result.ok
    assert [(c.module_a, c.module_b) for c in result.culprits][:1] == [
        ("block.block.2", "block.norm")
    ]


def test_prescaled_attention_scores_are_not_comparable():
    result = padiff_ir.match(*_attention_pair(bug=1.0))
    _assert_aligned(result)  # was: diverged with no culprit (the score MatMuls paired)
    skipped = [p for p in result.pairs if p.not_comparable]
    assert skipped and all(p.module_a == "attn" and not p.metrics.ok for p in skipped)
    assert "n/c" in str(result)


@pytest.mark.parametrize("bug", [1.5])
def test_prescaled_attention_bug_is_named(bug):
    result = padiff_ir.match(*_attention_pair(bug=bug))
    assert not result.ok
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("attn", "attn")]
    assert any(not p.ok for p in result.pairs)


class _TorchMasked(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(HIDDEN, HIDDEN)
        self.scale = torch.nn.LeakyReLU(0.1)

    def forward(self, x):
        return torch.relu(self.scale(self.fc(x)) - 1e3)  # every value clipped to zero


class _PaddleMasked(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.scale = paddle.nn.LeakyReLU(0.3)  # the bug

    def forward(self, x):
        return paddle.nn.functional.relu(self.scale(self.fc(x)) - 1e3)


def test_a_failing_module_pair_keeps_the_verdict_diverged_when_outputs_agree():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = _TorchMasked().eval()
    model_b = _PaddleMasked()
    model_b.eval()
    x = np.random.RandomState(0).randn(2, 5, HIDDEN).astype("float32")
    padiff_ir.assign_weight(model_b, model_a, inputs=x)
    result = padiff_ir.match(model_a, model_b, x)
    assert all(p.ok for p in result.outputs)
    assert not result.ok
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("scale", "scale")]
