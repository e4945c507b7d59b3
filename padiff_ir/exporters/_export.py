"""``export``: any supported model object to an :class:`ExportedGraph`."""

from __future__ import annotations

import inspect
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import (
    DtypeKernelError,
    ExportError,
    InputError,
    ModelTypeError,
    OptionError,
)
from padiff_ir.exporters._graph import ExportedGraph
from padiff_ir.frameworks.detect import detect_framework
from padiff_ir.frameworks.inputs import ModelInputs, normalize_inputs
from padiff_ir.hints import Inputs, Model

__all__ = [
    "FRAMEWORK_LOCK",
    "MIN_OPSET",
    "StartedExport",
    "check_eager",
    "check_opset",
    "check_signature",
    "eager_failure",
    "export",
    "exporter_name",
    "forward_arg_names",
    "load_onnx",
    "start_export",
]

logger = logging.getLogger(__name__)


def load_onnx(model: Model) -> ExportedGraph:
    """An :class:`ExportedGraph` from an ``onnx.ModelProto`` or a path to an ``.onnx`` file.

    A file written by ``padiff-ir export`` keeps its attribution; a foreign file whose node names
    are scope paths (``/blocks.0/fc/Gemm``, as torch's TorchScript exporter writes them) gets
    module paths from them, otherwise none.
    """
    import onnx

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ModelTypeError(f"ONNX file {path!r} does not exist")
        try:
            model = onnx.load(path)
        except Exception as err:
            raise ModelTypeError(f"{path!r} is not a readable ONNX model: {err}") from err
    exported = ExportedGraph.from_model(model)
    if not exported.attributed:
        for node in model.graph.node:
            if node.name.startswith("/") and node.name.count("/") >= 2:
                exported.node_modules[node.name] = ".".join(node.name.split("/")[1:-1])
                exported.node_classes[node.name] = ""
    return exported


