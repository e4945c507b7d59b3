"""The only contact of padiff-ir with torch and paddle (with ``exporters/`` and ``zoo/``).

Everything that must know which framework a model or tensor belongs to goes through here:

* detection (:func:`detect_framework`) and unwrapping PaDiff-style wrappers
  (:func:`create_model`, :func:`unwrap_model`);
* one :class:`Framework` per framework (:func:`get_framework`, :func:`framework_of`): modules,
  parameters and buffers by name, tensors to numpy and back, hooks, autograd graph, gradients
  and optimizers;
* user inputs, framework-neutral or per framework (:func:`normalize_inputs`,
  :func:`split_inputs`);
* the state guard (:func:`preserved_state`) and hook installation (:func:`installed`);
* tracing an eager run (:func:`trace_model`): every module call and the data flow between them.
* where a sharded model's parameters and outputs live, from each framework's own metadata
  (:mod:`padiff_ir.frameworks.placement`: DTensor, Megatron's and paddle fleet's attributes).

Importing this package imports neither framework; each is imported when first needed.

Examples:
    >>> import torch
    >>> from padiff_ir.frameworks import framework_of
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    >>> framework = framework_of(model)
    >>> framework.name, [path for path, _ in framework.named_modules(model)]
    ('torch', ['', '0'])
    >>> sorted(framework.named_tensors(model))
    ['0.bias', '0.weight']
"""

from __future__ import annotations

import importlib

from padiff_ir.errors import ModelTypeError
from padiff_ir.frameworks._base import (
    PADDLE_STATE_NAMES,
    Framework,
    flatten_tensors,
    skipped_values,
)
from padiff_ir.frameworks.detect import (
    detect_framework,
    framework_of_callable,
    framework_of_type,
    framework_of_value,
)
from padiff_ir.frameworks.hooks import installed
from padiff_ir.frameworks.inputs import ModelInputs, normalize_inputs, split_inputs, to_numpy
from padiff_ir.frameworks.registry import FRAMEWORKS, FrameworkSpec, register_framework
from padiff_ir.frameworks.state import preserved_global_rng, preserved_state, quiet_loggers
from padiff_ir.frameworks.trace import Trace, model_arguments, trace_model
from padiff_ir.frameworks.wrapper import PadiffModel, create_model, unwrap_model
from padiff_ir.hints import Model

__all__ = [
    "PADDLE_STATE_NAMES",
    "FRAMEWORKS",
    "Framework",
    "FrameworkSpec",
    "ModelInputs",
    "PadiffModel",
    "Trace",
    "create_model",
    "detect_framework",
    "flatten_tensors",
    "skipped_values",
    "framework_of",
    "framework_of_callable",
    "framework_of_type",
    "framework_of_value",
    "get_framework",
    "installed",
    "normalize_inputs",
    "preserved_global_rng",
    "preserved_state",
    "quiet_loggers",
    "register_framework",
    "split_inputs",
    "to_numpy",
    "model_arguments",
    "trace_model",
    "unwrap_model",
]

_FRAMEWORKS: dict[str, Framework] = {}


def get_framework(name: str) -> Framework:
    """The (cached) :class:`Framework` of ``"torch"`` or ``"paddle"``."""
    framework = _FRAMEWORKS.get(name)
    if framework is None:
        spec = FRAMEWORKS.get(name)
        if spec is None:
            raise ModelTypeError(
                f"no framework named {name!r}: padiff-ir knows "
                f"{', '.join(sorted(FRAMEWORKS))} (see register_framework)"
            )
        module, _, cls = spec.implementation.partition(":")
        framework = getattr(importlib.import_module(module), cls)()
        _FRAMEWORKS[name] = framework
    return framework


def framework_of(model: Model) -> Framework:
    """The :class:`Framework` of a torch module or paddle layer (wrappers unwrapped).

    Raises:
        ModelTypeError: ``model`` is an ONNX model or no model at all.
    """
    name = detect_framework(unwrap_model(model))
    if name not in ("torch", "paddle"):
        raise ModelTypeError(
            f"this needs a torch.nn.Module or a paddle.nn.Layer, got an {name} model; ONNX "
            "models are compared with padiff_ir.match"
        )
    return get_framework(name)
