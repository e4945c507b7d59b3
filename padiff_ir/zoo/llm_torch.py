"""The torch half of the zoo's decoder LLM: a Hugging Face ``LlamaForCausalLM`` look-alike.

Written like ``transformers``' Llama and Qwen2 (without importing it): ``model.embed_tokens``,
``model.layers.N`` decoder layers with ``input_layernorm``, ``self_attn`` (split ``q_proj``,
``k_proj``, ``v_proj``, ``o_proj``; biases on q, k and v when ``config.qkv_bias``),
``post_attention_layernorm`` and ``mlp`` (split ``gate_proj``, ``up_proj``, ``down_proj``), a
final ``model.norm`` and an ``lm_head`` Linear without bias. Rotary embedding uses the
rotate-half convention, attention is grouped-query (``repeat_kv``) and causal, and the
attention module returns ``(attn_output, attn_weights)`` as Hugging Face's eager attention does.

Values a test may change to inject a bug are read at forward time: each attention's own
``rotary_emb.base``, each attention's ``scaling`` and each RMSNorm's ``eps``.

:mod:`padiff_ir.zoo.llm_paddle` is the PaddleNLP-style port of the same model, with other
parameter names and fused layouts; :mod:`padiff_ir.zoo.llm_weights` converts between them.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from padiff_ir.zoo.configs import LlamaConfig

__all__ = [
    "LlamaAttention",
    "LlamaDecoderLayer",
    "LlamaForCausalLM",
    "LlamaMLP",
    "LlamaModel",
    "LlamaRMSNorm",
    "LlamaRotaryEmbedding",
]

logger = logging.getLogger(__name__)


class LlamaRMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight``, with ``eps`` read at forward time."""

    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.eps)
        return self.weight * hidden_states


class LlamaRotaryEmbedding(nn.Module):
    """``cos`` and ``sin`` of the rotary angles, ``[seq, head_dim]`` in rotate-half order.

    Parameter-free; ``base`` is read at every forward.
    """

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=positions.device)
        exponents = steps / self.head_dim
        inv_freq = 1.0 / (self.base**exponents)
        angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[-x2, x1]`` for ``x = [x1, x2]`` split in halves along the last axis."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(hidden_states: torch.Tensor, groups: int) -> torch.Tensor:
    """``[batch, kv_heads, seq, d]`` -> ``[batch, kv_heads * groups, seq, d]``, heads repeated."""
    if groups == 1:
        return hidden_states
    batch, kv_heads, seq, head_dim = hidden_states.shape
    expanded = hidden_states[:, :, None, :, :].expand(batch, kv_heads, groups, seq, head_dim)
    return expanded.reshape(batch, kv_heads * groups, seq, head_dim)


class LlamaAttention(nn.Module):
    """Grouped-query causal self-attention; returns ``(attn_output, attn_weights)``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.kv_heads = config.kv_heads
        self.head_dim = config.head_dim
        self.groups = config.groups
        self.scaling = self.head_dim**-0.5
        hidden = config.hidden
        kv_width = config.kv_heads * config.head_dim
        self.q_proj = nn.Linear(hidden, hidden, bias=config.qkv_bias)
        self.k_proj = nn.Linear(hidden, kv_width, bias=config.qkv_bias)
        self.v_proj = nn.Linear(hidden, kv_width, bias=config.qkv_bias)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)
        self.rotary_emb = LlamaRotaryEmbedding(config.head_dim, config.rope_base)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, seq, hidden = hidden_states.shape
        q = self.q_proj(hidden_states).view(batch, seq, self.heads, self.head_dim)
        k = self.k_proj(hidden_states).view(batch, seq, self.kv_heads, self.head_dim)
        v = self.v_proj(hidden_states).view(batch, seq, self.kv_heads, self.head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = self.rotary_emb(torch.arange(seq, device=hidden_states.device))
        if cos.dtype != q.dtype:  # a 16-bit model: the angles in its dtype, as HF's Llama
            cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, self.groups), repeat_kv(v, self.groups)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        attn_weights = scores.softmax(dim=-1)
        attn_output = torch.matmul(attn_weights, v).transpose(1, 2).reshape(batch, seq, hidden)
        return self.o_proj(attn_output), attn_weights


class LlamaMLP(nn.Module):
    """SwiGLU: ``down_proj(silu(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden, config.intermediate, bias=False)
        self.up_proj = nn.Linear(config.hidden, config.intermediate, bias=False)
        self.down_proj = nn.Linear(config.intermediate, config.hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm decoder layer: attention then MLP, each with a residual connection."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = LlamaRMSNorm(config.hidden, config.eps)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden, config.eps)
        self.mlp = LlamaMLP(config)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        attn_output = self.self_attn(self.input_layernorm(hidden_states), attention_mask)[0]
        hidden_states = hidden_states + attn_output
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


def causal_mask(
    seq: int, attention_mask: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    """Boolean ``[batch or 1, 1, seq, seq]``: which keys each query may attend to.

    ``attention_mask`` (``[batch, seq]``, 1 for tokens, 0 for padding) hides padded keys.
    """
    allowed = torch.ones(seq, seq, dtype=torch.bool, device=device).tril()[None, None]
    if attention_mask is None:
        return allowed
    return allowed & attention_mask.to(torch.bool)[:, None, None, :]


class LlamaModel(nn.Module):
    """Token embedding, decoder layers and the final norm; returns the last hidden states."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden)
        # std 1/sqrt(hidden), not torch's 1, so tied logits stay of order one
        nn.init.normal_(self.embed_tokens.weight, std=config.hidden**-0.5)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config) for _ in range(config.layers))
        self.norm = LlamaRMSNorm(config.hidden, config.eps)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = causal_mask(input_ids.shape[1], attention_mask, input_ids.device)
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask)
        return self.norm(hidden_states)


class LlamaForCausalLM(nn.Module):
    """The decoder and its ``lm_head``; ``forward`` returns logits ``[batch, seq, vocab]``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.lm_head(self.model(input_ids, attention_mask))
