"""Export a torch module with torch's TorchScript exporter (opt-in, ``dynamo=False``).

``torch.onnx.export(model, args, f, dynamo=False)`` traces the model with ``torch.jit`` and names
each node after the module scopes it was traced in, the scope of a module's later calls with a
suffix: ``/blocks.0/act_1/Erf`` is made by module ``blocks.0.act`` on its second call,
``/Flatten`` by the root. It needs neither dynamo, ``torch.export`` nor onnxscript, so a first
export in a process costs a fraction of the dynamo exporter's (imports, registry, decomposition
tables). Constant folding is off and the export runs in eval mode, so every initializer keeps its
parameter's name (``fc.weight``; folding would turn a Linear weight on 3-D inputs into a
transposed ``onnx::MatMul_49``), and the initializers are exported as graph inputs (then taken
out of the inputs), which keeps the exporter from merging parameters of equal values.

Selected by :data:`BACKEND_VARIABLE` (see :func:`selected_backend`); the default stays dynamo.
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from padiff_ir.errors import OptionError
from padiff_ir.exporters._graph import has_mapping, output_key_paths
from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.hooks import installed
from padiff_ir.hints import Model, Module, Outputs

if TYPE_CHECKING:
    import onnx

__all__ = [
    "BACKEND_VARIABLE",
    "TORCH_BACKENDS",
    "TorchScriptExport",
    "leading_arg_names",
    "scope_attribution",
    "selected_backend",
    "torchscript_export",
]

logger = logging.getLogger(__name__)

#: Environment variable choosing torch's exporter: ``dynamo`` (the default) or ``torchscript``.
BACKEND_VARIABLE = "PADIFF_IR_TORCH_EXPORTER"
#: The exporters it may name.
TORCH_BACKENDS = ("dynamo", "torchscript")
#: The opset of a TorchScript export when none is asked for: the dynamo exporter's default in
#: torch 2.13 and the newest the TorchScript exporter writes (opset 17 would spell each GELU as
#: five ops, Div, Erf, Add, Mul, Mul, where dynamo writes one Gelu).
DEFAULT_OPSET = 20

_VALUE_DEPENDENT = "might cause the trace to be incorrect"
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


@dataclass(frozen=True)
class TorchScriptExport:
    """What a TorchScript export gives: the ONNX model and the output key paths (None unless
    the model returns a dict)."""

    model: onnx.ModelProto
    output_keys: list[str] | None


def torchscript_export(
    model: Model,
    args: tuple[object, ...],
    kwargs: dict[str, object],
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

    def catch(_module: Module, _args: tuple[object, ...], output: Outputs) -> None:
        structure.append(output)

    buffer = io.BytesIO()
    traced_args, names = _positional(args, kwargs, arg_names)
    with (
        installed(get_framework("torch"), [(model, None, catch)]),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            traced_args,
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects
            dynamo=False,
            opset_version=opset if opset is not None else DEFAULT_OPSET,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.EVAL,
            input_names=names,
            # initializers as inputs: the exporter then keeps parameters of equal values apart
            # (in eval mode it would merge them, two LayerNorms' ones into one initializer)
            keep_initializers_as_inputs=True,
            verbose=False,
        )
    _refuse_value_dependent_traces(caught)
    onnx_model = onnx.load_from_string(buffer.getvalue())
    initializers = {t.name for t in onnx_model.graph.initializer}
    graph_inputs = [i for i in onnx_model.graph.input if i.name not in initializers]
    if names is not None and len(graph_inputs) > len(names):
        _bake_defaults(onnx_model, graph_inputs[len(names) :], model, len(traced_args))
        graph_inputs = graph_inputs[: len(names)]
    del onnx_model.graph.input[:]
    onnx_model.graph.input.extend(graph_inputs)
    output_keys = None
    if structure and has_mapping(structure[-1]):
        output_keys = output_key_paths(structure[-1], lambda v: isinstance(v, torch.Tensor))
    return TorchScriptExport(onnx_model, output_keys)


def _refuse_value_dependent_traces(caught: list[warnings.WarningMessage]) -> None:
    """Raise on the tracer's warning that a tensor steered Python code in the model's own code
    (``if x.sum() > 0``, ``int(x.max())``): the trace holds the branch these input values took,
    and the export cache would give that graph to other values of the same signature (the dynamo
    exporter refuses such a model outright).

    The tracer cannot tell a value from a shape (``if x.shape[1] != dim`` warns too, and is safe:
    shapes are in the cache key), so the warnings raised inside torch's own code (its layers'
    shape checks, as ``MultiheadAttention``'s) pass; one in the model's code is refused, a shape
    check there included (such a model is compared natively).
    """
    import torch

    torch_dir = os.path.dirname(torch.__file__) + os.sep
    for entry in caught:
        if (
            issubclass(entry.category, torch.jit.TracerWarning)
            and _VALUE_DEPENDENT in str(entry.message)
            and not os.path.abspath(entry.filename).startswith(torch_dir)
        ):
            first = str(entry.message).split(". ")[0]
            raise RuntimeError(
                f"data-dependent control flow: the trace depends on input values ({first}, at "
                f"{entry.filename}:"
                f"{entry.lineno}); the dynamo exporter (unset {BACKEND_VARIABLE}) refuses "
                "such a model too"
            )


def _bake_defaults(onnx_model: onnx.ModelProto, extra: list[Any], model: Model, given: int) -> None:
    """Turn the graph inputs the exporter made of ``forward``'s default values (it passes every
    argument after the ``given`` ones that has a default, a ``None`` dropped) into constants."""
    import numpy as np
    from onnx import helper, numpy_helper

    parameters = list(inspect.signature(model.forward).parameters.values())[given:]
    defaults = [p.default for p in parameters if p.default is not p.empty and p.default is not None]
    if len(defaults) != len(extra):
        raise RuntimeError(
            f"the exporter made graph inputs {[i.name for i in extra]} of forward's defaults "
            f"{defaults}; pass these arguments as inputs"
        )
    for graph_input, value in zip(extra, defaults):
        tensor_type = graph_input.type.tensor_type
        dims = [d.dim_value for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        array = np.asarray(value.detach().numpy() if hasattr(value, "detach") else value)
        initializer = numpy_helper.from_array(array.astype(dtype).reshape(dims), graph_input.name)
        onnx_model.graph.initializer.append(initializer)


def leading_arg_names(model: Model) -> list[str] | None:
    """Names of ``model.forward``'s arguments that can be passed by position (those before a
    ``*args``; a ``**kwargs`` does not matter); None when the signature is unreadable."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    names = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        names.append(parameter.name)
    return names


