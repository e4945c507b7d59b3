"""Tiny torch and paddle models for the reliability tests (defined in a file: paddle's
exporter reads the source of ``forward``)."""

from __future__ import annotations

import random

import numpy as np
import paddle
import torch

from padiff_ir.frameworks import get_framework

DIM = 4


def _torch_linear(dim_in: int, dim_out: int, seed: int) -> torch.nn.Linear:
    with torch.random.fork_rng():  # building a test model leaves torch's global RNG alone
        layer = torch.nn.Linear(dim_in, dim_out)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        layer.weight.copy_(
            torch.from_numpy(rng.standard_normal((dim_out, dim_in), dtype=np.float32))
        )
        layer.bias.copy_(torch.from_numpy(rng.standard_normal(dim_out, dtype=np.float32)))
    return layer


def _paddle_linear(dim_in: int, dim_out: int, seed: int) -> paddle.nn.Linear:
    with get_framework("paddle").preserved_rng():  # leaves paddle's global RNG alone
        layer = paddle.nn.Linear(dim_in, dim_out)
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((dim_out, dim_in), dtype=np.float32)
    layer.weight.set_value(weight.T.copy())
    layer.bias.set_value(rng.standard_normal(dim_out, dtype=np.float32))
    return layer


class TorchDictNet(torch.nn.Module):
    """Returns ``{"logits": [N, 3], "hidden": [N, 8]}``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _torch_linear(DIM, 8, 0)
        self.head = _torch_linear(8, 3, 1)

    def forward(self, x):
        hidden = torch.relu(self.body(x))
        return {"logits": self.head(hidden), "hidden": hidden}


class PaddleDictNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.body = _paddle_linear(DIM, 8, 0)
        self.head = _paddle_linear(8, 3, 1)

    def forward(self, x):
        hidden = paddle.nn.functional.relu(self.body(x))
        return {"logits": self.head(hidden), "hidden": hidden}


class TorchLog(torch.nn.Module):
    """``log(fc(x))``: NaN wherever the linear output is negative."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 2)

    def forward(self, x):
        return torch.log(self.fc(x))


class PaddleLog(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 2)

    def forward(self, x):
        return paddle.log(self.fc(x))


class TorchRandomUser(torch.nn.Module):
    """Draws from Python's and numpy's global RNGs in forward (and adds nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 3)

    def forward(self, x):
        _ = random.random(), np.random.rand()
        return self.fc(x)


class PaddleRandomUser(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 3)

    def forward(self, x):
        _ = random.random(), np.random.rand()
        return self.fc(x)


class PaddleDataDependent(paddle.nn.Layer):
    """An ``if`` on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 4)
        self.other = _paddle_linear(DIM, DIM, 5)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return self.other(x)


class TorchScaled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 6)

    def forward(self, x, scale=1.0, **kwargs):
        return self.fc(x) * scale


class PaddleScaled(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 6)

    def forward(self, x, scale=1.0, **kwargs):
        return self.fc(x) * scale


def inputs(batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, DIM), dtype=np.float32)


class PaddleDictNetSwapped(PaddleDictNet):
    """The same computation, its dict built in the other order."""

    def forward(self, x):
        hidden = paddle.nn.functional.relu(self.body(x))
        return {"hidden": hidden, "logits": self.head(hidden)}


def paddle_log_bugged() -> PaddleLog:
    """PaddleLog with a bias off by 0.5 (a factory for the CLI's module:factory specs)."""
    model = PaddleLog()
    model.fc.bias.set_value(model.fc.bias.numpy() + 0.5)
    return model


def broken_factory() -> PaddleLog:
    raise RuntimeError("the factory is broken")


NOT_A_MODEL = 42


class TorchDropoutNet(torch.nn.Module):
    """A Dropout between two linears: train and eval mode differ."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 7)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x))


class PaddleDropoutNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 7)
        self.drop = paddle.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x))


class TorchBranch(torch.nn.Module):
    """The torch side of :class:`PaddleDataDependent` without the branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 4)
        self.other = _torch_linear(DIM, DIM, 5)

    def forward(self, x):
        return self.fc(x)


class TorchScalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 8)

    def forward(self, x, scale):
        return self.fc(x) * scale


class PaddleScalar(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 8)

    def forward(self, x, scale):
        return self.fc(x) * scale


class PaddleTerminatedDuringExport(paddle.nn.Layer):
    """Sends SIGTERM to its own process while paddle traces it for the export (not when run
    eagerly): the export is then under way, its temporary folder made."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 9)

    def forward(self, x):
        if not paddle.in_dynamic_mode():
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
        return self.fc(x)
