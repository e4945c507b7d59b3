"""The ground-truth weight conversion of the zoo's decoder LLM, torch layout <-> paddle layout.

Written by hand in plain numpy, one explicit branch per layout of
:class:`~padiff_ir.zoo.configs.LlamaConfig` (it does not use :mod:`padiff_ir.matching`): this
is what an automatic layout discovery must reproduce. The torch side is Hugging Face's
(:mod:`.llm_torch`), the paddle side PaddleNLP's (:mod:`.llm_paddle`):

==============================================  ================================================
torch                                           paddle
==============================================  ================================================
``model.embed_tokens.weight [V, H]``            ``llama.embed_tokens.weight [V, H]``
``...self_attn.{q,k,v}_proj.weight [o, H]``     ``...self_attn.qkv_proj.weight [H, q+2kv]``:
                                                RoPE rows permuted, fused, transposed
``...self_attn.{q,k,v}_proj.bias``              ``...self_attn.qkv_proj.bias`` (same rows)
``...self_attn.o_proj.weight [H, H]``           ``...self_attn.o_proj.weight`` transposed
``...mlp.{gate,up}_proj.weight [I, H]``         ``...mlp.gate_up_fused_proj.weight [H, 2I]``
``...mlp.down_proj.weight [H, I]``              ``...mlp.down_proj.weight [I, H]``
``...*_layernorm.weight``, ``model.norm``       same under ``llama.``, minus one with
                                                ``norm_offset``
``lm_head.weight [V, H]``                       ``lm_head.weight [H, V]`` (``[V, H]``, the
                                                embedding itself, when tied)
==============================================  ================================================

Every step is a permutation, a transpose or (with ``norm_offset``) ``w - 1``, which is exact in
float32 for weights in ``[0.5, 2]``: torch -> paddle -> torch gives back the same arrays there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from padiff_ir.errors import WeightAssignError
from padiff_ir.frameworks import get_framework
from padiff_ir.zoo.configs import LlamaConfig

__all__ = ["copy_llama_torch_to_paddle", "llama_paddle_to_torch", "llama_torch_to_paddle"]

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


# -- row layouts (arrays whose first axis is the output features: torch weights, biases) ----


def _rope_to_paddle(rows: np.ndarray, heads: int) -> np.ndarray:
    """Rotate-half rows ``[x1 | x2]`` of each head -> interleaved pairs ``x1_0, x2_0, x1_1...``."""
    per_head = rows.reshape(heads, 2, -1, *rows.shape[1:])
    return np.swapaxes(per_head, 1, 2).reshape(rows.shape)


def _rope_to_torch(rows: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of :func:`_rope_to_paddle`."""
    per_head = rows.reshape(heads, -1, 2, *rows.shape[1:])
    return np.swapaxes(per_head, 1, 2).reshape(rows.shape)


def fuse_qkv(q: np.ndarray, k: np.ndarray, v: np.ndarray, config: LlamaConfig) -> np.ndarray:
    """Torch's ``q``, ``k``, ``v`` rows -> the rows of paddle's fused ``qkv_proj``."""
    if config.rope == "interleaved":
        q, k = _rope_to_paddle(q, config.heads), _rope_to_paddle(k, config.kv_heads)
    if config.qkv_layout == "concat":
        return np.concatenate([q, k, v])
    # grouped; interleaved is grouped with one query head per key-value head
    tail = q.shape[1:]
    groups = [
        q.reshape(config.kv_heads, -1, *tail),
        k.reshape(config.kv_heads, -1, *tail),
        v.reshape(config.kv_heads, -1, *tail),
    ]
    return np.concatenate(groups, axis=1).reshape(-1, *tail)


