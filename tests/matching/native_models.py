"""Hand-written torch/paddle pairs for the native matcher and ``assign_weight``.

Each ``pair_*`` function returns a :class:`NativePair`: a torch model, a paddle model meant to
compute the same function once their weights agree, and example inputs. Weights are random and
unrelated on the two sides: tests copy them with ``assign_weight`` and compare outputs.
Helpers run either model on numpy inputs and randomise weights from a private generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
import torch
from torch import nn

__all__ = ["PAIRS", "NativePair", "randomize", "run"]


@dataclass
class NativePair:
    name: str
    torch_model: nn.Module
    paddle_model: paddle.nn.Layer
    inputs: dict[str, np.ndarray]


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def randomize(model: Any, seed: int) -> Any:
    """Random values in every float parameter and buffer (variances positive); eval mode."""
    rng = np.random.default_rng(seed)
    is_torch = isinstance(model, nn.Module)
    state = model.state_dict()
    seen: set[int] = set()
    for name in sorted(state):
        tensor = state[name]
        if is_torch and not tensor.is_floating_point():
            continue
        if not is_torch and not paddle.is_floating_point(tensor):
            continue
        key = tensor.data_ptr() if is_torch else id(tensor)
        if key in seen:
            continue
        seen.add(key)
        shape = tuple(tensor.shape)
        if name.endswith(("running_var", "_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.4, shape)
        if is_torch:
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(value))
        else:
            tensor.set_value(value.astype(str(tensor.dtype).replace("paddle.", "")))
    model.eval()
    return model


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (tuple, list)) else value


def run(model: Any, inputs: dict[str, np.ndarray], dtype: str | None = None) -> np.ndarray:
    """The model's (first) output as numpy, in eval mode."""
    model.eval()
    if isinstance(model, nn.Module):
        args = {k: torch.from_numpy(v.astype(dtype) if dtype else v) for k, v in inputs.items()}
        with torch.no_grad():
            return _first(model(**args)).numpy()
    args = {k: paddle.to_tensor(v.astype(dtype) if dtype else v) for k, v in inputs.items()}
    with paddle.no_grad():
        return _first(model(**args)).numpy()


# -- MLP and CNN with the same names -------------------------------------------------------------


class TorchMlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class PaddleMlp(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(8, 16)
        self.act = paddle.nn.ReLU()
        self.fc2 = paddle.nn.Linear(16, 16)
        self.fc3 = paddle.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class TorchCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.bn2 = nn.BatchNorm2d(16)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.avg(self.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


class PaddleCnn(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.bn1 = paddle.nn.BatchNorm2D(8)
        self.relu = paddle.nn.ReLU()
        self.pool = paddle.nn.MaxPool2D(2)
        self.conv2 = paddle.nn.Conv2D(8, 16, 3)
        self.bn2 = paddle.nn.BatchNorm2D(16)
        self.avg = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.avg(self.relu(self.bn2(self.conv2(x))))
        return self.fc(paddle.flatten(x, 1))


class PaddleCnnWrapped(paddle.nn.Layer):
    """PaddleCnn with every layer renamed and the feature layers inside a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.body = paddle.nn.Sequential(
            paddle.nn.Conv2D(3, 8, 3, padding=1),
            paddle.nn.BatchNorm2D(8),
            paddle.nn.ReLU(),
            paddle.nn.MaxPool2D(2),
            paddle.nn.Conv2D(8, 16, 3),
            paddle.nn.BatchNorm2D(16),
            paddle.nn.ReLU(),
            paddle.nn.AdaptiveAvgPool2D(1),
            paddle.nn.Flatten(),
        )
        self.classifier = paddle.nn.Linear(16, 5)

    def forward(self, x):
        return self.classifier(self.body(x))


# -- definition order differs from call order ----------------------------------------------------


class TorchChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(8, 8)
        self.second = nn.Linear(8, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.second(torch.tanh(self.first(x)))))


class PaddleChainSwapped(paddle.nn.Layer):
    """Layers defined in reverse order of use, with other names."""

    def __init__(self) -> None:
        super().__init__()
        self.head = paddle.nn.Linear(8, 3)
        self.b = paddle.nn.Linear(8, 8)
        self.a = paddle.nn.Linear(8, 8)

    def forward(self, x):
        return self.head(paddle.tanh(self.b(paddle.tanh(self.a(x)))))


# -- attention, transformer layer, recurrent layers, transposed conv ----------------------------


class TorchMha(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class PaddleMha(paddle.nn.Layer):
    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.attn = paddle.nn.MultiHeadAttention(dim, heads)

    def forward(self, x):
        return self.attn(x)


class TorchRnn(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.rnn = getattr(nn, kind)(6, 8, num_layers=2, batch_first=True)
        self.proj = nn.Linear(8, 3)

    def forward(self, x):
        return self.proj(self.rnn(x)[0])


class PaddleRnn(paddle.nn.Layer):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.rnn = getattr(paddle.nn, kind)(6, 8, num_layers=2)
        self.proj = paddle.nn.Linear(8, 3)

    def forward(self, x):
        return self.proj(self.rnn(x)[0])


class TorchDeconv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
        self.emb = nn.Embedding(10, 6)
        self.conv = nn.Conv1d(6, 5, 3, padding=1)

    def forward(self, x, ids):
        y = self.up(x).mean(dim=(2, 3))
        z = self.conv(self.emb(ids).transpose(1, 2)).mean(dim=2)
        return y[:, :5] + z


class PaddleDeconv(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.up = paddle.nn.Conv2DTranspose(4, 6, 3, stride=2, groups=2)
        self.emb = paddle.nn.Embedding(10, 6)
        self.conv = paddle.nn.Conv1D(6, 5, 3, padding=1)

    def forward(self, x, ids):
        y = self.up(x).mean(axis=(2, 3))
        z = self.conv(self.emb(ids).transpose([0, 2, 1])).mean(axis=2)
        return y[:, :5] + z


# -- a Dropout on one side only ------------------------------------------------------------------


class TorchMlpDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class PaddleMlpNoDropout(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(8, 16)
        self.act = paddle.nn.GELU()
        self.fc2 = paddle.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _pair(name: str, make_t: Callable[[], Any], make_p: Callable[[], Any], **inputs) -> NativePair:
    return NativePair(name, randomize(make_t(), 1), randomize(make_p(), 2), inputs)


PAIRS: dict[str, Callable[[], NativePair]] = {
    "mlp": lambda: _pair("mlp", TorchMlp, PaddleMlp, x=_x(4, 8)),
    "cnn": lambda: _pair("cnn", TorchCnn, PaddleCnn, x=_x(2, 3, 12, 12)),
    "cnn_renamed_wrapped": lambda: _pair(
        "cnn_renamed_wrapped", TorchCnn, PaddleCnnWrapped, x=_x(2, 3, 12, 12)
    ),
    "chain_swapped": lambda: _pair("chain_swapped", TorchChain, PaddleChainSwapped, x=_x(4, 8)),
    "mha": lambda: _pair("mha", TorchMha, PaddleMha, x=_x(2, 5, 16)),
    "transformer_layer": lambda: _pair(
        "transformer_layer",
        lambda: nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True),
        lambda: paddle.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0),
        src=_x(2, 5, 16),
    ),
    "lstm": lambda: _pair(
        "lstm", lambda: TorchRnn("LSTM"), lambda: PaddleRnn("LSTM"), x=_x(2, 7, 6)
    ),
    "gru": lambda: _pair("gru", lambda: TorchRnn("GRU"), lambda: PaddleRnn("GRU"), x=_x(2, 7, 6)),
    "deconv_embedding": lambda: _pair(
        "deconv_embedding",
        TorchDeconv,
        PaddleDeconv,
        x=_x(2, 4, 5, 5),
        ids=np.random.default_rng(3).integers(0, 10, (2, 7)).astype(np.int64),
    ),
    "dropout_one_side": lambda: _pair(
        "dropout_one_side", TorchMlpDropout, PaddleMlpNoDropout, x=_x(4, 8)
    ),
}
"""Pair name -> builder; all pairs compute the same function once weights are copied."""
