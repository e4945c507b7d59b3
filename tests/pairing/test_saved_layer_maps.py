"""Layer maps saved by earlier versions load and copy weights as they did.

``data/layer_map_v1_main.json`` was written by ``auto_layer_map`` of the zoo's tiny Llama pair
with a ``1 + w`` norm (``overrides={"norm_offset": True}``), by the code before transforms were
typed (main at 2330d2f): its layouts are the dicts of that time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import torch

import padiff_ir
from padiff_ir.matching.layouts import RowLayout
from padiff_ir.matching.transform_types import ArrayTransform, transform_from_dict
from padiff_ir.pairing import pair_models
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.pairing.layout_probes import apply_layouts
from padiff_ir.zoo import get_pair

SAVED = Path(__file__).parent / "data" / "layer_map_v1_main.json"
OVERRIDES = {"norm_offset": True}


def test_an_old_layer_map_loads_and_saves_as_the_same_json(tmp_path):
    loaded = LayerMap.load(SAVED)
    again = tmp_path / "again.json"
    loaded.save(again)
    assert json.loads(again.read_text()) == json.loads(SAVED.read_text())


def test_an_old_layer_map_copies_the_weights_without_inputs():
    loaded = LayerMap.load(SAVED)
    source = get_pair("llama", "tiny", overrides=OVERRIDES, seed=5)
    target = get_pair("llama", "tiny", overrides=OVERRIDES, seed=6).paddle_model
    ids = source.inputs["input_ids"]
    padiff_ir.assign_weight(target, source.torch_model, layer_map=loaded)  # no probing
    with torch.no_grad():
        want = source.torch_model(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(target(paddle.to_tensor(ids)).numpy(), want, atol=1e-5)


def test_an_old_layer_maps_layouts_become_typed_transforms():
    loaded = LayerMap.load(SAVED)
    pair = get_pair("llama", "tiny", overrides=OVERRIDES, seed=0)
    matching = pair_models(pair.torch_model, pair.paddle_model, reuse=False)
    laid_out = apply_layouts(matching, loaded.layouts)
    transforms = [p.transform for p in laid_out.param_pairs if "layer-map" in p.evidence]
    layouts = {t.layout for t in transforms if isinstance(t, ArrayTransform) and t.layout}
    assert RowLayout("fused_order", axis=1, order=(1, 0)) in layouts
    assert any(isinstance(t, ArrayTransform) and t.offset == -1.0 for t in transforms)
    assert all(transform_from_dict(t.to_dict()) == t for t in transforms)  # JSON round trip
