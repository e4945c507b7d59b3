"""The five flows of the seed document (PaDiff's guide), on the zoo's ViTPose-tiny pair.

Each test follows the seed's code: wrap the models with ``create_model(...).auto_layer_map``,
``assign_weight(paddle_model, torch_model)``, then call ``auto_diff`` with the seed's arguments
(paddle-first ``loss_fn`` / ``optimizer`` pairs, ``inp = ({'x': paddle}, {'x': torch})``) over a
torch DataLoader and a paddle DataLoader of the same synthetic keypoint samples.
"""

from __future__ import annotations

import numpy as np
import paddle
import torch

from padiff_ir.frameworks.wrapper import create_model
from padiff_ir.native import auto_diff
from padiff_ir.pairing.assign import assign_weight
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.zoo.data import loss_pair
from tests.native.helpers import (
    FORWARD_TOLERANCE,
    TRAINING_TOLERANCE,
    dataloaders,
    fresh_pair,
    hook_counts,
)


def _prepared():
    torch_model, paddle_model, inputs = fresh_pair()
    torch_model.eval()
    paddle_model.eval()
    torch_model = create_model(torch_model)
    torch_model.auto_layer_map("base")
    paddle_model = create_model(paddle_model)
    paddle_model.auto_layer_map("raw")
    assign_weight(paddle_model, torch_model)
    return torch_model, paddle_model, inputs


def test_flow_1_forward_per_batch():
    torch_model, paddle_model, _ = _prepared()
    torch_loader, paddle_loader = dataloaders(3)
    results = []
    for _idx, (paddle_batch, torch_batch) in enumerate(zip(paddle_loader, torch_loader)):
        inp = ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})
        result = auto_diff(
            torch_model,
            paddle_model,
            inp,
            auto_init=False,
            single_step=False,
            diff_phase="forward",
            **FORWARD_TOLERANCE,
        )
        results.append(result)
        if result == False:  # noqa: E712 - the seed's idiom
            break
    assert len(results) == 3 and all(results)
    step = results[0].steps[0]
    assert step.inputs[0].name == "x" and step.inputs[0].metrics.max_abs == 0.0
    assert len(step.forward) >= 30 and step.backward == [] and step.grads == []
    assert step.initial_weights and all(w.ok for w in step.initial_weights)
    # the next calls on the same models trust the weights the previous call found equal
    assert not results[1].steps[0].initial_weights
    assert any("not compared again" in note for note in results[1].notes)
    assert hook_counts(torch_model.model, paddle_model.model) == (0, 0)


def test_flow_2_forward_with_loss():
    torch_model, paddle_model, _ = _prepared()
    layer_map = LayerMap()
    torch_loader, paddle_loader = dataloaders(3)
    losses = []
    for paddle_batch, torch_batch in zip(paddle_loader, torch_loader):
        paddle_loss, torch_loss = loss_pair(paddle_batch, torch_batch)
        inp = ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})
        result = auto_diff(
            torch_model,
            paddle_model,
            inp,
            auto_init=False,
            layer_map=layer_map,
            single_step=False,
            diff_phase="forward",
            loss_fn=[paddle_loss, torch_loss],
            **FORWARD_TOLERANCE,
        )
        assert result == True  # noqa: E712
        losses.append(result.steps[0].loss_a)
        assert np.isclose(result.steps[0].loss_a, result.steps[0].loss_b, rtol=1e-5)
        assert any("loss_fn was given as [paddle, torch]" in n for n in result.notes)
    assert len(set(losses)) == 3  # a different batch each time


def test_flow_3_multi_step_optimizer_over_dataloaders():
    torch_model, paddle_model, _ = _prepared()
    torch_opt = torch.optim.SGD(torch_model.model.parameters(), lr=0.01, momentum=0.9)
    paddle_opt = paddle.optimizer.Momentum(
        learning_rate=0.01, momentum=0.9, parameters=paddle_model.model.parameters()
    )
    before = torch_model.model.head.final_layer.weight.detach().clone()
    torch_loader, paddle_loader = dataloaders(3)
    results = []
    for paddle_batch, torch_batch in zip(paddle_loader, torch_loader):
        paddle_loss, torch_loss = loss_pair(paddle_batch, torch_batch)
        inp = ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})
        result = auto_diff(
            torch_model,
            paddle_model,
            inp,
            auto_init=False,
            single_step=False,
            diff_phase="both",
            loss_fn=[paddle_loss, torch_loss],
            optimizer=[paddle_opt, torch_opt],
            **TRAINING_TOLERANCE,
        )
        results.append(result)
        if result == False:  # noqa: E712
            break
    assert len(results) == 3 and all(results), results[-1]
    step = results[-1].steps[0]
    assert step.grads and step.weights and step.backward
    states = {d.kind for d in step.optimizer_state}
    assert states == {"momentum_buffer"}
    after = torch_model.model.head.final_layer.weight.detach()
    assert not torch.equal(before, after)  # the optimizers did step
    np.testing.assert_allclose(
        paddle_model.model.head.final_layer.weight.numpy(), after.numpy(), rtol=1e-4, atol=1e-6
    )
    assert torch_model.model.head.final_layer.weight.grad is None  # cleared by the step


def test_flow_4_ten_steps_on_one_input():
    torch_model, paddle_model, _ = _prepared()
    torch_loader, paddle_loader = dataloaders(1)
    paddle_batch, torch_batch = next(iter(paddle_loader)), next(iter(torch_loader))
    inp = ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})
    paddle_loss, torch_loss = loss_pair(paddle_batch, torch_batch)
    torch_opt = torch.optim.SGD(torch_model.model.parameters(), lr=0.05)
    paddle_opt = paddle.optimizer.SGD(
        learning_rate=0.05, parameters=paddle_model.model.parameters()
    )
    result = auto_diff(
        torch_model,
        paddle_model,
        inp,
        auto_init=False,
        single_step=False,
        diff_phase="both",
        loss_fn=[paddle_loss, torch_loss],
        optimizer=[paddle_opt, torch_opt],
        steps=10,
        **TRAINING_TOLERANCE,
    )
    assert result, result
    assert len(result.steps) == 10
    losses = [loss_a for loss_a, _ in result.losses]
    assert losses[-1] < losses[0]  # it trains
    assert all(s.weights and s.grads for s in result.steps)
    restored = type(result).from_dict(result.to_dict())
    assert restored == result and restored.losses == result.losses


def test_flow_5_single_step_both_phases():
    torch_model, paddle_model, _ = _prepared()
    torch_loader, paddle_loader = dataloaders(1)
    paddle_batch, torch_batch = next(iter(paddle_loader)), next(iter(torch_loader))
    inp = ({"x": paddle_batch["image"]}, {"x": torch_batch["img"]})
    result = auto_diff(
        paddle_model,
        torch_model,
        inp,
        auto_init=False,
        single_step=True,
        diff_phase="both",
        **TRAINING_TOLERANCE,
    )
    assert result == True, result  # noqa: E712
    assert result.model_a["framework"] == "paddle"
    step = result.steps[0]
    assert step.mode == "single_step"
    kinds = {entry.kind for entry in step.backward}
    assert kinds == {"output_grad", "input_grad"}
    assert step.forward and step.grads
    # each layer's own error: far below the accumulated error of a normal run
    worst = max(e.metrics.max_abs for e in step.forward)
    assert worst < 1e-4
    assert hook_counts(torch_model.model, paddle_model.model) == (0, 0)
