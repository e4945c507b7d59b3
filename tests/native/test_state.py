"""auto_diff leaves models as they were, takes PaDiff's argument orders, and reports as data."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from padiff_ir.frameworks.wrapper import create_model
from padiff_ir.native import AutoDiffError, DiffResult, auto_diff
from tests.native.helpers import (
    FORWARD_TOLERANCE,
    TRAINING_TOLERANCE,
    fresh_pair,
    hook_counts,
    training_flags,
)


class _Boom(paddle.nn.Layer):
    def forward(self, x):
        raise RuntimeError("boom")


def test_hooks_removed_after_the_call_and_after_an_exception():
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    torch_model.train()
    paddle_model.eval()
    flags = training_flags(torch_model, paddle_model)
    torch_rng, paddle_rng = torch.random.get_rng_state(), paddle.get_rng_state("cpu")[0]
    assert hook_counts(torch_model, paddle_model) == (0, 0)
    auto_diff(torch_model, paddle_model, inputs, **TRAINING_TOLERANCE)
    assert hook_counts(torch_model, paddle_model) == (0, 0)
    assert training_flags(torch_model, paddle_model) == flags
    assert torch.equal(torch.random.get_rng_state(), torch_rng)
    assert np.array_equal(paddle.get_rng_state("cpu")[0].current_seed(), paddle_rng.current_seed())
    original = paddle_model.relu2.forward
    paddle_model.relu2.forward = _Boom().forward  # fails in the middle of B's forward
    with pytest.raises(AutoDiffError, match="running model B .paddle Cnn. failed: RuntimeError"):
        auto_diff(torch_model, paddle_model, inputs, auto_init=False, **TRAINING_TOLERANCE)
    paddle_model.relu2.forward = original
    assert hook_counts(torch_model, paddle_model) == (0, 0)
    assert training_flags(torch_model, paddle_model) == flags
    assert torch_model.fc.weight.grad is None and paddle_model.fc.weight.grad is None


def test_weights_unchanged_without_optimizer_and_gradients_cleared():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    before = {k: v.clone() for k, v in torch_model.state_dict().items()}
    result = auto_diff(torch_model, paddle_model, inputs, auto_init=False, **TRAINING_TOLERANCE)
    assert result and result.steps[0].grads and not result.steps[0].weights
    assert all(torch.equal(before[k], v) for k, v in torch_model.state_dict().items())
    assert all(p.grad is None for p in torch_model.parameters())
    assert all(p.grad is None for p in paddle_model.parameters())


def test_paddle_first_pairs_are_put_in_model_order():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    x = inputs["x"]
    inp = ({"x": paddle.to_tensor(x)}, {"x": torch.from_numpy(x)})  # the seed's order
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1)
    paddle_opt = paddle.optimizer.SGD(learning_rate=0.1, parameters=paddle_model.parameters())
    target_t, target_p = torch.zeros(4, 10), paddle.zeros([4, 10])
    paddle_loss = lambda out: ((out - target_p) ** 2).mean()  # noqa: E731
    torch_loss = lambda out: ((out - target_t) ** 2).mean()  # noqa: E731
    result = auto_diff(
        create_model(torch_model),
        create_model(paddle_model),
        inp,
        loss_fn=[paddle_loss, torch_loss],
        optimizer=[paddle_opt, torch_opt],
        steps=3,
        **TRAINING_TOLERANCE,
    )
    assert result, result
    assert len(result.steps) == 3 and result.steps[2].loss_a < result.steps[0].loss_a
    notes = " ".join(result.notes)
    assert "loss_fn was given as [paddle, torch]" in notes
    assert "optimizer was given as [paddle, torch]" in notes


def test_optimizer_step_functions_and_factories():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9)

    def torch_step():
        torch_opt.step()
        torch_opt.zero_grad()

    result = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        steps=2,
        optimizer=[
            torch_step,
            lambda: paddle.optimizer.Momentum(
                learning_rate=0.1, momentum=0.9, parameters=paddle_model.parameters()
            ),
        ],
        **TRAINING_TOLERANCE,
    )
    assert result, result
    assert {d.kind for d in result.steps[1].optimizer_state} == {"momentum_buffer"}


def test_a_loss_failing_on_the_other_frameworks_output_names_the_fix():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    paddle_style = lambda out: out.clip(min=0).mean()  # noqa: E731 - works on both
    torch_style = lambda out: out.clamp_min(0).mean()  # noqa: E731 - torch only
    with pytest.raises(AutoDiffError) as info:
        auto_diff(
            torch_model,
            paddle_model,
            inputs,
            loss_fn=[paddle_style, torch_style],
            diff_phase="forward",
        )
    message = str(info.value)
    assert "loss_fn[1]" in message and "model B (paddle Mlp)" in message
    assert "is the torch loss" in message and "swap the two" in message
    assert hook_counts(torch_model, paddle_model) == (0, 0)
    result = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        loss_fn=[torch_style, paddle_style],
        diff_phase="forward",
        **FORWARD_TOLERANCE,
    )
    assert result and result.steps[0].loss is not None


def test_a_parameter_free_model_works():
    torch_model = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.ReLU(), torch.nn.Sigmoid())
    paddle_model = paddle.nn.Sequential(paddle.nn.Tanh(), paddle.nn.ReLU(), paddle.nn.Sigmoid())
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    result = auto_diff(torch_model, paddle_model, [x], **TRAINING_TOLERANCE)
    assert result, result
    step = result.steps[0]
    assert len(step.forward) == 4 and step.grads == []
    assert {e.kind for e in step.backward} == {"output_grad", "input_grad"}


def test_inputs_that_differ_are_reported_before_any_layer():
    torch_model, paddle_model, inputs = fresh_pair("mlp")
    x = inputs["x"]
    inp = ({"x": paddle.to_tensor(x + 1.0)}, {"x": torch.from_numpy(x)})
    result = auto_diff(torch_model, paddle_model, inp, **TRAINING_TOLERANCE)
    first = result.first_difference
    assert (first.stage, first.name_a) == ("input", "x")
    assert "data pipelines disagree" in first.message
    assert result.steps[0].forward == []  # the models were not run


def _dropout_pair():
    torch_model = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
    )
    paddle_model = paddle.nn.Sequential(
        paddle.nn.Linear(6, 8), paddle.nn.Dropout(0.3), paddle.nn.Linear(8, 2)
    )
    torch_model.train()
    paddle_model.train()
    return torch_model, paddle_model, np.ones((4, 6), np.float32)


def test_random_layers_are_listed_and_switched_off():
    torch_model, paddle_model, x = _dropout_pair()
    result = auto_diff(torch_model, paddle_model, [x], **TRAINING_TOLERANCE)
    assert result, result
    assert len(result.random_layers) == 2
    assert all("eval mode for the comparison" in text for text in result.random_layers)
    assert any("Dropout p 0.5 in model A (torch) vs 0.3" in c for c in result.config_differences)
    assert torch_model[1].training and paddle_model[1].training
    kept = auto_diff(
        torch_model,
        paddle_model,
        [x],
        auto_init=False,
        disable_random_layers=False,
        **TRAINING_TOLERANCE,
    )
    assert kept.first_difference.stage == "forward"
    assert kept.first_difference.module_a == "1"


def test_black_and_white_lists():
    torch_model, paddle_model, inputs = fresh_pair()
    black = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        diff_phase="forward",
        blacklist=["backbone.blocks"],
        **FORWARD_TOLERANCE,
    )
    assert black and not any(p.a.startswith("backbone.blocks") for p in black.layer_map)
    white = auto_diff(
        torch_model,
        paddle_model,
        inputs,
        diff_phase="forward",
        whitelist=["TopdownHeatmapSimpleHead"],
        **FORWARD_TOLERANCE,
    )
    assert white and white.layer_map and all(p.a.startswith("head") for p in white.layer_map)


def test_two_torch_models():
    first = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU())
    second = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.GELU(approximate="tanh"))
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    result = auto_diff(first, second, [x], compare_mode="strict", atol=1e-7, rtol=1e-6)
    assert result.first_difference.module_a == "1"
    assert any(
        "approximate 'none' in model A (torch) vs 'tanh'" in c for c in result.config_differences
    )


def test_result_is_data(tmp_path):
    torch_model, paddle_model, inputs = fresh_pair("cnn")
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1)
    paddle_opt = paddle.optimizer.SGD(learning_rate=0.2, parameters=paddle_model.parameters())
    result = auto_diff(
        torch_model, paddle_model, inputs, optimizer=[torch_opt, paddle_opt], **TRAINING_TOLERANCE
    )
    assert not result and result == False  # noqa: E712
    path = tmp_path / "result.json"
    result.to_json(path)
    loaded = DiffResult.load(path)
    assert loaded == result and str(loaded) == str(result)
    text = str(result)
    assert "DIVERGED" in text and "stage optimizer" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert repr(result).startswith("DiffResult(diverged")


class _InPlaceTorch(torch.nn.Module):
    """``fc1 -> ReLU(inplace=True) -> fc2``, using the written tensor, not the return value."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.act = torch.nn.ReLU(inplace=True)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        self.act(h)
        return self.fc2(h)


class _Paddle(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = paddle.nn.Linear(4, 8)
        self.act = paddle.nn.ReLU()
        self.fc2 = paddle.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


@pytest.mark.parametrize("single_step", [False, True])
@pytest.mark.parametrize("torch_first", [True, False])
def test_in_place_layers(single_step, torch_first):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    models = (_InPlaceTorch(), _Paddle()) if torch_first else (_Paddle(), _InPlaceTorch())
    result = auto_diff(*models, [x], atol=1e-7, rtol=1e-5, single_step=single_step)
    assert result, result
    assert len(result.steps[0].forward) == 4 and result.steps[0].backward
