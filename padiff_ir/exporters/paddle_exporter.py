"""Export a paddle layer to an attributed ONNX graph: ``paddle.jit.save`` then paddle2onnx.

1. ``paddle.jit.save`` traces the layer to a PIR program (``.json``) while
   :class:`~padiff_ir.exporters._paddle_scopes.CallRecorder` hooks record the sublayer calls.
2. paddle2onnx (``optimize_tool=None``, in the process's worker, see ``_conversion``)
   converts the program. It names the final output of the k-th PIR op ``pd_op.X`` as
   ``p2o.pd_op.X.k.i``, so each ONNX node is traced back to its PIR op and the op's
   ``struct_name`` to the sublayer's attribute path (``_paddle_program``); a node with no op
   of its own (a helper constant, a piece of a decomposed op) takes its neighbour's module.
3. paddle2onnx writes parameters as ``Constant`` nodes named ``linear_0.w_0``: they become
   initializers named after the parameter's attribute path (``blocks.0.fc.weight``).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import signal
import tempfile
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from padiff_ir._interrupts import noticing_interrupts, reraise_interruption
from padiff_ir.errors import ExportError, InputError
from padiff_ir.exporters._attribution import (
    fill_missing_scopes,
    unique_node_names,
    write_attribution,
)
from padiff_ir.exporters._conversion import (
    Conversion,
    ConversionFailure,
    start_conversion,
    start_worker,
)
from padiff_ir.exporters._failures import paddle_trace_failure
from padiff_ir.exporters._graph import ExportedGraph, output_key_paths
from padiff_ir.exporters._library_models import config_code_left_eager
from padiff_ir.exporters._paddle_program import ProgramOp, read_program, scopes_from_program
from padiff_ir.exporters._paddle_scopes import CallRecorder
from padiff_ir.frameworks.state import preserved_state
from padiff_ir.hints import Model, Outputs

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from padiff_ir.frameworks.inputs import ModelInputs

__all__ = ["PendingPaddleExport", "export_paddle", "start_paddle_export"]

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
_NATIVE_HINT = "use padiff_ir.auto_diff(...), the native path, which needs no ONNX export"


def _forward_parameters(model: Model) -> list[inspect.Parameter]:
    """``forward``'s parameters (none where its signature cannot be read)."""
    try:
        return list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def _positional_parameters(model: Model) -> list[inspect.Parameter]:
    """``forward``'s named positional arguments, also next to ``*args``/``**kwargs``."""
    found = []
    for param in _forward_parameters(model):
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            break
        found.append(param)
    return found


def _ordered_specs(model: Model, inputs: ModelInputs) -> list[Any]:
    """InputSpecs in ``forward``'s argument order, named after the arguments; a defaulted
    argument left out between given ones takes its default value.

    Raises:
        ExportError: a keyword-only argument is given (paddle's static export takes arguments by
            position only; ``match`` then compares natively).
        InputError: a keyword input that is no positional argument, or one left out before a
            given one without a default.
    """
    import paddle

    positional = _positional_parameters(model)
    if not inputs.keyword:
        names = [p.name for p in positional] or [f"input_{i}" for i in range(len(inputs))]
        ordered = zip(names, inputs.arrays)
        return [paddle.static.InputSpec(list(a.shape), a.dtype.name, n) for n, a in ordered]
    by_name = {n: a for n, a in zip(inputs.names, inputs.arrays) if n is not None}
    keyword_only = [
        p.name for p in _forward_parameters(model) if p.kind is p.KEYWORD_ONLY and p.name in by_name
    ]
    if keyword_only:
        raise ExportError(
            f"{type(model).__name__}.forward takes {keyword_only[0]!r} by keyword only, and "
            "paddle's static export passes arguments by position: this model cannot go "
            f"through ONNX as is; {_NATIVE_HINT}",
            framework="paddle",
        )
    return _keyword_specs(model, positional, by_name)


