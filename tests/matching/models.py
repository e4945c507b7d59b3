"""Small torch/paddle pairs for the matcher's special cases, and a module-renaming helper.

Each ``case_*`` function returns a :class:`Case`: a torch model with random weights, a paddle model
computing the same function with those weights (copied by hand, by name: the ground truth the
matcher must reproduce), example inputs, and the module pairs expected.
:func:`renamed` rebuilds a torch model so that every submodule and parameter gets a meaningless
name (``m0``, ``m1``... and ``p0``, ``p1``...) while ``forward`` keeps working.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paddle
import torch
from torch import nn

__all__ = ["CASES", "Case", "renamed", "truth_from_names"]


@dataclass
class Case:
    """One special case: both models, inputs, the weight copy and the name map of ground truth.

    ``truth`` maps torch module paths to paddle layer paths (modules with parameters); the
    identity on equal names when empty. The paddle model already holds the torch weights,
    copied by name (the ground truth the matcher's ``param_pairs`` must reproduce).
    """

    name: str
    torch_model: nn.Module
    paddle_model: paddle.nn.Layer
    inputs: dict[str, np.ndarray]
    truth: dict[str, str] = field(default_factory=dict)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _torch_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights (non-trivial norm parameters included) from a private generator."""
    rng = _rng(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            param.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(param.shape)).astype("f4")))
        for name, buf in sorted(model.named_buffers()):
            if name.endswith("running_var"):
                buf.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, tuple(buf.shape)).astype("f4")))
            elif name.endswith("running_mean"):
                buf.copy_(torch.from_numpy(rng.normal(0, 0.1, tuple(buf.shape)).astype("f4")))
    return model.eval()


def _set(paddle_model: paddle.nn.Layer, values: dict[str, np.ndarray]) -> None:
    state = paddle_model.state_dict()
    by_var = {tensor.name: name for name, tensor in state.items()}
    missing = {n for n, t in state.items() if n not in values and by_var[t.name] not in values}
    missing = {
        n for n in missing if not any(state[v].name == state[n].name for v in values if v in state)
    }
    assert not missing, f"no value for paddle {sorted(missing)}"
    for name, value in values.items():
        assert tuple(state[name].shape) == value.shape, (name, state[name].shape, value.shape)
        state[name].set_value(value.astype(state[name].numpy().dtype))


def _linear_copy(
    torch_model: nn.Module,
    paddle_model: paddle.nn.Layer,
    rename: Callable[[str], str] = lambda n: n,
) -> None:
    """Copy by (renamed) name, transposing 2-D Linear weights."""
    linear = {f"{p}.weight" for p, m in torch_model.named_modules() if isinstance(m, nn.Linear)}
    values = {}
    for name, tensor in torch_model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        array = tensor.numpy()
        values[rename(name)] = array.T.copy() if name in linear else array
    _set(paddle_model, values)
    paddle_model.eval()


# -- multi-head attention: fused in_proj vs q/k/v projections --------------------------------


