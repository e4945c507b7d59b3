"""The paddle half of the zoo's decoder LLM: a PaddleNLP-style port of :mod:`.llm_torch`.

Written the way PaddleNLP writes ``LlamaForCausalLM``: ``llama.embed_tokens``,
``llama.layers.N`` with ``input_layernorm`` / ``post_attention_layernorm`` (RMSNorm with a
``weight`` parameter), ``self_attn.qkv_proj`` (ONE fused Linear, bias when ``config.qkv_bias``),
``self_attn.o_proj``, ``mlp.gate_up_fused_proj`` (ONE fused Linear), ``mlp.down_proj``,
``llama.norm`` and an ``lm_head`` that holds a ``[hidden, vocab]`` ``weight`` applied with
``matmul`` (the token embedding, ``transpose_y``, when ``config.tie_embeddings``). No
parameter shares a name with the torch model.

The layout of the fused projections, the rotary convention and the RMSNorm offset follow the
config (see :class:`padiff_ir.zoo.configs.LlamaConfig`). The attention returns only its
output. As in Paddle LLM libraries, :meth:`LlamaForCausalLM.forward` is wrapped by a decorator
(a ``functools.wraps`` wrapper taking ``*args, **kwargs``), which dy2static, and so
``paddle.jit.save`` and paddle2onnx, cannot convert: this model only runs eagerly.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import paddle
from paddle import nn
from paddle.nn import functional

from padiff_ir.zoo.configs import LlamaConfig

__all__ = [
    "LlamaAttention",
    "LlamaDecoderLayer",
    "LlamaForCausalLM",
    "LlamaLMHead",
    "LlamaMLP",
    "LlamaModel",
    "LlamaRMSNorm",
    "LlamaRotaryEmbedding",
]

logger = logging.getLogger(__name__)

_RENAMED_KWARGS = {"attn_mask": "attention_mask"}


def accepts_legacy_kwargs(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Let callers use old keyword names (``attn_mask``), as Paddle LLM libraries' decorators do."""

    @functools.wraps(forward)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old, new in _RENAMED_KWARGS.items():
            if old in kwargs:
                kwargs[new] = kwargs.pop(old)
        return forward(*args, **kwargs)

    return wrapper


class LlamaRMSNorm(nn.Layer):
    """``x / sqrt(mean(x^2) + eps) * w``, or ``* (1 + w)`` with ``offset`` (Gemma style)."""

    def __init__(self, hidden: int, eps: float, offset: bool) -> None:
        super().__init__()
        self.weight = self.create_parameter(
            shape=[hidden], default_initializer=nn.initializer.Constant(0.0 if offset else 1.0)
        )
        self.variance_epsilon = eps
        self.offset = offset

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = paddle.rsqrt(variance + self.variance_epsilon) * hidden_states
        scale = self.weight + 1.0 if self.offset else self.weight
        return hidden_states * scale


class LlamaRotaryEmbedding(nn.Layer):
    """``cos`` and ``sin`` of the rotary angles, ``[seq, head_dim / 2]``.

    Parameter-free; ``base`` is read at every forward.
    """

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(self, seq_len: int) -> tuple[paddle.Tensor, paddle.Tensor]:
        exponents = paddle.arange(0, self.head_dim, 2, dtype="float32") / self.head_dim
        inv_freq = 1.0 / (self.base**exponents)
        positions = paddle.arange(seq_len, dtype="float32")
        angles = positions.unsqueeze(1) * inv_freq.unsqueeze(0)
        return paddle.cos(angles), paddle.sin(angles)


