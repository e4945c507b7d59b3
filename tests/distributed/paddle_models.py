"""The paddle port of the decoder stack: unsharded, and tensor-parallel with paddle's own
collectives (``paddle.distributed.all_reduce``/``all_gather`` on gloo, forward only: fleet's
``ColumnParallelLinear`` does not run on CPU, its ``c_identity`` has no CPU kernel). The shards
carry fleet's attributes (``is_distributed``, ``split_axis``)."""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.distributed as dist
from paddle import nn

from tests.distributed.models import Config, shard_of, style_of


class ColumnParallelLinear(nn.Layer):
    def __init__(self, n_in, n_out, world, gather_output=False):
        super().__init__()
        self.world, self.gather_output = world, gather_output
        self.weight = self.create_parameter([n_in, n_out // world])
        self.bias = self.create_parameter([n_out // world], is_bias=True)
        self.weight.is_distributed, self.weight.split_axis = True, 1
        self.bias.is_distributed, self.bias.split_axis = True, 0

    def forward(self, x):
        y = paddle.matmul(x, self.weight) + self.bias
        if not self.gather_output:
            return y
        parts = []
        dist.all_gather(parts, y)
        return paddle.concat(parts, axis=-1)


class RowParallelLinear(nn.Layer):
    def __init__(self, n_in, n_out, world):
        super().__init__()
        self.input_is_parallel = True
        self.weight = self.create_parameter([n_in // world, n_out])
        self.bias = self.create_parameter([n_out], is_bias=True)
        self.weight.is_distributed, self.weight.split_axis = True, 0

    def forward(self, x):
        y = paddle.matmul(x, self.weight)
        dist.all_reduce(y)
        return y + self.bias


class Attention(nn.Layer):
    def __init__(self, cfg: Config, linear):
        super().__init__()
        self.head_dim = cfg.hidden // cfg.heads
        self.q, self.k, self.v = (linear("column", cfg.hidden, cfg.hidden) for _ in range(3))
        self.o = linear("row", cfg.hidden, cfg.hidden)

    def forward(self, x):
        b, s = x.shape[0], x.shape[1]

        def heads(t):
            return t.reshape([b, s, -1, self.head_dim]).transpose([0, 2, 1, 3])

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        att = paddle.nn.functional.softmax(
            paddle.matmul(q, k, transpose_y=True) / math.sqrt(self.head_dim), axis=-1
        )
        return self.o(paddle.matmul(att, v).transpose([0, 2, 1, 3]).reshape([b, s, -1]))


class MLP(nn.Layer):
    def __init__(self, cfg: Config, linear):
        super().__init__()
        self.up = linear("column", cfg.hidden, cfg.ffn)
        self.act = nn.GELU()
        self.down = linear("row", cfg.ffn, cfg.hidden)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class Block(nn.Layer):
    def __init__(self, cfg: Config, linear):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
        self.attn, self.mlp = Attention(cfg, linear), MLP(cfg, linear)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Stack(nn.Layer):
    def __init__(self, cfg: Config, linear):
        super().__init__()
        self.layers = nn.LayerList([Block(cfg, linear) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = linear("column", cfg.hidden, cfg.vocab, head=True)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def _load(model: Stack, state: dict[str, np.ndarray]) -> Stack:
    params = dict(model.named_parameters())
    for name, value in state.items():
        params[name].set_value(value.T.copy() if value.ndim == 2 else value)
    return model


def unsharded(cfg: Config, weights: dict[str, np.ndarray]) -> Stack:
    def linear(style, n_in, n_out, head=False):
        return nn.Linear(n_in, n_out)

    return _load(Stack(cfg, linear), weights)


def sharded(cfg: Config, weights: dict[str, np.ndarray]) -> Stack:
    rank, world = dist.get_rank(), dist.get_world_size()

    def linear(style, n_in, n_out, head=False):
        if style == "column":
            return ColumnParallelLinear(n_in, n_out, world, gather_output=head)
        return RowParallelLinear(n_in, n_out, world)

    state = {
        name: shard_of(name, full, style_of(name.rsplit(".", 1)[0]), rank, world, "")
        for name, full in weights.items()
    }
    return _load(Stack(cfg, linear), state)
