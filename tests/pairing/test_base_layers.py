"""A layer is known by what it is, not by its class name (issue 20 j): a library's subclass of
``nn.Linear`` or ``nn.Conv2D`` (a LoRA-ready wrapper with an extra attribute) is a Linear or a
convolution to the matching on eager traces and module trees, so square projections pair."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.pairing import pair_models

HIDDEN = 16


class LoraReadyLinear(torch.nn.Linear):
    """An ``nn.Linear`` ready for LoRA adapters: extra attributes, none in use."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.lora_rank = 0
        self.merged = False


class TorchAttention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = LoraReadyLinear(HIDDEN, HIDDEN)
        self.k = LoraReadyLinear(HIDDEN, HIDDEN)
        self.v = LoraReadyLinear(HIDDEN, HIDDEN)
        self.o = LoraReadyLinear(HIDDEN, HIDDEN)
        self.act = torch.nn.LeakyReLU(0.1)

    def forward(self, x):
        scores = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2), -1)
        return self.act(x + self.o(scores @ self.v(x)))


class PaddleAttention(paddle.nn.Layer):
    """The same with plain ``nn.Linear``, other names, defined in another order."""

    def __init__(self, bug: bool = False) -> None:
        super().__init__()
        self.proj = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.wv = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.wq = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.wk = paddle.nn.Linear(HIDDEN, HIDDEN)
        self.leaky = paddle.nn.LeakyReLU(0.2 if bug else 0.1)

    def forward(self, x):
        scores = paddle.nn.functional.softmax(self.wq(x) @ self.wk(x).transpose([0, 2, 1]), -1)
        return self.leaky(x + self.proj(scores @ self.wv(x)))


class LoraReadyConv2D(paddle.nn.Conv2D):
    """A paddle ``nn.Conv2D`` ready for LoRA adapters."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, mode: str = "zeros"):
        super().__init__(channels_in, channels_out, kernel, padding=kernel // 2, padding_mode=mode)
        self.lora_rank = 0


class PaddleConvs(paddle.nn.Layer):
    def __init__(self, bug: bool = False) -> None:
        super().__init__()
        self.stem = LoraReadyConv2D(3, 8, 3)
        self.mix = LoraReadyConv2D(8, 8, 3)
        self.point = LoraReadyConv2D(8, 8, 3)
        self.leaky = paddle.nn.LeakyReLU(0.2 if bug else 0.1)

    def forward(self, x):
        return self.point(self.leaky(self.mix(self.stem(x))))


class TorchConvs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.second = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.third = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.act = torch.nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.third(self.act(self.second(self.first(x))))


CASES = {
    "linear": (
        TorchAttention,
        PaddleAttention,
        (2, 5, HIDDEN),
        {"q": "wq", "k": "wk", "v": "wv", "o": "proj", "act": "leaky"},
    ),
    "conv2d": (
        TorchConvs,
        PaddleConvs,
        (2, 3, 6, 5),
        {"first": "stem", "second": "mix", "third": "point", "act": "leaky"},
    ),
}


def _case(name: str, bug: bool = False):
    torch_class, paddle_class, shape, expected = CASES[name]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model_a = torch_class().eval()
    model_b = paddle_class(bug)
    model_b.eval()
    x = np.random.RandomState(0).randn(*shape).astype("float32")
    return model_a, model_b, x, expected


def _outputs(model_a, model_b, x):
    with torch.no_grad():
        out_a = model_a(torch.from_numpy(x)).numpy()
    return out_a, model_b(paddle.to_tensor(x)).numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_subclassed_layers_pair_on_traces(name):
    model_a, model_b, x, expected = _case(name)
    matching = pair_models(model_a, model_b, x, export=False, reuse=False)
    assert matching.stats["graphs"] == "trace"
    assert {a: b for a, b in matching.module_map().items() if a} == expected
    padiff_ir.assign_weight(model_b, model_a, matching=matching)
    np.testing.assert_allclose(*_outputs(model_a, model_b, x), atol=1e-5)


def test_subclassed_convolutions_assigned_without_inputs():
    model_a, model_b, x, _ = _case("conv2d")
    padiff_ir.assign_weight(model_b, model_a)  # the module trees, probed on generated inputs
    np.testing.assert_allclose(*_outputs(model_a, model_b, x), atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bug_beside_subclassed_layers_named_first(name):
    model_a, model_b, x, _expected = _case(name, bug=True)
    matching = pair_models(model_a, model_b, x, export=False, reuse=False)
    diff = padiff_ir.auto_diff(
        model_a, model_b, x, matching=matching, single_step=True, atol=1e-5, rtol=1e-5
    )
    assert not diff
    assert [(c.module_a, c.module_b) for c in diff.culprits][:1] == [("act", "leaky")]


def test_setting_of_a_subclassed_convolution_explains_its_bug():
    model_a, _, x, _ = _case("conv2d")
    model_b = PaddleConvs()
    model_b.mix = LoraReadyConv2D(8, 8, 3, mode="reflect")  # the port pads by reflection
    model_b.eval()
    matching = pair_models(model_a, model_b, x, export=False, reuse=False)
    diff = padiff_ir.auto_diff(
        model_a, model_b, x, matching=matching, single_step=True, atol=1e-5, rtol=1e-5
    )
    assert [(c.module_a, c.module_b) for c in diff.culprits][:1] == [("second", "mix")]
    assert any("padding_mode" in c for c in diff.config_differences), diff.config_differences
    assert "different layer classes" not in diff.culprits[0].message  # both are Conv2D
