"""Hugging Face ``transformers`` decoders in tiny configs (no download), shaped like the zoo's
``llama`` port at ``tiny`` size, for tests that put a real library model on the torch side."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch


def hf_causal_lm(name: str, layers: int) -> Any:
    """``transformers``' ``{name}ForCausalLM`` (``Llama``, ``Qwen2``...) in eval mode, its
    weights drawn from seed 0 without touching torch's global generator; the test is skipped
    without ``transformers``."""
    transformers = pytest.importorskip("transformers")
    config = getattr(transformers, f"{name}Config")(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return getattr(transformers, f"{name}ForCausalLM")(config).eval()


def hf_inputs(ids: np.ndarray) -> dict[str, np.ndarray]:
    """The keyword inputs of such a model: token ids and a full attention mask."""
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}
