"""Which framework an object shows (padiff_ir.frameworks.detect), on real torch and paddle
objects."""

from __future__ import annotations

import doctest

import numpy as np
import paddle
import pytest
import torch
import torch.nn.functional as F

from padiff_ir.errors import ModelTypeError
from padiff_ir.frameworks import (
    detect,
    detect_framework,
    framework_of_callable,
    framework_of_type,
    framework_of_value,
)


def test_doctests():
    failures, tried = doctest.testmod(detect)
    assert tried > 0 and failures == 0


def test_detect_framework_of_models():
    assert detect_framework(torch.nn.Linear(2, 3)) == "torch"
    assert detect_framework(paddle.nn.Linear(2, 3)) == "paddle"
    assert detect_framework("m.onnx") == "onnx"
    with pytest.raises(ModelTypeError):
        detect_framework(torch.zeros(2))


def test_tensors_and_types():
    assert framework_of_type(torch.zeros(2)) == "torch"
    assert framework_of_type(paddle.zeros([2])) == "paddle"
    assert framework_of_type(np.zeros(2)) is None
    assert framework_of_value(torch.zeros(2)) == "torch"
    assert framework_of_value(paddle.zeros([2])) == "paddle"
    assert framework_of_value(np.zeros(2)) is None
    assert framework_of_value(3.0) is None


def test_modules_and_subclasses():
    class Net(torch.nn.Module):  # defined here: its own type's module is this test's
        pass

    class Layer(paddle.nn.Layer):
        pass

    assert framework_of_type(Net()) is None
    assert framework_of_value(Net()) == "torch"
    assert framework_of_value(Layer()) == "paddle"
    assert framework_of_value(torch.nn.MSELoss()) == "torch"
    assert framework_of_value(paddle.nn.MSELoss()) == "paddle"
    assert framework_of_value(torch) == "torch"
    assert framework_of_value(np) is None


def test_optimizers():
    model_t, model_p = torch.nn.Linear(2, 2), paddle.nn.Linear(2, 2)
    opt_t = torch.optim.SGD(model_t.parameters(), lr=0.1)
    opt_p = paddle.optimizer.SGD(learning_rate=0.1, parameters=model_p.parameters())
    assert framework_of_value(opt_t) == "torch"
    assert framework_of_value(opt_p) == "paddle"
    assert framework_of_callable(opt_t.step) == "torch"
    assert framework_of_callable(opt_p.step) == "paddle"


def test_containers_show_what_their_items_show():
    assert framework_of_value({"x": torch.zeros(1), "n": 3}) == "torch"
    assert framework_of_value([paddle.zeros([1]), None]) == "paddle"
    assert framework_of_value((torch.zeros(1), paddle.zeros([1]))) is None  # both: ambiguous
    assert framework_of_value([]) is None
    assert framework_of_value([[[torch.zeros(1)]]]) is None  # deeper than two levels


def test_loss_functions():
    target_t, target_p = torch.zeros(2), paddle.zeros([2])

    def closes_over_torch(out):
        return F.mse_loss(out, target_t)

    def closes_over_paddle(out):
        return ((out - target_p) ** 2).mean()

    def names_torch(out):
        return torch.mean(out)

    def names_nothing(out):
        return out.mean()

    for fn, kind in (
        (closes_over_torch, "torch"),
        (closes_over_paddle, "paddle"),
        (names_torch, "torch"),
        (names_nothing, None),
        (lambda out: torch.nn.functional.l1_loss(out, target_t), "torch"),
        (lambda out: paddle.mean(out), "paddle"),
        (torch.nn.MSELoss().forward, "torch"),
        (paddle.nn.MSELoss().forward, "paddle"),
    ):
        assert framework_of_callable(fn) == kind, fn
        assert framework_of_value(fn) == kind, fn


def test_a_function_showing_both_shows_none():
    target_t, target_p = torch.zeros(2), paddle.zeros([2])

    def both(out):
        return target_t, target_p

    assert framework_of_callable(both) is None
