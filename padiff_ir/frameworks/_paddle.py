"""The paddle implementation of :class:`~padiff_ir.frameworks._base.Framework`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from padiff_ir.frameworks._base import (
    PADDLE_STATE_NAMES,
    Framework,
    SettingReader,
    read_attribute,
)
from padiff_ir.frameworks._paddle_optimizer import copied_optimizer
from padiff_ir.frameworks.half import is_bfloat16, widened
from padiff_ir.hints import Device, DType, GradNode, Model, Module, Optimizer, Tensor

__all__ = ["PaddleFramework"]

logger = logging.getLogger(__name__)

#: paddle ``_epsilon``; PaddleFormers' RMSNorm ``variance_epsilon``
_EPSILON = read_attribute("eps", "epsilon", "variance_epsilon", "_epsilon", "variance_eps")


def _gelu_approximation(module: Module) -> str:
    return "tanh" if getattr(module, "_approximate", False) else "none"


def _tracks_running_stats(module: Module) -> bool:
    return getattr(module, "_use_global_stats", None) is not False


def _counts_padding(module: Module) -> bool | None:
    exclusive = getattr(module, "exclusive", None)
    return None if exclusive is None else not exclusive  # torch's count_include_pad


_POOLING = {
    "kernel_size": read_attribute("ksize"),
    **{setting: read_attribute(setting) for setting in ("stride", "padding", "ceil_mode")},
}
_CONVOLUTION = {
    setting: read_attribute(f"_{setting}")
    for setting in ("stride", "dilation", "groups", "padding_mode")
}

#: family -> setting -> its paddle attribute (the vocabulary of :mod:`padiff_ir.pairing.settings`)
_SETTINGS: Mapping[str, Mapping[str, SettingReader]] = {
    "batchnorm": {"epsilon": _EPSILON, "track_running_stats": _tracks_running_stats},
    "instancenorm": {"epsilon": _EPSILON},
    "layernorm": {"epsilon": _EPSILON},
    "rmsnorm": {"epsilon": _EPSILON},
    "groupnorm": {"epsilon": _EPSILON, "groups": read_attribute("_num_groups")},
    "dropout": {"p": read_attribute("p")},
    "gelu": {"approximate": _gelu_approximation},
    "leakyrelu": {"negative_slope": read_attribute("_negative_slope")},
    "softmax": {"axis": read_attribute("_axis")},
    "logsoftmax": {"axis": read_attribute("_axis")},
    "embedding": {"padding_idx": read_attribute("_padding_idx")},
    "upsample": {"mode": read_attribute("mode"), "align_corners": read_attribute("align_corners")},
    **{f"maxpool{n}d": _POOLING for n in (1, 2, 3)},
    **{
        f"avgpool{n}d": {**_POOLING, "count_include_pad (paddle: not exclusive)": _counts_padding}
        for n in (1, 2, 3)
    },
    "elu": {"alpha": read_attribute("_alpha")},
    "celu": {"alpha": read_attribute("_alpha")},
    "hardtanh": {"min": read_attribute("_min"), "max": read_attribute("_max")},
    "softplus": {"beta": read_attribute("_beta"), "threshold": read_attribute("_threshold")},
    "flatten": {
        "start_axis": read_attribute("start_axis"),
        "stop_axis": read_attribute("stop_axis"),
    },
    **{f"conv{n}d": _CONVOLUTION for n in (1, 2, 3)},
    **{f"convtranspose{n}d": _CONVOLUTION for n in (1, 2, 3)},
}


class PaddleFramework(Framework):
    name = "paddle"
    layer_packages = ("paddle.nn.",)
    plain_layers = frozenset({"Layer", "Sequential", "LayerList", "LayerDict"})
    settings = _SETTINGS

    def batch_norm_momentum(self, module: Module) -> float | None:
        momentum = getattr(module, "_momentum", None)
        return None if momentum is None else 1.0 - float(momentum)  # in torch's convention

    def own_momentum(self, momentum: float) -> float:
        return 1.0 - momentum  # paddle: running = m * running + (1 - m) * batch

    def dropout_mode(self, module: Module) -> str:
        return str(getattr(module, "mode", "upscale_in_train"))

    def __init__(self) -> None:
        import paddle
        from paddle.autograd import PyLayer

        self.paddle = paddle

        class _Feed(PyLayer):
            @staticmethod
            def forward(
                ctx: Any, tensor: Tensor, value: Tensor, on_grad: Callable[[Tensor], object]
            ) -> Any:
                ctx.on_grad = on_grad
                return value.clone()

            @staticmethod
            def backward(ctx: Any, grad: Tensor) -> Any:
                replaced = ctx.on_grad(grad)
                return replaced if isinstance(replaced, paddle.Tensor) else grad

        self._feed = _Feed

    # -- models ----------------------------------------------------------------------------
    def owns(self, model: Model) -> bool:
        return isinstance(model, self.paddle.nn.Layer)

    def named_modules(self, model: Model) -> list[tuple[str, Any]]:
        return list(model.named_sublayers(include_self=True))

    def all_module_paths(self, model: Model) -> list[tuple[str, Any]]:
        return list(model.named_sublayers(include_self=True, remove_duplicate=False))

    def children(self, module: Module) -> list[tuple[str, Any]]:
        return list(module.named_children())

    def is_embedding(self, module: Module) -> bool:
        return isinstance(module, self.paddle.nn.Embedding)

    def fused_activation(self, module: Module) -> str | None:
        # paddle's legacy layers (``paddle.nn.BatchNorm``) keep their ``act`` as ``_act``
        act = getattr(module, "_act", None)
        return act if isinstance(act, str) and act else None

    def own_tensors(self, module: Module) -> list[tuple[str, Any]]:
        return [
            *module.named_parameters(include_sublayers=False),
            *module.named_buffers(include_sublayers=False),
        ]

    def persistent_names(self, model: Model) -> set[str]:
        return set(model.state_dict().keys())

    def write(self, tensor: Tensor, array: np.ndarray) -> None:
        paddle = self.paddle
        dtype_name = self.dtype_name(tensor)
        if dtype_name == "bfloat16":  # paddle takes no numpy bfloat16 (ml_dtypes'): cast in paddle
            values = paddle.to_tensor(np.asarray(array, np.float32, order="C"))
            tensor.set_value(paddle.cast(values, tensor.dtype))
            return
        tensor.set_value(np.asarray(array, order="C").astype(np.dtype(dtype_name)))

    @contextlib.contextmanager
    def preserved_rng(self) -> Iterator[None]:
        paddle = self.paddle
        cpu_state = paddle.get_rng_state("cpu")
        device_state = paddle.get_rng_state()
        try:
            yield
        finally:
            paddle.set_rng_state(cpu_state, "cpu")
            paddle.set_rng_state(device_state)

    @contextlib.contextmanager
    def preserved(self, model: Model) -> Iterator[None]:
        layers = [model, *model.sublayers()]
        flags = [(layer, layer.training) for layer in layers]
        with self.preserved_rng():
            try:
                model.eval()
                yield
            finally:
                for layer, flag in flags:
                    layer.training = flag

    def enable_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.paddle.enable_grad()

    # -- autograd graph --------------------------------------------------------------------
    def grad_node(self, tensor: Tensor) -> Any:
        if tensor.stop_gradient:
            return None
        node = tensor.grad_fn
        return None if node is None or node.name() == "GradNodeAccumulation" else node

    def node_key(self, node: GradNode) -> Any:
        return node.node_ptr()

    def node_name(self, node: GradNode) -> str:
        return str(node.name())

    def next_nodes(self, node: GradNode) -> list[tuple[Any, int]]:
        return [(n, 0) for n in node.next_functions if n is not None]

    def leaf_key(self, tensor: Tensor) -> Any:
        if tensor.stop_gradient:
            return None
        node = tensor.grad_fn
        return None if node is None else node.node_ptr()

    # -- tensors ---------------------------------------------------------------------------
    def is_tensor(self, value: object) -> bool:
        return isinstance(value, self.paddle.Tensor)

    def to_numpy(self, tensor: Tensor) -> np.ndarray:
        if "bfloat16" in str(tensor.dtype):
            tensor = tensor.astype("float32")
        return np.asarray(tensor.numpy())  # paddle's numpy() already copies

    def view(self, tensor: Tensor) -> np.ndarray | None:
        if "bfloat16" in str(tensor.dtype) or not tensor.place.is_cpu_place():
            return None
        try:
            array = np.from_dlpack(tensor.detach())
        except (RuntimeError, TypeError, ValueError, BufferError):
            return None
        return array if array.flags.c_contiguous else None

    def from_numpy(self, array: np.ndarray, like: Tensor) -> Any:
        tensor = self.paddle.to_tensor(np.ascontiguousarray(array), place=like.place)
        if tensor.dtype != like.dtype:
            tensor = tensor.astype(like.dtype)
        return tensor

    def as_input(self, value: Tensor, dtype: DType, device: Device) -> Any:
        if self.is_tensor(value):
            tensor = value
        elif is_bfloat16(value.dtype):  # paddle takes no ml_dtypes bfloat16: cast in paddle
            tensor = self.paddle.to_tensor(np.ascontiguousarray(widened(value))).astype("bfloat16")
        else:
            tensor = self.paddle.to_tensor(np.ascontiguousarray(value))
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.astype(dtype)
        return tensor

    def is_floating(self, tensor: Tensor) -> bool:
        return bool(tensor.is_floating_point() or tensor.is_complex())

    def requires_grad(self, tensor: Tensor) -> bool:
        return not tensor.stop_gradient

    def version(self, tensor: Tensor) -> int:
        return int(tensor._inplace_version())

    def grad_leaf(self, tensor: Tensor) -> Any:
        leaf = tensor.detach()
        leaf.stop_gradient = False
        return leaf

    def alias(self, tensor: Tensor) -> Any:
        return tensor.view(tensor.shape)

    def feed(self, tensor: Tensor, value: Tensor, on_grad: Callable[[Tensor], object]) -> Any:
        return self._feed.apply(tensor, value, on_grad)

    def register_grad_hook(self, tensor: Tensor, fn: Callable[[Tensor], object]) -> None:
        paddle = self.paddle

        def hook(grad: Tensor) -> Any:
            result = fn(grad)  # paddle crashes on a hook returning anything but a tensor/None
            return result if isinstance(result, paddle.Tensor) else None

        tensor.register_hook(hook)

    def register_pre_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        return module.register_forward_pre_hook(fn, with_kwargs=True)

    def register_post_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        return module.register_forward_post_hook(fn)

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.paddle.no_grad()

    def modules(self, model: Model) -> list[Any]:
        return list(model.sublayers(include_self=True))

    def named_parameters(self, model: Model) -> dict[str, Any]:
        return {n: p for n, p in model.named_parameters() if not p.stop_gradient}

    def first_float(self, model: Model) -> tuple[Any, Any]:
        for tensor in model.parameters():
            if tensor.is_floating_point():
                return tensor.dtype, None
        return None, None

    def cast_copy(self, model: Model, dtype: str) -> Model:
        import copy

        copied = copy.deepcopy(model)
        copied.to(dtype=dtype)  # floating parameters and buffers only
        return copied

    def cast_copy_trained(
        self, model: Model, optimizer: Optimizer, dtype: str
    ) -> tuple[Model, Optimizer]:
        copied = self.cast_copy(model, dtype)
        # deepcopy keeps the order of the parameters (their names get a ``_deepcopy_N`` suffix)
        mapping = {id(p): c for p, c in zip(model.parameters(), copied.parameters(), strict=True)}
        return copied, copied_optimizer(optimizer, mapping, dtype)

    def grad(self, parameter: Tensor) -> Any:
        return parameter.grad

    def clear_grads(self, parameters: list[Tensor]) -> None:
        for parameter in parameters:
            parameter.clear_gradient(False)

    def is_optimizer(self, value: object) -> bool:
        return isinstance(value, self.paddle.optimizer.Optimizer)

    def optimizer_step(self, optimizer: Optimizer) -> None:
        optimizer.step()
        optimizer.clear_grad(set_to_zero=False)

    def optimizer_state(
        self, optimizer: Optimizer, parameters: Mapping[str, Tensor]
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

    def optimizer_config(self, optimizer: Optimizer) -> dict[str, Any]:
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