def _keyword_specs(
    model: Model, positional: list[inspect.Parameter], by_name: dict[str, np.ndarray]
) -> list[Any]:
    import paddle

    names = [p.name for p in positional]
    unknown = [n for n in by_name if n not in names]
    if unknown:
        raise InputError(
            f"{type(model).__name__}.forward: keyword input {unknown[0]!r} is none of its "
            f"positional arguments {names}"
        )
    last = max(names.index(n) for n in by_name)
    specs: list[Any] = []
    for param in positional[: last + 1]:
        if param.name in by_name:
            array = by_name[param.name]
            specs.append(paddle.static.InputSpec(list(array.shape), array.dtype.name, param.name))
        elif param.default is not param.empty:
            specs.append(param.default)
        else:
            raise InputError(
                f"{type(model).__name__}.forward: argument {param.name!r} has no default and "
                "no input was given for it"
            )
    return specs


def _explain_failure(
    failure: ConversionFailure, ops: list[ProgramOp], recorder: CallRecorder, model: Model
) -> ExportError:
    errors = [
        line.strip()
        for line in failure.log.splitlines()
        if "[ERROR]" in line or "Error" in line or "not supported" in line
    ]
    failed_ops = re.findall(r"pd_op\.(\w+)", "\n".join(errors))
    location = ""
    if failed_ops:
        for op in ops:
            if op.name == failed_ops[0]:
                path = recorder.layer_path(op.struct_name)
                location = f"pd_op.{op.name} in layer {path or '<root>'!r}"
                break
        else:
            location = f"pd_op.{failed_ops[0]}"
    how = "crashed" if failure.returncode < 0 else f"failed (exit code {failure.returncode})"
    detail = "; ".join(dict.fromkeys(errors[:5])) or failure.log.strip()[-500:]
    where = f" at {location}" if location else ""
    return ExportError(
        f"paddle2onnx {how} converting {type(model).__name__}{where}: {detail}. "
        f"This model cannot go through ONNX as is; {_NATIVE_HINT}.",
        framework="paddle",
        location=location,
    )


def _parameters_to_initializers(
    onnx_model: onnx.ModelProto, param_names: dict[str, str]
) -> dict[str, str]:
    """Turn parameter ``Constant`` nodes into initializers named by attribute path."""
    renamed: dict[str, str] = {}
    keep = []
    for node in onnx_model.graph.node:
        out = node.output[0] if node.output else ""
        if (
            node.op_type == "Constant"
            and out in param_names
            and len(node.attribute) == 1
            and node.attribute[0].name == "value"
        ):
            tensor = onnx_model.graph.initializer.add()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = param_names[out]
            renamed[out] = tensor.name
        else:
            keep.append(node)
    if not renamed:
        return {}
    del onnx_model.graph.node[:]
    onnx_model.graph.node.extend(keep)
    _rename_inputs(onnx_model.graph.node, renamed)
    for output in onnx_model.graph.output:
        if output.name in renamed:
            output.name = renamed[output.name]
    return {new: new for new in renamed.values()}


def _rename_inputs(nodes: Any, renamed: dict[str, str]) -> None:
    """Rename the inputs of ``nodes`` and of the nodes of their subgraphs (``If``/``Loop``
    branches read the parameters of the outer graph by name)."""
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _rename_inputs(attribute.g.node, renamed)
            for graph in attribute.graphs:
                _rename_inputs(graph.node, renamed)


