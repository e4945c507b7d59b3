"""``tolerance="auto"`` on 16-bit models: a bfloat16 or float16 port of a float32 model, and
two bfloat16 models (AMP), judged without hand-tuned tolerances; a 16-bit model its framework
cannot run on the CPU is a typed error."""

from __future__ import annotations

import copy

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.errors import DtypeKernelError
from padiff_ir.frameworks import normalize_inputs
from padiff_ir.frameworks.half import is_bfloat16


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 64), torch.nn.LayerNorm(64), torch.nn.GELU(), torch.nn.Linear(64, 8)
    ).eval()


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 16)).astype("float32")


def _scaled(model: torch.nn.Module, index: int) -> torch.nn.Module:
    with torch.no_grad():
        model[index].weight.mul_(1.5)
    return model


def test_a_bfloat16_port_of_a_float32_model_is_aligned_within_its_noise():
    model = _model()
    port = copy.deepcopy(model).to(torch.bfloat16)
    fixed = padiff_ir.match(model, port, _inputs(), atol=1e-5, rtol=1e-5)
    assert not fixed.ok  # atol 1e-5 is far below bfloat16's rounding
    result = padiff_ir.match(model, port, _inputs(), tolerance="auto")
    assert result.ok and not result.culprits
    assert result.noise is not None and result.noise.dtype == "bfloat16"
    assert result.noise.sentence.startswith("aligned within numerical noise")
    # onnxruntime has no bfloat16 kernels on the CPU: the answer is module by module
    assert result.fallback is not None and "bfloat16" in result.fallback.reason


def test_a_bug_in_a_bfloat16_port_is_named_in_units_of_noise():
    model = _model()
    port = _scaled(copy.deepcopy(model), 3).to(torch.bfloat16)
    result = padiff_ir.match(model, port, _inputs(), tolerance="auto")
    assert not result.ok
    assert [c.module_a for c in result.culprits][:1] == ["3"]
    assert result.noise.sentence.startswith("diverged: `3` own error ")
    # the first divergence is the first pair out of its noise, not atol's first op
    assert result.first_divergence is not None and result.first_divergence.module_a == "3"


def test_two_bfloat16_models_fed_bfloat16_tensors():
    model = _model().to(torch.bfloat16)
    x = torch.from_numpy(_inputs()).to(torch.bfloat16)  # as an AMP data pipeline gives them
    result = padiff_ir.match(model, copy.deepcopy(model), x, tolerance="auto")
    assert result.ok and result.noise.dtype == "bfloat16"
    buggy = copy.deepcopy(model)
    buggy[1].eps = 1e-1  # a wrong epsilon
    result = padiff_ir.match(model, buggy, x, tolerance="auto")
    assert [c.module_a for c in result.culprits][:1] == ["1"]


def test_bfloat16_inputs_are_held_in_bfloat16():
    held = normalize_inputs(torch.ones(2, 3, dtype=torch.bfloat16)).arrays[0]
    assert held.dtype.name == "float32"  # a tensor is read as float32, exactly
    rounded = padiff_ir.frameworks.rounding.rounded_inputs(
        _inputs(),
        padiff_ir.frameworks.get_framework("torch"),
        _model(),
        _inputs(),
        padiff_ir.frameworks.get_framework("torch"),
        _model().to(torch.bfloat16),
    )
    assert not is_bfloat16(rounded[0][0].dtype) and is_bfloat16(rounded[1][0].dtype)
    assert np.array_equal(rounded[0][0], rounded[1][0].astype(np.float32))


def test_a_float16_port_is_judged_on_the_graphs():
    model = _model()
    result = padiff_ir.match(model, copy.deepcopy(model).half(), _inputs(), tolerance="auto")
    assert result.ok and result.fallback is None and result.noise.dtype == "float16"
    buggy = _scaled(copy.deepcopy(model), 0).half()
    result = padiff_ir.match(model, buggy, _inputs(), tolerance="auto")
    assert [c.module_a for c in result.culprits][:1] == ["0"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_16_bit_paddle_model_the_cpu_cannot_run_is_a_typed_error(dtype):
    model = _model()
    port = paddle.nn.Sequential(
        paddle.nn.Linear(16, 64), paddle.nn.LayerNorm(64), paddle.nn.GELU(), paddle.nn.Linear(64, 8)
    )
    padiff_ir.assign_weight(port, model)
    port.to(dtype=dtype)
    with pytest.raises(DtypeKernelError, match=f"no {dtype} kernel for `matmul`") as caught:
        padiff_ir.match(model, port, _inputs(), tolerance="auto")
    assert caught.value.framework == "paddle" and "float32" in str(caught.value)


def test_a_comparison_checks_a_bfloat16_port_batch_by_batch():
    from padiff_ir.compare.comparison import Comparison

    model = _model()
    port = copy.deepcopy(model).to(torch.bfloat16)
    with Comparison(model, port, _inputs(), tolerance="auto") as comparison:
        results = [comparison.check(_inputs() * scale) for scale in (1.0, 100.0)]
    assert all(r.ok and r.fallback is not None and r.noise.dtype == "bfloat16" for r in results)
