"""Shared fixtures: a small torch model exported with the dynamo exporter, and its eager values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class TorchCase:
    """A torch model, its ONNX export and eager reference values for one input."""

    model: object  # torch.nn.Module
    onnx_model: object  # onnx.ModelProto
    feeds: dict[str, np.ndarray]
    output: np.ndarray
    relu: np.ndarray  # output of model.relu, captured by a forward hook


def _make_module():
    import torch

    class Small(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.relu = torch.nn.ReLU()
            self.norm = torch.nn.LayerNorm(8)
            self.fc = torch.nn.Linear(8, 6)
            self.act = torch.nn.GELU()
            self.head = torch.nn.Linear(6, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.relu(self.bn(self.conv(x)))
            y = y.mean(dim=(2, 3))
            return self.head(self.act(self.fc(self.norm(y))))

    return Small


@pytest.fixture(scope="session")
def torch_case() -> TorchCase:
    import torch

    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _make_module()()
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.randn(8, generator=generator) * 0.1)
        model.bn.running_var.copy_(torch.rand(8, generator=generator) + 0.5)
    model.eval()
    x = torch.randn(2, 3, 8, 8, generator=generator)

    captured: dict[str, np.ndarray] = {}
    handle = model.relu.register_forward_hook(
        lambda module, args, out: captured.__setitem__("relu", out.detach().numpy().copy())
    )
    try:
        with torch.no_grad():
            output = model(x).numpy()
    finally:
        handle.remove()
    onnx_model = torch.onnx.export(model, (x,), dynamo=True, optimize=False, verbose=False)
    proto = onnx_model.model_proto
    (input_name,) = [i.name for i in proto.graph.input]
    return TorchCase(model, proto, {input_name: x.numpy()}, output, captured["relu"])
