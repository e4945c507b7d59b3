"""Many batches, one export: Comparison.check and match over a DataLoader."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.compare.batches import is_batches
from padiff_ir.errors import InputError, OptionError
from padiff_ir.exporters._cache import export_cache
from padiff_ir.zoo import get_pair


def _scaled(inputs: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    return {k: (v * scale).astype(v.dtype) for k, v in inputs.items()}


@pytest.fixture
def relu6_pair():
    """The zoo MLP whose paddle ``act1`` is a ReLU6: the pair agrees until fc1 passes 6."""
    pair = get_pair("mlp")
    pair.paddle_model.act1 = paddle.nn.ReLU6()
    return pair


def test_check_gives_what_match_gives():
    pair = get_pair("vitpose")
    batches = [pair.inputs, _scaled(pair.inputs, 0.5)]
    with padiff_ir.Comparison(pair.torch_model, pair.paddle_model, pair.inputs) as comparison:
        checked = [comparison.check(batch) for batch in batches]
        prepared = comparison.prepared
        sessions = dict(prepared.runner_a._segment_sessions)
        assert sessions  # the sessions of the first check are kept ...
        comparison.check(batches[0])
        assert prepared.runner_a._segment_sessions == sessions  # ... and reused
    assert comparison.prepared is None
    for batch, result in zip(batches, checked):
        single = padiff_ir.match(pair.torch_model, pair.paddle_model, batch)
        assert bool(result) == bool(single)
        assert [p.a for p in result.pairs] == [p.a for p in single.pairs]
        assert [p.metrics.max_abs for p in result.outputs] == [
            p.metrics.max_abs for p in single.outputs
        ]
    # the outputs depend on the inputs: the second check really ran on the second batch
    assert checked[0].outputs[0].metrics.mean_a != checked[1].outputs[0].metrics.mean_a


def test_only_the_tensors_a_check_reads_are_recorded():
    pair = get_pair("vitpose")
    with padiff_ir.Comparison(pair.torch_model, pair.paddle_model, pair.inputs) as comparison:
        prepared = comparison.prepared
        result = comparison.check(pair.inputs)
    every = [n for n in prepared.runner_a.index.node_outputs() if n]
    assert len(prepared.tensors_a) < len(every) / 2
    known = set(prepared.tensors_a)
    expected = [p for p in prepared.matching.tensor_pairs if all(n in known for n in p.a)]
    assert len(result.pairs) == len(expected)


def test_first_failing_batch_and_its_worst_pair(relu6_pair):
    pair = relu6_pair
    batches = padiff_ir.Batches([_scaled(pair.inputs, 0.01), _scaled(pair.inputs, 1000.0)])
    results = padiff_ir.match(pair.torch_model, pair.paddle_model, batches, assign_weights=True)
    assert isinstance(results, padiff_ir.BatchResults)
    assert [bool(r) for r in results] == [True, False]
    assert results.first_failing == 1 and not results
    worst = results.worst
    assert worst[0].ok and not worst[1].ok
    assert results[1].culprits[0].module_b == "act1"
    assert "first batch 1" in str(results)
    assert results.to_dict()["first_failing"] == 1


class _Batches(torch.utils.data.Dataset):
    def __init__(self, inputs: np.ndarray) -> None:
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"image": self.inputs[index], "label": index}


def test_torch_dataloader_with_keys_exports_once(monkeypatch):
    monkeypatch.setattr(export_cache, "enabled", False)  # count exports, not cache hits
    pair = get_pair("mlp")
    x = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
    loader = torch.utils.data.DataLoader(_Batches(x), batch_size=4)
    assert is_batches(loader)
    from padiff_ir.exporters import _export

    exports = []
    original = _export._start_export
    monkeypatch.setattr(
        _export, "_start_export", lambda *a, **k: exports.append(1) or original(*a, **k)
    )
    messages = []
    results = padiff_ir.match(
        pair.torch_model,
        pair.paddle_model,
        loader,
        keys=({"x": "image"}, {"x": "image"}),
        progress=messages.append,
    )
    assert len(results) == 3 and results
    assert len(exports) == 2  # one export per model for the three batches
    assert "batch 3/3" in messages
    assert results.prepare_s > 0 and len(results.check_s) == 3


def test_paddle_dataloader_and_another_batch_size():
    pair = get_pair("mlp")
    x = np.random.default_rng(1).standard_normal((10, 16)).astype(np.float32)

    class Dataset(paddle.io.Dataset):
        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, index: int) -> np.ndarray:
            return x[index]

    loader = paddle.io.DataLoader(Dataset(), batch_size=4)  # 4, 4 and a last batch of 2
    assert is_batches(loader)
    results = padiff_ir.match(pair.torch_model, pair.paddle_model, loader)
    assert [r.outputs[0].metrics.shape_a for r in results] == [(4, 10), (4, 10), (2, 10)]
    assert results


def test_keys_errors():
    pair = get_pair("mlp")
    with pytest.raises(OptionError, match="keys must be a pair"):
        padiff_ir.Comparison(pair.torch_model, pair.paddle_model, pair.inputs, keys="x")
    with pytest.raises(InputError, match="keys for model A"):
        padiff_ir.match(
            pair.torch_model, pair.paddle_model, {"image": pair.inputs["x"]}, keys=(["img"], ["x"])
        )
    with pytest.raises(InputError, match="no batches"):
        padiff_ir.match(pair.torch_model, pair.paddle_model, iter([]))


def test_one_loader_per_model_in_either_order():
    from padiff_ir.zoo.data import PaddleKeypointDataset, TorchKeypointDataset

    pair = get_pair("vitpose")
    torch_loader = torch.utils.data.DataLoader(TorchKeypointDataset(2), batch_size=1)
    paddle_loader = paddle.io.DataLoader(PaddleKeypointDataset(2), batch_size=1)
    keys = ({"x": "img"}, {"x": "image"})
    for loaders in ((torch_loader, paddle_loader), (paddle_loader, torch_loader)):
        results = padiff_ir.match(pair.torch_model, pair.paddle_model, loaders, keys=keys)
        assert len(results) == 2 and results
        assert results[0].outputs[0].metrics.mean_a != results[1].outputs[0].metrics.mean_a
