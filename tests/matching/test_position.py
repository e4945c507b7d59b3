"""Ops of different families in the same place pair by position; one-sided ops do not.

Real torch/paddle models: a conv stage whose activation (read by a pooling layer, not by an
anchor) is ``ReLU`` on one side and ``ELU`` on the other, a model whose output activation
differs, and two pairs where the structure really differs (an extra activation on each side at
different places; torch's dropout absent from its export against paddle's scaling dropout).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import paddle
import pytest
import torch
from torch import nn

from padiff_ir.matching import Matching, match_graphs
from padiff_ir.matching._position import POSITION_CONFIDENCE
from tests.matching import oracle


class TorchStage(nn.Module):
    def __init__(self, act: nn.Module, before: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.before = before if before is not None else nn.Identity()
        self.act = act
        self.drop = nn.Dropout(0.5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)
        self.out = nn.Sigmoid()

    def forward(self, x):
        x = self.pool(self.drop(self.act(self.before(self.conv(x)))))
        return self.out(self.fc(torch.flatten(x, 1)))


class PaddleStage(paddle.nn.Layer):
    def __init__(
        self,
        act: paddle.nn.Layer,
        after: paddle.nn.Layer | None = None,
        out: paddle.nn.Layer | None = None,
        dropout_mode: str = "upscale_in_train",
    ) -> None:
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.act = act
        self.after = after if after is not None else paddle.nn.Identity()
        self.drop = paddle.nn.Dropout(0.5, mode=dropout_mode)
        self.pool = paddle.nn.MaxPool2D(2)
        self.fc = paddle.nn.Linear(8 * 4 * 4, 5)
        self.out = out if out is not None else paddle.nn.Sigmoid()

    def forward(self, x):
        x = self.pool(self.drop(self.after(self.act(self.conv(x)))))
        return self.out(self.fc(paddle.flatten(x, 1)))


def _copied(model_a: nn.Module, model_b: paddle.nn.Layer) -> tuple[nn.Module, paddle.nn.Layer]:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model_a.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    weights = dict(model_a.named_parameters())
    for name, parameter in model_b.named_parameters():
        value = weights[name].detach().numpy()
        parameter.set_value(value.T if name == "fc.weight" else value)
    return model_a.eval(), model_b.eval()


_PAIRS: dict[str, Callable[[], tuple[nn.Module, paddle.nn.Layer]]] = {
    "relu-as-elu": lambda: (TorchStage(nn.ReLU()), PaddleStage(paddle.nn.ELU())),
    "output-sigmoid-as-tanh": lambda: (
        TorchStage(nn.ReLU()),
        PaddleStage(paddle.nn.ReLU(), out=paddle.nn.Tanh()),
    ),
    # an extra activation on each side, before the ReLU in A and after it in B
    "extra-on-each-side": lambda: (
        TorchStage(nn.ReLU(), before=nn.Tanh()),
        PaddleStage(paddle.nn.ReLU(), after=paddle.nn.Sigmoid()),
    ),
    # torch's dropout leaves no op in eval; paddle's scales by 1 - p
    "dropout-scale-one-side": lambda: (
        TorchStage(nn.ReLU()),
        PaddleStage(paddle.nn.ReLU(), dropout_mode="downscale_in_infer"),
    ),
}


@functools.cache
def _case(name: str) -> tuple[oracle.Exported, Matching]:
    model_a, model_b = _copied(*_PAIRS[name]())
    inputs = {"x": np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype("float32")}
    case = oracle.export_case(model_a, model_b, inputs)
    return case, match_graphs(case.graph_a, case.graph_b)


def _pair_of(matching: Matching, op_a: str) -> Any:
    return next(p for p in matching.tensor_pairs if p.op_a == op_a)


def test_different_activation_in_the_same_place_pairs_by_position():
    case, matching = _case("relu-as-elu")
    pair = _pair_of(matching, "Relu")
    assert (pair.op_b, pair.module_a, pair.module_b) == ("Elu", "act", "act")
    assert "position" in pair.evidence and pair.confidence == POSITION_CONFIDENCE
    assert matching.module_map()["act"] == "act"
    assert not [u for u in matching.unmatched if u.kind == "op" and u.op_type in ("Relu", "Elu")]
    assert matching.stats["position_pairs"] == 1
    # the pair is the right one: ReLU and ELU agree where the input is positive
    value_a, value_b = case.values_a[pair.a[0]], case.values_b[pair.b[0]]
    positive = value_a > 0
    assert positive.any() and np.allclose(value_a[positive], value_b[positive], atol=1e-5)
    assert not np.allclose(value_a, value_b, atol=1e-3)
    # every other pair joins ops of one type
    assert all(p.op_a == p.op_b for p in matching.tensor_pairs if p is not pair and p.op_b)


def test_different_output_activations_pair_as_graph_outputs():
    _, matching = _case("output-sigmoid-as-tanh")
    pair = _pair_of(matching, "Sigmoid")
    assert pair.op_b == "Tanh" and (pair.module_a, pair.module_b) == ("out", "out")
    assert "graph-output" in pair.evidence and matching.stats["position_pairs"] == 1
    assert matching.module_map()["out"] == "out"
    assert _pair_of(matching, "Relu").op_b == "Relu"


@pytest.mark.parametrize("name", ["extra-on-each-side", "dropout-scale-one-side"])
def test_ops_present_on_one_side_only_stay_unpaired(name):
    _, matching = _case(name)
    assert matching.stats["position_pairs"] == 0
    assert not [p for p in matching.tensor_pairs if "position" in p.evidence and p.op_a != p.op_b]
    activations = ("Relu", "Tanh", "Sigmoid", "Mul")
    assert all(p.op_a == p.op_b for p in matching.tensor_pairs if p.op_a in activations)
    alone = {(u.side, u.op_type) for u in matching.unmatched if u.kind == "op"}
    if name == "extra-on-each-side":
        # neither ReLU reads the counterpart of the other's input: all four stay alone
        assert {("a", "Tanh"), ("a", "Relu"), ("b", "Relu"), ("b", "Sigmoid")} <= alone
    else:
        assert alone == {("b", "Mul")}  # the scale of paddle's dropout
        assert _pair_of(matching, "Relu").op_b == "Relu"
