"""Small hand-written models for exporter tests (the zoo covers the big architectures)."""

from __future__ import annotations

import paddle
import torch


class TorchBlock(torch.nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(dim, dim)
        self.ln = torch.nn.LayerNorm(dim)

    def forward(self, x):
        # fc is called twice: both calls must be attributed to the same module
        return x + self.fc(self.ln(self.fc(x)))


class TorchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList([TorchBlock(), TorchBlock()])
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x, y):
        for block in self.blocks:
            x = block(x)
        y = torch.nn.functional.gelu(self.bn(self.conv(y))).mean(dim=(2, 3))
        return self.drop(x), y


class PaddleBlock(paddle.nn.Layer):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(dim, dim)
        self.ln = paddle.nn.LayerNorm(dim)

    def forward(self, x):
        return x + self.fc(self.ln(self.fc(x)))


class PaddleNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = paddle.nn.LayerList([PaddleBlock(), PaddleBlock()])
        self.conv = paddle.nn.Conv2D(3, 4, 3)
        self.bn = paddle.nn.BatchNorm2D(4)
        self.drop = paddle.nn.Dropout(0.5)

    def forward(self, x, y):
        for block in self.blocks:
            x = block(x)
        y = paddle.nn.functional.gelu(self.bn(self.conv(y))).mean(axis=[2, 3])
        return self.drop(x), y


class TorchDataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


class PaddleUnconvertible(paddle.nn.Layer):
    """``mean()`` without axes: paddle2onnx 2.x aborts the process on it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x).mean()
