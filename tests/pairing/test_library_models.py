"""The one matcher on real library models nobody here wrote: Hugging Face ``transformers``
decoders (Llama, Qwen2: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU) with tiny
configs and no downloads. Their forward does not go through the torch ONNX exporter, so every
entry point matches them on eager traces."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import padiff_ir
from padiff_ir.pairing import pair_models

transformers = pytest.importorskip("transformers")

IDS = {"input_ids": np.random.default_rng(0).integers(0, 64, (2, 7)).astype(np.int64)}


def _decoder(name: str, seed: int):
    config_class = getattr(transformers, f"{name}Config")
    model_class = getattr(transformers, f"{name}ForCausalLM")
    config = config_class(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return model_class(config).eval()


def _logits(model) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(IDS["input_ids"])).logits.numpy()


@pytest.mark.parametrize("name", ["Llama", "Qwen2"])
def test_decoders_are_matched_on_exports_by_every_entry_point(name):
    model = _decoder(name, 0)
    other = copy.deepcopy(model)
    matching = pair_models(model, other, IDS, reuse=False)
    # HF decoders export (issue 20 i: ``use_cache=False``; was a trace after a failed export)
    assert matching.stats["graphs"] == "onnx" and "export_failed" not in matching.stats
    pairs = matching.module_map()
    modules = dict(model.named_modules())
    assert pairs == {path: path for path in modules}  # every module, each with itself
    paired = {name for p in matching.param_pairs for name in p.a}
    parameters, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    assert len(matching.param_pairs) == len(paired)  # each tensor with itself, once
    assert set(parameters) <= paired <= {*parameters, *buffers}  # and RoPE's inv_freq
    layer_map = padiff_ir.auto_layer_map(_decoder(name, 0), _decoder(name, 0), IDS)
    assert layer_map.pairs == pairs
    diff = padiff_ir.auto_diff(_decoder(name, 0), _decoder(name, 0), IDS, atol=1e-6, rtol=1e-5)
    assert diff, str(diff)
    assert {p.a: p.b for p in diff.layer_map} == pairs


@pytest.mark.parametrize("name", ["Llama", "Qwen2"])
def test_assign_weight_between_decoders(name):
    source, target = _decoder(name, 0), _decoder(name, 1)
    assert np.abs(_logits(source) - _logits(target)).max() > 1e-3
    padiff_ir.assign_weight(target, source)  # no inputs: the module trees
    np.testing.assert_allclose(_logits(target), _logits(source), atol=1e-6, rtol=1e-6)
