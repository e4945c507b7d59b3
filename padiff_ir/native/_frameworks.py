"""What :func:`~padiff_ir.native.auto_diff` needs from torch and from paddle, behind one interface.

:func:`ops_for` returns a :class:`TorchOps` or :class:`PaddleOps`; the driver and the hooks speak
only to that interface (tensors to numpy and back, hooks, gradients, optimizers), so a pair of
two torch models, two paddle models or one of each runs through the same code. Each framework
is imported when its ops are first built.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["FrameworkOps", "PaddleOps", "TorchOps", "flatten_tensors", "ops_for"]

logger = logging.getLogger(__name__)

# Canonical optimizer-state names (torch's) and paddle's accumulator names for them.
PADDLE_STATE_NAMES: Mapping[str, str] = {
    "velocity": "momentum_buffer",
    "moment1": "exp_avg",
    "moment2": "exp_avg_sq",
    "moment2_max": "max_exp_avg_sq",
    "mean_square": "square_avg",
    "mean_grad": "grad_avg",
    "momentum": "momentum_buffer",
    "moment": "sum",
}


class FrameworkOps:
    """Tensor, hook, gradient and optimizer operations of one framework."""

    name = ""

    # -- tensors ---------------------------------------------------------------------------
    def is_tensor(self, value: Any) -> bool:
        raise NotImplementedError

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A numpy copy of ``tensor`` (bfloat16 read as float32)."""
        raise NotImplementedError

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        """A tensor holding ``array`` with the dtype and device of ``like``, without gradient."""
        raise NotImplementedError

    def as_input(self, value: Any, dtype: Any, device: Any) -> Any:
        """A model input of this framework from a tensor of this framework or a numpy array."""
        raise NotImplementedError

    def is_floating(self, tensor: Any) -> bool:
        raise NotImplementedError

    def version(self, tensor: Any) -> int:
        """The tensor's in-place modification counter (0 where the framework keeps none)."""
        return 0

    def requires_grad(self, tensor: Any) -> bool:
        raise NotImplementedError

    def grad_leaf(self, tensor: Any) -> Any:
        """A leaf sharing ``tensor``'s memory that requires gradient (for inputs)."""
        raise NotImplementedError

    def alias(self, tensor: Any) -> Any:
        """A view of ``tensor`` with its own autograd node, so its gradient is one consumer's."""
        raise NotImplementedError

    def feed(self, tensor: Any, value: Any, on_grad: Callable[[Any], Any]) -> Any:
        """``value``'s numbers on ``tensor``'s gradient path: its backward calls
        ``on_grad(grad)`` and passes on the tensor that returns (``grad`` itself for ``None``).

        Gradient hooks on the outputs of paddle ``PyLayer`` ops are called but their results
        are ignored, so the replacement is done in the op's backward, on both frameworks.
        """
        raise NotImplementedError

    def scalar(self, tensor: Any) -> float:
        return float(self.to_numpy(tensor).reshape(-1)[0])

    def numel(self, tensor: Any) -> int:
        return int(np.prod([int(d) for d in tensor.shape]))

    def mean_of(self, tensors: list[Any]) -> Any:
        """Sum of the means of floating tensors (PaDiff's default loss)."""
        total = None
        for tensor in tensors:
            if self.is_floating(tensor):
                value = tensor.mean()
                total = value if total is None else total + value
        return total

    # -- hooks -----------------------------------------------------------------------------
    def register_grad_hook(self, tensor: Any, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(grad)`` when ``tensor``'s gradient is computed; a tensor it returns
        replaces the gradient (anything else is ignored)."""
        raise NotImplementedError

    def register_pre_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        """``fn(module, args, kwargs) -> (args, kwargs) | None``; returns a handle."""
        raise NotImplementedError

    def register_post_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        """``fn(module, args, output) -> output | None``; returns a handle."""
        raise NotImplementedError


    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    # -- modules ---------------------------------------------------------------------------
    def modules(self, model: Any) -> list[Any]:
        raise NotImplementedError

    def named_parameters(self, model: Any) -> dict[str, Any]:
        """Trainable parameters by name (first name of shared ones)."""
        raise NotImplementedError

    def named_state(self, model: Any) -> dict[str, Any]:
        """Every parameter and persistent buffer by each of its names (frozen ones included:
        paddle keeps BatchNorm statistics as non-trainable parameters)."""
        from padiff_ir.matching.native import model_tensors

        return model_tensors(model)

    def first_float(self, model: Any) -> tuple[Any, Any]:
        """``(dtype, device)`` of the first floating parameter (``(None, None)`` if none)."""
        raise NotImplementedError

    # -- gradients -------------------------------------------------------------------------
    def grad(self, parameter: Any) -> Any:
        raise NotImplementedError

    def clear_grads(self, parameters: list[Any]) -> None:
        raise NotImplementedError

    def backward(self, loss: Any) -> None:
        loss.backward()

    # -- optimizers ------------------------------------------------------------------------
    def is_optimizer(self, value: Any) -> bool:
        raise NotImplementedError

    def optimizer_step(self, optimizer: Any) -> None:
        raise NotImplementedError

    def optimizer_state(
        self, optimizer: Any, parameters: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Parameter name -> {canonical state name: tensor} for the tensors of its state."""
        raise NotImplementedError

    def optimizer_config(self, optimizer: Any) -> dict[str, Any]:
        """Hyperparameters by canonical name (``kind``, ``lr``, ``weight_decay``, ...)."""
        raise NotImplementedError


class TorchOps(FrameworkOps):
    name = "torch"

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

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.torch.Tensor)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        value = tensor.detach()
        if value.dtype == self.torch.bfloat16:
            value = value.float()
        return value.cpu().numpy().copy()

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(dtype=like.dtype, device=like.device)

    def as_input(self, value: Any, dtype: Any, device: Any) -> Any:
        tensor = value if self.is_tensor(value) else self.torch.from_numpy(
            np.ascontiguousarray(value))
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
            tensors = {k: v for k, v in state.items()
                       if self.is_tensor(v) and v.ndim > 0 and k != "step"}
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


