"""Injected differences are caught at the right stage, step and layer."""

from __future__ import annotations

import paddle
import torch
import torch.nn.functional as F

from padiff_ir.native import auto_diff
from padiff_ir.zoo.data import loss_pair
from tests.native.helpers import TRAINING_TOLERANCE, dataloaders, fresh_pair, hook_counts


def _batch():
    torch_loader, paddle_loader = dataloaders(1)
    paddle_batch, torch_batch = next(iter(paddle_loader)), next(iter(torch_loader))
    return paddle_batch, torch_batch, ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})


def test_learning_rate_difference_is_an_optimizer_difference():
    torch_model, paddle_model, inputs = fresh_pair()
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.01)
    paddle_opt = paddle.optimizer.SGD(learning_rate=0.02, parameters=paddle_model.parameters())
    result = auto_diff(
        torch_model, paddle_model, inputs, optimizer=[torch_opt, paddle_opt], **TRAINING_TOLERANCE
    )
    assert result == False  # noqa: E712
    first = result.first_difference
    assert (first.stage, first.step, first.kind) == ("optimizer", 0, "weight")
    assert "learning rate 0.01" in " ".join(result.config_differences)
    assert "learning rate" in first.message
    step = result.steps[0]
    assert all(e.ok for e in step.forward) and all(g.ok for g in step.grads)


def test_weight_decay_difference_is_an_optimizer_difference():
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1, weight_decay=0.05)
    paddle_opt = paddle.optimizer.SGD(learning_rate=0.1, parameters=paddle_model.parameters())
    result = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        optimizer=[paddle_opt, torch_opt],
        steps=2,
        **TRAINING_TOLERANCE,
    )
    first = result.first_difference
    assert (first.stage, first.step) == ("optimizer", 0)
    assert any("weight decay 0.05" in c for c in result.config_differences)
    assert len(result.steps) == 2  # every step is kept for the report


def test_adam_state_is_compared():
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    torch_opt = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    paddle_opt = paddle.optimizer.Adam(
        learning_rate=1e-3, beta1=0.8, parameters=paddle_model.parameters()
    )
    result = auto_diff(
        torch_model, paddle_model, inputs, optimizer=[torch_opt, paddle_opt], **TRAINING_TOLERANCE
    )
    kinds = {d.kind for d in result.steps[0].optimizer_state}
    assert kinds == {"exp_avg", "exp_avg_sq"}
    assert result.first_difference.stage == "optimizer"
    assert any("betas" in c for c in result.config_differences)
    bad = {d.kind for d in result.steps[0].optimizer_state if not d.ok}
    assert "exp_avg" in bad and "exp_avg_sq" not in bad


def test_loss_reduction_difference_is_a_loss_difference():
    torch_model, paddle_model, _ = fresh_pair()
    paddle_batch, torch_batch, inp = _batch()
    paddle_loss, torch_loss = loss_pair(paddle_batch, torch_batch, paddle_reduction="sum")
    result = auto_diff(
        torch_model,
        paddle_model,
        inp,
        loss_fn=[paddle_loss, torch_loss],
        diff_phase="forward",
        atol=0.0,
        rtol=1e-5,
    )
    first = result.first_difference
    assert (first.stage, first.step) == ("loss", 0)
    assert "model outputs agree" in first.message
    assert all(e.ok for e in result.steps[0].forward)


class _ScaledGradGelu(torch.autograd.Function):
    """Exact GELU forward, a backward 1.5 times too large."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.gelu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            (local,) = torch.autograd.grad(F.gelu(x), x, grad)
        return local * 1.5


def test_backward_only_difference_in_a_custom_autograd_function():
    torch_model, paddle_model, inputs = fresh_pair()
    act = torch_model.backbone.blocks[0].mlp.act
    act.forward = lambda x: _ScaledGradGelu.apply(x)
    result = auto_diff(torch_model, paddle_model, inputs, **TRAINING_TOLERANCE)
    first = result.first_difference
    assert first.stage == "backward"
    assert first.module_a == "backbone.blocks.0.mlp.act" and first.kind == "input_grad"
    assert "backward computes differently" in first.message
    forward = result.steps[0].forward
    assert forward and all(e.ok for e in forward)  # the forward agrees
    # fc2 after the act is fine, fc1 before it gets the wrong gradient
    grads = {g.name_a: g.ok for g in result.steps[0].grads}
    assert grads["backbone.blocks.0.mlp.fc2.weight"]
    assert not grads["backbone.blocks.0.mlp.fc1.weight"]

    single = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        auto_init=False,
        single_step=True,
        diff_phase="backward",
        **TRAINING_TOLERANCE,
    )
    assert single.first_difference.module_a == "backbone.blocks.0.mlp.act"
    # fed A's output gradients, only the act's own backward differs (fc1's incoming gradient is
    # the act's, compared before A's replaces it); every parameter gradient is then right
    failing = {(e.module_a, e.kind) for e in single.steps[0].backward if not e.ok}
    assert failing == {
        ("backbone.blocks.0.mlp.act", "input_grad"),
        ("backbone.blocks.0.mlp.fc1", "output_grad"),
    }
    assert all(g.ok for g in single.steps[0].grads)
    assert hook_counts(torch_model, paddle_model) == (0, 0)


def test_backward_only_difference_from_a_detach_on_one_side():
    torch_model, paddle_model, inputs = fresh_pair()
    act = paddle_model.backbone.blocks[1].mlp.act
    act.forward = lambda x: paddle.nn.functional.gelu(x).detach()
    result = auto_diff(torch_model, paddle_model, inputs, **TRAINING_TOLERANCE)
    first = result.first_difference
    assert (first.stage, first.module_b, first.kind) == (
        "backward",
        "backbone.blocks.1.mlp.act",
        "output_grad",
    )
    assert "detach or stop_gradient in model B" in first.message
    assert all(e.ok for e in result.steps[0].forward)
    missing = [g for g in result.steps[0].grads if not g.ok]
    assert any(g.name_a == "backbone.blocks.1.mlp.fc1.weight" for g in missing)
    assert "no grad in model B" in next(
        g.metrics.reason for g in missing if g.name_a == "backbone.blocks.1.mlp.fc1.weight"
    )


def test_batch_norm_momentum_mismatch():
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    paddle_model.bn1._momentum = 0.5  # torch's 0.1 is paddle's 0.9
    torch_model.train()
    paddle_model.train()
    result = auto_diff(
        torch_model, paddle_model, inputs, diff_phase="forward", **TRAINING_TOLERANCE
    )
    config = " ".join(result.config_differences)
    assert "bn1: BatchNorm momentum 0.1 in model A (torch) is 0.9 in paddle's convention" in config
    assert "has 0.5" in config
    assert "bn2: in training mode torch's BatchNorm updates running_var with the unbiased" in config
    first = result.first_difference
    assert (first.stage, first.module_a, first.kind) == ("forward", "bn1", "buffer")
    assert first.name_a in ("bn1.running_mean", "bn1.running_var")
    assert all(e.ok for e in result.steps[0].forward)  # batch statistics agree
    assert torch_model.training and paddle_model.training