def _positional(
    args: tuple[object, ...], kwargs: dict[str, object], arg_names: list[str] | None
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
    called several times get call indices, as the dynamo exporter gives them. A segment that is
    no child's name may name a deeper module (see :func:`_child`); a name whose segments do not
    all resolve gets the deepest module they reached and no call index.

    Returns:
        node name -> module path (None for a name that is not a scope path) and node name -> call.
    """
    scopes: dict[str, str | None] = {}
    instances: dict[str, dict[str, int]] = {}
    node_instance: dict[str, tuple[str, str]] = {}
    for node in onnx_model.graph.node:
        path, complete = _resolve(node.name, modules)
        scopes[node.name] = path
        if not complete or path is None:
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


def _resolve(name: str, modules: Mapping[str, str]) -> tuple[str | None, bool]:
    """Module path of a scoped node name, and whether every segment named a module."""
    if not name.startswith("/"):
        return None, False
    path = ""
    for segment in name.split("/")[1:-1]:
        found = _child(path, segment, modules)
        if found is None:
            match = _CALL_SUFFIX.match(segment)
            found = _child(path, match.group(1), modules) if match else None
        if found is None:
            logger.debug("torchscript export: scope %r of node %r is no module", segment, name)
            return path, False
        path = found
    return path, True


def _child(path: str, segment: str, modules: Mapping[str, str]) -> str | None:
    """The module ``segment`` names below ``path``: its child, the module of that full path
    (the scope of a ``Sequential``'s child is ``body.0.1`` under ``body.0``), else the nearest
    descendant of that name when exactly one is nearest (a parent whose ``forward`` was not
    called through ``__call__``, as ``self.backbone.forward_features(x)``, leaves no scope of
    its own)."""
    prefix = f"{path}." if path else ""
    child = prefix + segment
    if child in modules:
        return child
    if segment.startswith(prefix) and segment in modules:  # a container's child: its full path
        return segment
    nearest = sorted(
        (m.count("."), m) for m in modules if m.startswith(prefix) and m.endswith(f".{segment}")
    )
    if nearest and (len(nearest) == 1 or nearest[0][0] < nearest[1][0]):
        return nearest[0][1]
    return None