def split_qkv(fused: np.ndarray, config: LlamaConfig) -> tuple[np.ndarray, ...]:
    """Inverse of :func:`fuse_qkv`: ``(q, k, v)`` rows in torch's layout."""
    d, tail = config.head_dim, fused.shape[1:]
    if config.qkv_layout == "concat":
        q_rows, kv_rows = config.heads * d, config.kv_heads * d
        q, k, v = np.split(fused, [q_rows, q_rows + kv_rows])
    else:
        per_group = fused.reshape(config.kv_heads, -1, *tail)
        q_rows = config.groups * d
        q, k, v = np.split(per_group, [q_rows, q_rows + d], axis=1)
        q, k, v = (t.reshape(-1, *tail) for t in (q, k, v))
    if config.rope == "interleaved":
        q, k = _rope_to_torch(q, config.heads), _rope_to_torch(k, config.kv_heads)
    return q, k, v


def fuse_gate_up(gate: np.ndarray, up: np.ndarray, config: LlamaConfig) -> np.ndarray:
    """Torch's ``gate`` and ``up`` rows -> the rows of paddle's ``gate_up_fused_proj``."""
    if config.gate_up_layout == "gate_up":
        return np.concatenate([gate, up])
    if config.gate_up_layout == "up_gate":
        return np.concatenate([up, gate])
    return np.stack([gate, up], axis=1).reshape(-1, *gate.shape[1:])


