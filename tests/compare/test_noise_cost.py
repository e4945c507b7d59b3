"""``tolerance="auto"`` costs one extra forward of A, in float64: the comparison's own eager
runs of A and B are the ones the noise measurement judges with."""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.compare.comparison import Comparison
from padiff_ir.compare.noise import Side, floor_of, measure_noise
from tests.compare.test_noise import _epsilon_pair, _inputs, _pair


@contextmanager
def _counted(model_a: torch.nn.Module, model_b: paddle.nn.Layer) -> Iterator[Counter[str]]:
    """Forwards of each model by the dtype of its input (``"a float64"``, ``"b float32"``...),
    counted by a forward hook on the real model (copies made with ``deepcopy`` count too)."""
    calls: Counter[str] = Counter()

    def on_a(module: Any, args: tuple[Any, ...], output: Any) -> None:
        calls[f"a {str(args[0].dtype).removeprefix('torch.')}"] += 1

    def on_b(layer: Any, args: tuple[Any, ...], output: Any) -> None:
        calls[f"b {str(args[0].dtype).removeprefix('paddle.')}"] += 1

    hooks = [model_a.register_forward_hook(on_a), model_b.register_forward_post_hook(on_b)]
    try:
        yield calls
    finally:
        for hook in hooks:
            hook.remove()


def _later_inputs() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((4, 16)).astype("float32")


def test_a_later_auto_match_runs_a_once_in_float32_and_once_in_float64():
    model_a, model_b = _pair()
    with _counted(model_a, model_b) as calls:
        padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")  # exports
        calls.clear()
        result = padiff_ir.match(model_a, model_b, _later_inputs(), tolerance="auto")
    assert result.ok and result.noise is not None and result.noise.method == "float64 shadow"
    # the shadow is a deepcopy of A: it carries the hook, and is the one float64 forward
    assert calls == Counter({"a float32": 1, "a float64": 1, "b float32": 1})


def test_the_reused_runs_give_the_measurement_a_fresh_run_gives():
    model_a, model_b = _epsilon_pair()
    result = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    assert result.noise is not None and [c.module_a for c in result.culprits] == ["1"]
    fresh = measure_noise(
        Side(model_a, "torch", _inputs()), Side(model_b, "paddle", _inputs()), result.layer_map
    )
    assert [f.ratio for f in result.noise.outputs] == pytest.approx(
        [f.ratio for f in fresh.outputs]
    )
    assert [(m.module_a, m.output, m.own) for m in result.noise.modules] == [
        (m.module_a, m.output, m.own) for m in fresh.modules
    ]
    assert dict(fresh.seconds).keys() >= {"reference", "b"}  # this one ran A and B itself
    assert not dict(result.noise.seconds).keys() & {"reference", "b"}


def test_a_comparison_check_under_auto_runs_a_once_per_dtype():
    model_a, model_b = _pair()
    comparison = Comparison(model_a, model_b, _inputs(), tolerance="auto")
    with comparison, _counted(model_a, model_b) as calls:
        result = comparison.check(_later_inputs())
    assert result.ok and result.noise is not None
    assert calls == Counter({"a float32": 1, "a float64": 1, "b float32": 1})


def test_a_float16_port_still_measures_a_in_the_working_dtype():
    model_a, _ = _pair()
    port = copy.deepcopy(model_a).half()
    with _counted(model_a, paddle.nn.Linear(1, 1)) as calls:
        result = padiff_ir.match(model_a, port, _inputs(), tolerance="auto")
        calls.clear()
        result = padiff_ir.match(model_a, port, _later_inputs(), tolerance="auto")
    assert result.ok and result.noise.dtype == "float16"
    # A as given (the comparison's run), A cast to float16 (the noise's), A's float64 shadow
    assert calls == Counter({"a float32": 1, "a float16": 1, "a float64": 1})


def _rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)))


def test_the_floor_is_the_rmse_of_every_element_also_over_many_chunks():
    rng = np.random.default_rng(0)
    exact = rng.standard_normal((3, 300_000))  # over one chunk of the sums
    working = (exact + rng.standard_normal(exact.shape) * 1e-6).astype(np.float32)
    other = (exact + rng.standard_normal(exact.shape) * 1e-5).astype(np.float32)
    floor = floor_of([exact], [working], [other], "float32")
    assert floor is not None and floor.numel == exact.size
    assert floor.noise == pytest.approx(_rmse(working, exact), rel=1e-9)
    assert floor.error == pytest.approx(_rmse(other, exact), rel=1e-9)
    assert floor.scale == pytest.approx(float(np.sqrt(np.mean(exact**2))), rel=1e-9)
    assert floor.peak_noise == pytest.approx(float(np.abs(working - exact).max()), rel=1e-9)
    assert floor.peak == pytest.approx(float(np.abs(exact).max()))
    assert not floor.ok  # B's error is ten times A's rounding


def test_the_floor_counts_finite_positions_and_refuses_moved_nans_and_shape_slips():
    exact = np.array([1.0, np.nan, 3.0, np.inf])
    working = np.array([1.0, np.nan, 3.0, np.inf], dtype=np.float32)
    other = np.array([1.5, np.nan, 3.0, np.inf], dtype=np.float32)
    floor = floor_of([exact], [working], [other], "float32")
    assert floor is not None and floor.numel == 2 and floor.error == pytest.approx(0.5 / 2**0.5)
    moved = np.array([1.0, 2.0, np.nan, np.inf], dtype=np.float32)
    assert floor_of([exact], [working], [moved], "float32").error == math.inf
    slipped = floor_of([exact], [working], [np.ones(3, np.float32)], "float32")
    assert slipped is not None and slipped.error == math.inf and not slipped.ok
    assert floor_of([exact], [working], [other, other], "float32") is None  # not paired


def test_with_assign_weights_the_noise_is_measured_on_b_with_a_s_weights():
    model_a, _ = _pair()
    _, model_b = _pair()
    for index in (0, 2):  # B's own weights, which assign_weights replaces with A's
        weight = model_b[index].weight
        weight.set_value(weight.numpy() + 0.5)
    with _counted(model_a, model_b) as calls:
        result = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto", assign_weights=True)
    assert result.ok and result.noise is not None
    # judged on B's run after its new weights (the one before them is off by far more)
    assert max(f.ratio for f in result.noise.outputs) <= 1.0
    assert calls["a float64"] == 1


def test_b_shadow_records_only_the_modules_out_of_a_noise():
    """B's float64 shadow runs where B leaves A's noise; only those modules (and B's outputs)
    are recorded: within A's noise a larger noise changes nothing."""
    from padiff_ir.compare.eager import run_eager
    from padiff_ir.frameworks import normalize_inputs

    _, model_b = _pair()
    inputs = normalize_inputs(_inputs())
    every = run_eager(model_b, "paddle", inputs)
    some = run_eager(model_b, "paddle", inputs, paths={"1"})
    with every, some:
        assert every.by_module and not some.by_module
        assert {path for path, _ in some.modules} == {"", "1"}
        assert len({path for path, _ in every.modules}) > 2
        np.testing.assert_array_equal(some.module_outputs("1")[0], every.module_outputs("1")[0])
        np.testing.assert_array_equal(some.outputs[0], every.outputs[0])
    # a bug at the norm: B's shadow runs, and the verdict names the norm as before
    model_a, buggy = _pair(eps_b=1e-3)
    result = padiff_ir.match(model_a, buggy, _inputs())
    assert [c.module_b for c in result.culprits] == ["1"]
    assert "b_shadow" in dict(result.noise.seconds)
