"""Verdicts that must be right: NaN/Inf compared by position, every compare mode, dict outputs
paired by name, the layer map honoured, bugs found on either side, assert_match."""

from __future__ import annotations

import numpy as np
import pytest

import padiff_ir
from padiff_ir import LayerMap, OptionError
from padiff_ir.metrics import Tolerance, compare_arrays
from padiff_ir.testing import assert_match
from tests.reliability import models

NAN, INF = float("nan"), float("inf")
MODES = ("strict", "mean", "abs_mean")

# -- compare_arrays: NaN and Inf by position ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "values",
    [
        [NAN],
        [INF],
        [-INF],
        [NAN, 1.0, INF, -INF],
        [[NAN, 2.0], [3.0, NAN]],
    ],
    ids=["nan", "inf", "-inf", "mixed", "2d"],
)
def test_identical_non_finite_values_agree(mode, values):
    a = np.array(values, dtype=np.float32)
    metrics = compare_arrays(a, a.copy(), Tolerance(mode=mode))
    assert metrics.ok, metrics.reason
    assert metrics.reason == ""
    assert metrics.max_abs == 0.0
    assert metrics.nan_a == metrics.nan_b == int(np.isnan(a).sum())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("a", "b", "where"),
    [
        ([NAN, 1.0], [0.5, 1.0], "[0]: nan vs 0.5"),
        ([1.0, 2.0], [1.0, NAN], "[1]: 2.0 vs nan"),
        ([INF, 1.0], [-INF, 1.0], "[0]: inf vs -inf"),
        ([NAN, 1.0], [1.0, NAN], "[0]: nan vs 1.0"),
        ([[1.0, INF]], [[1.0, NAN]], "[0, 1]: inf vs nan"),
    ],
    ids=["nan-vs-finite", "finite-vs-nan", "inf-sign", "moved-nan", "inf-vs-nan"],
)
def test_non_finite_values_that_differ_are_a_clear_divergence(mode, a, b, where):
    metrics = compare_arrays(np.array(a), np.array(b), Tolerance(mode=mode))
    assert not metrics.ok
    assert metrics.reason.startswith("non-finite values: NaN/Inf differ at")
    assert f"(first at {where})" in metrics.reason
    assert metrics.max_abs == INF


def test_finite_statistics_ignore_agreeing_non_finite_positions():
    metrics = compare_arrays(
        np.array([NAN, 1.0, 2.0]), np.array([NAN, 1.0, 2.5]), Tolerance(atol=1e-3, rtol=0)
    )
    assert not metrics.ok
    assert metrics.max_abs == pytest.approx(0.5)
    assert metrics.reason.startswith("max abs 0.5")
    # the means are over the positions where both sides are finite
    assert metrics.mean_a == pytest.approx(1.5) and metrics.mean_b == pytest.approx(1.75)


def test_match_of_identical_models_that_make_nan_is_aligned(guard):
    torch_model, paddle_model = models.TorchLog(), models.PaddleLog()
    guard.watch(torch_model, paddle_model)
    result = padiff_ir.match(torch_model, paddle_model, models.inputs(4))
    assert result, str(result)
    assert result.outputs[0].metrics.nan_a > 0
    assert result.culprits == []
    assert any("non-finite values appear in A" in note for note in result.notes)


def test_match_of_nan_inputs_to_identical_models_is_aligned(guard):
    torch_model, paddle_model = models.TorchLog(), models.PaddleLog()
    guard.watch(torch_model, paddle_model)
    inputs = models.inputs(4)
    inputs[1, 2] = np.nan
    result = padiff_ir.match(torch_model, paddle_model, inputs)
    assert result, str(result)
    assert result.outputs[0].metrics.nan_a == result.outputs[0].metrics.nan_b > 0


def test_frameworks_that_treat_nan_differently_diverge_with_a_clear_reason(mlp, guard):
    """paddle's eager ReLU turns a NaN input into a number, torch's keeps it NaN."""
    guard.watch(mlp.torch_model, mlp.paddle_model)
    inputs = {name: value.copy() for name, value in mlp.inputs.items()}
    inputs["x"][0, 0] = np.nan
    result = padiff_ir.match(mlp.torch_model, mlp.paddle_model, inputs)
    assert not result
    assert result.first_divergence.metrics.reason.startswith("non-finite values: NaN/Inf differ at")


# -- compare modes, bugs on either side ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_identical_models_are_aligned_in_every_mode(mlp, guard, mode):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    result = padiff_ir.match(
        mlp.torch_model, mlp.paddle_model, mlp.inputs, compare_mode=mode, localize=False
    )
    assert result, str(result)
    assert result.tolerance.mode == mode


@pytest.mark.parametrize("side", ["a", "b"])
def test_a_bug_on_either_side_is_found(guard, side):
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp")
    if side == "a":
        with __import__("torch").no_grad():
            pair.torch_model.fc2.bias.add_(0.5)
    else:
        pair.paddle_model.fc2.bias.set_value(pair.paddle_model.fc2.bias.numpy() + 0.5)
    guard.watch(pair.torch_model, pair.paddle_model)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert not result
    assert [c.module_a for c in result.culprits] == ["fc2"]
    assert result.culprits[0].param_diffs


def test_mean_mode_tolerates_what_strict_mode_does_not(guard):
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp")
    weight = pair.paddle_model.fc1.weight.numpy()
    pair.paddle_model.fc1.weight.set_value(weight[:, ::-1].copy())  # same values, other order
    strict = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, localize=False)
    assert not strict


