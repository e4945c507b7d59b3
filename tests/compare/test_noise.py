"""``tolerance="auto"``: each tensor judged against its measured numerical noise."""

from __future__ import annotations

import copy

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.compare import MatchResult
from padiff_ir.compare.comparison import Comparison
from padiff_ir.compare.noise import Side, measure_noise
from padiff_ir.compare.noise_result import NoiseFloor
from padiff_ir.errors import OptionError
from padiff_ir.frameworks import get_framework


def _pair(
    hidden: int = 64, eps_b: float = 1e-5, weight_scale: float = 1.0, norm_weight: float = 1.0
) -> tuple[torch.nn.Module, paddle.nn.Layer]:
    """Linear -> LayerNorm -> Linear in torch, and its port in paddle with the same weights."""
    torch.manual_seed(0)
    model_a = torch.nn.Sequential(
        torch.nn.Linear(16, hidden), torch.nn.LayerNorm(hidden), torch.nn.Linear(hidden, 8)
    )
    with torch.no_grad():
        model_a[0].weight.mul_(weight_scale)
        model_a[1].weight.fill_(norm_weight)
    model_b = paddle.nn.Sequential(
        paddle.nn.Linear(16, hidden),
        paddle.nn.LayerNorm(hidden, epsilon=eps_b),
        paddle.nn.Linear(hidden, 8),
    )
    for index in (0, 2):
        model_b[index].weight.set_value(model_a[index].weight.detach().numpy().T.copy())
        model_b[index].bias.set_value(model_a[index].bias.detach().numpy())
    model_b[1].weight.set_value(model_a[1].weight.detach().numpy())
    model_b[1].bias.set_value(model_a[1].bias.detach().numpy())
    return model_a, model_b


def _inputs(scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((4, 16)) * scale).astype("float32")


def test_floor_ratio_counts_the_error_in_units_of_its_bound():
    floor = NoiseFloor(noise=1e-6, error=1e-6, bound=2e-6, scale=1.0, numel=100)
    assert floor.ok and floor.ratio == pytest.approx(0.5)
    assert NoiseFloor(0.0, 0.0, 0.0, 0.0, 1).ratio == 0.0  # exact on both sides
    assert not NoiseFloor(0.0, 1e-9, 0.0, 0.0, 1).ok  # any error where A is exact


def test_activations_in_the_thousands_are_aligned_under_auto():
    model_a, model_b = _pair(norm_weight=3000.0)  # a norm whose outputs are in the thousands
    auto = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    assert auto.ok and not auto.culprits and auto.noise is not None
    assert auto.noise.method == "float64 shadow"
    assert auto.noise.sentence.startswith("aligned within numerical noise (worst ")
    assert max(f.ratio for f in auto.noise.outputs) <= 1.0
    # the noise scales with the values: float32 rounding of numbers in the thousands is
    # above the fixed atol of 1e-5, and it is what B is judged against
    norm = auto.noise.module("1")
    assert norm is not None and norm.output.scale > 1000 and norm.output.noise > 1e-5


def _epsilon_pair() -> tuple[torch.nn.Module, paddle.nn.Layer]:
    """A norm's epsilon 1e-5 vs 1e-6 on small-variance inputs (var about 1e-3) with small
    outputs, read through one feature: the outputs move by a few 1e-6, inside atol 1e-5."""
    model_a, model_b = _pair(eps_b=1e-6, weight_scale=0.1, norm_weight=5e-4)
    with torch.no_grad():
        model_a[2].weight.fill_(0.0)
        model_a[2].weight[:, 0] = 1.0
        model_b[2].weight.set_value(model_a[2].weight.detach().numpy().T.copy())
    return model_a, model_b


def test_an_epsilon_below_the_fixed_atol_is_named_in_units_of_noise():
    model_a, model_b = _epsilon_pair()
    assert padiff_ir.match(model_a, model_b, _inputs(), tolerance="fixed").ok  # atol misses it
    result = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    assert not result.ok
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("1", "1")]
    assert result.noise.sentence.startswith("diverged: `1` own error ")
    assert "its noise" in result.culprits[0].explanation
    assert "epsilon" in " ".join(result.culprits[0].setting_diffs)
    assert result.modules[0].status != "culprit"  # the Linear before it is within its noise