def split_gate_up(fused: np.ndarray, config: LlamaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`fuse_gate_up`: ``(gate, up)`` rows in torch's layout."""
    if config.gate_up_layout == "interleaved":
        pairs = fused.reshape(-1, 2, *fused.shape[1:])
        return pairs[:, 0], pairs[:, 1]
    first, second = np.split(fused, 2)
    return (first, second) if config.gate_up_layout == "gate_up" else (second, first)


def _transposed(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T)


def _norm_to_paddle(weight: np.ndarray, config: LlamaConfig) -> np.ndarray:
    return weight - np.float32(1.0) if config.norm_offset else weight.copy()


def _norm_to_torch(weight: np.ndarray, config: LlamaConfig) -> np.ndarray:
    return weight + np.float32(1.0) if config.norm_offset else weight.copy()


# -- whole models -----------------------------------------------------------------------------


def _take(state: Mapping[str, np.ndarray], name: str, side: str) -> np.ndarray:
    if name not in state:
        raise WeightAssignError(
            f"the {side} Llama state has no {name!r}; give the full state dict of a model built "
            "from the same LlamaConfig"
        )
    return np.asarray(state[name])


def llama_torch_to_paddle(state: Mapping[str, np.ndarray], config: LlamaConfig) -> Arrays:
    """The paddle ``LlamaForCausalLM`` arrays (by paddle name) from the torch model's state.

    Raises:
        WeightAssignError: a tensor the config implies is missing from ``state``.
    """

    def get(name: str) -> np.ndarray:
        return _take(state, name, "torch")

    embedding = get("model.embed_tokens.weight").copy()
    out: Arrays = {"llama.embed_tokens.weight": embedding}
    for i in range(config.layers):
        src, dst = f"model.layers.{i}", f"llama.layers.{i}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            out[f"{dst}.{norm}.weight"] = _norm_to_paddle(get(f"{src}.{norm}.weight"), config)
        q, k, v = (get(f"{src}.self_attn.{p}_proj.weight") for p in "qkv")
        out[f"{dst}.self_attn.qkv_proj.weight"] = _transposed(fuse_qkv(q, k, v, config))
        if config.qkv_bias:
            q_bias, k_bias, v_bias = (get(f"{src}.self_attn.{p}_proj.bias") for p in "qkv")
            out[f"{dst}.self_attn.qkv_proj.bias"] = fuse_qkv(q_bias, k_bias, v_bias, config)
        out[f"{dst}.self_attn.o_proj.weight"] = _transposed(get(f"{src}.self_attn.o_proj.weight"))
        gate, up = get(f"{src}.mlp.gate_proj.weight"), get(f"{src}.mlp.up_proj.weight")
        out[f"{dst}.mlp.gate_up_fused_proj.weight"] = _transposed(fuse_gate_up(gate, up, config))
        out[f"{dst}.mlp.down_proj.weight"] = _transposed(get(f"{src}.mlp.down_proj.weight"))
    out["llama.norm.weight"] = _norm_to_paddle(get("model.norm.weight"), config)
    head = get("lm_head.weight")
    out["lm_head.weight"] = embedding if config.tie_embeddings else _transposed(head)
    return out


def llama_paddle_to_torch(state: Mapping[str, np.ndarray], config: LlamaConfig) -> Arrays:
    """Inverse of :func:`llama_torch_to_paddle`: the torch model's arrays by torch name.

    Raises:
        WeightAssignError: a tensor the config implies is missing from ``state``.
    """

    def get(name: str) -> np.ndarray:
        return _take(state, name, "paddle")

    embedding = get("llama.embed_tokens.weight").copy()
    out: Arrays = {"model.embed_tokens.weight": embedding}
    for i in range(config.layers):
        src, dst = f"llama.layers.{i}", f"model.layers.{i}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            out[f"{dst}.{norm}.weight"] = _norm_to_torch(get(f"{src}.{norm}.weight"), config)
        fused = get(f"{src}.self_attn.qkv_proj.weight").T
        for name, rows in zip("qkv", split_qkv(fused, config), strict=True):
            out[f"{dst}.self_attn.{name}_proj.weight"] = np.ascontiguousarray(rows)
        if config.qkv_bias:
            fused_bias = get(f"{src}.self_attn.qkv_proj.bias")
            for name, rows in zip("qkv", split_qkv(fused_bias, config), strict=True):
                out[f"{dst}.self_attn.{name}_proj.bias"] = np.ascontiguousarray(rows)
        out[f"{dst}.self_attn.o_proj.weight"] = _transposed(get(f"{src}.self_attn.o_proj.weight"))
        gate, up = split_gate_up(get(f"{src}.mlp.gate_up_fused_proj.weight").T, config)
        out[f"{dst}.mlp.gate_proj.weight"] = np.ascontiguousarray(gate)
        out[f"{dst}.mlp.up_proj.weight"] = np.ascontiguousarray(up)
        out[f"{dst}.mlp.down_proj.weight"] = _transposed(get(f"{src}.mlp.down_proj.weight"))
    out["model.norm.weight"] = _norm_to_torch(get("llama.norm.weight"), config)
    head = get("lm_head.weight")
    out["lm_head.weight"] = embedding if config.tie_embeddings else _transposed(head)
    return out


def copy_llama_torch_to_paddle(torch_model: Any, paddle_model: Any, config: LlamaConfig) -> None:
    """Write :func:`llama_torch_to_paddle` of ``torch_model``'s weights into ``paddle_model``.

    Nothing is written unless every paddle tensor gets an array of its shape.

    Raises:
        WeightAssignError: a tensor is missing on either side or has another shape.
    """
    torch_framework, paddle_framework = get_framework("torch"), get_framework("paddle")
    state = {
        name: torch_framework.to_numpy(tensor)
        for name, tensor in torch_framework.named_tensors(torch_model).items()
    }
    arrays = llama_torch_to_paddle(state, config)
    targets = paddle_framework.named_tensors(paddle_model)
    problems = [f"paddle {name!r} has no converted array" for name in targets.keys() - arrays]
    problems += [f"no paddle tensor {name!r} to receive it" for name in arrays.keys() - targets]
    problems += [
        f"paddle {name!r} has shape {list(paddle_framework.shape(target))} but the converted "
        f"array has {list(arrays[name].shape)}"
        for name, target in targets.items()
        if name in arrays and paddle_framework.shape(target) != arrays[name].shape
    ]
    if problems:
        raise WeightAssignError(
            f"cannot copy torch {type(torch_model).__name__} into paddle "
            f"{type(paddle_model).__name__} through the Llama converter:\n  - "
            + "\n  - ".join(sorted(problems))
            + "\nBuild both models from the same LlamaConfig."
        )
    for name, target in targets.items():
        paddle_framework.write(target, arrays[name])
    logger.debug("copied %d Llama tensors from torch to paddle (%s)", len(arrays), config)