# -- outputs with names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "paddle_class",
    [models.PaddleDictNet, models.PaddleDictNetSwapped],
    ids=["same order", "other order"],
)
def test_dict_outputs_are_paired_by_name(guard, paddle_class):
    torch_model, paddle_model = models.TorchDictNet(), paddle_class()
    guard.watch(torch_model, paddle_model)
    result = padiff_ir.match(torch_model, paddle_model, models.inputs())
    assert result, str(result)
    assert [p.evidence for p in result.outputs] == [("output-name",)] * 2
    assert [p.metrics.shape_a for p in result.outputs] == [(2, 3), (2, 8)]
    assert [p.metrics.shape_b for p in result.outputs] == [(2, 3), (2, 8)]
    assert all(side.ok for side in result.export_fidelity.values() if side.checked)


def test_a_bug_in_one_named_output_is_reported_on_that_output(guard):
    torch_model, paddle_model = models.TorchDictNet(), models.PaddleDictNetSwapped()
    paddle_model.head.bias.set_value(paddle_model.head.bias.numpy() + 1.0)
    result = padiff_ir.match(torch_model, paddle_model, models.inputs())
    assert not result
    assert [p.ok for p in result.outputs] == [False, True]  # logits fail, hidden agrees
    assert [c.module_a for c in result.culprits] == ["head"]


def test_exported_paddle_dict_outputs_follow_the_eager_order(guard):
    exported = padiff_ir.export(models.PaddleDictNetSwapped(), models.inputs())
    assert exported.output_keys == ("hidden", "logits")
    assert [o.type.tensor_type.shape.dim[1].dim_value for o in exported.model.graph.output] == [
        8,
        3,
    ]


# -- the layer map ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["LayerMap", "dict", "objects", "file"])
def test_match_honours_a_layer_map(mlp, guard, tmp_path, kind):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    if kind == "LayerMap":
        layer_map = LayerMap({"fc1": "fc1", "fc2": "fc2"})
    elif kind == "dict":
        layer_map = {"fc1": "fc1", "fc2": "fc2"}
    elif kind == "objects":
        layer_map = LayerMap()
        layer_map.map = {
            mlp.paddle_model.fc1: mlp.torch_model.fc1,
            mlp.paddle_model.fc2: mlp.torch_model.fc2,
        }
    else:
        LayerMap({"fc1": "fc1", "fc2": "fc2"}).save(tmp_path / "map.json")
        layer_map = LayerMap.load(tmp_path / "map.json")
    result = padiff_ir.match(mlp.torch_model, mlp.paddle_model, mlp.inputs, layer_map=layer_map)
    assert result, str(result)
    pinned = {(p.a, p.b) for p in result.layer_map if "pinned" in p.evidence}
    assert {("fc1", "fc1"), ("fc2", "fc2")} <= pinned


def test_a_wrong_pin_is_honoured_and_shows(mlp, guard):
    result = padiff_ir.match(
        mlp.torch_model, mlp.paddle_model, mlp.inputs, layer_map={"fc1": "fc2"}, localize=False
    )
    pairs = {(p.a, p.b) for p in result.layer_map}
    assert ("fc1", "fc2") in pairs


# -- per-tensor tolerances -------------------------------------------------------------------


def test_tolerances_must_name_tensors_of_a(mlp, guard):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(
        OptionError,
        match="tolerances names tensors model A does not have: linear_9; near names: linear",
    ) as info:
        padiff_ir.match(
            mlp.torch_model, mlp.paddle_model, mlp.inputs, tolerances={"linear_9": {"atol": 1.0}}
        )
    assert info.value.option == "tolerances"


def test_tolerances_apply_to_the_tensor_they_name(guard):
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp")
    pair.paddle_model.fc3.bias.set_value(pair.paddle_model.fc3.bias.numpy() + 1e-3)
    strict = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, localize=False)
    failing = sorted({p.a[0] for p in strict.pairs if not p.ok})
    assert failing
    loose = padiff_ir.match(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        localize=False,
        tolerances={name: {"atol": 1e-2} for name in failing},
    )
    assert all(p.ok for p in loose.pairs)
    assert set(loose.overrides) == set(failing)


# -- assert_match ----------------------------------------------------------------------------


def test_assert_match_returns_the_result_when_aligned(mlp, guard):
    result = assert_match(mlp.torch_model, mlp.paddle_model, mlp.inputs, atol=1e-4)
    assert result and result.tolerance.atol == 1e-4


def test_assert_match_fails_with_the_full_summary(guard):
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp")
    pair.paddle_model.fc2.bias.set_value(pair.paddle_model.fc2.bias.numpy() + 0.5)
    with pytest.raises(AssertionError) as info:
        assert_match(pair.torch_model, pair.paddle_model, pair.inputs)
    message = str(info.value)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert message.startswith("the models diverge:\n")
    assert _untimed(message.split("\n", 1)[1]) == _untimed(str(result))
    assert "DIVERGED" in message and "fc2" in message
    assert result.culprits[0].explanation


def _untimed(summary: str) -> list[str]:
    """The summary without its stage times (a line that wraps at the terminal's width, and
    a later call of the same models skips stages)."""
    lines, timing = [], False
    for line in summary.splitlines():
        timing = line.startswith("time ") or (timing and line.startswith(" "))
        if not timing:
            lines.append(line)
    return lines


def test_assert_match_passes_errors_through(mlp, guard):
    with pytest.raises(OptionError, match="atol"):
        assert_match(mlp.torch_model, mlp.paddle_model, mlp.inputs, atol=-1)


def test_assert_match_names_an_unknown_option(mlp, guard):
    # (``tolerance`` is an option now: it takes a Tolerance, issue 21)
    with pytest.raises(OptionError, match="unknown options \\['tol'\\]"):
        assert_match(mlp.torch_model, mlp.paddle_model, mlp.inputs, tol=1e-3)