class PaddleOps(FrameworkOps):
    name = "paddle"

    def __init__(self) -> None:
        import paddle
        from paddle.autograd import PyLayer

        self.paddle = paddle

        class _Feed(PyLayer):
            @staticmethod
            def forward(ctx: Any, tensor: Any, value: Any, on_grad: Any) -> Any:
                ctx.on_grad = on_grad
                return value.clone()

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                replaced = ctx.on_grad(grad)
                return replaced if isinstance(replaced, paddle.Tensor) else grad

        self._feed = _Feed

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.paddle.Tensor)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        if "bfloat16" in str(tensor.dtype):
            tensor = tensor.astype("float32")
        return np.asarray(tensor.numpy())  # paddle's numpy() already copies

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        tensor = self.paddle.to_tensor(np.ascontiguousarray(array), place=like.place)
        if tensor.dtype != like.dtype:
            tensor = tensor.astype(like.dtype)
        return tensor

    def as_input(self, value: Any, dtype: Any, device: Any) -> Any:
        tensor = value if self.is_tensor(value) else self.paddle.to_tensor(
            np.ascontiguousarray(value))
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.astype(dtype)
        return tensor

    def is_floating(self, tensor: Any) -> bool:
        return bool(tensor.is_floating_point() or tensor.is_complex())

    def requires_grad(self, tensor: Any) -> bool:
        return not tensor.stop_gradient

    def version(self, tensor: Any) -> int:
        return int(tensor._inplace_version())

    def grad_leaf(self, tensor: Any) -> Any:
        leaf = tensor.detach()
        leaf.stop_gradient = False
        return leaf

    def alias(self, tensor: Any) -> Any:
        return tensor.view(tensor.shape)

    def feed(self, tensor: Any, value: Any, on_grad: Callable[[Any], Any]) -> Any:
        return self._feed.apply(tensor, value, on_grad)

    def register_grad_hook(self, tensor: Any, fn: Callable[[Any], Any]) -> None:
        paddle = self.paddle

        def hook(grad: Any) -> Any:
            result = fn(grad)  # paddle crashes on a hook returning anything but a tensor/None
            return result if isinstance(result, paddle.Tensor) else None

        tensor.register_hook(hook)

    def register_pre_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        return module.register_forward_pre_hook(fn, with_kwargs=True)

    def register_post_hook(self, module: Any, fn: Callable[..., Any]) -> Any:
        return module.register_forward_post_hook(fn)


    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.paddle.no_grad()

    def modules(self, model: Any) -> list[Any]:
        return list(model.sublayers(include_self=True))

    def named_parameters(self, model: Any) -> dict[str, Any]:
        return {n: p for n, p in model.named_parameters() if not p.stop_gradient}

    def first_float(self, model: Any) -> tuple[Any, Any]:
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype, None
        return None, None

    def grad(self, parameter: Any) -> Any:
        return parameter.grad

    def clear_grads(self, parameters: list[Any]) -> None:
        for parameter in parameters:
            parameter.clear_gradient(False)

    def is_optimizer(self, value: Any) -> bool:
        return isinstance(value, self.paddle.optimizer.Optimizer)

    def optimizer_step(self, optimizer: Any) -> None:
        optimizer.step()
        optimizer.clear_grad(set_to_zero=False)

    def optimizer_state(
        self, optimizer: Any, parameters: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        accumulators = getattr(optimizer, "_accumulators", {}) or {}
        result: dict[str, dict[str, Any]] = {}
        for name, parameter in parameters.items():
            tensors = {}
            for kind, by_param in accumulators.items():
                tensor = by_param.get(parameter.name)
                canonical = PADDLE_STATE_NAMES.get(kind)
                if tensor is not None and canonical is not None and len(tensor.shape) > 0:
                    tensors[canonical] = tensor
            if tensors:
                result[name] = tensors
        return result

    def optimizer_config(self, optimizer: Any) -> dict[str, Any]:
        kind = type(optimizer).__name__.lower()
        config: dict[str, Any] = {"kind": kind, "class": type(optimizer).__name__}
        try:
            config["lr"] = float(optimizer.get_lr())
        except Exception:
            logger.debug("cannot read the learning rate of %s", type(optimizer).__name__)
        decay = getattr(optimizer, "_weight_decay", None)
        if kind == "adamw":
            config["weight_decay"] = float(decay) if decay is not None else 0.0
            config["decoupled_weight_decay"] = True
        elif getattr(optimizer, "_regularization_coeff", None) is not None:
            config["weight_decay"] = float(optimizer._regularization_coeff)
        else:
            regularizer = getattr(optimizer, "regularization", None)
            config["weight_decay"] = float(getattr(regularizer, "_coeff", 0.0) or 0.0)
        if hasattr(optimizer, "_momentum"):
            config["momentum"] = float(optimizer._momentum)
            config["nesterov"] = bool(getattr(optimizer, "_use_nesterov", False))
        if hasattr(optimizer, "_beta1"):
            config["betas"] = (float(optimizer._beta1), float(optimizer._beta2))
        if hasattr(optimizer, "_epsilon"):
            config["eps"] = float(optimizer._epsilon)
        if hasattr(optimizer, "_amsgrad"):
            config["amsgrad"] = bool(optimizer._amsgrad)
        return config


_OPS: dict[str, FrameworkOps] = {}


def ops_for(framework: str) -> FrameworkOps:
    """The (cached) ops of ``"torch"`` or ``"paddle"``."""
    ops = _OPS.get(framework)
    if ops is None:
        ops = TorchOps() if framework == "torch" else PaddleOps()
        _OPS[framework] = ops
    return ops


def flatten_tensors(value: Any, ops: FrameworkOps) -> list[Any]:
    """The tensors of a (nested) output in order: dict values by key order, then sequences."""
    return list(_walk(value, ops))


def _walk(value: Any, ops: FrameworkOps) -> Iterator[Any]:
    if ops.is_tensor(value):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item, ops)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item, ops)