def forward_arg_names(model: Model, *, keyword_only: bool = False) -> list[str] | None:
    """Names of ``model.forward``'s positional arguments (and its keyword-only ones with
    ``keyword_only``); ``None`` if it takes ``*args`` or ``**kwargs``."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    kinds: set[inspect._ParameterKind] = {
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    }
    if keyword_only:
        kinds.add(inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds]


def check_signature(model: Model, inputs: ModelInputs) -> None:
    """Inputs' names and count against ``model.forward``'s signature.

    Raises:
        InputError: an unknown argument name, or more inputs than positional arguments.
    """
    names = forward_arg_names(model, keyword_only=inputs.keyword)
    if names is None:
        return
    if inputs.keyword:
        unknown = [n for n in inputs.names if n not in names]
        if unknown:
            raise InputError(
                f"{type(model).__name__}.forward has no argument {unknown[0]!r}; "
                f"its arguments are {names}"
            )
    elif len(inputs) > len(names):
        raise InputError(
            f"{type(model).__name__}.forward takes {len(names)} inputs {names}, got {len(inputs)}"
        )


def check_eager(model: Model, framework: str, inputs: ModelInputs) -> None:
    """Run the model once in eval mode on ``inputs``; a failure is the inputs' fault.

    The model's mode flags and RNG state are restored afterwards.

    Raises:
        InputError: naming the model, the inputs and the framework's complaint.
    """
    from padiff_ir.frameworks.state import preserved_state

    try:
        if framework == "torch":
            import torch

            args, kwargs = inputs.to_torch()
            with preserved_state(model), torch.no_grad():
                model(*args, **kwargs)
        else:
            import paddle

            args, kwargs = inputs.to_paddle()
            with preserved_state(model), paddle.no_grad():
                model(*args, **kwargs)
    except Exception as err:
        reraise_interruption(err)
        raise eager_failure(model, framework, inputs, err) from err


def eager_failure(model: Model, framework: str, inputs: ModelInputs, err: Exception) -> InputError:
    """The error for a model that does not run on the given inputs, naming its complaint."""
    if "could not get source code" in str(err):
        return InputError(
            f"paddle cannot read the source of {type(model).__name__}.forward (defined "
            "interactively?): define the layer in a .py file"
        )
    missing = missing_kernel(framework, str(err))
    if missing is not None:
        return missing
    detail = next((line.strip() for line in str(err).splitlines() if line.strip()), "")[:400]
    return InputError(
        f"{framework} model {type(model).__name__} fails on the given inputs "
        f"({inputs.describe()}): {type(err).__name__}: {detail}. Check the inputs' count, "
        "names, shapes and dtypes against the model's forward."
    )


_MISSING_KERNEL = (
    # paddle: "The kernel with key (CPU, Undefined(AnyLayout), float16) of kernel `matmul` is
    # not registered"
    re.compile(
        r"kernel with key \((?P<device>\w+), [^,]+, (?P<dtype>\w+)\) of kernel `(?P<op>\w+)`"
    ),
    # torch: "\"addmm_impl_cpu_\" not implemented for 'Half'"
    re.compile(r"\"(?P<op>\w+)\" not implemented for '(?P<dtype>Half|BFloat16)'"),
)
_TORCH_DTYPES = {"Half": "float16", "BFloat16": "bfloat16"}


def missing_kernel(framework: str, message: str) -> DtypeKernelError | None:
    """The :class:`DtypeKernelError` for a framework's complaint that it has no kernel for a
    16-bit dtype on its device (None for any other complaint).

    Example:
        >>> complaint = '"addmm_impl_cpu_" not implemented for ' + "'Half'"
        >>> error = missing_kernel("torch", complaint)
        >>> error.op, error.dtype
        ('addmm_impl_cpu_', 'float16')
    """
    for pattern in _MISSING_KERNEL:
        found = pattern.search(message)
        if found is None:
            continue
        dtype = _TORCH_DTYPES.get(found["dtype"], found["dtype"])
        device = found.groupdict().get("device") or "this device"
        what_to_do = (
            "run it on a GPU (paddle.set_device('gpu')), or compare it in float32 "
            "(model.to(dtype='float32'))"
            if framework == "paddle"
            else "run it on a GPU (model.cuda()), or compare it in float32 (model.float())"
        )
        return DtypeKernelError(
            f"{framework} has no {dtype} kernel for `{found['op']}` on {device}: the {dtype} "
            f"model cannot run here; {what_to_do}. padiff-ir compares a 16-bit model wherever "
            "its framework runs it (tolerance='auto' measures its noise)",
            framework=framework,
            op=found["op"],
            dtype=dtype,
        )
    return None


def exporter_name(framework: str) -> str:
    """The exporter that writes a ``framework`` model's graph, as the reports name it.

    Example:
        >>> exporter_name("paddle")
        'paddle2onnx'
    """
    if framework == "paddle":
        return "paddle2onnx"
    if framework == "torch":
        from padiff_ir.exporters._torchscript import selected_backend

        return f"the torch {selected_backend()} exporter"
    return f"the {framework} exporter"


#: Held while a model is exported or compared: the frameworks' global state (paddle's program
#: and name counters, torch's exporter, the state guard) is shared by every thread, so two
#: exports or ``match`` calls at once run one after the other.
FRAMEWORK_LOCK = threading.RLock()

#: The oldest ONNX opset an export may ask for.
MIN_OPSET = 7


def opset_range() -> tuple[int, int]:
    """The opsets an export may ask for: :data:`MIN_OPSET` to the newest the onnx package
    knows."""
    import onnx

    return MIN_OPSET, int(onnx.defs.onnx_opset_version())


def check_opset(opset: Any) -> None:
    """Raise :class:`OptionError` unless ``opset`` is None or an opset of :func:`opset_range`."""
    if opset is None:
        return
    low, high = opset_range()
    if isinstance(opset, bool) or not isinstance(opset, int) or not low <= opset <= high:
        raise OptionError(
            f"opset must be an ONNX opset from {low} to {high} (or None: the "
            f"exporter's default), got {opset!r}",
            option="opset",
        )


def export(
    model: Model, example_inputs: Inputs = None, *, opset: int | None = None, check: bool = True
) -> ExportedGraph:
    """Export a model to ONNX with every node attributed to the module it came from.

    Args:
        model: a ``torch.nn.Module``, a ``paddle.nn.Layer``, an ``onnx.ModelProto`` or a path to
            an ``.onnx`` file.
        example_inputs: the inputs to trace with (not needed for ONNX): one array or tensor, a
            sequence of them, or a dict from ``forward`` argument name to array; numpy arrays,
            torch tensors or paddle tensors; float or int64.
        opset: ONNX opset to export with (the exporter's default when ``None``).
        check: run the model once eagerly first, so that inputs that do not fit it raise an
            :class:`InputError` naming the problem rather than an exporter error.

    Returns:
        the :class:`ExportedGraph`; the model itself is left as it was (mode flags, parameters,
        RNG state) and no file is left behind.

    Raises:
        ModelTypeError: ``model`` is not a model. InputError: the inputs do not fit it.
        ExportError: the framework's exporter failed. OptionError: ``opset`` is out of range.

    Examples:
        >>> import torch
        >>> from padiff_ir.exporters import export
        >>> exported = export(torch.nn.Sequential(torch.nn.Linear(4, 2)), torch.zeros(3, 4))
        >>> sorted(set(exported.node_modules.values()))
        ['0']
    """
    check_opset(opset)
    with FRAMEWORK_LOCK:
        return _export(model, example_inputs, opset=opset, check=check)


def _export(
    model: Model, example_inputs: Inputs, *, opset: int | None, check: bool
) -> ExportedGraph:
    if detect_framework(model) == "onnx":
        return load_onnx(model)
    return start_export(model, example_inputs, opset=opset, check=check).result()


def _checked_inputs(
    model: Model, framework: str, example_inputs: Inputs, check: bool
) -> ModelInputs:
    if example_inputs is None:
        raise InputError(
            f"exporting a {framework} model needs example inputs: pass arrays or tensors"
        )
    inputs = normalize_inputs(example_inputs)
    check_signature(model, inputs)
    if check:
        check_eager(model, framework, inputs)
    return inputs


class StartedExport:
    """An export under way: :meth:`result` gives the :class:`ExportedGraph`.

    A paddle export converts in a child process, so this process can export another model
    (the torch side of a pair) meanwhile; other exports are done when started. A finished
    export goes into the export cache (``on_done``).
    """

    def __init__(
        self,
        done: ExportedGraph | None = None,
        pending: Any = None,
        on_done: Callable[[ExportedGraph], object] | None = None,
    ) -> None:
        self._done = done
        self._pending = pending
        self._on_done = on_done

    def result(self) -> ExportedGraph:
        if self._done is None:
            self._done = self._pending.result()
            self._pending = None
        if self._on_done is not None:
            on_done, self._on_done = self._on_done, None
            replacement = on_done(self._done)
            if isinstance(replacement, ExportedGraph):
                self._done = replacement
        return self._done

    def close(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None


def start_export(
    model: Model,
    example_inputs: Inputs = None,
    *,
    opset: int | None = None,
    check: bool = True,
    live: bool = False,
    fresh: bool = False,
) -> StartedExport:
    """Like :func:`export`, but a paddle model's conversion goes on in the background.

    A model exported before with the same structure, code and input signature is not exported
    again: the cached graph gets its current weights (:mod:`padiff_ir.exporters._cache`).
    With ``live`` the graph reads its weights from the model's tensors in place instead of
    holding a copy (:mod:`padiff_ir.exporters._live`), where the export allows it. With
    ``fresh`` the model is exported whatever the cache holds (and the cache keeps the new
    graph): a cached graph found stale is replaced.
    """
    with FRAMEWORK_LOCK:
        return _start_export(
            model, example_inputs, opset=opset, check=check, live=live, fresh=fresh
        )


def _start_export(
    model: Model,
    example_inputs: Inputs,
    *,
    opset: int | None,
    check: bool,
    live: bool = False,
    fresh: bool = False,
) -> StartedExport:
    from padiff_ir.exporters._cache import export_cache, refreshable_skeleton
    from padiff_ir.exporters._fingerprint import model_fingerprint
    from padiff_ir.exporters._live import filled_export

    framework = detect_framework(model)
    if framework == "onnx":
        return StartedExport(done=load_onnx(model))
    inputs = _checked_inputs(model, framework, example_inputs, check)
    key = model_fingerprint(model, framework, inputs, opset) if export_cache.enabled else ""
    if key and not fresh:
        cached = export_cache.lookup(key, model, framework, live=live)
        if cached is not None:
            cached.fingerprint = key
            return StartedExport(done=cached)

    def remember(exported: ExportedGraph) -> ExportedGraph | None:
        # an export the cache cannot refresh (a weight folded into a constant) has no
        # fingerprint: what is remembered by fingerprint may not be reused for it
        if key:
            skeleton = export_cache.store(key, exported, model, framework)
        else:
            skeleton = refreshable_skeleton(exported, model, framework) if live else None
        if skeleton is None:
            return None
        if key:
            exported.fingerprint = key
        if not live:
            return None
        replacement = filled_export(skeleton, model, framework, live=True)
        if replacement is not None:
            replacement.fingerprint = exported.fingerprint
        return replacement

    if framework == "torch":
        from padiff_ir.exporters.torch_exporter import export_torch

        return StartedExport(done=export_torch(model, inputs, opset=opset), on_done=remember)
    from padiff_ir.exporters.paddle_exporter import start_paddle_export

    return StartedExport(pending=start_paddle_export(model, inputs, opset=opset), on_done=remember)


def export_pair(
    model_a: Model,
    inputs_a: Inputs,
    model_b: Model,
    inputs_b: Inputs,
    *,
    opset: int | None = None,
    check: bool = True,
    live: bool = False,
    fresh: tuple[bool, bool] = (False, False),
) -> tuple[ExportedGraph, ExportedGraph]:
    """Both models of a pair exported; a paddle side converts while the other side exports.
    ``live``: as for :func:`start_export`; ``fresh``: per side, as for :func:`start_export`.

    Raises:
        what :func:`export` raises, for whichever side fails first.
    """
    sides = [(model_a, inputs_a), (model_b, inputs_b)]
    # start paddle exports first: their conversion overlaps the other side's export
    order = sorted(range(2), key=lambda i: detect_framework(sides[i][0]) != "paddle")
    started: dict[int, StartedExport] = {}
    side = 0
    try:
        for side in order:
            model, raw = sides[side]
            started[side] = start_export(
                model, raw, opset=opset, check=check, live=live, fresh=fresh[side]
            )
        results = []
        for side in range(2):
            results.append(started[side].result())
        return results[0], results[1]
    except ExportError as err:
        err.side = "AB"[side]
        raise
    finally:
        for pending in started.values():
            pending.close()
