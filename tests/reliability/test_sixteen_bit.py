"""16-bit weights read as numbers everywhere (issue 24): bfloat16 initializers in explanations
and weight writes, 16-bit weights copied exactly, and inputs rounded the same way on both sides
of the native path."""

from __future__ import annotations

import re

import numpy as np
import pytest

import padiff_ir
from padiff_ir.compare.culprits.explain import param_diffs
from padiff_ir.compare.weights import assign_into_graph, initializers
from padiff_ir.frameworks import get_framework
from padiff_ir.pairing.graphs import pair_models
from tests.reliability.interface_models import (
    PaddleHalfEmbedding,
    PaddleTiedPair,
    TorchHalfEmbedding,
    TorchTiedPair,
)
from tests.reliability.models import inputs

IDS = np.array([[1, 2, 3], [4, 5, 10]], np.int64)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_assign_weight_copies_16_bit_weights_exactly(guard, dtype):
    torch_model, paddle_model = TorchHalfEmbedding(dtype), PaddleHalfEmbedding(dtype)
    guard.watch(torch_model)
    padiff_ir.assign_weight(paddle_model, torch_model)
    want = get_framework("torch").to_numpy(torch_model.embed.weight)
    np.testing.assert_array_equal(get_framework("paddle").to_numpy(paddle_model.embed.weight), want)
    back = TorchHalfEmbedding(dtype)
    with_paddle_weights = PaddleHalfEmbedding(dtype)
    padiff_ir.assign_weight(with_paddle_weights, torch_model)
    padiff_ir.assign_weight(back, with_paddle_weights)
    np.testing.assert_array_equal(get_framework("torch").to_numpy(back.embed.weight), want)


def test_bfloat16_initializers_are_read_as_numbers(guard):
    model = TorchHalfEmbedding()
    guard.watch(model)
    read = initializers(padiff_ir.export(model, IDS))["embed.weight"]
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, get_framework("torch").to_numpy(model.embed.weight))


def test_weights_written_into_a_bfloat16_graph_keep_their_values(guard):
    model_a, model_b = TorchHalfEmbedding(), PaddleHalfEmbedding()
    guard.watch(model_a, model_b)
    exported_a, exported_b = padiff_ir.export(model_a, IDS), padiff_ir.export(model_b, IDS)
    assign_into_graph(pair_models(model_a, model_b, IDS), exported_a, exported_b)
    written = initializers(exported_b)["embed.weight"]
    np.testing.assert_array_equal(written, get_framework("torch").to_numpy(model_a.embed.weight))


def test_a_bug_in_one_bfloat16_weight_is_explained_on_that_weight_with_its_size(guard):
    model_a, model_b = TorchHalfEmbedding(), PaddleHalfEmbedding()
    guard.watch(model_a)
    padiff_ir.assign_weight(model_b, model_a)
    paddle = get_framework("paddle")
    weight = paddle.to_numpy(model_b.embed.weight)
    weight[2, 1] += 0.5
    paddle.write(model_b.embed.weight, weight)
    size = float(abs(paddle.to_numpy(model_b.embed.weight) - weight + 0.5)[2, 1])
    matching = pair_models(model_a, model_b, IDS)
    params_a = initializers(padiff_ir.export(model_a, IDS))
    params_b = initializers(padiff_ir.export(model_b, IDS))
    lines = [
        line
        for pair in matching.module_pairs
        if pair.a
        for line in param_diffs(pair, matching, params_a, params_b, atol=1e-6, rtol=1e-6)
    ]
    assert len(lines) == 1 and "embed.weight" in lines[0], lines
    found = float(re.search(r"max abs ([0-9.e+-]+)", lines[0]).group(1))
    assert found == pytest.approx(size, rel=1e-2)


def test_the_native_path_rounds_inputs_for_a_float16_model_on_both_sides(guard):
    model_a, model_b = TorchTiedPair(tied=False).half(), PaddleTiedPair(tied=False)
    guard.watch(model_a)
    result = padiff_ir.auto_diff(model_a, model_b, inputs())  # float16 vs float32: diverged
    assert "the inputs differ: the models were not run" not in result.notes
    assert all(d.ok for d in result.steps[0].inputs)
    assert result.steps[0].forward, "the models were not run"
    loose = padiff_ir.auto_diff(model_a, model_b, inputs(), atol=1e-2, rtol=1e-2)
    assert loose.ok, loose.notes


def test_match_feeds_a_float16_model_and_a_float32_one_the_same_values(guard):
    model_a, model_b = TorchTiedPair(tied=False).half().eval(), PaddleTiedPair(tied=False).eval()
    guard.watch(model_a)
    result = padiff_ir.match(model_a, model_b, inputs(), assign_weights=True, atol=1e-2, rtol=1e-2)
    assert result.ok, [str(c) for c in result.culprits]
    model_b.second.bias.set_value(model_b.second.bias.numpy() + 0.5)
    found = padiff_ir.match(model_a, model_b, inputs(), atol=1e-2, rtol=1e-2)
    assert [c.module_b for c in found.culprits] == ["second"]


def test_a_float16_model_and_a_float32_one_are_paired_on_their_exports(guard):
    model_a, model_b = TorchTiedPair(tied=False).half().eval(), PaddleTiedPair(tied=False).eval()
    guard.watch(model_a, model_b)
    matching = pair_models(model_a, model_b, inputs())
    assert matching.stats["graphs"] == "onnx", matching.stats.get("export_failed")
    assert len(matching.param_pairs) == 4


def test_match_casts_float32_inputs_for_float16_models_on_both_sides(guard):
    model_a = TorchTiedPair(tied=False).half().eval()
    model_b = TorchTiedPair(tied=False).half().eval()
    guard.watch(model_a, model_b)
    assert padiff_ir.match(model_a, model_b, inputs())


def test_a_comparison_feeds_a_float16_model_and_a_float32_one_the_same_values(guard):
    model_a, model_b = TorchTiedPair(tied=False).half().eval(), PaddleTiedPair(tied=False).eval()
    guard.watch(model_a)
    padiff_ir.assign_weight(model_b, model_a, inputs=inputs())
    with padiff_ir.Comparison(model_a, model_b, inputs(), atol=1e-2, rtol=1e-2) as comparison:
        assert comparison.check(inputs(seed=1))