class TorchMha(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class PaddleMha(paddle.nn.Layer):
    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.attn = paddle.nn.MultiHeadAttention(dim, heads)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.attn(x, x, x)


def _mha_values(
    prefix_t: str, prefix_p: str, state: dict[str, torch.Tensor], dim: int
) -> dict[str, np.ndarray]:
    w = state[f"{prefix_t}.in_proj_weight"].numpy()
    b = state[f"{prefix_t}.in_proj_bias"].numpy()
    values = {}
    for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
        values[f"{prefix_p}.{proj}.weight"] = w[i * dim : (i + 1) * dim].T.copy()
        values[f"{prefix_p}.{proj}.bias"] = b[i * dim : (i + 1) * dim].copy()
    values[f"{prefix_p}.out_proj.weight"] = state[f"{prefix_t}.out_proj.weight"].numpy().T.copy()
    values[f"{prefix_p}.out_proj.bias"] = state[f"{prefix_t}.out_proj.bias"].numpy()
    return values


def case_mha() -> Case:
    torch_model = _torch_init(TorchMha())
    paddle_model = PaddleMha()
    _set(paddle_model, _mha_values("attn", "attn", torch_model.state_dict(), 16))
    paddle_model.eval()
    inputs = {"x": _rng(1).standard_normal((2, 5, 16), dtype=np.float32)}
    return Case(
        "mha", torch_model, paddle_model, inputs, {"attn": "attn", "attn.out_proj": "attn.out_proj"}
    )


# -- transformer encoder layer -------------------------------------------------------------


class TorchEncoder(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class PaddleEncoder(paddle.nn.Layer):
    def __init__(self, dim: int = 16, heads: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.layer = paddle.nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.layer(x)


def case_encoder_layer() -> Case:
    torch_model = _torch_init(TorchEncoder())
    paddle_model = PaddleEncoder()
    state = torch_model.state_dict()
    values = _mha_values("layer.self_attn", "layer.self_attn", state, 16)
    for name in ("linear1", "linear2"):
        values[f"layer.{name}.weight"] = state[f"layer.{name}.weight"].numpy().T.copy()
        values[f"layer.{name}.bias"] = state[f"layer.{name}.bias"].numpy()
    for name in ("norm1", "norm2"):
        values[f"layer.{name}.weight"] = state[f"layer.{name}.weight"].numpy()
        values[f"layer.{name}.bias"] = state[f"layer.{name}.bias"].numpy()
    _set(paddle_model, values)
    paddle_model.eval()
    inputs = {"x": _rng(2).standard_normal((2, 5, 16), dtype=np.float32)}
    truth = {
        f"layer.{n}": f"layer.{n}"
        for n in ("linear1", "linear2", "norm1", "norm2", "self_attn", "self_attn.out_proj")
    }
    truth["layer"] = "layer"
    return Case("encoder_layer", torch_model, paddle_model, inputs, truth)


# -- LSTM -----------------------------------------------------------------------------------


class TorchLstm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 12, batch_first=True)
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(x)[0])


class PaddleLstm(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = paddle.nn.LSTM(8, 12)
        self.fc = paddle.nn.Linear(12, 4)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.lstm(x)[0])


def case_lstm() -> Case:
    torch_model = _torch_init(TorchLstm())
    paddle_model = PaddleLstm()
    state = torch_model.state_dict()
    values = {
        "lstm.weight_ih_l0": state["lstm.weight_ih_l0"].numpy(),
        "lstm.weight_hh_l0": state["lstm.weight_hh_l0"].numpy(),
        "lstm.bias_ih_l0": state["lstm.bias_ih_l0"].numpy(),
        "lstm.bias_hh_l0": state["lstm.bias_hh_l0"].numpy(),
        "fc.weight": state["fc.weight"].numpy().T.copy(),
        "fc.bias": state["fc.bias"].numpy(),
    }
    _set(paddle_model, values)
    paddle_model.eval()
    inputs = {"x": _rng(3).standard_normal((2, 6, 8), dtype=np.float32)}
    return Case("lstm", torch_model, paddle_model, inputs, {"lstm": "lstm", "fc": "fc"})


# -- an extra container, a layer called twice, residual order, one-sided no-ops, layouts ----


class TorchNested(nn.Module):
    """fc1-relu-fc2 wrapped in two extra Sequential containers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PaddleFlat(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(8, 16)
        self.act = paddle.nn.ReLU()
        self.fc2 = paddle.nn.Linear(16, 4)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def case_nested() -> Case:
    torch_model = _torch_init(TorchNested())
    paddle_model = PaddleFlat()
    names = {"body.0.0": "fc1", "body.1": "fc2"}

    def rename(name: str) -> str:
        prefix, _, leaf = name.rpartition(".")
        return f"{names[prefix]}.{leaf}"

    _linear_copy(torch_model, paddle_model, rename)
    inputs = {"x": _rng(4).standard_normal((3, 8), dtype=np.float32)}
    return Case("nested", torch_model, paddle_model, inputs, dict(names))


class TorchTwice(nn.Module):
    """One Linear called twice (shared weights), with a LayerNorm between."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc(self.norm(self.fc(x))))


class PaddleTwice(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(8, 8)
        self.norm = paddle.nn.LayerNorm(8)
        self.out = paddle.nn.Linear(8, 3)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.out(self.fc(self.norm(self.fc(x))))


def case_twice() -> Case:
    torch_model = _torch_init(TorchTwice())
    paddle_model = PaddleTwice()
    _linear_copy(torch_model, paddle_model)
    inputs = {"x": _rng(5).standard_normal((3, 8), dtype=np.float32)}
    return Case("twice", torch_model, paddle_model, inputs)


class TorchResidual(nn.Module):
    """``x + f(x)`` with a Dropout(p=0) and an Identity that the paddle side lacks."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.fc1 = nn.Linear(8, 16)
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Linear(16, 8)
        self.skip = nn.Identity()
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.fc2(self.drop(torch.relu(self.fc1(self.norm(x)))))
        y = self.skip(y) + self.fc2(torch.relu(self.fc1(y)))
        return self.head(y)


class PaddleResidual(paddle.nn.Layer):
    """``f(x) + x``: the other operand order, no Dropout, no Identity."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = paddle.nn.LayerNorm(8)
        self.fc1 = paddle.nn.Linear(8, 16)
        self.fc2 = paddle.nn.Linear(16, 8)
        self.head = paddle.nn.Linear(8, 2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.fc2(paddle.nn.functional.relu(self.fc1(self.norm(x)))) + x
        y = self.fc2(paddle.nn.functional.relu(self.fc1(y))) + y
        return self.head(y)


def case_residual() -> Case:
    torch_model = _torch_init(TorchResidual())
    paddle_model = PaddleResidual()
    _linear_copy(torch_model, paddle_model)
    inputs = {"x": _rng(6).standard_normal((3, 4, 8), dtype=np.float32)}
    return Case("residual", torch_model, paddle_model, inputs)


class TorchLayout(nn.Module):
    """Tokens from a feature map: permute then reshape (paddle: reshape then transpose)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        tokens = y.permute(0, 2, 3, 1).reshape(2, 16, 8)
        return self.fc(tokens)


class PaddleLayout(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.fc = paddle.nn.Linear(8, 4)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bn(self.conv(x))
        tokens = y.reshape([2, 8, 16]).transpose([0, 2, 1])
        return self.fc(tokens)


def case_layout() -> Case:
    torch_model = _torch_init(TorchLayout())
    paddle_model = PaddleLayout()
    _linear_copy(
        torch_model,
        paddle_model,
        lambda n: n.replace("running_mean", "_mean").replace("running_var", "_variance"),
    )
    inputs = {"x": _rng(7).standard_normal((2, 3, 4, 4), dtype=np.float32)}
    return Case("layout", torch_model, paddle_model, inputs)


class TorchBasicBlock(nn.Module):
    """ResNet basic block; the shortcut is computed *before* the main branch."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class TorchResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.layer1 = TorchBasicBlock(8, 8, 1)
        self.layer2 = TorchBasicBlock(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class PaddleBasicBlock(paddle.nn.Layer):
    """The same block; the shortcut is computed *after* the main branch."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(cin, cout, 3, stride, 1, bias_attr=False)
        self.bn1 = paddle.nn.BatchNorm2D(cout)
        self.conv2 = paddle.nn.Conv2D(cout, cout, 3, 1, 1, bias_attr=False)
        self.bn2 = paddle.nn.BatchNorm2D(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = paddle.nn.Sequential(
                paddle.nn.Conv2D(cin, cout, 1, stride, bias_attr=False), paddle.nn.BatchNorm2D(cout)
            )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = paddle.nn.functional.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return paddle.nn.functional.relu(identity + out)


class PaddleResNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.stem = paddle.nn.Conv2D(3, 8, 3, 1, 1, bias_attr=False)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.layer1 = PaddleBasicBlock(8, 8, 1)
        self.layer2 = PaddleBasicBlock(8, 16, 2)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(16, 5)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.nn.functional.relu(self.bn(self.stem(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(paddle.flatten(self.pool(x), 1))


def case_resnet() -> Case:
    torch_model = _torch_init(TorchResNet())
    paddle_model = PaddleResNet()
    _linear_copy(
        torch_model,
        paddle_model,
        lambda n: n.replace("running_mean", "_mean").replace("running_var", "_variance"),
    )
    inputs = {"x": _rng(8).standard_normal((2, 3, 8, 8), dtype=np.float32)}
    return Case("resnet", torch_model, paddle_model, inputs)


class TorchFusedAttention(nn.Module):
    """timm-style attention: one ``qkv`` projection, sliced after a reshape and permute."""

    def __init__(self, dim: int = 16, heads: int = 2, tokens: int = 5) -> None:
        super().__init__()
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head_dim = self.dim // self.heads
        qkv = self.qkv(x).reshape(-1, self.tokens, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q @ k.transpose(-2, -1) * head_dim**-0.5).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, self.tokens, self.dim)
        return self.proj(out)


class PaddleSplitAttention(paddle.nn.Layer):
    """The same attention with three projections ``q``, ``k``, ``v``."""

    def __init__(self, dim: int = 16, heads: int = 2, tokens: int = 5) -> None:
        super().__init__()
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.q = paddle.nn.Linear(dim, dim)
        self.k = paddle.nn.Linear(dim, dim)
        self.v = paddle.nn.Linear(dim, dim)
        self.proj = paddle.nn.Linear(dim, dim)

    def _heads(self, x: paddle.Tensor) -> paddle.Tensor:
        head_dim = self.dim // self.heads
        return x.reshape([-1, self.tokens, self.heads, head_dim]).transpose([0, 2, 1, 3])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        scale = (self.dim // self.heads) ** -0.5
        attn = paddle.nn.functional.softmax(paddle.matmul(q, k, transpose_y=True) * scale, -1)
        out = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([-1, self.tokens, self.dim])
        return self.proj(out)


class TorchFusedBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.attn = TorchFusedAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm(x))


class PaddleSplitBlock(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.norm = paddle.nn.LayerNorm(16)
        self.attn = PaddleSplitAttention()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x + self.attn(self.norm(x))


def case_fused_qkv() -> Case:
    torch_model = _torch_init(TorchFusedBlock())
    paddle_model = PaddleSplitBlock()
    state = torch_model.state_dict()
    weight, bias = state["attn.qkv.weight"].numpy(), state["attn.qkv.bias"].numpy()
    values = {
        f"attn.{p}.weight": weight[i * 16 : (i + 1) * 16].T.copy() for i, p in enumerate("qkv")
    }
    values.update(
        {f"attn.{p}.bias": bias[i * 16 : (i + 1) * 16].copy() for i, p in enumerate("qkv")}
    )
    values["attn.proj.weight"] = state["attn.proj.weight"].numpy().T.copy()
    values["attn.proj.bias"] = state["attn.proj.bias"].numpy()
    values["norm.weight"] = state["norm.weight"].numpy()
    values["norm.bias"] = state["norm.bias"].numpy()
    _set(paddle_model, values)
    paddle_model.eval()
    inputs = {"x": _rng(9).standard_normal((2, 5, 16), dtype=np.float32)}
    truth = {"": "", "norm": "norm", "attn": "attn", "attn.proj": "attn.proj"}
    return Case("fused_qkv", torch_model, paddle_model, inputs, truth)


#: Case name -> builder.
CASES: dict[str, Callable[[], Case]] = {
    "mha": case_mha,
    "encoder_layer": case_encoder_layer,
    "lstm": case_lstm,
    "nested": case_nested,
    "twice": case_twice,
    "residual": case_residual,
    "layout": case_layout,
    "resnet": case_resnet,
    "fused_qkv": case_fused_qkv,
}


# -- renaming every submodule ------------------------------------------------------------------


class _Renamed:
    """Mixin: attribute access by the original names of renamed children and parameters."""

    _padiff_renames: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        renames = self.__dict__.get("_padiff_renames", {})
        return super().__getattr__(renames.get(name, name))  # type: ignore[misc]


def _renamed_class(cls: type) -> type:
    return type(cls.__name__, (_Renamed, cls), {"__module__": cls.__module__})


def renamed(model: nn.Module) -> tuple[nn.Module, dict[str, str]]:
    """A deep copy of ``model`` whose submodules are ``m0, m1...`` and parameters ``p0, p1...``.

    Returns the copy and the map from every original module path and parameter/buffer name to
    the new one. ``forward`` still works: each module answers its children's and parameters'
    old attribute names; containers iterate their renamed children in the original order.
    """
    model = copy.deepcopy(model)
    counter = itertools.count()
    pcounter = itertools.count()
    mapping: dict[str, str] = {"": ""}
    modules = list(model.named_modules(remove_duplicate=False))
    # rename bottom-up so that each module's new path can be assembled from its parent's
    new_local: dict[int, dict[str, str]] = {}
    for _, module in modules:
        renames: dict[str, str] = {}
        for child in list(module._modules):
            renames[child] = f"m{next(counter)}"
        for pname in list(module._parameters):
            renames[pname] = f"p{next(pcounter)}"
        for bname in list(module._buffers):
            renames[bname] = f"p{next(pcounter)}"
        new_local[id(module)] = renames
    for path, module in modules:
        new_path = mapping[path]
        renames = new_local[id(module)]
        for child in module._modules:
            old_child = f"{path}.{child}" if path else child
            mapping[old_child] = f"{new_path}.{renames[child]}" if new_path else renames[child]
        for pname in [*module._parameters, *module._buffers]:
            old = f"{path}.{pname}" if path else pname
            mapping[old] = f"{new_path}.{renames[pname]}" if new_path else renames[pname]
    for _, module in modules:
        renames = new_local[id(module)]
        if not renames:
            continue
        module._modules = type(module._modules)((renames[k], v) for k, v in module._modules.items())
        module._parameters = type(module._parameters)(
            (renames[k], v) for k, v in module._parameters.items()
        )
        module._buffers = type(module._buffers)((renames[k], v) for k, v in module._buffers.items())
        module._non_persistent_buffers_set = {
            renames[k] for k in module._non_persistent_buffers_set
        }
        module.__class__ = _renamed_class(type(module))
        module.__dict__["_padiff_renames"] = renames
    return model, mapping


def truth_from_names(names_a: set[str], names_b: set[str]) -> dict[str, str]:
    """Identity ground truth on the names both sides share."""
    return {n: n for n in names_a & names_b}
