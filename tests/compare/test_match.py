"""match(): aligned zoo pairs, model/input forms, assign_weights, results as data, bad input."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.compare import MatchResult
from padiff_ir.errors import ExportError, InputError, MatchError
from padiff_ir.zoo import get_pair
from tests.conftest import ZOO_NAMES, zoo_pair
from tests.exporters.models import PaddleUnconvertible, TorchDataDependent


@pytest.fixture(scope="module")
def vit_result():
    pair = zoo_pair("vit")
    return padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_pair_with_copied_weights_is_aligned(name):
    pair = zoo_pair(name)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert result, str(result)
    assert result == True  # noqa: E712  (PaDiff-style comparisons work)
    assert result.culprits == []
    assert result.first_divergence is None
    assert not result.accumulated
    assert len(result.pairs) >= 5
    assert all(p.ok for p in result.outputs)
    assert all(p.ok for p in result.eager_outputs)
    assert result.export_fidelity["a"].ok and result.export_fidelity["b"].ok
    modules_with_params = {m.a for m in result.layer_map}
    assert {
        "",
        *(p.rsplit(".", 1)[0] for p, _ in pair.torch_model.named_parameters() if "." in p),
    } <= modules_with_params | {""}


def test_models_in_either_order_and_seed_input_pairs():
    pair = zoo_pair("cnn")
    x = pair.inputs["x"]
    seed_inputs = ({"x": paddle.to_tensor(x)}, {"x": torch.from_numpy(x)})
    result = padiff_ir.match(pair.paddle_model, pair.torch_model, seed_inputs)
    assert result, str(result)
    assert result.model_a.framework == "paddle"
    assert result.model_b.framework == "torch"
    # the pair in the other order gives the same verdict
    assert padiff_ir.match(pair.torch_model, pair.paddle_model, seed_inputs[::-1])


def test_positional_inputs_and_framework_tensors():
    pair = zoo_pair("mlp")
    result = padiff_ir.match(
        pair.torch_model, pair.paddle_model, [torch.from_numpy(pair.inputs["x"])]
    )
    assert result


def test_onnx_file_on_one_side_and_torch_vs_torch(tmp_path):
    pair = zoo_pair("mlp")
    path = tmp_path / "mlp_paddle.onnx"
    padiff_ir.export(pair.paddle_model, pair.inputs).save(str(path))
    result = padiff_ir.match(pair.torch_model, str(path), pair.inputs)
    assert result, str(result)
    assert result.model_b.framework == "paddle"
    assert result.export_fidelity["b"].to_dict() == {"checked": False}
    twin = get_pair("mlp", seed=0).torch_model
    assert padiff_ir.match(pair.torch_model, twin, pair.inputs)
    other = get_pair("mlp", seed=1).torch_model
    different = padiff_ir.match(pair.torch_model, other, pair.inputs)
    assert not different
    assert different.culprits and different.culprits[0].module_a == "fc1"


def test_assign_weights_copies_a_into_b_first():
    pair = get_pair("vit", seed=5)
    for _, param in pair.paddle_model.named_parameters():
        param.set_value(np.random.default_rng(1).standard_normal(param.shape).astype("float32"))
    assert not padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, localize=False)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, assign_weights=True)
    assert result, str(result)
    assert any("assign_weights" in note for note in result.notes)
    torch_out = pair.torch_model(torch.from_numpy(pair.inputs["x"])).detach().numpy()
    paddle_out = pair.paddle_model(paddle.to_tensor(pair.inputs["x"])).numpy()
    np.testing.assert_allclose(paddle_out, torch_out, atol=1e-5)


def test_models_are_left_as_they_were():
    pair = get_pair("cnn", seed=2)
    pair.torch_model.train()
    before = {k: v.clone() for k, v in pair.torch_model.state_dict().items()}
    rng = torch.get_rng_state()
    padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert pair.torch_model.training and pair.torch_model.bn1.training
    assert not pair.paddle_model.training
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in pair.torch_model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_result_json_round_trip(vit_result, tmp_path):
    path = tmp_path / "result.json"
    vit_result.to_json(path)
    loaded = MatchResult.load(path)
    assert json.loads(json.dumps(loaded.to_dict())) == json.loads(path.read_text())
    assert loaded == vit_result
    assert bool(loaded) == bool(vit_result)
    assert loaded.layer_map == vit_result.layer_map
    assert loaded.environment["versions"]["torch"] == torch.__version__
    assert set(loaded.timings) >= {"export", "match", "run", "compare"}


def test_summary_fits_100_columns(vit_result, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the summary follows the terminal's width
    pair = get_pair("vit")
    pair.paddle_model.blocks[1].norm1._epsilon = 1e-3
    failing = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    for result in (vit_result, failing):
        text = str(result)
        assert max(len(line) for line in text.splitlines()) <= 100
    assert "ALIGNED" in str(vit_result)
    assert ">> " in str(failing) and "CULPRIT" in str(failing)


def test_compare_modes_and_tolerance_overrides():
    pair = get_pair("vit")
    pair.paddle_model.blocks[1].norm1._epsilon = 1e-3
    loose = padiff_ir.match(
        pair.torch_model, pair.paddle_model, pair.inputs, atol=5e-2, localize=False
    )
    assert loose
    mean = padiff_ir.match(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        compare_mode="abs_mean",
        atol=1e-3,
        localize=False,
    )
    assert mean.tolerance.mode == "abs_mean"
    strict = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, localize=False)
    failing = [p.a[0] for p in strict.pairs if not p.ok]
    overridden = padiff_ir.match(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        localize=False,
        tolerances={name: {"atol": 1.0} for name in failing},
    )
    assert all(p.ok for p in overridden.pairs)
    with pytest.raises(ValueError, match="compare mode"):
        padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, compare_mode="max")


def test_inputs_that_fit_one_model_but_not_the_other():
    mlp = zoo_pair("mlp")
    cnn = zoo_pair("cnn")
    with pytest.raises(InputError, match=r"model B \(paddle\) does not run on the inputs"):
        padiff_ir.match(mlp.torch_model, cnn.paddle_model, mlp.inputs)


def test_different_output_counts():
    bert = zoo_pair("bert")

    class FirstOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids):
            return self.inner(input_ids, token_type_ids)[0]

    with pytest.raises(MatchError, match="model A has 1 outputs .* and model B 2"):
        padiff_ir.match(FirstOnly(bert.torch_model), bert.paddle_model, bert.inputs)


def test_non_finite_activations_are_reported():
    pair = get_pair("mlp")
    weight = pair.paddle_model.fc2.weight
    poisoned = weight.numpy()
    poisoned[0, 0] = np.nan
    weight.set_value(poisoned)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert not result
    assert result.culprits[0].module_a == "fc2"
    assert "non-finite" in result.first_divergence.metrics.reason


def test_unexportable_models_are_compared_natively():
    """``padiff_ir.export`` refuses them; ``match`` still answers, module by module, and says
    which side fell back and why."""
    with pytest.raises(ExportError, match="auto_diff"):
        padiff_ir.export(TorchDataDependent(), np.ones(3, np.float32))
    result = padiff_ir.match(TorchDataDependent(), TorchDataDependent(), np.ones(3, np.float32))
    assert result and result.fallback.side == "A"
    assert result.fallback.reason.startswith("ExportError")
    assert "compared natively" in str(result)
    paddle.seed(0)
    model_a = PaddleUnconvertible()
    model_b = PaddleUnconvertible()
    result = padiff_ir.match(model_a, model_b, np.ones((2, 3), np.float32))
    assert not result and result.fallback.framework == "paddle"
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("fc", "fc")]
    result = padiff_ir.match(model_a, model_b, np.ones((2, 3), np.float32), assign_weights=True)
    assert result, str(result)
    assert type(result).from_dict(result.to_dict()).fallback == result.fallback


def test_unexportable_models_over_batches_are_compared_natively():
    """``match`` over a DataLoader (or any batches) answers as ``match`` on one batch does: a
    model that cannot be exported is compared module by module, on every batch."""
    values = [np.full(3, v, np.float32) for v in (1.0, -1.0, 2.0)]
    loader = torch.utils.data.DataLoader(values, batch_size=1)
    results = padiff_ir.match(TorchDataDependent(), TorchDataDependent(), loader)
    assert results and len(results) == 3
    assert all(r.fallback.side == "A" for r in results)
    assert all(r.fallback.reason.startswith("ExportError") for r in results)
    paddle.seed(0)
    model_a, model_b = PaddleUnconvertible(), PaddleUnconvertible()
    x = np.ones((2, 3), np.float32)
    results = padiff_ir.match(model_a, model_b, padiff_ir.Batches([x, x * 2]))
    assert not results and results.first_failing == 0
    for result in results:
        assert result.fallback.framework == "paddle"
        assert [(c.module_a, c.module_b) for c in result.culprits] == [("fc", "fc")]
    with padiff_ir.Comparison(model_a, model_b, x) as comparison:
        assert comparison.prepared is None and "natively" in repr(comparison)
        assert comparison.check(x).fallback == results[0].fallback


def test_paddle_vs_paddle():
    model_a = get_pair("cnn", seed=0).paddle_model
    model_b = get_pair("cnn", seed=0).paddle_model
    inputs = zoo_pair("cnn").inputs
    assert padiff_ir.match(model_a, model_b, inputs)
    model_b.bn1._epsilon = 0.3
    result = padiff_ir.match(model_a, model_b, inputs)
    assert [c.module_a for c in result.culprits] == ["bn1"]
    assert result.culprits[0].attribute_diffs == ("BatchNormalization epsilon 1e-05 vs 0.3",)
