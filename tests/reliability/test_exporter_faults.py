"""An exporter fault is a finding about the exporter: paddle2onnx writes a garbage LeakyRelu
alpha, yet identical models stay aligned, the exporter and the attribute are named, and a real
bug elsewhere in the model is still the culprit."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import paddle
import torch

import padiff_ir
from padiff_ir.compare.match_result import MatchResult, ModuleStatus


class TorchLeaky(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.act = torch.nn.LeakyReLU()
        self.fc2 = torch.nn.Linear(8, 8)
        self.act2 = torch.nn.LeakyReLU()
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.out(self.act2(self.fc2(self.act(self.fc(x)))))


class PaddleLeaky(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(8, 8)
        self.act = paddle.nn.LeakyReLU()
        self.fc2 = paddle.nn.Linear(8, 8)
        self.act2 = paddle.nn.LeakyReLU()
        self.out = paddle.nn.Linear(8, 4)

    def forward(self, x):
        return self.out(self.act2(self.fc2(self.act(self.fc(x)))))


def _pair() -> tuple[TorchLeaky, PaddleLeaky, np.ndarray]:
    return seeded_pair(TorchLeaky, PaddleLeaky)


def seeded_pair(torch_class: type, paddle_class: type) -> tuple[Any, Any, np.ndarray]:
    """The two models made from seed 0, A's weights copied into B, and inputs."""
    torch.manual_seed(0)
    paddle.seed(0)
    model_a, model_b = torch_class(), paddle_class()
    padiff_ir.assign_weight(model_b, model_a)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    return model_a, model_b, x


def _assert_leaky_faults(result: MatchResult) -> None:
    """Both LeakyReLUs of B: paddle2onnx wrote their alpha wrong (every one is found)."""
    assert [f.module for f in result.exporter_faults] == ["act", "act2"]
    for fault in result.exporter_faults:
        _assert_leaky_fault(result, fault)
    again = MatchResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.exporter_faults == result.exporter_faults


def _assert_leaky_fault(result: MatchResult, fault) -> None:
    assert (fault.side, fault.exporter) == ("B", "paddle2onnx")
    assert (fault.op, fault.attribute, fault.expected) == (
        "LeakyRelu",
        "alpha",
        "negative_slope 0.01",
    )
    assert float(fault.written) != 0.01
    assert (
        f"paddle2onnx wrote LeakyRelu alpha={fault.written}; the model's negative_slope is 0.01"
        in (" ".join(str(result).split()))
    )


def test_identical_models_stay_aligned_with_an_exporter_finding():
    model_a, model_b, x = _pair()
    result = padiff_ir.match(model_a, model_b, x)
    assert result, str(result)
    assert not result.culprits
    _assert_leaky_faults(result)
    for act in (m for m in result.modules if m.a in ("act", "act2")):
        assert act.status is ModuleStatus.OK  # judged on the eager runs
    assert not result.accumulated
    assert "output #0" in str(result) and "FAIL" not in str(result).split("exporter fault")[0]


def test_a_real_bug_elsewhere_is_still_the_culprit():
    model_a, model_b, x = _pair()
    bias = model_b.out.bias
    bias.set_value(bias.numpy() + 0.5)
    result = padiff_ir.match(model_a, model_b, x)
    assert not result
    assert [c.module_a for c in result.culprits] == ["out"]
    _assert_leaky_faults(result)
    assert result.first_divergence is not None and result.first_divergence.module_a == "out"


def test_a_real_slope_difference_at_the_faulty_layer_is_found_eagerly():
    model_a, model_b, x = _pair()
    model_a.act.negative_slope = 0.2
    result = padiff_ir.match(model_a, model_b, x)
    assert not result
    assert [c.module_a for c in result.culprits] == ["act"]
    assert [f.module for f in result.exporter_faults] == ["act", "act2"]