def apply_rotary(x: paddle.Tensor, cos: paddle.Tensor, sin: paddle.Tensor, *, interleaved: bool):
    """Rotate ``x`` (``[batch, seq, heads, head_dim]``) by the angles of ``cos`` / ``sin``.

    Interleaved rotates the pairs ``(0, 1), (2, 3), ...``; otherwise the halves (rotate-half).
    """
    batch, seq, heads, head_dim = x.shape
    cos, sin = cos.reshape([1, seq, 1, head_dim // 2]), sin.reshape([1, seq, 1, head_dim // 2])
    if interleaved:
        pairs = x.reshape([batch, seq, heads, head_dim // 2, 2])
        x0, x1 = pairs[..., 0], pairs[..., 1]
        rotated = paddle.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], axis=-1)
        return rotated.reshape([batch, seq, heads, head_dim])
    x0, x1 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
    return paddle.concat([x0 * cos - x1 * sin, x1 * cos + x0 * sin], axis=-1)


class LlamaAttention(nn.Layer):
    """Grouped-query causal self-attention through one fused ``qkv_proj``; returns the output."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.num_heads = config.heads
        self.num_key_value_heads = config.kv_heads
        self.num_key_value_groups = config.groups
        self.head_dim = config.head_dim
        self.qkv_layout = config.qkv_layout
        self.interleaved_rope = config.rope == "interleaved"
        self.scaling = self.head_dim**-0.5
        fused_width = (config.heads + 2 * config.kv_heads) * config.head_dim
        self.qkv_proj = nn.Linear(
            config.hidden, fused_width, bias_attr=None if config.qkv_bias else False
        )
        self.o_proj = nn.Linear(config.hidden, config.hidden, bias_attr=False)
        self.rotary_emb = LlamaRotaryEmbedding(config.head_dim, config.rope_base)

    def _split_qkv(self, mixed: paddle.Tensor) -> tuple[paddle.Tensor, ...]:
        """``q [b, s, heads, d]``, ``k`` and ``v [b, s, kv_heads, d]`` from the fused output."""
        batch, seq, _ = mixed.shape
        d, heads, kv_heads = self.head_dim, self.num_heads, self.num_key_value_heads
        if self.qkv_layout == "concat":
            q, k, v = paddle.split(mixed, [heads * d, kv_heads * d, kv_heads * d], axis=-1)
        else:  # grouped, or interleaved (grouped with one query head per group)
            mixed = mixed.reshape([batch, seq, kv_heads, (self.num_key_value_groups + 2) * d])
            q, k, v = paddle.split(mixed, [self.num_key_value_groups * d, d, d], axis=-1)
        return (
            q.reshape([batch, seq, heads, d]),
            k.reshape([batch, seq, kv_heads, d]),
            v.reshape([batch, seq, kv_heads, d]),
        )

    def forward(self, hidden_states: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
        batch, seq, hidden = hidden_states.shape
        q, k, v = self._split_qkv(self.qkv_proj(hidden_states))
        cos, sin = self.rotary_emb(seq)
        q = apply_rotary(q, cos, sin, interleaved=self.interleaved_rope)
        k = apply_rotary(k, cos, sin, interleaved=self.interleaved_rope)
        q, k, v = (paddle.transpose(t, perm=[0, 2, 1, 3]) for t in (q, k, v))
        if self.num_key_value_groups > 1:
            k = paddle.repeat_interleave(k, self.num_key_value_groups, axis=1)
            v = paddle.repeat_interleave(v, self.num_key_value_groups, axis=1)
        scores = paddle.matmul(q, k, transpose_y=True) * self.scaling
        lowest = paddle.full_like(scores, paddle.finfo(scores.dtype).min)
        probs = functional.softmax(paddle.where(attention_mask, scores, lowest), axis=-1)
        output = paddle.transpose(paddle.matmul(probs, v), perm=[0, 2, 1, 3])
        return self.o_proj(output.reshape([batch, seq, hidden]))


class LlamaMLP(nn.Layer):
    """SwiGLU through one fused ``gate_up_fused_proj`` laid out as ``config.gate_up_layout``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate
        self.gate_up_layout = config.gate_up_layout
        self.gate_up_fused_proj = nn.Linear(config.hidden, 2 * config.intermediate, bias_attr=False)
        self.down_proj = nn.Linear(config.intermediate, config.hidden, bias_attr=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        fused = self.gate_up_fused_proj(x)
        if self.gate_up_layout == "interleaved":
            pairs = fused.reshape([*fused.shape[:-1], self.intermediate_size, 2])
            gate, up = pairs[..., 0], pairs[..., 1]
        elif self.gate_up_layout == "gate_up":
            gate, up = paddle.split(fused, 2, axis=-1)
        else:
            up, gate = paddle.split(fused, 2, axis=-1)
        return self.down_proj(functional.silu(gate) * up)


class LlamaDecoderLayer(nn.Layer):
    """Pre-norm decoder layer: attention then MLP, each with a residual connection."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = LlamaRMSNorm(config.hidden, config.eps, config.norm_offset)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden, config.eps, config.norm_offset)
        self.mlp = LlamaMLP(config)

    def forward(self, hidden_states: paddle.Tensor, attention_mask: paddle.Tensor) -> paddle.Tensor:
        residual = hidden_states
        hidden_states = residual + self.self_attn(
            self.input_layernorm(hidden_states), attention_mask
        )
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class LlamaModel(nn.Layer):
    """Token embedding, decoder layers and the final norm; returns the last hidden states."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden)
        self.layers = nn.LayerList([LlamaDecoderLayer(config) for _ in range(config.layers)])
        self.norm = LlamaRMSNorm(config.hidden, config.eps, config.norm_offset)

    def forward(
        self, input_ids: paddle.Tensor, attention_mask: paddle.Tensor | None = None
    ) -> paddle.Tensor:
        seq = input_ids.shape[1]
        mask = paddle.tril(paddle.ones([seq, seq], dtype="bool")).reshape([1, 1, seq, seq])
        if attention_mask is not None:
            keys = attention_mask.astype("bool").reshape([attention_mask.shape[0], 1, 1, seq])
            mask = paddle.logical_and(mask, keys)
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask)
        return self.norm(hidden_states)


class LlamaLMHead(nn.Layer):
    """``hidden_states @ weight``: ``weight`` is ``[hidden, vocab]``, or the ``[vocab, hidden]``
    token embedding applied with ``transpose_y`` when the embeddings are tied."""

    def __init__(self, config: LlamaConfig, tied_weight: paddle.Tensor | None = None) -> None:
        super().__init__()
        self.transpose_y = tied_weight is not None
        if tied_weight is not None:
            self.weight = tied_weight
        else:
            self.weight = self.create_parameter(shape=[config.hidden, config.vocab_size])

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        return paddle.matmul(hidden_states, self.weight, transpose_y=self.transpose_y)


class LlamaForCausalLM(nn.Layer):
    """``llama`` and ``lm_head``; ``forward`` returns logits ``[batch, seq, vocab]``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.llama = LlamaModel(config)
        tied = self.llama.embed_tokens.weight if config.tie_embeddings else None
        self.lm_head = LlamaLMHead(config, tied)

    @accepts_legacy_kwargs
    def forward(
        self, input_ids: paddle.Tensor, attention_mask: paddle.Tensor | None = None
    ) -> paddle.Tensor:
        return self.lm_head(self.llama(input_ids, attention_mask))
