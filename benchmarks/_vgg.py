"""A VGG-11 pair for ``bench_match.py`` (not in the zoo: 133 M parameters, 530 MB a model).

torchvision's ``vgg11`` layout (configuration "A": eight 3x3 convolutions with ReLU and five
max pools, a 7x7 adaptive average pool, three Linear layers with ReLU and Dropout) written with
plain ``torch.nn`` and ``paddle.nn`` layers under the same attribute paths (``features.0``,
``classifier.6``); the paddle model gets the torch model's weights (Linear weights
transposed). Input ``x``: ``[1, 3, 224, 224]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
import torch

__all__ = ["VggPair", "vgg11_pair"]

LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class TorchVgg(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        channels = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(channels, int(item), 3, padding=1), torch.nn.ReLU()]
                channels = int(item)
        self.features = torch.nn.Sequential(*layers)
        self.avgpool = torch.nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(512 * 7 * 7, 4096),
            torch.nn.ReLU(),
            torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096),
            torch.nn.ReLU(),
            torch.nn.Dropout(),
            torch.nn.Linear(4096, 1000),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class PaddleVgg(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        layers: list[paddle.nn.Layer] = []
        channels = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(paddle.nn.MaxPool2D(2, 2))
            else:
                layers += [paddle.nn.Conv2D(channels, int(item), 3, padding=1), paddle.nn.ReLU()]
                channels = int(item)
        self.features = paddle.nn.Sequential(*layers)
        self.avgpool = paddle.nn.AdaptiveAvgPool2D((7, 7))
        self.classifier = paddle.nn.Sequential(
            paddle.nn.Linear(512 * 7 * 7, 4096),
            paddle.nn.ReLU(),
            paddle.nn.Dropout(),
            paddle.nn.Linear(4096, 4096),
            paddle.nn.ReLU(),
            paddle.nn.Dropout(),
            paddle.nn.Linear(4096, 1000),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(paddle.flatten(x, 1))


@dataclass
class VggPair:
    """What ``bench_match.py`` reads of a zoo pair."""

    torch_model: Any
    paddle_model: Any
    inputs: dict[str, np.ndarray]


def vgg11_pair(seed: int = 0) -> VggPair:
    """Both models in eval mode with the same weights, and one 224x224 image."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        torch_model = TorchVgg().eval()
    paddle_model = PaddleVgg()
    paddle_model.eval()
    state = {}
    for name, value in torch_model.state_dict().items():
        array = value.numpy()
        is_linear = name.startswith("classifier.") and name.endswith(".weight")
        state[name] = array.T.copy() if is_linear else array
    paddle_model.set_state_dict(state)
    rng = np.random.default_rng(seed)
    return VggPair(
        torch_model, paddle_model, {"x": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}
    )
