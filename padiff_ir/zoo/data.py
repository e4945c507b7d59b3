"""A small synthetic top-down keypoint dataset and a JointsMSE loss, in torch and in paddle.

The seed's training flows walk a pair of dataloaders (mmpose's on the torch side, ppdet's on
the paddle side) and compare a ViTPose pair batch by batch with a heatmap loss. This module
gives the same shape of data without COCO: :class:`TorchKeypointDataset` returns mmpose-style
samples ``{'img', 'target', 'target_weight'}`` and :class:`PaddleKeypointDataset` ppdet-style
``{'image', 'target', 'target_weight'}``, the same numbers for the same index (each sample is
drawn from ``numpy.random.default_rng([seed, index])``; no global RNG is touched), so the seed's
``inp = ({'x': paddle_batch['image']}, {'x': torch_batch['img']})`` works as written.

:class:`TorchJointsMSELoss` / :class:`PaddleJointsMSELoss` follow mmpose's ``JointsMSELoss``:
the mean squared error of the heatmaps, each joint weighted by its ``target_weight``
(``reduction="sum"`` sums instead of averaging). :func:`loss_pair` closes them over a batch pair
as the one-argument losses ``auto_diff`` takes.

Importing this module imports torch and paddle.

Example:
    >>> from padiff_ir.zoo.data import PaddleKeypointDataset, TorchKeypointDataset
    >>> t, p = TorchKeypointDataset(length=2), PaddleKeypointDataset(length=2)
    >>> sorted(t[0]), sorted(p[0])
    (['img', 'target', 'target_weight'], ['image', 'target', 'target_weight'])
    >>> bool((t[1]['img'] == p[1]['image']).all()), t[0]['target'].shape
    (True, (17, 64, 48))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
import torch

__all__ = [
    "KeypointSample",
    "PaddleJointsMSELoss",
    "PaddleKeypointDataset",
    "TorchJointsMSELoss",
    "TorchKeypointDataset",
    "keypoint_sample",
    "loss_pair",
]

logger = logging.getLogger(__name__)

_REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class KeypointSample:
    """One sample: a normalised image, target heatmaps and per-joint weights (numpy float32)."""

    image: np.ndarray  # [3, H, W]
    target: np.ndarray  # [K, H / 4, W / 4]
    target_weight: np.ndarray  # [K, 1]


def keypoint_sample(
    index: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (256, 192),
    num_keypoints: int = 17,
    sigma: float = 2.0,
) -> KeypointSample:
    """The sample ``index`` of the synthetic dataset (deterministic in ``seed`` and ``index``).

    Heatmaps are Gaussians (``sigma`` in heatmap pixels) at random joint positions on a grid a
    quarter of the image size; about one joint in five is invisible (weight 0, empty heatmap).
    """
    rng = np.random.default_rng([seed, index])
    height, width = image_size
    rows, cols = height // 4, width // 4
    image = rng.standard_normal((3, height, width), dtype=np.float32)
    centres = rng.uniform((0.0, 0.0), (rows - 1.0, cols - 1.0), size=(num_keypoints, 2))
    visible = rng.random(num_keypoints) > 0.2
    grid_y = np.arange(rows, dtype=np.float32)[:, None]
    grid_x = np.arange(cols, dtype=np.float32)[None, :]
    target = np.zeros((num_keypoints, rows, cols), np.float32)
    for k, (y, x) in enumerate(centres):
        if visible[k]:
            target[k] = np.exp(-((grid_y - y) ** 2 + (grid_x - x) ** 2) / (2 * sigma**2))
    weight = visible.astype(np.float32)[:, None]
    return KeypointSample(image, target, weight)


class _KeypointDataset:
    """Map-style dataset of :func:`keypoint_sample` with framework-specific keys."""

    image_key = "img"

    def __init__(
        self,
        length: int = 4,
        *,
        seed: int = 0,
        image_size: tuple[int, int] = (256, 192),
        num_keypoints: int = 17,
    ) -> None:
        self.length = int(length)
        self.seed = int(seed)
        self.image_size = tuple(image_size)
        self.num_keypoints = int(num_keypoints)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        sample = keypoint_sample(
            index,
            seed=self.seed,
            image_size=self.image_size,  # type: ignore[arg-type]
            num_keypoints=self.num_keypoints,
        )
        return {
            self.image_key: sample.image,
            "target": sample.target,
            "target_weight": sample.target_weight,
        }


class TorchKeypointDataset(_KeypointDataset, torch.utils.data.Dataset):
    """mmpose-style samples ``{'img', 'target', 'target_weight'}`` for ``torch.utils.data``."""

    image_key = "img"


class PaddleKeypointDataset(_KeypointDataset, paddle.io.Dataset):
    """ppdet-style samples ``{'image', 'target', 'target_weight'}`` for ``paddle.io``."""

    image_key = "image"


def _check(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


class TorchJointsMSELoss(torch.nn.Module):
    """mmpose's ``JointsMSELoss``: weighted heatmap MSE, averaged over joints."""

    def __init__(
        self, use_target_weight: bool = True, loss_weight: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight
        self.reduction = _check(reduction)

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor
    ) -> torch.Tensor:
        batch, joints = output.shape[0], output.shape[1]
        error = output.reshape(batch, joints, -1) - target.reshape(batch, joints, -1)
        if self.use_target_weight:
            error = error * target_weight.reshape(batch, joints, 1)
        squared = error * error
        loss = squared.mean() if self.reduction == "mean" else squared.sum()
        return loss * self.loss_weight


class PaddleJointsMSELoss(paddle.nn.Layer):
    """The paddle twin of :class:`TorchJointsMSELoss`."""

    def __init__(
        self, use_target_weight: bool = True, loss_weight: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight
        self.reduction = _check(reduction)

    def forward(
        self, output: paddle.Tensor, target: paddle.Tensor, target_weight: paddle.Tensor
    ) -> paddle.Tensor:
        batch, joints = output.shape[0], output.shape[1]
        error = output.reshape([batch, joints, -1]) - target.reshape([batch, joints, -1])
        if self.use_target_weight:
            error = error * target_weight.reshape([batch, joints, 1])
        squared = error * error
        loss = squared.mean() if self.reduction == "mean" else squared.sum()
        return loss * self.loss_weight


def loss_pair(
    paddle_batch: Mapping[str, Any],
    torch_batch: Mapping[str, Any],
    *,
    reduction: str = "mean",
    paddle_reduction: str | None = None,
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(paddle_loss, torch_loss)``: one-argument losses over a batch pair (the seed's order).

    ``paddle_reduction`` gives the paddle side another reduction (to inject a difference).
    """
    paddle_criterion = PaddleJointsMSELoss(reduction=paddle_reduction or reduction)
    torch_criterion = TorchJointsMSELoss(reduction=reduction)

    def paddle_loss(output: paddle.Tensor) -> paddle.Tensor:
        return paddle_criterion(output, paddle_batch["target"], paddle_batch["target_weight"])

    def torch_loss(output: torch.Tensor) -> torch.Tensor:
        return torch_criterion(output, torch_batch["target"], torch_batch["target_weight"])

    return paddle_loss, torch_loss
