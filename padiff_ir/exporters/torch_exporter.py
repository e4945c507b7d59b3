"""Export a torch module to an attributed ONNX graph with the dynamo exporter.

``torch.onnx.export(..., dynamo=True, optimize=False)`` keeps every op (no constant folding,
BatchNorm not folded, initializers not deduplicated) and records on each node the module scopes
it was traced in (``pkg.torch.onnx.name_scopes``: ``['', 'blocks.0', 'blocks.0.fc', 'linear']``)
and their classes (``pkg.torch.onnx.class_hierarchy``). The innermost module scope is the node's
module path; initializers are already named after the parameters (``blocks.0.fc.weight``).

``torch.onnx.export`` builds its registry of ATen-to-ONNX functions anew on every call (it
parses the source of ~500 onnxscript functions: 0.5-0.8 s); the registry is built once per
process and opset here and handed to the exporter's core (:func:`_dynamo_export`), which is
what ``torch.onnx.export(..., dynamo=True)`` calls with a fresh one.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import logging
import re
import warnings
from typing import TYPE_CHECKING, Any

from padiff_ir._interrupts import noticing_interrupts, reraise_interruption
from padiff_ir.errors import ExportError
from padiff_ir.exporters._attribution import (
    fill_missing_scopes,
    unique_node_names,
    write_attribution,
)
from padiff_ir.exporters._failures import torch_failure
from padiff_ir.exporters._graph import ExportedGraph, has_mapping, output_key_paths
from padiff_ir.exporters._library_models import constant_keywords
from padiff_ir.exporters._torchscript import (
    leading_arg_names,
    scope_attribution,
    selected_backend,
    torchscript_export,
)
from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.state import preserved_state, quiet_loggers
from padiff_ir.hints import Model

if TYPE_CHECKING:
    import onnx

    from padiff_ir.frameworks.inputs import ModelInputs

__all__ = ["export_torch"]

logger = logging.getLogger(__name__)

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_FX_NODE_KEY = "pkg.torch.onnx.fx_node"
_FX_NAME = re.compile(r"%(\w+)")


def _node_scope(node: onnx.NodeProto) -> str | None:
    for prop in node.metadata_props:
        if prop.key == _SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            # The last scope is the traced op itself (``linear``), the ones before are modules.
            return scopes[-2] if len(scopes) >= 2 else ""
    return None


def _node_calls(onnx_model: onnx.ModelProto, program: Any) -> dict[str, int]:
    """Node name -> which call of its module made it, for the modules called several times.

    ``torch.export`` keys each call of a module in a node's ``nn_module_stack`` (``pool``,
    ``pool@1``, ``pool@2``); the ONNX node names its fx node in :data:`_FX_NODE_KEY`.
    """
    try:
        fx_nodes = {n.name: n for n in program.exported_program.graph.nodes}
    except Exception:  # an exporter without an exported program: no call indices
        logger.debug("torch exporter: no fx graph for call indices", exc_info=True)
        return {}
    found: dict[str, tuple[str, int]] = {}
    for node in onnx_model.graph.node:
        text = next((p.value for p in node.metadata_props if p.key == _FX_NODE_KEY), "")
        match = _FX_NAME.match(text)
        fx_node = fx_nodes.get(match.group(1)) if match else None
        stack = fx_node.meta.get("nn_module_stack") if fx_node is not None else None
        if not stack:
            continue
        key, (path, _cls) = list(stack.items())[-1]
        _, sep, number = str(key).rpartition("@")
        found[node.name] = (path, int(number) if sep and number.isdigit() else 0)
    repeated = {path for path, call in found.values() if call > 0}
    return {name: call for name, (path, call) in found.items() if path in repeated}


def _output_keys(program: Any) -> list[str] | None:
    """The key path of each output when the model returns a dict (torch flattens dicts in
    insertion order, as the eager outputs are); None otherwise or when unknown."""
    import torch.utils._pytree as pytree

    try:
        spec = program.exported_program.call_spec.out_spec
        structure = pytree.tree_unflatten(list(range(spec.num_leaves)), spec)
    except Exception:  # an exporter without an exported program: outputs stay positional
        logger.debug("torch exporter: no output structure", exc_info=True)
        return None
    if not has_mapping(structure):
        return None
    indices = pytree.tree_leaves(structure)
    paths = output_key_paths(structure, lambda v: isinstance(v, int))
    ordered = [path for _, path in sorted(zip(indices, paths))]
    return ordered


@functools.cache
def _registry(opset: int) -> Any:
    from torch.onnx._internal.exporter import _registration

    return _registration.ONNXRegistry().from_torchlib(opset_version=opset)


def _dynamo_export(
    model: Model, args: tuple[object, ...], kwargs: dict[str, object], opset: int | None
) -> Any:
    """``torch.onnx.export(model, args, kwargs=kwargs, dynamo=True, optimize=False)`` with a
    registry built once (the public call where torch's internals differ)."""
    import torch

    try:
        from torch.onnx import _constants as onnx_constants
        from torch.onnx._internal.exporter import _constants, _core

        version = opset if opset is not None else onnx_constants.ONNX_DEFAULT_OPSET
        internal = version >= _constants.TORCHLIB_OPSET
    except (ImportError, AttributeError):  # another torch: its public call
        internal = False
    if not internal:
        return torch.onnx.export(
            model,
            args,
            kwargs=kwargs or None,
            dynamo=True,
            optimize=False,
            verbose=False,
            opset_version=opset,
            report=False,
        )
    return _core.export(
        model,
        args,
        kwargs or {},
        registry=_registry(version),
        optimize=False,
        opset_version=version,
        report=False,
        verbose=False,
    )


def export_torch(model: Model, inputs: ModelInputs, *, opset: int | None = None) -> ExportedGraph:
    """Export ``model`` on ``inputs``; the model's mode flags and RNG state are left as they were.

    The exporter is torch's dynamo exporter unless ``PADIFF_IR_TORCH_EXPORTER=torchscript``
    selects the TorchScript one (:mod:`padiff_ir.exporters._torchscript`).

    Raises:
        InputError: the inputs do not fit ``model.forward``.
        ExportError: the exporter failed (the message says why and what to do).
        OptionError: ``PADIFF_IR_TORCH_EXPORTER`` names no exporter.
    """

    backend = selected_backend()
    args, kwargs = inputs.to_torch()
    modules = {name: type(m).__name__ for name, m in model.named_modules()}
    captured = io.StringIO()
    with (
        preserved_state(model),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(captured),
        contextlib.redirect_stderr(captured),
        quiet_loggers("torch.onnx", "torch.export", "onnx_ir", "onnxscript"),
    ):
        warnings.simplefilter("ignore")
        try:
            with noticing_interrupts():
                if backend == "torchscript":
                    exported = torchscript_export(
                        model, args, kwargs, leading_arg_names(model), opset
                    )
                else:
                    constants = constant_keywords(model, set(kwargs))
                    program = _dynamo_export(model, args, {**kwargs, **constants}, opset)
        except Exception as err:
            reraise_interruption(err)
            detail, kind = torch_failure(err)
            why = f"; {kind}, so this model cannot go through ONNX" if kind else ""
            raise ExportError(
                f"torch could not export {type(model).__name__} to ONNX ({backend} exporter): "
                f"{detail}{why}. Use padiff_ir.auto_diff(...), the native path, for this model.",
                framework="torch",
            ) from err
        finally:
            for line in captured.getvalue().splitlines():
                if line.strip():
                    logger.debug("torch exporter: %s", line)
    if backend == "torchscript":
        onnx_model = exported.model
        scopes, node_calls = scope_attribution(onnx_model, modules)
        unique_node_names(onnx_model)
        output_keys = exported.output_keys
    else:
        onnx_model = program.model_proto
        unique_node_names(onnx_model)
        scopes = {node.name: _node_scope(node) for node in onnx_model.graph.node}
        node_calls = _node_calls(onnx_model, program)
        output_keys = _output_keys(program)
    node_modules = fill_missing_scopes(onnx_model, scopes)
    known = set(get_framework("torch").named_tensors(model))  # a tied weight by every name
    known |= {name for name, _ in model.named_buffers()}
    parameters = {t.name: t.name for t in onnx_model.graph.initializer if t.name in known}
    write_attribution(
        onnx_model,
        framework="torch",
        node_modules=node_modules,
        modules=modules,
        parameters=parameters,
        model_class=type(model).__name__,
        output_keys=output_keys,
        node_calls=node_calls,
    )
    logger.debug(
        "exported torch %s (%s): %d nodes",
        type(model).__name__,
        backend,
        len(onnx_model.graph.node),
    )
    return ExportedGraph.from_model(onnx_model)
