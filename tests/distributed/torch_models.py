"""The torch decoder stack: unsharded, and tensor-parallel with torch.distributed primitives
(Megatron's parameter attributes ``tensor_model_parallel``/``partition_dim`` mark the shards)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tests.distributed.models import Config, shard_of, style_of


class _Copy(torch.autograd.Function):
    """Identity forward, all-reduce backward (the input of a column-parallel layer)."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _Reduce(torch.autograd.Function):
    """All-reduce forward, identity backward (the output of a row-parallel layer)."""

    @staticmethod
    def forward(ctx, x, group):
        x = x.contiguous()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _ReduceScaled(_Reduce):
    """A row-parallel backward bug: the output's gradient scaled by the group's size."""

    @staticmethod
    def backward(ctx, grad):
        return grad * dist.get_world_size(ctx.group), None

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return _Reduce.forward(ctx, x, group)


class _Gather(torch.autograd.Function):
    """All-gather on ``dim`` forward, this rank's slice backward."""

    @staticmethod
    def forward(ctx, x, group, dim):
        world = dist.get_world_size(group)
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        ctx.dim, ctx.rank, ctx.world = dim, dist.get_rank(group), world
        return torch.cat(parts, dim=dim)

    @staticmethod
    def backward(ctx, grad):
        return grad.chunk(ctx.world, dim=ctx.dim)[ctx.rank].contiguous(), None, None


class ColumnParallelLinear(nn.Module):
    def __init__(self, n_in, n_out, group, gather_output=False, gather_dim=-1):
        super().__init__()
        world = dist.get_world_size(group)
        self.group, self.gather_output, self.gather_dim = group, gather_output, gather_dim
        self.weight = nn.Parameter(torch.zeros(n_out // world, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out // world))
        for p, axis in ((self.weight, 0), (self.bias, 0)):
            p.tensor_model_parallel, p.partition_dim = True, axis

    def forward(self, x):
        y = F.linear(_Copy.apply(x, self.group), self.weight, self.bias)
        return _Gather.apply(y, self.group, self.gather_dim) if self.gather_output else y


class RowParallelLinear(nn.Module):
    def __init__(self, n_in, n_out, group, reduce=True):
        super().__init__()
        world = dist.get_world_size(group)
        self.group, self.reduce, self.input_is_parallel = group, reduce, True
        self.weight = nn.Parameter(torch.zeros(n_out, n_in // world))
        self.weight.tensor_model_parallel, self.weight.partition_dim = True, 1
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.reduce == "scale_grad":
            y = _ReduceScaled.apply(y, self.group)
        elif self.reduce:
            y = _Reduce.apply(y, self.group)
        return y + self.bias


class Attention(nn.Module):
    def __init__(self, cfg: Config, linear):
        super().__init__()
        self.head_dim = cfg.hidden // cfg.heads
        self.q, self.k, self.v = (linear("column", cfg.hidden, cfg.hidden) for _ in range(3))
        self.o = linear("row", cfg.hidden, cfg.hidden)

    def forward(self, x):
        b, s, _ = x.shape

        def heads(t):
            return t.reshape(b, s, -1, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, cfg: Config, linear, reduce=True):
        super().__init__()
        self.up = linear("column", cfg.hidden, cfg.ffn)
        self.act = nn.GELU()
        self.down = linear("row", cfg.ffn, cfg.hidden, reduce=reduce)

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: Config, linear, reduce=True):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
        self.attn, self.mlp = Attention(cfg, linear), MLP(cfg, linear, reduce)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Stack(nn.Module):
    def __init__(self, cfg: Config, linear, bug: str = ""):
        super().__init__()
        self.layers = nn.ModuleList(
            Block(cfg, linear, reduce=_reduce_of(bug, i)) for i in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = linear("column", cfg.hidden, cfg.vocab, head=True)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def _reduce_of(bug: str, layer: int) -> bool | str:
    """How layer ``layer``'s ``mlp.down`` reduces (``BUGS`` and ``BACKWARD_BUGS``)."""
    if bug == "no_allreduce" and layer == 1:
        return False
    if bug == "scale_grad" and layer == 0:
        return "scale_grad"
    return True


def unsharded(cfg: Config, weights: dict[str, np.ndarray]) -> Stack:
    def linear(style, n_in, n_out, reduce=True, head=False):
        return nn.Linear(n_in, n_out)

    model = Stack(cfg, linear)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return model


def sharded(cfg: Config, weights, group, bug: str = "") -> Stack:
    """This rank's tensor-parallel stack (the tensor-parallel group ``group``)."""

    def linear(style, n_in, n_out, reduce=True, head=False):
        if style == "column":
            dim = 1 if (head and bug == "gather_dim") else -1
            return ColumnParallelLinear(n_in, n_out, group, gather_output=head, gather_dim=dim)
        return RowParallelLinear(n_in, n_out, group, reduce=reduce)

    model = Stack(cfg, linear, bug)
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    state = {}
    for name, full in weights.items():
        style = style_of(name.rsplit(".", 1)[0])
        state[name] = torch.from_numpy(shard_of(name, full, style, rank, world, bug).copy())
    model.load_state_dict(state)
    return model
