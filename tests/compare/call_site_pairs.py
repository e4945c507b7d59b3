"""Model pairs of issue 11, with real ``torch.nn`` / ``paddle.nn`` layers.

* a **shared layer**: torch keeps one ``MaxPool2d`` and calls it three times, paddle has three
  ``MaxPool2D`` modules (``pool1``, ``pool2``, ``pool3``); :func:`pair` can give the second with
  ``ceil_mode=True`` (27x27 instead of 26x26 on a 54x54 map);
* a **dropout that vanishes from an export**: torch's ``Dropout`` is the identity in eval mode
  (no ONNX op), paddle's ``Dropout(mode="downscale_in_infer")`` scales by ``1 - p`` (a Scale);
* **several differences at once**: both of the above in one model.

Torch is side A; :func:`pair` copies its weights into the paddle model (same attribute names).
"""

from __future__ import annotations

import numpy as np
import paddle
import torch

__all__ = ["PaddleSharedPool", "PaddleSplitPools", "TorchSharedPool", "example_input", "pair"]


class TorchSharedPool(torch.nn.Module):
    """Three conv + ReLU stages sharing one pooling layer, a mean, a dropout and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(3, 2)
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.pool(torch.relu(self.conv3(x)))
        return self.fc(self.drop(x.mean(dim=(2, 3))))


class PaddleSplitPools(paddle.nn.Layer):
    """The same network with one pooling layer per call."""

    def __init__(self, ceil_mode: bool = False, dropout_mode: str = "upscale_in_train") -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.conv2 = paddle.nn.Conv2D(8, 8, 3, padding=1)
        self.conv3 = paddle.nn.Conv2D(8, 8, 3, padding=1)
        self.pool1 = paddle.nn.MaxPool2D(3, 2)
        self.pool2 = paddle.nn.MaxPool2D(3, 2, ceil_mode=ceil_mode)
        self.pool3 = paddle.nn.MaxPool2D(3, 2)
        self.drop = paddle.nn.Dropout(0.5, mode=dropout_mode)
        self.fc = paddle.nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool1(paddle.nn.functional.relu(self.conv1(x)))
        x = self.pool2(paddle.nn.functional.relu(self.conv2(x)))
        x = self.pool3(paddle.nn.functional.relu(self.conv3(x)))
        return self.fc(self.drop(x.mean(axis=[2, 3])))


def example_input(seed: int = 0) -> np.ndarray:
    """A 2x3x54x54 input (54: floor and ceil pooling give different sizes)."""
    return np.random.default_rng(seed).standard_normal((2, 3, 54, 54)).astype("float32")


def pair(
    *, ceil_mode: bool = False, dropout_mode: str = "upscale_in_train", seed: int = 0
) -> tuple[TorchSharedPool, PaddleSplitPools]:
    """Both models in eval mode, the paddle one with the torch weights."""
    generator = torch.Generator().manual_seed(seed)
    model_a = TorchSharedPool()
    with torch.no_grad():
        for parameter in model_a.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model_b = PaddleSplitPools(ceil_mode=ceil_mode, dropout_mode=dropout_mode)
    for name, parameter in model_b.named_parameters():
        value = dict(model_a.named_parameters())[name].detach().numpy()
        parameter.set_value(value.T if name == "fc.weight" else value)
    return model_a.eval(), model_b.eval()


class PaddleSharedPool(paddle.nn.Layer):
    """Paddle's turn to call one pooling layer three times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.conv2 = paddle.nn.Conv2D(8, 8, 3, padding=1)
        self.pool = paddle.nn.MaxPool2D(3, 2)

    def forward(self, x):
        x = self.pool(paddle.nn.functional.relu(self.conv1(x)))
        return self.pool(self.pool(paddle.nn.functional.relu(self.conv2(x))))
