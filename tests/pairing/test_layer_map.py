"""LayerMap: editing, PaDiff-style object entries, resolution against models, JSON round trip."""

from __future__ import annotations

import json

import paddle
import pytest
from torch import nn

from padiff_ir.errors import MatchError
from padiff_ir.pairing.assign import auto_layer_map
from padiff_ir.pairing.layer_map import LayerMap
from tests.matching.native_models import PAIRS, TorchMha


@pytest.fixture(scope="module")
def cnn():
    return PAIRS["cnn_renamed_wrapped"]()


def test_json_round_trip(tmp_path):
    layer_map = LayerMap({"conv1": "body.0"}, ignored_b={"body.8"})
    layer_map.pin("attn", "self_attn", black_box=True)
    layer_map.ignore("head.drop", side="a")
    layer_map.ignore_recursively("aux", side="a")
    layer_map.black_box("blocks.0")
    path = tmp_path / "layer_map.json"
    layer_map.save(path)
    loaded = LayerMap.load(path)
    assert loaded == layer_map
    data = json.loads(path.read_text())
    assert data["pairs"] == {"conv1": "body.0", "attn": "self_attn"}
    assert data["black_box_a"] == ["attn", "blocks.0"]
    assert data["ignored_self_a"] == ["head.drop"]
    assert data["ignored_a"] == ["aux"]
    assert LayerMap.from_dict(loaded.to_dict()).to_dict() == data


def test_map_objects_in_either_order(cnn):
    torch_model, paddle_model = cnn.torch_model, cnn.paddle_model
    expected = {"conv1": "body.0", "fc": "classifier"}
    for mapping in (
        {torch_model.conv1: paddle_model.body[0], torch_model.fc: paddle_model.classifier},
        {paddle_model.body[0]: torch_model.conv1, paddle_model.classifier: torch_model.fc},
    ):
        layer_map = LayerMap()
        layer_map.map = mapping
        assert not layer_map.is_resolved
        with pytest.raises(MatchError, match="call resolve"):
            layer_map.to_dict()
        for model_a, model_b, pairs in (
            (torch_model, paddle_model, expected),
            (paddle_model, torch_model, {b: a for a, b in expected.items()}),
        ):
            resolved = layer_map.resolve(model_a, model_b)
            assert resolved.pairs == pairs
            assert resolved.black_box_a == set(pairs)  # PaDiff's map entries are black boxes


def test_object_ignores_and_classes(cnn):
    layer_map = LayerMap()
    layer_map.ignore(cnn.paddle_model.body[8])
    layer_map.ignore_recursively([cnn.torch_model.avg])
    layer_map.ignore_class(cnn.paddle_model, paddle.nn.ReLU)
    resolved = layer_map.resolve(cnn.torch_model, cnn.paddle_model)
    assert resolved.ignored_self_b == {"body.2", "body.6", "body.8"}
    assert resolved.ignored_a == {"avg"}


def test_resolve_names_bad_paths_and_objects(cnn):
    with pytest.raises(MatchError, match="pinned path 'conv9' is not a module of model A"):
        LayerMap({"conv9": "body.0"}).resolve(cnn.torch_model, cnn.paddle_model)
    with pytest.raises(MatchError, match="pinned path 'body.99' is not a module of model B"):
        LayerMap({"conv1": "body.99"}).resolve(cnn.torch_model, cnn.paddle_model)
    with pytest.raises(MatchError, match="pinned to both"):
        LayerMap({"conv1": "body.0", "conv2": "body.0"}).resolve(cnn.torch_model, cnn.paddle_model)
    stray = LayerMap()
    stray.pin(nn.Linear(2, 2), cnn.paddle_model.classifier)
    with pytest.raises(MatchError, match="is in neither model"):
        stray.resolve(cnn.torch_model, cnn.paddle_model)
    same_side = LayerMap()
    same_side.pin(cnn.torch_model.conv1, cnn.torch_model.conv2)
    with pytest.raises(MatchError, match="both are in model A"):
        same_side.resolve(cnn.torch_model, cnn.paddle_model)
    with pytest.raises(MatchError, match="side='a' or side='b'"):
        LayerMap().ignore("fc")


def test_auto_layer_map_and_from_matching(cnn):
    layer_map = auto_layer_map(cnn.torch_model, cnn.paddle_model, cnn.inputs)
    assert layer_map.pairs["bn2"] == "body.5"
    assert layer_map.pairs[""] == ""
    assert LayerMap.from_dict(layer_map.to_dict()) == layer_map
    assert repr(layer_map).startswith("LayerMap(")


def test_black_box_pin_of_attention():
    torch_model = TorchMha()
    paddle_model = PAIRS["mha"]().paddle_model
    layer_map = LayerMap()
    layer_map.map = {paddle_model.attn: torch_model.attn}
    resolved = layer_map.resolve(torch_model, paddle_model)
    assert resolved.pairs == {"attn": "attn"}
    assert resolved.black_box_b == {"attn"}
