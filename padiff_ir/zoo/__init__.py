"""The paired model zoo: the same architectures written once in torch and once in paddle.

Both halves of most pairs use the same attribute names, so their parameter names coincide
(except paddle's ``BatchNorm2D`` running statistics ``_mean`` / ``_variance``, torch's
``running_mean`` / ``running_var``), and :func:`copy_torch_to_paddle` copies the weights by
name. The decoder LLM ``"llama"`` is the exception, as real ports are: its torch half is written
like Hugging Face's ``LlamaForCausalLM`` (split projections, rotate-half RoPE), its paddle half
like a PaddleNLP port (fused, grouped projections, interleaved RoPE, other names, a decorated
``forward`` that cannot be exported), and its weights go through a hand-written converter
(:func:`llama_torch_to_paddle`, :func:`llama_paddle_to_torch`).

:func:`get_pair` builds both models from one size config (``overrides`` changes fields of it,
e.g. the paddle layout of the LLM), copies the torch weights into the paddle model (the ground
truth that any automatic matching must reproduce) and draws example inputs, all from one seed
and without touching the global RNGs of torch, paddle or numpy.

Importing this package imports neither torch nor paddle; :func:`get_pair` imports both.

Example:
    >>> from padiff_ir.zoo import ZOO, list_pairs
    >>> list_pairs()
    ('mlp', 'cnn', 'vit', 'vitpose', 'bert', 'llama')
    >>> ZOO["vitpose"].sizes
    ('tiny', 'base')
    >>> ZOO["bert"].configs["tiny"].input_specs()[0]
    InputSpec(name='input_ids', shape=(2, 8), dtype='int64')
    >>> ZOO["llama"].configs["tiny"].qkv_layout
    'grouped'
    >>> [name for name, entry in ZOO.items() if entry.same_names and entry.paddle_exports]
    ['mlp', 'cnn', 'vit', 'vitpose', 'bert']
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.errors import OptionError, UnknownModelError, WeightAssignError
from padiff_ir.frameworks import get_framework
from padiff_ir.zoo.configs import DESCRIPTIONS, SIZES, ArchitectureConfig, InputSpec, LlamaConfig
from padiff_ir.zoo.llm_weights import (
    copy_llama_torch_to_paddle,
    llama_paddle_to_torch,
    llama_torch_to_paddle,
)

if TYPE_CHECKING:
    import paddle
    import torch

__all__ = [
    # registry
    "ZOO",
    "ZooEntry",
    "list_pairs",
    # building pairs
    "ModelPair",
    "PAIR_SIDES",
    "get_pair",
    "InputSpec",
    "LlamaConfig",
    # weights
    "copy_torch_to_paddle",
    "llama_torch_to_paddle",
    "llama_paddle_to_torch",
    # errors
    "UnknownModelError",
]

logger = logging.getLogger(__name__)

_BATCH_NORM_RENAMES = {"running_mean": "_mean", "running_var": "_variance"}
_SKIPPED_TORCH_BUFFERS = frozenset({"num_batches_tracked"})


@dataclass(frozen=True)
class ZooEntry:
    """One architecture of the zoo.

    Attributes:
        name: the key in :data:`ZOO` and the ``name`` argument of :func:`get_pair`.
        description: one line on what the architecture is.
        configs: size name -> config (see :mod:`padiff_ir.zoo.configs`).
        same_names: both halves have the same parameter names and layouts, so the weights copy
            by name (:func:`copy_torch_to_paddle`); False for a port such as ``"llama"``.
        paddle_exports: the paddle half goes through ``paddle.jit.save`` and paddle2onnx, so
            ONNX-based paths (``padiff_ir.export``) work on both halves.
    """

    name: str
    description: str
    configs: Mapping[str, ArchitectureConfig]
    same_names: bool = True
    paddle_exports: bool = True

    @property
    def sizes(self) -> tuple[str, ...]:
        """The size names, smallest first."""
        return tuple(self.configs)


_PORTS = frozenset({"llama"})
"""Architectures whose paddle half is written like a real port: other parameter names and
layouts, and a decorated ``forward`` that paddle cannot convert to a static program."""

ZOO: Mapping[str, ZooEntry] = MappingProxyType(
    {
        name: ZooEntry(
            name,
            DESCRIPTIONS[name],
            sizes,
            same_names=name not in _PORTS,
            paddle_exports=name not in _PORTS,
        )
        for name, sizes in SIZES.items()
    }
)
"""Architecture name -> :class:`ZooEntry`."""


@dataclass(frozen=True)
class ModelPair:
    """A torch model and a paddle model that compute the same function, with example inputs.

    Attributes:
        name: architecture name (a key of :data:`ZOO`).
        size: size name (``"tiny"``, ``"base"``).
        torch_model: the torch module, in eval mode.
        paddle_model: the paddle layer, in eval mode, with the torch model's weights.
        inputs: forward argument name -> example input (float32 or int64), in argument order.
        input_specs: ``(name, shape, dtype)`` of each forward argument, in order.
        config: the size config both models were built from.
        seed: the seed weights and inputs were drawn from.
    """

    name: str
    size: str
    torch_model: torch.nn.Module
    paddle_model: paddle.nn.Layer
    inputs: dict[str, np.ndarray]
    input_specs: tuple[InputSpec, ...]
    config: ArchitectureConfig
    seed: int = 0

    def model_of(self, side: str) -> Any:
        """The model of framework ``side`` (one of :data:`PAIR_SIDES`)."""
        return self.torch_model if side == "torch" else self.paddle_model


#: The frameworks of a :class:`ModelPair`'s two models, in the order the zoo writes them.
PAIR_SIDES = ("torch", "paddle")


def list_pairs() -> tuple[str, ...]:
    """Names of the architectures in the zoo, in registry order.

    Example:
        >>> "vitpose" in list_pairs()
        True
    """
    return tuple(ZOO)


def _lookup_config(name: str, size: str) -> ArchitectureConfig:
    entry = ZOO.get(name)
    if entry is None:
        raise UnknownModelError(
            f"the zoo has no model {name!r}; choose one of {', '.join(map(repr, ZOO))}"
        )
    config = entry.configs.get(size)
    if config is None:
        raise UnknownModelError(
            f"model {name!r} has no size {size!r}; choose one of "
            f"{', '.join(map(repr, entry.sizes))}"
        )
    return config


def _example_inputs(config: ArchitectureConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bounds = config.integer_input_bounds()
    inputs: dict[str, np.ndarray] = {}
    for spec in config.input_specs():
        if spec.dtype == "int64":
            inputs[spec.name] = rng.integers(0, bounds[spec.name], size=spec.shape, dtype=np.int64)
        else:
            inputs[spec.name] = rng.standard_normal(spec.shape, dtype=np.float32)
    return inputs


def _with_overrides(
    config: ArchitectureConfig, name: str, overrides: Mapping[str, Any] | None
) -> ArchitectureConfig:
    if not overrides:
        return config
    fields = {field.name for field in dataclasses.fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise OptionError(
            f"{type(config).__name__} of zoo model {name!r} has no field "
            f"{', '.join(map(repr, unknown))}; overrides can set {', '.join(sorted(fields))}",
            option="overrides",
        )
    return dataclasses.replace(config, **overrides)  # type: ignore[type-var]


def _copy_by_name(
    torch_model: torch.nn.Module, paddle_model: paddle.nn.Layer, config: ArchitectureConfig
) -> None:
    copy_torch_to_paddle(torch_model, paddle_model)


def _copy_llama(
    torch_model: torch.nn.Module, paddle_model: paddle.nn.Layer, config: ArchitectureConfig
) -> None:
    assert isinstance(config, LlamaConfig)
    copy_llama_torch_to_paddle(torch_model, paddle_model, config)


WeightCopy = Callable[[Any, Any, ArchitectureConfig], None]
"""``copy(torch_model, paddle_model, config)``: writes the torch weights into the paddle model."""

_WEIGHT_COPIES: Mapping[str, WeightCopy] = MappingProxyType({"llama": _copy_llama})
"""Architectures whose weights do not copy by name -> their converter (others: by name)."""


def get_pair(
    name: str,
    size: str = "tiny",
    *,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> ModelPair:
    """Build the torch and paddle models ``name`` at ``size`` with identical weights.

    The torch model is initialised from ``seed`` (norm layers get non-trivial affine parameters
    and running statistics), its weights are copied into the paddle model (by name with
    :func:`copy_torch_to_paddle`; for ``"llama"`` through :func:`llama_torch_to_paddle`), and
    example inputs are drawn from ``numpy.random.default_rng(seed)``. The same seed gives the
    same weights and inputs; the global RNG states of torch, paddle and numpy are left as they
    were.

    ``overrides`` replaces fields of the size config, the one way to build a variant: for
    example ``get_pair("llama", "tiny", overrides={"qkv_layout": "concat", "kv_heads": 1})``
    (see :class:`~padiff_ir.zoo.configs.LlamaConfig` for the layouts). ``pair.config`` is the
    config the models were built from.

    Raises:
        UnknownModelError: ``name`` or ``size`` is not in :data:`ZOO`.
        OptionError: ``overrides`` names a field the config does not have, or gives a value the
            config rejects.

    Example:
        >>> pair = get_pair("mlp", "tiny", seed=0)
        >>> pair.input_specs
        (InputSpec(name='x', shape=(4, 16), dtype='float32'),)
        >>> pair.torch_model.training, pair.paddle_model.training
        (False, False)
        >>> get_pair("llama", overrides={"gate_up_layout": "gate_up"}).config.gate_up_layout
        'gate_up'
    """
    config = _with_overrides(_lookup_config(name, size), name, overrides)
    import paddle
    import torch

    from padiff_ir.zoo import paddle_models, torch_models

    start = time.perf_counter()
    with get_framework("torch").preserved_rng():
        torch.manual_seed(seed)
        torch_model = torch_models.build(name, config)
    with get_framework("paddle").preserved_rng():
        paddle.seed(seed)
        paddle_model = paddle_models.build(name, config)
    _WEIGHT_COPIES.get(name, _copy_by_name)(torch_model, paddle_model, config)
    torch_model.eval()
    paddle_model.eval()
    pair = ModelPair(
        name=name,
        size=size,
        torch_model=torch_model,
        paddle_model=paddle_model,
        inputs=_example_inputs(config, seed),
        input_specs=config.input_specs(),
        config=config,
        seed=seed,
    )
    logger.debug(
        "built pair %s/%s (seed %d) in %.2f s", name, size, seed, time.perf_counter() - start
    )
    return pair


@dataclass(frozen=True)
class _Source:
    """A torch tensor ready for paddle: its torch name and shape, the array in paddle layout."""

    torch_name: str
    torch_shape: tuple[int, ...]
    array: np.ndarray
    transposed: bool


def _torch_sources(torch_model: torch.nn.Module) -> dict[str, _Source]:
    """Paddle-side name -> :class:`_Source` for every parameter and buffer of ``torch_model``."""
    import torch

    linear_weights = {
        f"{path}.weight" if path else "weight"
        for path, module in torch_model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    sources: dict[str, _Source] = {}
    for torch_name, tensor in torch_model.state_dict().items():
        prefix, _, leaf = torch_name.rpartition(".")
        if leaf in _SKIPPED_TORCH_BUFFERS:
            continue
        array = tensor.detach().cpu().numpy()
        transposed = torch_name in linear_weights
        paddle_array = np.ascontiguousarray(array.T) if transposed else array
        leaf = _BATCH_NORM_RENAMES.get(leaf, leaf)
        sources[f"{prefix}.{leaf}" if prefix else leaf] = _Source(
            torch_name, tuple(array.shape), paddle_array, transposed
        )
    return sources


def copy_torch_to_paddle(torch_model: torch.nn.Module, paddle_model: paddle.nn.Layer) -> None:
    """Copy every parameter and buffer of ``torch_model`` into ``paddle_model`` by name.

    Names must coincide, except that torch's BatchNorm ``running_mean`` / ``running_var`` fill
    paddle's ``_mean`` / ``_variance`` (``num_batches_tracked`` has no paddle counterpart).
    ``torch.nn.Linear`` weights ``[out, in]`` are transposed to paddle's ``[in, out]``; every
    other tensor must already have the same shape. Nothing is copied unless everything fits.

    Raises:
        WeightAssignError: a paddle tensor has no torch source or a different shape, or a torch
            tensor has no paddle destination; the message lists each one by name.
    """
    sources = _torch_sources(torch_model)
    problems: list[str] = []
    assignments: list[tuple[Any, np.ndarray]] = []
    for name, target in paddle_model.state_dict().items():
        shape = tuple(target.shape)
        source = sources.pop(name, None)
        if source is None:
            problems.append(f"paddle {name!r} {list(shape)} has no torch tensor of that name")
            continue
        if source.array.shape != shape:
            layout = (
                f" (Linear weight {list(source.torch_shape)} transposed)"
                if source.transposed
                else ""
            )
            problems.append(
                f"paddle {name!r} has shape {list(shape)} but torch {source.torch_name!r} gives "
                f"{list(source.array.shape)}{layout}"
            )
            continue
        assignments.append((target, source.array))
    problems += [
        f"torch {source.torch_name!r} {list(source.torch_shape)} has no paddle tensor named "
        f"{name!r}"
        for name, source in sources.items()
    ]
    if problems:
        raise WeightAssignError(
            f"cannot copy the weights of torch {type(torch_model).__name__} into paddle "
            f"{type(paddle_model).__name__}; {len(problems)} problem(s):\n  - "
            + "\n  - ".join(problems)
            + "\nGive both models the same attribute names and layer shapes."
        )
    for target, array in assignments:
        target.set_value(array)
    logger.debug(
        "copied %d tensors from torch %s to paddle %s",
        len(assignments),
        type(torch_model).__name__,
        type(paddle_model).__name__,
    )
