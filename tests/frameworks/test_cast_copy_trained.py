"""``Framework.cast_copy_trained`` for paddle: a float64 copy of a layer with an optimizer of
the same class and settings stepping it (learning-rate scheduler, gradient clip, weight
decay, accumulators made by earlier steps), so the copy trains as the original does."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from padiff_ir.frameworks import get_framework

_X = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")


def _trained(kind: str, **settings):
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.Tanh(), paddle.nn.Linear(3, 2))
    schedule = paddle.optimizer.lr.StepDecay(0.05, step_size=1, gamma=0.5)
    optimizer = getattr(paddle.optimizer, kind)(
        learning_rate=schedule,
        parameters=model.parameters(),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0),
        **settings,
    )
    _step(model, optimizer)  # the optimizer has made its accumulators before the copy
    return model, optimizer


def _step(model, optimizer) -> None:
    dtype = model[0].weight.dtype
    (model(paddle.to_tensor(_X).astype(dtype)) ** 2).mean().backward()
    optimizer.step()
    optimizer.clear_grad()


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("SGD", {"weight_decay": 0.01}),
        ("Momentum", {"momentum": 0.8, "weight_decay": 0.01, "use_nesterov": True}),
        ("Adam", {"beta1": 0.8, "beta2": 0.99}),
        ("AdamW", {"weight_decay": 0.1, "apply_decay_param_fun": lambda name: "w_" in name}),
    ],
)
def test_a_float64_copy_trains_as_the_original(kind, settings):
    ops = get_framework("paddle")
    model, optimizer = _trained(kind, **settings)
    copy, copied = ops.cast_copy_trained(model, optimizer, "float64")
    assert type(copied) is type(optimizer) and copied is not optimizer
    assert all(str(p.dtype) == "paddle.float64" for p in copy.parameters())
    assert ops.optimizer_config(copied) == ops.optimizer_config(optimizer)
    states = ops.optimizer_state(copied, ops.named_parameters(copy))
    if kind != "SGD":  # moments / velocities carried over, in the copy's dtype
        assert states and all(
            str(t.dtype) == "paddle.float64" for s in states.values() for t in s.values()
        )
    start = model[0].weight.numpy().copy()
    for _ in range(2):
        _step(model, optimizer)
        _step(copy, copied)
    for original, cast in zip(model.parameters(), copy.parameters(), strict=True):
        np.testing.assert_allclose(cast.numpy(), original.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(model[0].weight.numpy() - start).max() > 1e-3  # the steps moved the weights


def test_the_original_is_left_as_it_was():
    ops = get_framework("paddle")
    model, optimizer = _trained("Adam")
    before = [p.numpy().copy() for p in model.parameters()]
    accumulators = {k: dict(v) for k, v in optimizer._accumulators.items()}
    ops.cast_copy_trained(model, optimizer, "float64")
    assert all(np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))
    assert {k: dict(v) for k, v in optimizer._accumulators.items()} == accumulators
    assert all(str(p.dtype) == "paddle.float32" for p in model.parameters())
