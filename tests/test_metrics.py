"""compare_arrays: verdicts of the three compare modes, metric values on known arrays, shapes."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import padiff_ir
import padiff_ir.metrics
from padiff_ir.metrics import COMPARE_MODES, TensorMetrics, Tolerance, compare_arrays


def test_docstring_examples_run():
    failures, tried = doctest.testmod(padiff_ir.metrics, verbose=False)
    assert tried > 0
    assert failures == 0


def test_public_names_are_the_ground_level_ones():
    import padiff_ir.compare

    assert padiff_ir.Tolerance is Tolerance
    assert padiff_ir.compare.Tolerance is Tolerance
    assert padiff_ir.compare.compare_arrays is compare_arrays
    assert COMPARE_MODES == ("strict", "mean", "abs_mean")


def test_metric_values_on_known_arrays():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 2.0, 3.0, 4.5])
    m = compare_arrays(a, b, Tolerance(atol=1e-3, rtol=0.0))
    assert not m
    assert m.numel == 4
    assert m.shape_a == m.shape_b == (4,)
    assert m.dtype_a == m.dtype_b == "float64"
    assert m.max_abs == pytest.approx(0.5)
    assert m.max_rel == pytest.approx(0.5 / 4.5)
    assert m.mean_abs == pytest.approx(0.125)
    assert m.out_of_tolerance == pytest.approx(0.25)
    assert m.mean_a == pytest.approx(2.5)
    assert m.mean_b == pytest.approx(2.625)
    assert m.abs_mean_a == pytest.approx(2.5)
    assert m.abs_mean_b == pytest.approx(2.625)
    expected_cosine = float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert m.cosine == pytest.approx(expected_cosine)
    # three exact elements in the first bin, 0.5 in [1e-1, 1e0)
    assert len(m.error_histogram) == 15
    assert m.error_histogram[0] == 3
    assert m.error_histogram[11] == 1
    assert sum(m.error_histogram) == 4
    assert m.reason.startswith("max abs 0.5 > atol 0.001")


def test_identical_arrays_are_ok_with_zero_error():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    m = compare_arrays(a, a.copy())
    assert m
    assert m.reason == ""
    assert m.max_abs == m.max_rel == m.mean_abs == m.out_of_tolerance == 0.0
    assert m.cosine == pytest.approx(1.0)
    assert m.dtype_a == "float32"


def test_cosine_of_orthogonal_and_zero_tensors():
    assert compare_arrays(np.array([1.0, 0.0]), np.array([0.0, 1.0])).cosine == pytest.approx(0.0)
    assert compare_arrays(np.zeros(3), np.zeros(3)).cosine == 1.0
    assert compare_arrays(np.zeros(3), np.ones(3)).cosine == 0.0


def test_strict_verdict_uses_atol_plus_rtol_times_b():
    a = np.array([100.0])
    b = np.array([101.0])
    assert not compare_arrays(a, b, Tolerance(atol=0.5, rtol=0.0))
    assert compare_arrays(a, b, Tolerance(atol=0.0, rtol=0.01))  # 1 <= 0.01 * 101
    assert not compare_arrays(a, b, Tolerance(atol=0.0, rtol=0.009))


def test_mean_mode_compares_means_only():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 2.0, 3.0, 4.5])  # means 2.5 vs 2.625
    assert not compare_arrays(a, b, Tolerance(atol=0.2, rtol=0.0, mode="strict"))
    assert compare_arrays(a, b, Tolerance(atol=0.2, rtol=0.0, mode="mean"))
    failed = compare_arrays(a, b, Tolerance(atol=0.1, rtol=0.0, mode="mean"))
    assert not failed
    assert failed.reason == "mean 2.5 vs 2.625"


def test_abs_mean_mode_ignores_signs():
    a = np.array([1.0, 1.0])
    b = np.array([-1.0, -1.0])
    tight = {"atol": 1e-6, "rtol": 0.0}
    assert not compare_arrays(a, b, Tolerance(**tight, mode="strict"))
    assert not compare_arrays(a, b, Tolerance(**tight, mode="mean"))
    assert compare_arrays(a, b, Tolerance(**tight, mode="abs_mean"))
    swapped = compare_arrays(
        np.array([-1.0, 1.0]), np.array([1.0, -1.0]), Tolerance(**tight, mode="mean")
    )
    assert swapped  # means 0 and 0
    scaled = compare_arrays(a, 2 * b, Tolerance(**tight, mode="abs_mean"))
    assert not scaled
    assert scaled.reason == "abs_mean 1 vs 2"


def test_different_element_counts_fail_with_both_shapes():
    m = compare_arrays(np.zeros((2, 3)), np.zeros((2, 4)))
    assert not m
    assert m.reason == "shape [2, 3] vs [2, 4]"
    assert m.shape_a == (2, 3) and m.shape_b == (2, 4)
    assert math.isinf(m.max_abs) and math.isinf(m.mean_abs)
    assert m.cosine == 0.0
    assert m.out_of_tolerance == 1.0


def test_same_count_other_layout_fails_but_values_are_compared():
    a = np.arange(6.0).reshape(2, 3)
    m = compare_arrays(a, a.reshape(3, 2))
    assert not m
    assert m.reason == "shape [2, 3] vs [3, 2] (same element count)"
    assert m.max_abs == 0.0  # the flat values agree: only the layout differs


def test_shapes_that_differ_in_unit_dimensions_are_equal():
    a = np.ones((2, 32), dtype=np.float32)
    m = compare_arrays(a, a.reshape(2, 1, 32))
    assert m
    assert m.shape_a == (2, 32) and m.shape_b == (2, 1, 32)


def test_non_finite_values_are_counted_per_side():
    both = compare_arrays(np.array([np.inf, -np.inf, 1.0]), np.array([np.inf, -np.inf, 1.0]))
    assert both
    assert (both.nan_a, both.nan_b, both.inf_a, both.inf_b) == (0, 0, 2, 2)
    assert both.max_abs == 0.0
    one_side = compare_arrays(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert not one_side
    assert one_side.reason == (
        "non-finite values: NaN/Inf differ at 1 of 2 positions (first at "
        "[0]: nan vs 0.0); NaN 1 vs 0, Inf 0 vs 0"
    )


def test_tolerance_rejects_unknown_modes_and_negative_bounds():
    with pytest.raises(ValueError, match="compare mode 'median'"):
        Tolerance(mode="median")
    with pytest.raises(ValueError, match="must be >= 0"):
        Tolerance(atol=-1.0)


def test_metrics_round_trip_through_json_values():
    m = compare_arrays(np.zeros(2), np.zeros(3))
    data = m.to_dict()
    assert data["max_abs"] == "inf"
    again = TensorMetrics.from_dict(data)
    assert again == m
    assert not again


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metrics_over_many_chunks_equal_a_direct_computation(dtype):
    """compare_arrays reads large arrays chunk by chunk: the metrics are those of the whole."""
    from padiff_ir.metrics import _CHUNK

    rng = np.random.default_rng(7)
    size = 3 * _CHUNK + 123
    a = rng.standard_normal(size).astype(dtype) * 3
    b = (a + rng.standard_normal(size) * 1e-5).astype(dtype)
    b[size - 5] += 0.5  # one large error in the last, partial chunk
    tolerance = Tolerance(atol=1e-4, rtol=1e-4)
    m = compare_arrays(a, b, tolerance)
    x, y = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a - b).astype(np.float64)  # differences in the arrays' own dtype
    assert m.max_abs == pytest.approx(diff.max(), rel=1e-12)
    assert m.mean_abs == pytest.approx(diff.mean(), rel=1e-9)
    assert m.max_rel == pytest.approx((diff / np.maximum(np.abs(y), 1e-12)).max(), rel=1e-6)
    bound = tolerance.atol + tolerance.rtol * np.abs(b)
    assert m.out_of_tolerance == np.count_nonzero(np.abs(a - b) > bound) / size
    assert m.cosine == pytest.approx(x @ y / np.sqrt((x @ x) * (y @ y)), rel=1e-12)
    assert m.mean_a == pytest.approx(x.mean(), rel=1e-9, abs=1e-12)
    assert m.abs_mean_b == pytest.approx(np.abs(y).mean(), rel=1e-9)
    edges = [10.0**e for e in range(-11, 3)]
    at_least = [size] + [int(np.count_nonzero(np.abs(a - b) >= dtype(e))) for e in edges] + [0]
    assert m.error_histogram == tuple(at_least[k] - at_least[k + 1] for k in range(15))
    assert not m.ok and m.numel == size


def test_a_nan_in_a_late_chunk_is_found():
    from padiff_ir.metrics import _CHUNK

    a = np.ones(2 * _CHUNK + 10, np.float32)
    b = a.copy()
    b[2 * _CHUNK + 3] = np.nan
    m = compare_arrays(a, b)
    assert not m.ok and m.nan_b == 1 and m.nan_a == 0
    assert "NaN/Inf differ at 1 of" in m.reason
    assert m.mean_abs == 0.0 and m.max_abs == math.inf
