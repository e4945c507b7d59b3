"""Each framework's settings vocabulary lives in its Framework: pairing.settings names the
settings and reads them through it, so a third framework brings its own in one class."""

from __future__ import annotations

import paddle
import pytest
import torch

import padiff_ir.frameworks as frameworks
from padiff_ir.frameworks import FRAMEWORKS, Framework, FrameworkSpec, get_framework
from padiff_ir.frameworks._base import read_attribute
from padiff_ir.pairing.settings import layer_differences


class LayerNorm:
    """A layer of a third framework, keeping its epsilon under its own name."""

    def __init__(self, tiny: float) -> None:
        self.tiny = tiny


class Dropout:
    def __init__(self, p: float) -> None:
        self.rate = p


TOY_SETTINGS = {
    "layernorm": {"epsilon": read_attribute("tiny")},
    "dropout": {"p": read_attribute("rate")},
}


class ToyFramework(Framework):
    name = "toy"
    layer_packages = (__name__,)
    settings = TOY_SETTINGS

    def dropout_mode(self, module: object) -> str:
        return "downscale_in_infer"  # scales by 1 - p in eval mode, as paddle's mode of that name


@pytest.fixture
def toy(monkeypatch):
    spec = FrameworkSpec("toy", (__name__, "LayerNorm"), f"{__name__}:ToyFramework")
    monkeypatch.setitem(FRAMEWORKS, "toy", spec)
    monkeypatch.setitem(frameworks._FRAMEWORKS, "toy", ToyFramework())
    return get_framework("toy")


def test_a_third_framework_brings_its_vocabulary_in_its_own_class(toy):
    found = layer_differences(
        "ln", torch.nn.LayerNorm(4, eps=1e-5), LayerNorm(1e-6), "torch", "toy"
    )
    assert found == ["ln: LayerNorm epsilon 1e-05 in model A (torch) vs 1e-06 in model B (toy)"]
    assert (
        layer_differences("ln", torch.nn.LayerNorm(4, eps=1e-6), LayerNorm(1e-6), "torch", "toy")
        == []
    )


def test_a_third_frameworks_dropout_mode_is_its_own(toy):
    found = layer_differences("drop", torch.nn.Dropout(0.5), Dropout(0.5), "torch", "toy")
    assert (
        len(found) == 1 and "'downscale_in_infer' in model B scales outputs by (1 - p)" in found[0]
    )


def test_torch_and_paddle_name_one_setting_differently():
    torch_fw, paddle_fw = get_framework("torch"), get_framework("paddle")
    norm_t, norm_p = torch.nn.GroupNorm(2, 4, eps=1e-3), paddle.nn.GroupNorm(2, 4, epsilon=1e-3)
    assert torch_fw.setting(norm_t, "groupnorm", "groups") == 2
    assert paddle_fw.setting(norm_p, "groupnorm", "groups") == 2
    assert torch_fw.setting(norm_t, "groupnorm", "epsilon") == pytest.approx(1e-3)
    assert paddle_fw.setting(norm_p, "groupnorm", "epsilon") == pytest.approx(1e-3)
    assert torch_fw.setting(norm_t, "groupnorm", "no such setting") is None


def test_batch_norm_momentum_in_one_convention():
    torch_fw, paddle_fw = get_framework("torch"), get_framework("paddle")
    assert torch_fw.batch_norm_momentum(torch.nn.BatchNorm2d(3, momentum=0.1)) == pytest.approx(0.1)
    assert paddle_fw.batch_norm_momentum(paddle.nn.BatchNorm2D(3, momentum=0.9)) == pytest.approx(
        0.1
    )
    assert paddle_fw.own_momentum(0.1) == pytest.approx(0.9)
    assert torch_fw.batch_norm_momentum(torch.nn.BatchNorm2d(3, momentum=None)) is None