class PendingPaddleExport:
    """A paddle export whose paddle2onnx conversion runs in a child process.

    :func:`start_paddle_export` traces the layer (in this process) and starts the conversion;
    :meth:`result` waits for it and attributes the graph. Meanwhile this process is free, e.g.
    to export the torch model of a pair. The temporary folder is removed by :meth:`result`
    or :meth:`close`.
    """

    def __init__(
        self,
        model: Model,
        tmp: tempfile.TemporaryDirectory[str],
        ops: list[ProgramOp],
        recorder: CallRecorder,
        conversion: Conversion,
        out_file: str,
        restore_signal: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self._restore_signal = restore_signal
        self._tmp = tmp
        self._ops = ops
        self._recorder = recorder
        self._conversion = conversion
        self._out_file = out_file

    def close(self) -> None:
        try:
            self._conversion.cancel()
            self._tmp.cleanup()
        finally:
            self._restore_signal()

    def result(self) -> ExportedGraph:
        import onnx

        try:
            try:
                self._conversion.wait()
                if not os.path.exists(self._out_file):
                    raise ConversionFailure("paddle2onnx wrote no ONNX file", 1)
            except ConversionFailure as failure:
                raise _explain_failure(failure, self._ops, self._recorder, self.model) from None
            onnx_model = onnx.load(self._out_file)
        finally:
            self.close()
        return _attribute(self.model, onnx_model, self._ops, self._recorder)


def start_paddle_export(
    model: Model, inputs: ModelInputs, *, opset: int | None = None
) -> PendingPaddleExport:
    """Trace ``model`` and start its conversion; see :class:`PendingPaddleExport`.

    Mode flags and RNG state are restored once the trace is done.

    Raises:
        InputError: the inputs do not fit ``model.forward``.
        ExportError: tracing failed.
    """
    import paddle

    specs = _ordered_specs(model, inputs)
    start_worker()  # paddle2onnx's import overlaps the trace
    recorder = CallRecorder()
    opset = opset or DEFAULT_OPSET
    restore_signal = _terminate_as_exit()
    tmp = tempfile.TemporaryDirectory(prefix="padiff_ir_")
    try:
        prefix = os.path.join(tmp.name, "model")
        with preserved_state(model):
            try:
                structure: list[Any] = []
                hook = model.register_forward_post_hook(
                    lambda layer, args, outputs: structure.append(outputs)
                )
                try:
                    with (
                        noticing_interrupts(),
                        recorder.recording(model),
                        config_code_left_eager(model),
                    ):
                        paddle.jit.save(model, prefix, input_spec=specs)
                finally:
                    hook.remove()
                recorder.output_structure = structure[0] if structure else None
            except Exception as err:
                reraise_interruption(err)
                if "could not get source code" in str(err):
                    raise ExportError(
                        f"paddle cannot read the source of {type(model).__name__}.forward "
                        "(defined interactively?): define the layer in a .py file",
                        framework="paddle",
                    ) from err
                raise ExportError(
                    f"paddle could not trace {type(model).__name__} to a static program: "
                    f"{paddle_trace_failure(err)}. This code cannot run in paddle's static "
                    f"graph, so the model cannot go through ONNX as is; {_NATIVE_HINT}.",
                    framework="paddle",
                ) from err
        model_file = prefix + ".json"
        if not os.path.exists(model_file):
            model_file = prefix + ".pdmodel"
        ops = read_program(model_file) if model_file.endswith(".json") else []
        out_file = os.path.join(tmp.name, "model.onnx")
        conversion = start_conversion(model_file, prefix + ".pdiparams", out_file, opset, tmp.name)
    except BaseException:
        tmp.cleanup()
        restore_signal()
        raise
    return PendingPaddleExport(model, tmp, ops, recorder, conversion, out_file, restore_signal)


def _terminate_as_exit() -> Callable[[], None]:
    """Until the returned function is called, SIGTERM raises ``SystemExit`` (as SIGINT raises
    ``KeyboardInterrupt``), so that the export's temporary folder and child process are
    cleaned up on the way out. Only in the main thread, and only where SIGTERM still has its
    default action (a program's own handler is left alone)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        return lambda: None

    def terminate(signum: int, frame: types.FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    restored: list[bool] = []

    def restore() -> None:
        if not restored and signal.getsignal(signal.SIGTERM) is terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        restored.append(True)

    return restore


def _is_output_leaf(value: object) -> bool:
    return not isinstance(value, (Mapping, list, tuple, str, bytes, int, float, bool, type(None)))


def _order_outputs(onnx_model: onnx.ModelProto, structure: Outputs) -> list[str] | None:
    """Put the graph outputs of a model that returns a dict in its eager order; their key paths.

    paddle's exporter flattens a returned dict by sorted key, its eager run (and torch) by
    insertion order: the graph outputs are reordered to the latter, so that outputs pair with
    the eager ones and with the other model's. None when the model returns no dict.
    """
    if structure is None or not _contains_mapping(structure):
        return None
    eager = output_key_paths(structure, _is_output_leaf)
    exported = output_key_paths(structure, _is_output_leaf, sort_dicts=True)
    outputs = list(onnx_model.graph.output)
    if len(outputs) != len(exported) or len(set(exported)) != len(exported):
        logger.debug(
            "paddle outputs: %d graph outputs for %d tensors; order kept",
            len(outputs),
            len(exported),
        )
        return None
    by_key = dict(zip(exported, outputs))
    reordered = [by_key[key] for key in eager]
    copies = [type(o)() for o in reordered]
    for copy, output in zip(copies, reordered):
        copy.CopyFrom(output)
    del onnx_model.graph.output[:]
    onnx_model.graph.output.extend(copies)
    return eager


def _leaves(value: Outputs) -> Iterator[Any]:
    """The tensors of a (nested) output in paddle's flattening order (dicts by sorted key)."""
    if _is_output_leaf(value):
        yield value
    elif isinstance(value, Mapping):
        for key in sorted(value):
            yield from _leaves(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)


def _repeat_aliased_outputs(onnx_model: onnx.ModelProto, structure: Outputs) -> None:
    """A tensor the model returns several times (``return y, y``) is one output of paddle's
    graph: it is listed once per return, as torch's exporter does, so that the outputs pair
    with the eager ones and with the other model's."""
    leaves = list(_leaves(structure)) if structure is not None else []
    first: dict[int, int] = {}
    for leaf in leaves:
        first.setdefault(id(leaf), len(first))
    outputs = list(onnx_model.graph.output)
    if len(first) == len(leaves) or len(outputs) != len(first):
        return
    del onnx_model.graph.output[:]
    onnx_model.graph.output.extend(outputs[first[id(leaf)]] for leaf in leaves)


def _contains_mapping(value: object) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, (list, tuple)) and any(_contains_mapping(v) for v in value)


