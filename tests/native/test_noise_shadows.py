"""``auto_diff(..., tolerance="auto")`` beyond a float32 torch A: B's own float64 shadow where
B leaves A's noise, a paddle A (its optimizer copied: floors for post-step weights and
optimizer states), and 16-bit models judged by the working dtype's noise."""

from __future__ import annotations

import paddle
import pytest
import torch

from benchmarks._bugs import BUGS
from benchmarks._noise_autodiff import TORCH_BUGS, torch_in
from padiff_ir.native import auto_diff
from padiff_ir.zoo import get_pair

_KINDS = {  # paddle optimizer -> the torch optimizer with the same update
    "SGD": lambda p: torch.optim.SGD(p, lr=0.01),
    "Momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    "Adam": lambda p: torch.optim.Adam(p, lr=0.001),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.001, weight_decay=0.01),
}


def _adam(pair) -> list:
    """Adam for both models of a zoo pair, in model order (torch first)."""
    return [
        torch.optim.Adam(pair.torch_model.parameters(), lr=0.001),
        paddle.optimizer.Adam(0.001, parameters=pair.paddle_model.parameters()),
    ]


def _trained(model_a, model_b, inputs, optimizer, steps: int, **options):
    """``auto_diff`` under ``tolerance="auto"`` through ``steps`` steps of ``optimizer``."""
    return auto_diff(
        model_a, model_b, inputs, tolerance="auto", optimizer=optimizer, steps=steps, **options
    )


def _paddle_optimizer(kind: str, model):
    lr = 0.01 if kind in ("SGD", "Momentum") else 0.001
    return getattr(paddle.optimizer, kind)(lr, parameters=model.parameters())


def test_b_rounding_more_than_a_is_measured_on_b_own_shadow():
    # vitpose trained with Adam: an input gradient of B leaves A's rounding at a later step
    # (B's own rounding of small gradients through Adam's first update); B's float64 shadow
    # explains it, no false alarm
    pair = get_pair("vitpose", "tiny")
    result = _trained(pair.torch_model, pair.paddle_model, pair.inputs, _adam(pair), steps=3)
    assert result.ok, result.noise.sentence
    assert result.noise.method == "float64 shadows of A and B"
    assert {e.step for e in result.noise.entries} == {0, 1, 2}


@pytest.mark.parametrize("kind", list(_KINDS))
def test_a_paddle_a_gets_floors_for_weights_and_optimizer_states(kind):
    pair = get_pair("cnn", "tiny")
    optimizer = [
        _paddle_optimizer(kind, pair.paddle_model),
        _KINDS[kind](pair.torch_model.parameters()),
    ]
    result = _trained(pair.paddle_model, pair.torch_model, pair.inputs, optimizer, steps=2)
    assert result.ok, result.noise.sentence
    assert not [n for n in result.notes if "not copied" in n or "did not run" in n]
    judged = {(e.stage, e.step) for e in result.noise.entries}
    assert {("weights", 0), ("weights", 1), ("grads", 1)} <= judged
    if kind != "SGD":
        states = {e.kind for e in result.noise.entries if e.stage == "optimizer_state"}
        assert states, "no floor for the optimizer states"
    assert all(str(p.dtype) == "paddle.float32" for p in pair.paddle_model.parameters())


def test_a_bug_in_a_paddle_a_is_named_under_auto():
    bug = next(b for b in BUGS if b.name == "cnn-relu-as-elu")
    pair = get_pair("cnn", "tiny")
    bug.apply(pair.paddle_model)  # the bug on A's side: B (torch) is the reference here
    optimizer = [
        _paddle_optimizer("Adam", pair.paddle_model),
        _KINDS["Adam"](pair.torch_model.parameters()),
    ]
    result = _trained(
        pair.paddle_model, pair.torch_model, pair.inputs, optimizer, steps=2, auto_init=False
    )
    first = result.first_difference
    assert not result.ok and (first.stage, first.step, first.module_a) == (
        "forward",
        0,
        bug.culprit[1],
    )
    assert result.noise.sentence.startswith(f"diverged: `{bug.culprit[1]}` output error ")


