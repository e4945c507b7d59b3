"""A later ``match`` of the same models checks with the sessions of the previous one."""

from __future__ import annotations

import gc

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.pairing import kept
from padiff_ir.pairing.cache import pair_cache


class TorchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 32)
        self.norm = torch.nn.LayerNorm(32)
        self.fc2 = torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


class PaddleNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(32, 32)
        self.norm = paddle.nn.LayerNorm(32)
        self.fc2 = paddle.nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(paddle.nn.functional.relu(self.norm(self.fc1(x))))


@pytest.fixture
def pair(cache):
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model, paddle_model = TorchNet().eval(), PaddleNet()
    paddle_model.eval()
    padiff_ir.assign_weight(paddle_model, torch_model)
    yield torch_model, paddle_model
    kept.forget()


def _x(seed: int, rows: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 32)).astype(np.float32)


def _kept_runner():
    entry = pair_cache.kept()
    return entry.kept.pair.runner_a if entry is not None and entry.kept is not None else None


def test_a_later_call_reuses_the_sessions_and_sees_new_weights(pair):
    torch_model, paddle_model = pair
    first = padiff_ir.match(torch_model, paddle_model, _x(0))
    assert first.ok
    runner = _kept_runner()
    assert runner is not None and runner._segment_sessions, "the sessions were kept"
    sessions = dict(runner._segment_sessions)
    second = padiff_ir.match(torch_model, paddle_model, _x(1))
    assert second.ok
    assert "ir" not in second.timings and "match" not in second.timings
    assert _kept_runner() is runner
    assert runner._segment_sessions == sessions, "no session was built again"
    # a port bug made between calls: B's norm weights differ
    paddle_model.norm.weight.set_value(paddle_model.norm.weight.numpy() * 1.1)
    third = padiff_ir.match(torch_model, paddle_model, _x(2))
    assert not third.ok
    assert [c.module_a for c in third.culprits] == ["norm"]
    assert _kept_runner() is runner


def test_a_replaced_parameter_is_read_from_its_new_memory(pair):
    torch_model, paddle_model = pair
    assert padiff_ir.match(torch_model, paddle_model, _x(0)).ok
    torch_model.fc2.weight = torch.nn.Parameter(torch_model.fc2.weight.detach() + 0.25)
    result = padiff_ir.match(torch_model, paddle_model, _x(1))
    assert [c.module_a for c in result.culprits] == ["fc2"]
    assert result.export_fidelity["a"].ok, "A's graph runs A's new weight"


def test_other_inputs_or_options_prepare_again(pair):
    torch_model, paddle_model = pair
    padiff_ir.match(torch_model, paddle_model, _x(0))
    runner = _kept_runner()
    assert padiff_ir.match(torch_model, paddle_model, _x(1, rows=7)).ok  # another signature
    assert _kept_runner() is not runner
    runner = _kept_runner()
    result = padiff_ir.match(torch_model, paddle_model, _x(1, rows=7), assign_weights=True)
    assert result.ok
    assert _kept_runner() is runner, "a call that copies weights is never kept"


def test_the_kept_pair_is_dropped_with_its_models(cache):
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model, paddle_model = TorchNet().eval(), PaddleNet()
    paddle_model.eval()
    padiff_ir.match(torch_model, paddle_model, _x(0), assign_weights=True)
    padiff_ir.match(torch_model, paddle_model, _x(0))
    assert pair_cache.kept() is not None
    del torch_model, paddle_model
    gc.collect()
    assert pair_cache.kept() is None, "what a later call would reuse must not keep the models alive"


class TorchStrided(torch.nn.Module):
    """A weight stored transposed: a tensor numpy cannot view in order, so its graph holds a
    copy of it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(8, 32).t())  # [32, 8], not contiguous
        self.bias = torch.nn.Parameter(torch.randn(8))  # read in place

    def forward(self, x):
        return x @ self.weight + self.bias


class PaddleStrided(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.weight = self.create_parameter([32, 8])
        self.bias = self.create_parameter([8], is_bias=True)

    def forward(self, x):
        return paddle.matmul(x, self.weight) + self.bias


def test_a_graph_holding_a_copied_weight_is_not_kept(cache):
    torch.manual_seed(0)
    paddle.seed(0)
    torch_model, paddle_model = TorchStrided(), PaddleStrided()
    paddle_model.weight.set_value(torch_model.weight.detach().numpy().copy())
    paddle_model.bias.set_value(torch_model.bias.detach().numpy().copy())
    try:
        assert padiff_ir.match(torch_model, paddle_model, _x(0)).ok
        assert pair_cache.kept() is None
        with torch.no_grad():
            torch_model.weight.mul_(2.0)  # in place: a kept graph's copy would be stale
        result = padiff_ir.match(torch_model, paddle_model, _x(1))
        assert not result.ok, "the weight changed since the first call"
    finally:
        kept.forget()


def test_a_later_call_still_checks_its_tolerance_names(pair):
    torch_model, paddle_model = pair
    padiff_ir.match(torch_model, paddle_model, _x(0))
    assert pair_cache.kept() is not None
    with pytest.raises(padiff_ir.OptionError, match="no_such_tensor"):
        padiff_ir.match(
            torch_model, paddle_model, _x(1), tolerances={"no_such_tensor": {"atol": 1.0}}
        )


def test_a_parameter_replaced_by_a_strided_one_prepares_again(pair):
    """A weight numpy cannot view in place after the first call: the kept pair is dropped and
    the new graph holds the weight's value."""
    torch_model, paddle_model = pair
    assert padiff_ir.match(torch_model, paddle_model, _x(0)).ok
    transposed = torch_model.fc2.weight.detach().t().contiguous().t()  # same values, strided
    torch_model.fc2.weight = torch.nn.Parameter(transposed + 0.25)
    assert not torch_model.fc2.weight.is_contiguous()
    result = padiff_ir.match(torch_model, paddle_model, _x(1))
    assert [c.module_a for c in result.culprits] == ["fc2"]
