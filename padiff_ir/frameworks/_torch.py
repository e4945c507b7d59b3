"""The torch implementation of :class:`~padiff_ir.frameworks._base.Framework`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from padiff_ir.frameworks._base import Framework

__all__ = ["TorchFramework"]


class TorchFramework(Framework):
    name = "torch"
    layer_packages = ("torch.nn.",)
    plain_layers = frozenset({"Module", "Sequential", "ModuleList", "ModuleDict"})

    def __init__(self) -> None:
        import torch

        self.torch = torch

        class _Feed(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, tensor: Any, value: Any, on_grad: Any) -> Any:
                ctx.on_grad = on_grad
                return value.clone()

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                replaced = ctx.on_grad(grad)
                return (replaced if isinstance(replaced, torch.Tensor) else grad), None, None

        self._feed = _Feed

    # -- models ----------------------------------------------------------------------------
    def owns(self, model: Any) -> bool:
        return isinstance(model, self.torch.nn.Module)

    def named_modules(self, model: Any) -> list[tuple[str, Any]]:
        return list(model.named_modules())

    def all_module_paths(self, model: Any) -> list[tuple[str, Any]]:
        return list(model.named_modules(remove_duplicate=False))

    def children(self, module: Any) -> list[tuple[str, Any]]:
        return list(module.named_children())

    def is_embedding(self, module: Any) -> bool:
        return isinstance(module, self.torch.nn.Embedding)

    def own_tensors(self, module: Any) -> list[tuple[str, Any]]:
        return [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]

    def persistent_names(self, model: Any) -> set[str]:
        return set(model.state_dict(keep_vars=True).keys())

    def write(self, tensor: Any, array: np.ndarray) -> None:
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
    def preserved(self, model: Any) -> Iterator[None]:
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
    def grad_node(self, tensor: Any) -> Any:
        return tensor.grad_fn

    def node_key(self, node: Any) -> Any:
        variable = getattr(node, "variable", None)
        return ("leaf", id(variable)) if variable is not None else node

    def node_name(self, node: Any) -> str:
        return str(node.name())

    def next_nodes(self, node: Any) -> list[tuple[Any, int]]:
        return [(n, int(i)) for n, i in node.next_functions if n is not None]

    def output_index(self, tensor: Any) -> int:
        return int(tensor.output_nr)

    def leaf_key(self, tensor: Any) -> Any:
        return ("leaf", id(tensor))

    # -- tensors ---------------------------------------------------------------------------
    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.torch.Tensor)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        value = tensor.detach()
        if value.dtype == self.torch.bfloat16:
            value = value.float()
        return value.cpu().numpy().copy()

    def view(self, tensor: Any) -> np.ndarray | None:
        torch = self.torch
        if tensor.device.type != "cpu" or tensor.dtype == torch.bfloat16:
            return None
        if not tensor.is_contiguous() or tensor.is_sparse or tensor.is_quantized:
            return None
        try:
            return tensor.detach().numpy()
        except (RuntimeError, TypeError):  # a dtype numpy lacks
            return None

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(dtype=like.dtype, device=like.device)

    def as_input(self, value: Any, dtype: Any, device: Any) -> Any:
        tensor = (
            value if self.is_tensor(value) else self.torch.from_numpy(np.ascontiguousarray(value))
        )
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor.to(device) if device is not None else tensor

    def is_floating(self, tensor: Any) -> bool:
        return bool(tensor.is_floating_point() or tensor.is_complex())

    def requires_grad(self, tensor: Any) -> bool:
        return bool(tensor.requires_grad)

    def version(self, tensor: Any) -> int:
        return int(tensor._version)

    def grad_leaf(self, tensor: Any) -> Any:
        return tensor.detach().requires_grad_(True)

    def alias(self, tensor: Any) -> Any:
        return tensor.view_as(tensor)

    def feed(self, tensor: Any, value: Any, on_grad: Callable[[Any], Any]) -> Any:
        return self._feed.apply(tensor, value, on_grad)

    def register_grad_hook(self, tensor: Any, fn: Callable[[Any], Any]) -> None:
        torch = self.torch

        def hook(grad: Any) -> Any:
            result = fn(grad)
            return result if isinstance(result, torch.Tensor) else None

        tensor.register_hook(hook)

    def register_pre_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        return module.register_forward_pre_hook(fn, with_kwargs=True)

    def register_post_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        return module.register_forward_hook(fn)

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.torch.no_grad()

    def modules(self, model: Any) -> list[Any]:
        return list(model.modules())

    def named_parameters(self, model: Any) -> dict[str, Any]:
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def first_float(self, model: Any) -> tuple[Any, Any]:
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype, tensor.device
        return None, None

    def cast_copy(self, model: Any, dtype: str) -> Any:
        import copy

        torch = self.torch
        target = getattr(torch, dtype)
        memo: dict[int, Any] = {}
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                if id(tensor) in memo:
                    continue
                cast = tensor.detach().to(target) if tensor.is_floating_point() else tensor.clone()
                if isinstance(tensor, torch.nn.Parameter):
                    cast = torch.nn.Parameter(cast, requires_grad=tensor.requires_grad)
                memo[id(tensor)] = cast
        return copy.deepcopy(model, memo)

    def grad(self, parameter: Any) -> Any:
        return parameter.grad

    def clear_grads(self, parameters: list[Any]) -> None:
        for parameter in parameters:
            parameter.grad = None

    def is_optimizer(self, value: Any) -> bool:
        return isinstance(value, self.torch.optim.Optimizer)

    def optimizer_step(self, optimizer: Any) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def optimizer_state(
        self, optimizer: Any, parameters: Mapping[str, Any]
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

    def optimizer_config(self, optimizer: Any) -> dict[str, Any]:
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
