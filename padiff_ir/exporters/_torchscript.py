"""Export a torch module with torch's TorchScript exporter (opt-in, ``dynamo=False``).

``torch.onnx.export(model, args, f, dynamo=False)`` traces the model with ``torch.jit`` and names
each node after the module scopes it was traced in, the scope of a module's later calls with a
suffix: ``/blocks.0/act_1/Erf`` is made by module ``blocks.0.act`` on its second call,
``/Flatten`` by the root. It needs neither dynamo, ``torch.export`` nor onnxscript, so a first
export in a process costs a fraction of the dynamo exporter's (imports, registry, decomposition
tables). Constant folding is off and the export runs in eval mode, so every initializer keeps its
parameter's name (``fc.weight``; folding would turn a Linear weight on 3-D inputs into a
transposed ``onnx::MatMul_49``).

Selected by :data:`BACKEND_VARIABLE` (see :func:`selected_backend`); the default stays dynamo.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from padiff_ir.errors import OptionError
from padiff_ir.exporters._graph import has_mapping, output_key_paths
from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.hooks import installed

if TYPE_CHECKING:
    import onnx

__all__ = [
    "BACKEND_VARIABLE",
    "TORCH_BACKENDS",
    "TorchScriptExport",
    "scope_attribution",
    "selected_backend",
    "torchscript_export",
]

logger = logging.getLogger(__name__)

#: Environment variable choosing torch's exporter: ``dynamo`` (the default) or ``torchscript``.
BACKEND_VARIABLE = "PADIFF_IR_TORCH_EXPORTER"
#: The exporters it may name.
TORCH_BACKENDS = ("dynamo", "torchscript")
#: The opset of a TorchScript export when none is asked for.
DEFAULT_OPSET = 17

_CALL_SUFFIX = re.compile(r"^(.*)_(\d+)$")


def selected_backend() -> str:
    """The torch exporter :data:`BACKEND_VARIABLE` selects (``dynamo`` when unset or empty).

    Raises:
        OptionError: the variable names no exporter of :data:`TORCH_BACKENDS`.
    """
    value = os.environ.get(BACKEND_VARIABLE, "").strip().lower() or "dynamo"
    if value not in TORCH_BACKENDS:
        raise OptionError(
            f"{BACKEND_VARIABLE}={value!r} names no torch exporter: set it to one of "
            f"{', '.join(TORCH_BACKENDS)} or leave it unset (dynamo)",
            option=BACKEND_VARIABLE,
        )
    return value


class TorchScriptExport:
    """What a TorchScript export gives: the ONNX model and the output key paths (or None)."""

    def __init__(self, model: onnx.ModelProto, output_keys: list[str] | None) -> None:
        self.model = model
        self.output_keys = output_keys


def torchscript_export(
    model: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    arg_names: list[str] | None,
    opset: int | None,
) -> TorchScriptExport:
    """``torch.onnx.export(..., dynamo=False)`` without constant folding, in eval mode.

    ``arg_names`` are the forward's positional argument names (None: ``*args``). Keyword inputs
    that fill the first arguments go in by position and every graph input is named after its
    argument, as the dynamo exporter names them; other keyword inputs go in as the trailing dict
    the TorchScript exporter takes. The root module's output is caught by a hook for its
    structure (the key path of each output when it returns a dict).
    """
    import onnx
    import torch

    structure: list[Any] = []

    def catch(_module: Any, _args: tuple[Any, ...], output: Any) -> None:
        structure.append(output)

    buffer = io.BytesIO()
    traced_args, names = _positional(args, kwargs, arg_names)
    with installed(get_framework("torch"), [(model, None, catch)]):
        torch.onnx.export(
            model,
            traced_args,
            buffer,
            dynamo=False,
            opset_version=opset if opset is not None else DEFAULT_OPSET,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.EVAL,
            input_names=names,
            verbose=False,
        )
    onnx_model = onnx.load_from_string(buffer.getvalue())
    output_keys = None
    if structure and has_mapping(structure[-1]):
        output_keys = output_key_paths(structure[-1], lambda v: isinstance(v, torch.Tensor))
    return TorchScriptExport(onnx_model, output_keys)


def _positional(
    args: tuple[Any, ...], kwargs: dict[str, Any], arg_names: list[str] | None
) -> tuple[tuple[Any, ...], list[str] | None]:
    """The exporter's ``args`` and graph input names for ``args`` and ``kwargs``."""
    if arg_names is None:
        return ((*args, kwargs) if kwargs else args), None
    count = len(args) + len(kwargs)
    leading = arg_names[len(args) : count]
    if set(leading) == set(kwargs):
        return (*args, *(kwargs[name] for name in leading)), arg_names[:count]
    return (*args, kwargs), None


def scope_attribution(
    onnx_model: onnx.ModelProto, modules: Mapping[str, str]
) -> tuple[dict[str, str | None], dict[str, int]]:
    """Module path of each node from its scoped name, and the call of its module.

    A name ``/a/b_1/Op`` is resolved segment by segment against the model's module paths
    (``modules``): a segment that is a child module's name is taken as it is, else a trailing
    ``_N`` marks a later call of that child. The calls of a module are numbered from 0 in the order
    their scope instances (the full scoped prefix, suffixes included) first appear; only modules
    called several times get call indices, as the dynamo exporter gives them.

    Returns:
        node name -> module path (None for a name that is not a scope path) and node name -> call.
    """
    scopes: dict[str, str | None] = {}
    instances: dict[str, dict[str, int]] = {}
    node_instance: dict[str, tuple[str, str]] = {}
    for node in onnx_model.graph.node:
        path = _resolve(node.name, modules)
        scopes[node.name] = path
        if path is None:
            continue
        prefix = node.name.rsplit("/", 1)[0]
        seen = instances.setdefault(path, {})
        seen.setdefault(prefix, len(seen))
        node_instance[node.name] = (path, prefix)
    calls = {
        name: instances[path][prefix]
        for name, (path, prefix) in node_instance.items()
        if len(instances[path]) > 1
    }
    return scopes, calls


def _resolve(name: str, modules: Mapping[str, str]) -> str | None:
    if not name.startswith("/"):
        return None
    path = ""
    for segment in name.split("/")[1:-1]:
        child = f"{path}.{segment}" if path else segment
        if child in modules:
            path = child
            continue
        match = _CALL_SUFFIX.match(segment)
        base = f"{path}.{match.group(1)}" if match and path else (match.group(1) if match else "")
        if match and base in modules:
            path = base
            continue
        logger.debug("torchscript export: scope %r of node %r is no module", segment, name)
        return path
    return path