def test_noise_round_trips_through_json_and_shows_in_the_summary(tmp_path):
    model_a, model_b = _pair()
    result = padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    path = tmp_path / "result.json"
    result.to_json(path)
    loaded = MatchResult.load(path)
    assert loaded.noise == result.noise
    assert "within numerical noise" in str(result)


def test_the_user_models_are_left_as_they_were():
    model_a, model_b = _pair()
    before = {k: v.clone() for k, v in model_a.state_dict().items()}
    padiff_ir.match(model_a, model_b, _inputs(), tolerance="auto")
    after = model_a.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    shadow = get_framework("torch").cast_copy(model_a, "float64")
    assert shadow[0].weight.dtype == torch.float64 and model_a[0].weight.dtype == torch.float32


class _FixedDtype(torch.nn.Module):
    """A model whose code fixes a float32 tensor outside its parameters: no float64 run."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 8)
        self.mix = torch.ones(8, 8) / 8  # a plain attribute: not cast with the weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) @ self.mix


def test_where_float64_cannot_run_the_noise_comes_from_perturbation():
    model = _FixedDtype()
    side = Side(model, "torch", _inputs())
    pairs = padiff_ir.match(model, model, _inputs()).layer_map
    measured = measure_noise(side, side, pairs)
    assert measured.method == "perturbation"
    assert measured.outputs and all(f.error == 0.0 and f.noise > 0 for f in measured.outputs)


class _TokenModel(torch.nn.Module):
    """Token ids in (nothing to perturb in the inputs) and a float32 tensor fixed in the
    code (no float64 run): the perturbation moves the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(32, 16)
        self.linear = torch.nn.Linear(16, 8)
        self.mix = torch.ones(8, 8) / 8

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embed(ids)) @ self.mix


def test_integer_inputs_get_a_perturbation_noise_from_the_weights():
    model = _TokenModel()
    ids = np.random.default_rng(0).integers(0, 32, (2, 6)).astype("int64")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    measured = measure_noise(Side(model, "torch", ids), Side(model, "torch", ids), [])
    assert measured.method == "perturbation"
    assert measured.outputs and all(f.noise > 0 and f.error == 0.0 for f in measured.outputs)
    # float32 rounding of the weights: a relative spread of about one epsilon
    assert all(f.noise < 1e-5 * max(f.scale, 1e-3) for f in measured.outputs)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # a copy moved


def test_a_tolerance_other_than_auto_is_refused():
    model_a, model_b = _pair()
    with pytest.raises(OptionError, match="tolerance must be 'auto'"):
        padiff_ir.match(model_a, model_b, _inputs(), tolerance="loose")


def test_a_float16_port_of_a_float32_model_is_judged_without_hand_tuned_tolerances():
    model_a, _ = _pair()
    port = copy.deepcopy(model_a).half()
    fixed = padiff_ir.match(model_a, port, _inputs(), tolerance="fixed")
    assert not fixed.ok  # atol 1e-5 is below float16's
    result = padiff_ir.match(model_a, port, _inputs(), tolerance="auto")
    assert result.ok and result.noise.dtype == "float16" and result.noise.multiplier == 3.0
    buggy = copy.deepcopy(model_a)
    buggy[1].eps = 1e-1
    result = padiff_ir.match(model_a, buggy.half(), _inputs(), tolerance="auto")
    assert [c.module_a for c in result.culprits] == ["1"]


def test_a_comparison_checks_in_units_of_noise():
    model_a, model_b = _pair(eps_b=1e-6, weight_scale=0.1, norm_weight=5e-4)
    with Comparison(model_a, model_b, _inputs(), tolerance="auto") as comparison:
        assert comparison.options.auto_tolerance
        result = comparison.check(_inputs())
    assert result.noise is not None and [c.module_a for c in result.culprits] == ["1"]


def test_an_exporter_fault_stays_a_finding_under_auto():
    from tests.reliability.test_exporter_faults import _pair as leaky_pair

    model_a, model_b, x = leaky_pair()
    result = padiff_ir.match(model_a, model_b, x, tolerance="auto")
    assert result.ok and result.noise is not None
    assert result.exporter_faults and {f.op for f in result.exporter_faults} == {"LeakyRelu"}
