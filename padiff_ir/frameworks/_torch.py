"""The torch implementation of :class:`~padiff_ir.frameworks._base.Framework`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from padiff_ir.frameworks._base import Framework, SettingReader, read_attribute
from padiff_ir.frameworks.half import is_bfloat16
from padiff_ir.hints import Device, DType, GradNode, Model, Module, Optimizer, Tensor

__all__ = ["TorchFramework"]

#: torch ``eps``; Hugging Face's RMSNorm ``variance_epsilon``
_EPSILON = read_attribute("eps", "epsilon", "variance_epsilon", "variance_eps")


def _same_names(*settings: str) -> dict[str, SettingReader]:
    return {setting: read_attribute(setting) for setting in settings}


_POOLING = _same_names("kernel_size", "stride", "padding", "ceil_mode")
_CONVOLUTION = _same_names("stride", "dilation", "groups", "padding_mode")

#: family -> setting -> its torch attribute (the vocabulary of :mod:`padiff_ir.pairing.settings`)
_SETTINGS: Mapping[str, Mapping[str, SettingReader]] = {
    "batchnorm": {"epsilon": _EPSILON, **_same_names("track_running_stats")},
    "instancenorm": {"epsilon": _EPSILON},
    "layernorm": {"epsilon": _EPSILON},
    "rmsnorm": {"epsilon": _EPSILON},
    "groupnorm": {"epsilon": _EPSILON, "groups": read_attribute("num_groups")},
    "dropout": _same_names("p"),
    "gelu": _same_names("approximate"),
    "leakyrelu": _same_names("negative_slope"),
    "softmax": {"axis": read_attribute("dim")},
    "logsoftmax": {"axis": read_attribute("dim")},
    "embedding": _same_names("padding_idx"),
    "upsample": _same_names("mode", "align_corners"),
    **{f"maxpool{n}d": _POOLING for n in (1, 2, 3)},
    **{
        f"avgpool{n}d": {
            **_POOLING,
            "count_include_pad (paddle: not exclusive)": read_attribute("count_include_pad"),
        }
        for n in (1, 2, 3)
    },
    "elu": _same_names("alpha"),
    "celu": _same_names("alpha"),
    "hardtanh": {"min": read_attribute("min_val"), "max": read_attribute("max_val")},
    "softplus": _same_names("beta", "threshold"),
    "flatten": {"start_axis": read_attribute("start_dim"), "stop_axis": read_attribute("end_dim")},
    **{f"conv{n}d": _CONVOLUTION for n in (1, 2, 3)},
    **{f"convtranspose{n}d": _CONVOLUTION for n in (1, 2, 3)},
}


class TorchFramework(Framework):
    name = "torch"
    layer_packages = ("torch.nn.",)
    plain_layers = frozenset({"Module", "Sequential", "ModuleList", "ModuleDict"})
    reference = True
    settings = _SETTINGS
    batch_norm_unbiased_variance = True

    def __init__(self) -> None:
        import torch

        self.torch = torch

        class _Feed(torch.autograd.Function):
            @staticmethod
            def forward(
                ctx: Any, tensor: Tensor, value: Tensor, on_grad: Callable[[Tensor], object]
            ) -> Any:
                ctx.on_grad = on_grad
                return value.clone()

            @staticmethod
            def backward(ctx: Any, grad: Tensor) -> Any:
                replaced = ctx.on_grad(grad)
                return (replaced if isinstance(replaced, torch.Tensor) else grad), None, None

        self._feed = _Feed

    # -- models ----------------------------------------------------------------------------
    def owns(self, model: Model) -> bool:
        return isinstance(model, self.torch.nn.Module)

    def named_modules(self, model: Model) -> list[tuple[str, Any]]:
        return list(model.named_modules())

    def all_module_paths(self, model: Model) -> list[tuple[str, Any]]:
        return list(model.named_modules(remove_duplicate=False))

    def children(self, module: Module) -> list[tuple[str, Any]]:
        return list(module.named_children())

    def is_embedding(self, module: Module) -> bool:
        return isinstance(module, self.torch.nn.Embedding)

    def own_tensors(self, module: Module) -> list[tuple[str, Any]]:
        return [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]

    def persistent_names(self, model: Model) -> set[str]:
        return set(model.state_dict(keep_vars=True).keys())

    def write(self, tensor: Tensor, array: np.ndarray) -> None:
        torch = self.torch
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(np.asarray(array, order="C")))

    @contextlib.contextmanager
    def preserved_rng(self) -> Iterator[None]:
        torch = self.torch
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            yield

    @contextlib.contextmanager
    def preserved(self, model: Model) -> Iterator[None]:
        flags = [(m, m.training) for m in model.modules()]
        with self.preserved_rng():
            try:
                model.eval()
                yield
            finally:
                for module, flag in flags:
                    module.training = flag

    def enable_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.torch.enable_grad()

    # -- autograd graph --------------------------------------------------------------------
    def grad_node(self, tensor: Tensor) -> Any:
        return tensor.grad_fn

    def node_key(self, node: GradNode) -> Any:
        variable = getattr(node, "variable", None)
        return ("leaf", id(variable)) if variable is not None else node

    def node_name(self, node: GradNode) -> str:
        return str(node.name())

    def next_nodes(self, node: GradNode) -> list[tuple[Any, int]]:
        return [(n, int(i)) for n, i in node.next_functions if n is not None]

    def output_index(self, tensor: Tensor) -> int:
        return int(tensor.output_nr)

    def leaf_key(self, tensor: Tensor) -> Any:
        return ("leaf", id(tensor))

    # -- tensors ---------------------------------------------------------------------------
    def is_tensor(self, value: object) -> bool:
        return isinstance(value, self.torch.Tensor)

    def to_numpy(self, tensor: Tensor) -> np.ndarray:
        value = tensor.detach()
        if value.dtype == self.torch.bfloat16:
            value = value.float()
        return value.cpu().numpy().copy()

    def view(self, tensor: Tensor) -> np.ndarray | None:
        torch = self.torch
        if tensor.device.type != "cpu" or tensor.dtype == torch.bfloat16:
            return None
        if not tensor.is_contiguous() or tensor.is_sparse or tensor.is_quantized:
            return None
        try:
            return tensor.detach().numpy()
        except (RuntimeError, TypeError):  # a dtype numpy lacks
            return None

    def from_numpy(self, array: np.ndarray, like: Tensor) -> Any:
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(dtype=like.dtype, device=like.device)

    def as_input(self, value: Tensor, dtype: DType, device: Device) -> Any:
        if self.is_tensor(value):
            tensor = value
        elif is_bfloat16(value.dtype):  # ml_dtypes' bfloat16: torch reads its bit patterns
            bits = np.ascontiguousarray(value).view(np.int16)
            tensor = self.torch.from_numpy(bits).view(self.torch.bfloat16)
        else:
            tensor = self.torch.from_numpy(np.ascontiguousarray(value))
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor.to(device) if device is not None else tensor

    def is_floating(self, tensor: Tensor) -> bool:
        return bool(tensor.is_floating_point() or tensor.is_complex())

    def requires_grad(self, tensor: Tensor) -> bool:
        return bool(tensor.requires_grad)

    def version(self, tensor: Tensor) -> int:
        return int(tensor._version)

    def grad_leaf(self, tensor: Tensor) -> Any:
        return tensor.detach().requires_grad_(True)

    def alias(self, tensor: Tensor) -> Any:
        return tensor.view_as(tensor)

    def feed(self, tensor: Tensor, value: Tensor, on_grad: Callable[[Tensor], object]) -> Any:
        return self._feed.apply(tensor, value, on_grad)

    def register_grad_hook(self, tensor: Tensor, fn: Callable[[Tensor], object]) -> None:
        torch = self.torch

        def hook(grad: Tensor) -> Any:
            result = fn(grad)
            return result if isinstance(result, torch.Tensor) else None

        tensor.register_hook(hook)

    def register_pre_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        return module.register_forward_pre_hook(fn, with_kwargs=True)

    def register_post_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        return module.register_forward_hook(fn)

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.torch.no_grad()

    def modules(self, model: Model) -> list[Any]:
        return list(model.modules())

    def named_parameters(self, model: Model) -> dict[str, Any]:
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def first_float(self, model: Model) -> tuple[Any, Any]:
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
        return None, None

    def cast_copy(self, model: Model, dtype: str) -> Model:
        import copy

        return copy.deepcopy(model, self._cast_memo(model, dtype))

    def cast_copy_trained(
        self, model: Model, optimizer: Optimizer, dtype: str
    ) -> tuple[Model, Optimizer]:
        import copy

        # one memo: the optimizer's copy refers to the copy's parameters
        copied: tuple[Model, Optimizer] = copy.deepcopy(
            (model, optimizer), self._cast_memo(model, dtype)
        )
        with self.torch.no_grad():  # moments made mid-training follow their parameter's dtype
            for parameter, state in copied[1].state.items():
                for key, value in state.items():
                    if self.is_tensor(value) and value.is_floating_point() and value.dim():
                        state[key] = value.to(parameter.dtype)
        return copied

    def _cast_memo(self, model: Model, dtype: str) -> dict[int, Any]:
        """``deepcopy``'s memo: each floating parameter and buffer cast to ``dtype``."""
        torch = self.torch
        target = getattr(torch, dtype)
        memo: dict[int, Any] = {}
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if id(tensor) in memo:
                    continue
                cast = (
                    tensor.detach().to(target, copy=True)  # a copy also in the same dtype
                    if tensor.is_floating_point()
                    else tensor.clone()
                )
                if isinstance(tensor, torch.nn.Parameter):
                    cast = torch.nn.Parameter(cast, requires_grad=tensor.requires_grad)
                memo[id(tensor)] = cast
        return memo

    def grad(self, parameter: Tensor) -> Any:
        return parameter.grad

    def clear_grads(self, parameters: list[Tensor]) -> None:
        for parameter in parameters:
            parameter.grad = None

    def is_optimizer(self, value: object) -> bool:
        return isinstance(value, self.torch.optim.Optimizer)

    def optimizer_step(self, optimizer: Optimizer) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def optimizer_state(
        self, optimizer: Optimizer, parameters: Mapping[str, Tensor]
    ) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for name, parameter in parameters.items():
            state = optimizer.state.get(parameter)
            if not state:
                continue
            tensors = {
                k: v for k, v in state.items() if self.is_tensor(v) and v.ndim > 0 and k != "step"
            }
            if tensors:
                result[name] = tensors
        return result

    def optimizer_config(self, optimizer: Optimizer) -> dict[str, Any]:
        group = optimizer.param_groups[0] if optimizer.param_groups else {}
        kind = type(optimizer).__name__.lower()
        if kind == "sgd" and group.get("momentum", 0):
            kind = "momentum"
        config: dict[str, Any] = {"kind": kind, "class": type(optimizer).__name__}
        for key in ("lr", "weight_decay", "momentum", "eps", "nesterov", "dampening", "amsgrad"):
            if key in group:
                value = group[key]
                config[key] = float(value) if self.is_tensor(value) else value
        if "betas" in group:
            config["betas"] = tuple(float(b) for b in group["betas"])
        if kind == "sgd":
            config.pop("momentum", None)
        if kind == "adamw":
            config["decoupled_weight_decay"] = True
        return config
