"""What the exporters do for models from model libraries (Hugging Face transformers, PaddleFormers).

- :func:`constant_keywords`: a decoder's ``forward(input_ids, ..., use_cache=None)`` returns its
  key/value cache (a ``DynamicCache`` object, which no exporter can flatten) unless told not
  to; an export passes ``use_cache=False`` where the caller gave no ``use_cache``. The cache is
  no part of the computation compared: the logits and every intermediate are the same.
- :func:`config_code_left_eager`: paddle's dy2static converts every function a traced
  ``forward`` calls, also the methods of the configuration object a layer holds
  (``self.config.get(...)``); converting PaddleFormers' ``PretrainedConfig.__getattribute__``
  (``super().__getattribute__(key)``) recurses without end. Code of such plain-Python helper
  objects computes no tensor: for the trace it is left to run as Python (paddle's own list of
  modules it does not convert, restored after).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import types
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from padiff_ir.hints import Model

__all__ = ["config_code_left_eager", "constant_keywords"]

logger = logging.getLogger(__name__)

_CONSTANTS: dict[str, Any] = {"use_cache": False}


def constant_keywords(model: Model, given: set[str]) -> dict[str, Any]:
    """Keyword constants for the export of ``model``: those of :data:`_CONSTANTS` that its
    ``forward`` takes and that are not in ``given``."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in _CONSTANTS.items() if k in parameters and k not in given}


def _is_helper_object(value: object, paddle: types.ModuleType) -> bool:
    """A plain-Python object a layer holds (a configuration): no layer, tensor, container,
    number, function, class or module."""
    if isinstance(value, (paddle.nn.Layer, paddle.Tensor, type, ModuleType)):
        return False
    if isinstance(value, (str, bytes, int, float, bool, complex, type(None), list, tuple, dict)):
        return False
    return not callable(value) and type(value).__module__ not in ("builtins", "numpy")


def _helper_modules(model: Model) -> list[ModuleType]:
    """The modules defining the classes of the helper objects the model's layers hold, less
    those that define any of its layers (their code is traced as usual) and paddle's own."""
    import paddle

    layers = [model, *(layer for _, layer in model.named_sublayers())]
    layer_modules = {cls.__module__ for layer in layers for cls in type(layer).__mro__}
    found: dict[str, ModuleType] = {}
    for layer in layers:
        for value in vars(layer).values():
            if not _is_helper_object(value, paddle):
                continue
            for cls in type(value).__mro__:
                name = cls.__module__
                module = sys.modules.get(name)
                if (
                    module is None
                    or name in layer_modules
                    or name.split(".")[0] in ("builtins", "paddle", "typing", "collections")
                    or getattr(module, "__file__", None) is None
                ):
                    continue
                found[name] = module
    return list(found.values())


@contextlib.contextmanager
def config_code_left_eager(model: Model) -> Iterator[None]:
    """During the block, dy2static runs the code of the helper objects the model's layers hold
    as Python instead of converting it; its list of such modules is restored after."""
    try:
        from paddle.jit.dy2static import convert_call_func
    except ImportError:  # another paddle: nothing to tell it
        yield
        return
    skipped = convert_call_func.BUILTIN_LIKELY_MODULES
    before = list(skipped)
    added = [m for m in _helper_modules(model) if m not in skipped]
    if added:
        logger.debug("paddle trace: not converting %s", [m.__name__ for m in added])
    skipped.extend(added)
    try:
        yield
    finally:
        skipped[:] = before
