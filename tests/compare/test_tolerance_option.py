"""``Tolerance`` is accepted wherever a tolerance is: ``match``, ``Comparison``, per-tensor
``tolerances``, ``auto_diff``; the separate ``atol``/``rtol``/``compare_mode`` still work, and
both forms at once, disagreeing, are refused by name."""

from __future__ import annotations

import pytest

import padiff_ir
from padiff_ir import Comparison, Tolerance
from padiff_ir.compare.options import MatchOptions
from padiff_ir.errors import OptionError
from padiff_ir.zoo import get_pair


@pytest.fixture(scope="module")
def mlp():
    return get_pair("mlp")


def test_match_and_comparison_take_a_tolerance(mlp):
    loose = Tolerance(atol=1e-3, rtol=0.0, mode="abs_mean")
    result = padiff_ir.match(mlp.torch_model, mlp.paddle_model, mlp.inputs, tolerance=loose)
    assert result and result.tolerance == loose
    same = padiff_ir.match(
        mlp.torch_model, mlp.paddle_model, mlp.inputs, atol=1e-3, rtol=0.0, compare_mode="abs_mean"
    )
    assert same.tolerance == loose
    with Comparison(mlp.torch_model, mlp.paddle_model, mlp.inputs, tolerance=loose) as comparison:
        assert comparison.check(mlp.inputs).tolerance == loose


def test_per_tensor_tolerances_take_a_tolerance():
    options = MatchOptions(tolerances={"logits": Tolerance(atol=1e-2, mode="mean")})
    assert options.overrides["logits"] == Tolerance(atol=1e-2, rtol=1e-5, mode="mean")


def test_both_forms_disagreeing_are_refused_by_name(mlp):
    with pytest.raises(OptionError, match="atol"):
        padiff_ir.match(
            mlp.torch_model, mlp.paddle_model, mlp.inputs, atol=1e-2, tolerance=Tolerance(1e-3)
        )
    with pytest.raises(OptionError, match="compare_mode"):
        padiff_ir.auto_diff(
            mlp.torch_model, mlp.paddle_model, mlp.inputs, compare_mode="strict",
            tolerance=Tolerance(mode="mean"),
        )  # fmt: skip


def test_auto_diff_takes_a_tolerance(mlp):
    tight = Tolerance(atol=1e-6, rtol=1e-5, mode="strict")
    result = padiff_ir.auto_diff(mlp.torch_model, mlp.paddle_model, mlp.inputs, tolerance=tight)
    assert result and result.tolerance == tight


def test_the_tolerance_is_measured_unless_a_fixed_one_is_passed(mlp):
    """The default is ``tolerance="auto"`` (issue 22); ``atol``, ``rtol``, ``compare_mode``, a
    ``Tolerance`` or ``"fixed"`` give the fixed bounds, as PaDiff's flows expect."""
    models = (mlp.torch_model, mlp.paddle_model, mlp.inputs)
    measured = padiff_ir.match(*models)
    assert measured and measured.noise is not None and measured.noise.method == "float64 shadow"
    assert "tolerance: auto, measured noise" in str(measured)
    for fixed in ({"atol": 1e-4}, {"compare_mode": "strict"}, {"tolerance": "fixed"}):
        result = padiff_ir.match(*models, **fixed)
        assert result and result.noise is None, fixed
        assert result.tolerance.atol == fixed.get("atol", 1e-5)
    auto_with_bounds = padiff_ir.match(*models, tolerance="auto", atol=1e-3)
    assert auto_with_bounds.noise is not None and auto_with_bounds.tolerance.atol == 1e-3
    assert MatchOptions().auto_tolerance and not MatchOptions(rtol=1e-3).auto_tolerance
    with Comparison(*models) as comparison:
        assert comparison.check(mlp.inputs).noise is not None
    with Comparison(*models, tolerance="fixed") as comparison:
        assert comparison.check(mlp.inputs).noise is None


def test_auto_diff_measures_by_default_and_keeps_padiff_defaults_when_asked(mlp):
    models = (mlp.torch_model, mlp.paddle_model, mlp.inputs)
    measured = padiff_ir.auto_diff(*models)
    assert measured and measured.noise is not None
    assert measured.tolerance == Tolerance(atol=0.0, rtol=1e-7, mode="mean")  # what has no floor
    fixed = padiff_ir.auto_diff(*models, rtol=1e-5)
    assert fixed.noise is None and fixed.tolerance == Tolerance(atol=0.0, rtol=1e-5, mode="mean")