def _attribute(
    model: Model, onnx_model: onnx.ModelProto, ops: list[ProgramOp], recorder: CallRecorder
) -> ExportedGraph:
    """Initializers named after parameters, every node attributed, metadata written."""
    unique_node_names(onnx_model)
    _repeat_aliased_outputs(onnx_model, recorder.output_structure)
    output_keys = _order_outputs(onnx_model, recorder.output_structure)
    param_names = {p.name: name for name, p in model.named_parameters()}
    param_names.update({b.name: name for name, b in model.named_buffers()})
    parameters = _parameters_to_initializers(onnx_model, param_names)
    node_calls: dict[str, int] = {}
    scopes = scopes_from_program(onnx_model, ops, recorder, node_calls)
    node_modules = fill_missing_scopes(onnx_model, scopes)
    modules = {name: type(layer).__name__ for name, layer in model.named_sublayers()}
    modules[""] = type(model).__name__
    write_attribution(
        onnx_model,
        framework="paddle",
        node_modules=node_modules,
        modules=modules,
        parameters=parameters,
        model_class=type(model).__name__,
        output_keys=output_keys,
        node_calls=node_calls,
    )
    logger.debug("exported paddle %s: %d nodes", type(model).__name__, len(onnx_model.graph.node))
    return ExportedGraph.from_model(onnx_model)


def export_paddle(model: Model, inputs: ModelInputs, *, opset: int | None = None) -> ExportedGraph:
    """Export ``model`` on ``inputs``; mode flags and RNG state are left as they were.

    Raises:
        InputError: the inputs do not fit ``model.forward``.
        ExportError: tracing or paddle2onnx failed (names the op/layer when it can).
    """
    return start_paddle_export(model, inputs, opset=opset).result()
