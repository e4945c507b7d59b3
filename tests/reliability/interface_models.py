"""Models of issue 24's interface cases (defined in a file: paddle's exporter reads the source
of ``forward``): keyword-only and defaulted arguments, an output returned twice, interrupts
inside the export."""

from __future__ import annotations

import os
import signal

import paddle
import torch

from padiff_ir.frameworks import get_framework
from tests.reliability.models import DIM, _paddle_linear, _torch_linear


class TorchKeywordOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 11)

    def forward(self, x, *, scale, shift=0.0):
        return self.fc(x) * scale + shift


class PaddleKeywordOnly(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 11)

    def forward(self, x, *, scale, shift=0.0):
        return self.fc(x) * scale + shift


class TorchDefaulted(torch.nn.Module):
    """A defaulted argument between two given ones."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 12)

    def forward(self, x, scale=2.0, shift=None):
        return self.fc(x) * scale + shift


class PaddleDefaulted(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 12)

    def forward(self, x, scale=2.0, shift=None):
        return self.fc(x) * scale + shift


class TorchTwice(torch.nn.Module):
    """Returns the same tensor twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 13)

    def forward(self, x):
        y = self.fc(x)
        return y, y


class PaddleTwice(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 13)

    def forward(self, x):
        y = self.fc(x)
        return y, y


class TorchPlain(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = _torch_linear(DIM, DIM, 14)

    def forward(self, x):
        return self.fc(x)


class PaddleInterruptWrapped(paddle.nn.Layer):
    """While paddle traces it, a Ctrl-C arrives and framework code wraps it (as paddle's own C++
    callbacks do) into a RuntimeError; run eagerly it is a plain linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 14)

    def forward(self, x):
        if not paddle.in_dynamic_mode():
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as err:
                raise RuntimeError("interrupted inside the framework") from err
        return self.fc(x)


class PaddleInterruptSwallowed(paddle.nn.Layer):
    """While paddle traces it, SIGINT arrives and framework code swallows the interrupt and
    fails with an error of its own (as paddle's C++ callbacks do: ``SystemError``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 14)

    def forward(self, x):
        if not paddle.in_dynamic_mode():
            try:  # noqa: SIM105 (the shape of the framework code it stands for)
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                pass
            raise SystemError("a C++ callback returned a result with an exception set")
        return self.fc(x)


class PaddleManyLayers(paddle.nn.Layer):
    """Forty linears: a trace long enough to be interrupted at many points."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = paddle.nn.LayerList([_paddle_linear(DIM, DIM, 20 + i) for i in range(40)])

    def forward(self, x):
        for layer in self.layers:
            x = paddle.nn.functional.relu(layer(x))
        return x


class TorchTiedPair(torch.nn.Module):
    """Two linears sharing one weight (``second.weight = first.weight``), or holding two copies
    of the same values."""

    def __init__(self, tied: bool = True) -> None:
        super().__init__()
        self.first = _torch_linear(DIM, DIM, 30)
        self.second = _torch_linear(DIM, DIM, 31)
        if tied:
            self.second.weight = self.first.weight
        else:
            with torch.no_grad():
                self.second.weight.copy_(self.first.weight)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


class PaddleTiedPair(paddle.nn.Layer):
    def __init__(self, tied: bool = True) -> None:
        super().__init__()
        self.first = _paddle_linear(DIM, DIM, 32)
        self.second = _paddle_linear(DIM, DIM, 33)
        if tied:
            self.second.weight = self.first.weight
        else:
            self.second.weight.set_value(self.first.weight.numpy())

    def forward(self, x):
        return self.second(paddle.nn.functional.relu(self.first(x)))


VOCAB = 11


class TorchTinyLM(torch.nn.Module):
    """An embedding, a hidden linear and an output projection tied to the embedding (or not)."""

    def __init__(self, tied: bool = True) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(40)
            self.embed = torch.nn.Embedding(VOCAB, DIM)
            self.head = torch.nn.Linear(DIM, VOCAB, bias=False)
        self.hidden = _torch_linear(DIM, DIM, 41)
        if tied:
            self.head.weight = self.embed.weight
        else:
            with torch.no_grad():
                self.head.weight.copy_(self.embed.weight)

    def forward(self, ids):
        return self.head(torch.tanh(self.hidden(self.embed(ids))))


class PaddleTinyLM(paddle.nn.Layer):
    """The output projection as paddle LMs tie it: a matmul with the embedding's weight
    transposed; untied, a Linear of its own holding the same values."""

    def __init__(self, tied: bool = True) -> None:
        super().__init__()
        with get_framework("paddle").preserved_rng():
            self.embed = paddle.nn.Embedding(VOCAB, DIM)
            self.head = None if tied else paddle.nn.Linear(DIM, VOCAB, bias_attr=False)
        self.hidden = _paddle_linear(DIM, DIM, 42)
        if self.head is not None:
            self.head.weight.set_value(self.embed.weight.numpy().T.copy())

    def forward(self, ids):
        hidden = paddle.tanh(self.hidden(self.embed(ids)))
        if self.head is None:
            return paddle.matmul(hidden, self.embed.weight, transpose_y=True)
        return self.head(hidden)


class TorchHalfEmbedding(torch.nn.Module):
    """A 16-bit embedding table (``dtype``: ``"bfloat16"`` or ``"float16"``) read into a
    float32 linear: runs on every CPU."""

    def __init__(self, dtype: str = "bfloat16") -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(50)
            self.embed = torch.nn.Embedding(VOCAB, DIM).to(getattr(torch, dtype))
        self.fc = _torch_linear(DIM, DIM, 51)

    def forward(self, ids):
        return self.fc(self.embed(ids).float())


class PaddleHalfEmbedding(paddle.nn.Layer):
    def __init__(self, dtype: str = "bfloat16") -> None:
        super().__init__()
        with get_framework("paddle").preserved_rng():
            self.embed = paddle.nn.Embedding(VOCAB, DIM)
        self.embed.to(dtype=dtype)
        self.fc = _paddle_linear(DIM, DIM, 51)

    def forward(self, ids):
        return self.fc(self.embed(ids).astype("float32"))


class PaddleInterruptedWhenRun(paddle.nn.Layer):
    """Run eagerly, a Ctrl-C arrives inside framework code that wraps it into a RuntimeError."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _paddle_linear(DIM, DIM, 14)

    def forward(self, x):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:
            raise RuntimeError("interrupted inside the framework") from err
