"""The interface every framework implements: the one contact of padiff-ir with torch and paddle.

A :class:`Framework` knows its models (modules, parameters and buffers by name, the state an
analysis must restore), its tensors (to numpy and back, written in place keeping dtype and
device), its hooks, its autograd graph (for tracing an eager run, :mod:`.trace`), gradients and
optimizers, and its settings vocabulary (the attribute a layer keeps its epsilon, pooling or
dropout mode in, read by :mod:`padiff_ir.pairing.settings`).
:func:`padiff_ir.frameworks.get_framework` returns the torch or paddle one; a third framework
(JAX/Flax, MindSpore) is one more subclass in one more file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from padiff_ir.hints import Device, DType, GradNode, Model, Module, Optimizer, Outputs, Tensor

__all__ = ["PADDLE_STATE_NAMES", "Framework", "SettingReader", "flatten_tensors", "read_attribute"]

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


_ROLE_ATTRIBUTES = (
    ("weight", "weight"),
    ("bias", "bias"),
    ("running_mean", "running_mean"),
    ("running_var", "running_var"),
    ("_mean", "running_mean"),
    ("_variance", "running_var"),
)


SettingReader = Callable[[Any], Any]
"""How a framework reads one setting from a layer (``None``: the layer does not say)."""


def read_attribute(*names: str) -> SettingReader:
    """A reader of the first of ``names`` that a layer has (``None`` when it has none).

    Example:
        >>> class Norm:
        ...     _epsilon = 1e-6
        >>> read_attribute("eps", "_epsilon")(Norm()), read_attribute("eps")(Norm())
        (1e-06, None)
    """

    def read(module: Module) -> Any:
        for name in names:
            if hasattr(module, name):
                return getattr(module, name)
        return None

    return read


class Framework:
    """Models, tensors, hooks, autograd graph, gradients and optimizers of one framework."""

    name = ""
    #: where this framework defines its own layer classes (``__module__`` prefixes)
    layer_packages: tuple[str, ...] = ()
    #: its classes that say nothing of what a layer computes (the base class, containers)
    plain_layers: frozenset[str] = frozenset()
    #: whether its model is model A, the reference, of a pair given in no order (PaDiff's
    #: ``assign_weight(paddle_model, torch_model)`` copies torch's weights into paddle)
    reference = False
    #: its settings vocabulary: layer family -> setting (as :mod:`padiff_ir.pairing.settings`
    #: names it) -> how this framework's layer of that family keeps it
    settings: Mapping[str, Mapping[str, SettingReader]] = {}
    #: whether its BatchNorm updates the running variance with the unbiased batch variance
    batch_norm_unbiased_variance = False

    # -- models ----------------------------------------------------------------------------
    def owns(self, model: Model) -> bool:
        """Whether ``model`` is a model (module, layer) of this framework."""
        raise NotImplementedError

    def named_modules(self, model: Model) -> list[tuple[str, Any]]:
        """``(path, module)`` of the model and every submodule, root (``""``) first, each
        module once (its first path)."""
        raise NotImplementedError

    def children(self, module: Module) -> list[tuple[str, Any]]:
        """``(name, child)`` of a module's direct submodules."""
        raise NotImplementedError

    def own_tensors(self, module: Module) -> list[tuple[str, Any]]:
        """``(name, tensor)`` of the parameters and buffers a module holds itself."""
        raise NotImplementedError

    def base_layer(self, module: Module) -> str:
        """The class of this framework that ``module`` is: a library's subclass of
        ``nn.Linear`` (a LoRA-ready wrapper) is a ``Linear``; a class deriving only from the
        base class or a container is itself.

        The nearest class in ``module``'s class hierarchy that this framework defines is the
        answer, unless it is one of :attr:`plain_layers`.
        """
        own = type(module)
        for cls in own.__mro__:
            if cls.__module__.startswith(self.layer_packages):
                return own.__name__ if cls.__name__ in self.plain_layers else cls.__name__
        return own.__name__

    def base_layers(self, modules: Sequence[tuple[str, Module]]) -> dict[str, str]:
        """Module path -> :meth:`base_layer` for the ``(path, module)`` whose base layer is not
        their own class (the others need no entry)."""
        found = ((path, type(module).__name__, self.base_layer(module)) for path, module in modules)
        return {path: base for path, own, base in found if base != own}

    def fused_activation(self, module: Module) -> str | None:
        """The activation ``module`` applies after its own computation, by name (paddle's
        ``BatchNorm(act="relu")``: ``"relu"``); ``None`` for a layer that applies none."""
        return None

    def roles(self, module: Module) -> dict[str, str]:
        """Name of each tensor ``module`` holds -> its role (``weight``, ``bias``,
        ``running_mean``, ``running_var``), found by attribute, so a renamed storage still
        says what it is."""
        own = {id(t): name for name, t in self.own_tensors(module)}
        found = {}
        for attribute, role in _ROLE_ATTRIBUTES:
            try:
                tensor = getattr(module, attribute, None)
            except Exception:  # a property that fails: no such role
                tensor = None
            name = own.get(id(tensor)) if tensor is not None else None
            if name is not None and name not in found:
                found[name] = role
        return found

    def persistent_names(self, model: Model) -> set[str]:
        """Names of the tensors that make the model's state (parameters, persistent buffers)."""
        raise NotImplementedError

    def named_tensors(self, model: Model) -> dict[str, Any]:
        """Every parameter and persistent buffer of a model by each of its names.

        Tensors reached under several names (shared weights, paddle's RNN aliases such as
        ``lstm.0.cell.weight_ih``) appear once per name, as the same object.
        """
        persistent = self.persistent_names(model)
        tensors: dict[str, Any] = {}
        for path, module in self.all_module_paths(model):
            for name, tensor in self.own_tensors(module):
                full = f"{path}.{name}" if path else name
                if full in persistent:
                    tensors.setdefault(full, tensor)
        return tensors

    def all_module_paths(self, model: Model) -> list[tuple[str, Any]]:
        """Like :meth:`named_modules`, but a module reached by several paths once per path."""
        raise NotImplementedError

    def is_embedding(self, module: Module) -> bool:
        """Whether ``module`` is the framework's ``Embedding`` (or a subclass of it)."""
        raise NotImplementedError

    def token_vocabulary(self, model: Model) -> int | None:
        """The number of rows of the model's first embedding table: token ids below it are
        valid inputs; ``None`` when the model has no embedding."""
        for _, module in self.named_modules(model):
            if self.is_embedding(module):
                return int(module.weight.shape[0])
        return None

    def write(self, tensor: Tensor, array: np.ndarray) -> None:
        """Write ``array`` into ``tensor`` in place, keeping its dtype and device."""
        raise NotImplementedError

    def preserved_rng(self) -> contextlib.AbstractContextManager[None]:
        """This framework's random generators restored after the block."""
        raise NotImplementedError

    def preserved(self, model: Model) -> contextlib.AbstractContextManager[None]:
        """Eval mode for the block; every module's train flag and this framework's RNG
        restored after (see :func:`padiff_ir.frameworks.preserved_state`)."""
        raise NotImplementedError

    def run(self, model: Model, args: tuple[object, ...], kwargs: Mapping[str, object]) -> Any:
        """Call the model (autograd on, so a trace sees the data flow)."""
        return model(*args, **kwargs)

    def enable_grad(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    # -- settings --------------------------------------------------------------------------
    def setting(self, module: Module, family: str, setting: str) -> Any:
        """Setting ``setting`` of ``module``, a layer of ``family``, as the layer keeps it
        (``None`` when this framework's vocabulary has no reader for it or the layer does not
        say)."""
        reader = self.settings.get(family, {}).get(setting)
        return None if reader is None else reader(module)

    def batch_norm_momentum(self, module: Module) -> float | None:
        """A BatchNorm's momentum in torch's convention (the weight of the batch statistics:
        ``running = (1 - m) * running + m * batch``); ``None``: a cumulative moving average."""
        return getattr(module, "momentum", None)

    def own_momentum(self, momentum: float) -> float:
        """``momentum`` (torch's convention) written in this framework's convention."""
        return momentum

    def dropout_mode(self, module: Module) -> str:
        """How a dropout layer scales, in paddle's words: ``"upscale_in_train"`` (by
        ``1 / (1 - p)`` in training, the identity in eval mode) or ``"downscale_in_infer"``
        (by ``1 - p`` in eval mode)."""
        return "upscale_in_train"

    # -- autograd graph (tracing) ----------------------------------------------------------
    def grad_node(self, tensor: Tensor) -> Any:
        """The autograd node that made ``tensor`` (``None`` for a leaf or a constant)."""
        raise NotImplementedError

    def node_key(self, node: GradNode) -> Any:
        """A hashable identity of an autograd node, stable while its graph lives."""
        raise NotImplementedError

    def node_name(self, node: GradNode) -> str:
        raise NotImplementedError

    def next_nodes(self, node: GradNode) -> list[tuple[Any, int]]:
        """``(node, output index)`` of the nodes ``node`` passes gradients to."""
        raise NotImplementedError

    def output_index(self, tensor: Tensor) -> int:
        """Which output of its autograd node ``tensor`` is (0 where the framework cannot say)."""
        return 0

    def leaf_key(self, tensor: Tensor) -> Any:
        """The key of the accumulation node a gradient-carrying leaf is reached through."""
        raise NotImplementedError

    def shape(self, tensor: Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in tensor.shape)

    def dtype_name(self, tensor: Tensor) -> str:
        return self.dtype_label(tensor.dtype)

    def dtype_label(self, dtype: DType) -> str:
        """A dtype's name without its framework's prefix (``float16``)."""
        return str(dtype).replace("torch.", "").replace("paddle.", "")

    # -- tensors ---------------------------------------------------------------------------
    def is_tensor(self, value: object) -> bool:
        raise NotImplementedError

    def to_numpy(self, tensor: Tensor) -> np.ndarray:
        """A numpy copy of ``tensor`` (bfloat16 read as float32)."""
        raise NotImplementedError

    def view(self, tensor: Tensor) -> np.ndarray | None:
        """A numpy array sharing ``tensor``'s memory (no copy), or None where there is none (a
        tensor off the CPU, bfloat16, not contiguous). A write to the tensor in place (an
        optimizer step, ``copy_``, ``set_value``) is seen through it."""
        return None

    def from_numpy(self, array: np.ndarray, like: Tensor) -> Any:
        """A tensor holding ``array`` with the dtype and device of ``like``, without gradient."""
        raise NotImplementedError

    def as_input(self, value: Tensor, dtype: DType, device: Device) -> Any:
        """A model input of this framework from a tensor of this framework or a numpy array."""
        raise NotImplementedError

    def is_floating(self, tensor: Tensor) -> bool:
        raise NotImplementedError

    def version(self, tensor: Tensor) -> int:
        """The tensor's in-place modification counter (0 where the framework keeps none)."""
        return 0

    def requires_grad(self, tensor: Tensor) -> bool:
        raise NotImplementedError

    def grad_leaf(self, tensor: Tensor) -> Any:
        """A leaf sharing ``tensor``'s memory that requires gradient (for inputs)."""
        raise NotImplementedError

    def alias(self, tensor: Tensor) -> Any:
        """A view of ``tensor`` with its own autograd node, so its gradient is one consumer's."""
        raise NotImplementedError

    def feed(self, tensor: Tensor, value: Tensor, on_grad: Callable[[Tensor], object]) -> Any:
        """``value``'s numbers on ``tensor``'s gradient path: its backward calls
        ``on_grad(grad)`` and passes on the tensor that returns (``grad`` itself for ``None``).

        Gradient hooks on the outputs of paddle ``PyLayer`` ops are called but their results
        are ignored, so the replacement is done in the op's backward, on both frameworks.
        """
        raise NotImplementedError

    def scalar(self, tensor: Tensor) -> float:
        return float(self.to_numpy(tensor).reshape(-1)[0])

    def numel(self, tensor: Tensor) -> int:
        return int(np.prod([int(d) for d in tensor.shape]))

    def mean_of(self, tensors: list[Tensor]) -> Any:
        """Sum of the means of floating tensors (PaDiff's default loss)."""
        total = None
        for tensor in tensors:
            if self.is_floating(tensor):
                value = tensor.mean()
                total = value if total is None else total + value
        return total

    # -- hooks -----------------------------------------------------------------------------
    def register_grad_hook(self, tensor: Tensor, fn: Callable[[Tensor], object]) -> None:
        """Call ``fn(grad)`` when ``tensor``'s gradient is computed; a tensor it returns
        replaces the gradient (anything else is ignored)."""
        raise NotImplementedError

    def register_pre_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        """``fn(module, args, kwargs) -> (args, kwargs) | None``; returns a handle."""
        raise NotImplementedError

    def register_post_hook(self, module: Module, fn: Callable[..., object]) -> Any:
        """``fn(module, args, output) -> output | None``; returns a handle."""
        raise NotImplementedError

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    # -- modules ---------------------------------------------------------------------------
    def modules(self, model: Model) -> list[Any]:
        raise NotImplementedError

    def named_parameters(self, model: Model) -> dict[str, Any]:
        """Trainable parameters by name (first name of shared ones)."""
        raise NotImplementedError

    def named_state(self, model: Model) -> dict[str, Any]:
        """Every parameter and persistent buffer by each of its names (frozen ones included:
        paddle keeps BatchNorm statistics as non-trainable parameters)."""
        return self.named_tensors(model)

    def first_float(self, model: Model) -> tuple[Any, Any]:
        """``(dtype, device)`` of the first floating parameter (``(None, None)`` if none)."""
        raise NotImplementedError

    def cast_copy(self, model: Any, dtype: str) -> Any:
        """A copy of ``model`` whose floating parameters and buffers are cast to ``dtype``
        (``"float64"``, ``"bfloat16"``...); ``model`` is left as it was. The copy's tensors
        are made in ``dtype`` directly (no second copy in the model's own dtype)."""
        raise NotImplementedError

    def cast_copy_trained(
        self, model: Any, optimizer: Optimizer, dtype: str
    ) -> tuple[Any, Optimizer]:
        """:meth:`cast_copy` of ``model`` with a copy of ``optimizer`` stepping the copy's
        parameters (its settings and state alike); ``NotImplementedError`` where the
        framework's optimizers cannot be copied so."""
        raise NotImplementedError

    # -- gradients -------------------------------------------------------------------------
    def grad(self, parameter: Tensor) -> Any:
        raise NotImplementedError

    def clear_grads(self, parameters: list[Tensor]) -> None:
        raise NotImplementedError

    def backward(self, loss: Tensor) -> None:
        loss.backward()

    # -- optimizers ------------------------------------------------------------------------
    def is_optimizer(self, value: object) -> bool:
        raise NotImplementedError

    def optimizer_step(self, optimizer: Optimizer) -> None:
        raise NotImplementedError

    def optimizer_state(
        self, optimizer: Optimizer, parameters: Mapping[str, Tensor]
    ) -> dict[str, dict[str, Any]]:
        """Parameter name -> {canonical state name: tensor} for the tensors of its state."""
        raise NotImplementedError

    def optimizer_config(self, optimizer: Optimizer) -> dict[str, Any]:
        """Hyperparameters by canonical name (``kind``, ``lr``, ``weight_decay``, ...)."""
        raise NotImplementedError


def flatten_tensors(value: Outputs, ops: Framework) -> list[Any]:
    """The tensors of a (nested) output in order: dict values by key order, then sequences."""
    return list(_walk(value, ops))


def _walk(value: Outputs, ops: Framework) -> Iterator[Any]:
    if ops.is_tensor(value):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item, ops)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item, ops)


def skipped_values(value: Outputs, ops: Framework, path: str = "output") -> list[str]:
    """Where a (nested) output holds something that is not compared: ``None`` or an object
    that is neither a tensor nor a container (a key-value cache), as ``path (type)``."""
    if ops.is_tensor(value) or isinstance(value, (bool, int, float, str)):
        return []
    if value is None:
        return [f"{path} (None)"]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in skipped_values(v, ops, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [s for i, v in enumerate(value) for s in skipped_values(v, ops, f"{path}[{i}]")]
    return [f"{path} ({type(value).__name__})"]
