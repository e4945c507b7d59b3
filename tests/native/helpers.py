"""Shared helpers of the auto_diff tests: fresh zoo pairs, the keypoint dataloaders, hook counts."""

from __future__ import annotations

import paddle
import torch

from padiff_ir.zoo import get_pair
from padiff_ir.zoo.data import PaddleKeypointDataset, TorchKeypointDataset

# The seed's tolerances (atol=0, rtol=1e-5, compare_mode 'mean') hold for forward comparisons of
# the aligned ViTPose pair. Gradients need a small absolute floor: a LayerNorm's input gradient
# has a mean of exactly 0 in exact arithmetic, so its float32 mean is noise (1e-16..1e-15,
# different in torch and paddle) that no relative tolerance covers. The floor must stay far below
# the gradients' own means (1e-9..1e-5 here), or real gradient differences pass.
FORWARD_TOLERANCE = {"atol": 0.0, "rtol": 1e-5}
TRAINING_TOLERANCE = {"atol": 1e-10, "rtol": 1e-5}


def fresh_pair(name: str = "vitpose"):
    """A new torch/paddle pair of the zoo with equal weights (tests change weights)."""
    pair = get_pair(name, "tiny")
    return pair.torch_model, pair.paddle_model, pair.inputs


def dataloaders(length: int = 3, batch_size: int = 1):
    """``(torch_loader, paddle_loader)`` over the same synthetic keypoint samples."""
    torch_loader = torch.utils.data.DataLoader(
        TorchKeypointDataset(length), batch_size=batch_size, shuffle=False
    )
    paddle_loader = paddle.io.DataLoader(
        PaddleKeypointDataset(length), batch_size=batch_size, shuffle=False
    )
    return torch_loader, paddle_loader


def hook_counts(torch_model, paddle_model) -> tuple[int, int]:
    """Forward (pre and post) hooks registered on every module of both models."""
    torch_hooks = sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) for m in torch_model.modules()
    )
    paddle_hooks = sum(
        len(m._forward_post_hooks) + len(m._forward_pre_hooks)
        for m in paddle_model.sublayers(include_self=True)
    )
    return torch_hooks, paddle_hooks


def training_flags(torch_model, paddle_model) -> list[bool]:
    return [m.training for m in torch_model.modules()] + [
        m.training for m in paddle_model.sublayers(include_self=True)
    ]