# -- 16-bit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "vit"])
def test_a_bfloat16_port_of_a_float32_model_is_judged_by_bfloat16_rounding(name):
    pair = get_pair(name, "tiny")
    fixed = auto_diff(
        pair.torch_model, torch_in(name, "bfloat16"), pair.inputs, atol=1e-5, rtol=1e-5
    )
    assert not fixed.ok  # bfloat16 is 2**-8 relative: any float32-sized tolerance fails it
    for bug in (False, True):
        model_a, model_b = get_pair(name, "tiny").torch_model, torch_in(name, "bfloat16", bug)
        optimizer = [
            torch.optim.Adam(model_a.parameters(), lr=0.001),
            torch.optim.Adam(model_b.parameters(), lr=0.001),
        ]
        result = auto_diff(
            model_a, model_b, pair.inputs, tolerance="auto", optimizer=optimizer, steps=2
        )
        assert result.noise.dtype == "bfloat16"
        if not bug:
            assert result.ok, result.noise.sentence
            assert {"weights", "optimizer_state"} <= {e.stage for e in result.noise.entries}
        else:
            first = result.first_difference
            assert not result.ok and (first.stage, first.module_a) == (
                "forward",
                TORCH_BUGS[name][0],
            ), result.noise.sentence


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_16_bit_torch_port_of_a_paddle_model_is_judged_by_its_own_rounding(dtype):
    # paddle has no 16-bit CPU kernels for matmul or conv: A's copy in the working dtype
    # cannot run, so B's own rounding (B against its float64 shadow) is the noise
    for bug in (False, True):
        pair = get_pair("mlp", "tiny")
        result = auto_diff(
            pair.paddle_model,
            torch_in("mlp", dtype, bug),
            pair.inputs,
            tolerance="auto",
            auto_init=False,
        )
        assert result.noise.method == "float64 shadow of B" and result.noise.dtype == dtype
        assert result.ok != bug, result.noise.sentence
        if bug:
            assert result.first_difference.module_a == "act1"


def test_two_bfloat16_models_are_judged_by_bfloat16_rounding():
    pair = get_pair("vit", "tiny")
    for bug in (False, True):
        result = auto_diff(
            torch_in("vit", "bfloat16"),
            torch_in("vit", "bfloat16", bug),
            pair.inputs,
            tolerance="auto",
            auto_init=False,
        )
        assert result.noise.dtype == "bfloat16" and result.ok != bug, result.noise.sentence
        if bug:
            assert result.first_difference.module_a == TORCH_BUGS["vit"][0]


# -- cost: A's own run is replayed against its float64 shadow ----------------------------------


def test_only_the_float64_shadow_of_a_runs_besides_the_call(monkeypatch):
    from padiff_ir.frameworks import get_framework

    ops = get_framework("torch")
    made: list[str] = []
    for method in ("cast_copy", "cast_copy_trained"):
        original = getattr(ops, method)

        def spy(*args, _original=original):
            made.append(args[-1])  # the dtype of the copy
            return _original(*args)

        monkeypatch.setattr(ops, method, spy)
    pair = get_pair("cnn", "tiny")
    result = _trained(pair.torch_model, pair.paddle_model, pair.inputs, _adam(pair), steps=2)
    assert result.ok, result.noise.sentence
    assert made == ["float64"]  # no float32 copy of A: the call's own A is replayed
    judged = {(e.stage, e.step) for e in result.noise.entries}
    stages = ("forward", "backward", "grads", "buffers", "loss", "weights", "optimizer_state")
    assert {(stage, step) for stage in stages for step in (0, 1)} <= judged


def test_single_step_own_errors_are_judged_against_the_replayed_noise():
    bug = next(b for b in BUGS if b.name == "cnn-relu-as-elu")
    for injected in (False, True):
        pair = get_pair("cnn", "tiny")
        if injected:
            bug.apply(pair.paddle_model)
        result = auto_diff(
            pair.torch_model,
            pair.paddle_model,
            pair.inputs,
            tolerance="auto",
            single_step=True,
            auto_init=False,
        )
        assert result.ok != injected, result.noise.sentence
        assert {e.stage for e in result.noise.entries} >= {"forward", "backward", "grads"}
        if injected:
            assert [c.module_a for c in result.culprits][:1] == [bug.culprit[0]]
