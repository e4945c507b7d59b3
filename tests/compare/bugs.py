"""Paddle layers with one injected bug each, for the localisation tests.

Each class subclasses a zoo layer and changes one thing in ``forward``; the tests swap an
instance's class (weights untouched) so that exactly one module of the pair differs.
"""

from __future__ import annotations

import paddle
from paddle.nn import functional

from padiff_ir.zoo.paddle_models import Attention, Block


class NoResidualBlock(Block):
    """The attention residual is missing."""

    def forward(self, x):
        x = self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class WrongSoftmaxAttention(Attention):
    """Softmax over the query axis instead of the key axis."""

    def forward(self, x):
        qkv = self.qkv(x).reshape([-1, self.tokens, 3, self.heads, self.head_dim])
        qkv = paddle.transpose(qkv, perm=[2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = paddle.matmul(q, paddle.transpose(k, perm=[0, 1, 3, 2])) * self.scale
        attn = functional.softmax(attn, axis=-2)
        x = paddle.transpose(paddle.matmul(attn, v), perm=[0, 2, 1, 3])
        return self.proj(x.reshape([-1, self.tokens, self.dim]))


class ExtraScaleAttention(Attention):
    """The attention logits are scaled twice."""

    def forward(self, x):
        qkv = self.qkv(x).reshape([-1, self.tokens, 3, self.heads, self.head_dim])
        qkv = paddle.transpose(qkv, perm=[2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = paddle.matmul(q, paddle.transpose(k, perm=[0, 1, 3, 2])) * self.scale
        attn = functional.softmax(attn * 2.0, axis=-1)
        x = paddle.transpose(paddle.matmul(attn, v), perm=[0, 2, 1, 3])
        return self.proj(x.reshape([-1, self.tokens, self.dim]))
