"""padiff-ir: tell whether a torch model and a paddle model compute the same thing, and where not.

Both models are exported to ONNX with every node attributed to the module it came from, turned
into a framework-neutral graph IR, matched and run node by node.

Importing ``padiff_ir`` imports neither torch nor paddle; each framework is imported when first
needed.

Examples:
    Export a model, see which module each ONNX node came from::

        >>> import torch
        >>> import padiff_ir
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        >>> exported = padiff_ir.export(model, torch.zeros(2, 4))
        >>> sorted(set(exported.node_modules.values()))
        ['0', '1']
        >>> graph = padiff_ir.canonicalize(padiff_ir.build_graph(exported))
        >>> [op.op_type for op in graph.data_ops()]
        ['MatMul', 'Add', 'Relu']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from padiff_ir.hints import Inputs, Model

__version__ = "0.1.0"

__all__ = [
    # the main jobs
    "match",
    "MatchResult",
    "Tolerance",
    # many batches, one export
    "Comparison",
    "BatchResults",
    "Batches",
    "export_cache",
    "clear",
    "ProgressDisplay",
    "auto_diff",
    "DiffResult",
    # sharded runs, rank by rank
    "capture_ranks",
    "compare_runs",
    "logical_pairs",
    "ShardedResult",
    "Window",
    # layer maps and weights
    "LayerMap",
    "assign_weight",
    "auto_layer_map",
    "create_model",
    "register_transform",
    "register_weight_transform",
    # export
    "ExportCache",
    "ExportedGraph",
    "export",
    # graph IR
    "Graph",
    "build_graph",
    "canonicalize",
    # runtime
    "ActivationStore",
    "run_all",
    # errors
    "AutoDiffError",
    "DtypeKernelError",
    "ExecutionError",
    "ExportError",
    "FileFormatError",
    "IRError",
    "InputError",
    "LayoutError",
    "MatchError",
    "ModelTypeError",
    "OptionError",
    "PadiffError",
    "ReportError",
    "UnknownModelError",
    "WeightAssignError",
]

_LAZY = {
    "MatchResult": "padiff_ir.compare",
    "Comparison": "padiff_ir.compare.comparison",
    "BatchResults": "padiff_ir.compare.batches",
    "Batches": "padiff_ir.compare.batches",
    "export_cache": "padiff_ir.exporters",
    "ProgressDisplay": "padiff_ir._console",
    "ExportCache": "padiff_ir.exporters",
    "auto_diff": "padiff_ir.native",
    "DiffResult": "padiff_ir.native",
    "capture_ranks": "padiff_ir.distributed",
    "compare_runs": "padiff_ir.distributed",
    "logical_pairs": "padiff_ir.distributed",
    "ShardedResult": "padiff_ir.distributed",
    "Window": "padiff_ir.distributed",
    "Tolerance": "padiff_ir.metrics",
    "LayerMap": "padiff_ir.pairing.layer_map",
    "assign_weight": "padiff_ir.pairing.assign",
    "auto_layer_map": "padiff_ir.pairing.assign",
    "create_model": "padiff_ir.frameworks",
    "register_transform": "padiff_ir.matching.transforms",
    "register_weight_transform": "padiff_ir.matching.transforms",
    "ExportedGraph": "padiff_ir.exporters",
    "export": "padiff_ir.exporters",
    "Graph": "padiff_ir.ir",
    "build_graph": "padiff_ir.ir",
    "canonicalize": "padiff_ir.ir",
    "ActivationStore": "padiff_ir.runtime",
    "run_all": "padiff_ir.runtime",
}

from padiff_ir.errors import (  # noqa: E402
    AutoDiffError,
    DtypeKernelError,
    ExecutionError,
    ExportError,
    FileFormatError,
    InputError,
    IRError,
    LayoutError,
    MatchError,
    ModelTypeError,
    OptionError,
    PadiffError,
    ReportError,
    UnknownModelError,
    WeightAssignError,
)

if TYPE_CHECKING:
    from padiff_ir._console import ProgressDisplay
    from padiff_ir.compare import MatchResult
    from padiff_ir.compare.batches import Batches, BatchResults
    from padiff_ir.compare.comparison import Comparison
    from padiff_ir.distributed import (
        ShardedResult,
        Window,
        capture_ranks,
        compare_runs,
        logical_pairs,
    )
    from padiff_ir.exporters import ExportCache, ExportedGraph, export, export_cache
    from padiff_ir.frameworks import create_model
    from padiff_ir.ir import Graph, build_graph, canonicalize
    from padiff_ir.matching.transforms import register_transform, register_weight_transform
    from padiff_ir.metrics import Tolerance
    from padiff_ir.native import DiffResult, auto_diff
    from padiff_ir.pairing.assign import assign_weight, auto_layer_map
    from padiff_ir.pairing.layer_map import LayerMap
    from padiff_ir.runtime import ActivationStore, run_all


def match(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    compare_mode: str | None = None,
    layer_map: Any = None,
    assign_weights: bool = False,
    tolerances: Mapping[str, Mapping[str, float | str] | Tolerance] | None = None,
    localize: bool = True,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
    memory_budget: int | None = None,
    opset: int | None = None,
    progress: Callable[[str], None] | None = None,
    keys: Any = None,
    tolerance: Tolerance | str | None = None,
) -> MatchResult | BatchResults:
    """Do two models compute the same thing? If not, where do they part, and why?

    Both models are exported to ONNX with every node attributed to its module, matched without
    a hand-written layer map, run in onnxruntime (optimisations off) with every intermediate
    exposed, and compared pair by pair. For every module pair whose outputs fail, B's module is
    rerun from A's inputs to separate its own error from the error it inherited; the culprits
    are the innermost modules whose own error fails, with the op attributes and parameters that
    differ. Fused and permuted parameter layouts (a grouped ``qkv_proj``, ``[up; gate]``, RoPE
    row pairs) are found by probing the models and compared through.

    Args:
        model_a, model_b: torch modules, paddle layers or ONNX files, in either order and any
            combination (torch vs torch works too). A is the reference.
        inputs: numpy arrays (one, a sequence, or a dict by argument name) used for both
            models, or a pair of per-framework inputs such as ``({'x': paddle_tensor},
            {'x': torch_tensor})``, matched to the models by tensor type whatever the order.
            Or many batches: a torch or paddle ``DataLoader``, an iterator, a generator,
            ``Batches(list_of_batches)``, or two of them, one per model (``(torch_loader,
            paddle_loader)``, put in order by framework); the models are exported and
            matched once, each batch is checked, and the result is a :class:`BatchResults`.
        tolerance: how close is close enough. By default (``"auto"``) each module is judged
            against its own numerical noise, measured on the models: a float64 shadow of A
            gives each tensor's float32 rounding error, and B passes where ``RMSE(B, A64) <=
            2 * RMSE(A32, A64)`` plus a dtype floor; a culprit is a layer whose own error is
            many times its own noise, whatever the scale of its activations, and
            ``result.noise`` holds the floors (cost: one more eager forward of A, in
            float64). ``"fixed"``, a :class:`Tolerance` (the three below as one object),
            or any of ``atol`` / ``rtol`` / ``compare_mode``: fixed bounds instead, as
            PaDiff judges.
        atol, rtol: the fixed bounds (finite numbers >= 0; ``1e-5`` each when not passed);
            passing one (without ``tolerance="auto"``) means a fixed tolerance.
        compare_mode: ``strict`` (elementwise, the default), ``mean`` or ``abs_mean``
            (PaDiff's modes). The fixed defaults (``1e-5``, ``1e-5``, ``strict``) differ
            from :func:`auto_diff`'s on purpose: ``match`` judges every intermediate tensor
            element by element in float32 through onnxruntime, where ``rtol=1e-7`` on means
            (PaDiff's ``auto_diff`` defaults, kept so its flows give PaDiff's verdicts)
            would flag rounding. Under ``"auto"`` the fixed bounds still measure each pair
            (``result.pairs``) and judge what has no measured noise (an ONNX file's model).
        layer_map: a :class:`LayerMap` (or a dict of pins ``{path_a: path_b}``) honoured by the
            matching: pins, ignored modules, black boxes.
        assign_weights: first copy A's weights into B through the parameter map (changes B).
        tolerances: per-tensor overrides, ``{tensor of A: {"atol": ..., "rtol": ...,
            "mode": ...}}`` or ``{tensor of A: Tolerance(...)}``; every name must be a tensor
            of A's exported graph (as in ``result.pairs[i].a``).
        localize: measure own errors and find culprits (on by default).
        providers: onnxruntime execution providers.
        memory_budget: bytes of activations to keep in RAM per model (the rest is spilled).
        opset: ONNX opset to export with (7 to the newest the onnx package knows).
        progress: called with a short message as each stage starts (the CLI prints them),
            and with ``batch i/N`` per batch; :class:`ProgressDisplay` shows them as the CLI
            does (rich rows and a batch bar on a terminal, plain lines elsewhere).
        keys: how to pick each model's inputs out of a batch: ``(keys_a, keys_b)``, each a
            dict ``{forward argument: batch key}``, a sequence of batch keys or a function of
            the batch (e.g. ``({"img": "image"}, {"image": "image"})``).

    Returns:
        a :class:`MatchResult`: ``bool(result)`` is the verdict, ``str(result)`` a summary,
        ``result.culprits`` / ``result.first_divergence`` the answer, ``result.to_json()`` data.
        Over batches a :class:`BatchResults`: a :class:`MatchResult` per batch, the first
        failing batch, the worst pair of each.

    An export is cached (:data:`export_cache`): a second call on models of the same structure,
    code and input signature reuses the graphs with the models' current weights. The graphs
    read the weights from the models' tensors (no copy), and a second call on the same two
    model objects reuses the first call's onnxruntime sessions; :func:`clear` forgets all that.

    Raises:
        OptionError: an option with a value it cannot take, named in the message with the
            values it accepts (checked before anything runs; an unknown ``tolerances`` name
            once A's graph is built). InputError: the inputs do not fit a model.
        ExportError: an ONNX file's partner cannot go through ONNX. Two framework models
            are never refused for that: when one cannot be exported (a wrapped ``forward``,
            Python control flow), they are compared module by module on their eager runs,
            own errors included, and ``result.fallback`` says which side and why.
        LayoutError: no known parameter layout of a fused group (q/k/v into one projection)
            reproduces its module; the message names the shapes and the candidates tried.
        MatchError: the models have different output counts, or the layer map names modules
            the models do not have.

    Outputs returned as a dict are paired by key, whatever order each framework flattens
    them in; NaN and Inf agree where both sides have them at the same positions.

    Examples:
        >>> import padiff_ir
        >>> from padiff_ir.zoo import get_pair
        >>> pair = get_pair("mlp")
        >>> result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
        >>> bool(result), result.culprits
        (True, [])

        Over batches (here an iterator of two; a DataLoader works the same way)::

        >>> batches = iter([pair.inputs, {k: v * 2 for k, v in pair.inputs.items()}])
        >>> results = padiff_ir.match(pair.torch_model, pair.paddle_model, batches)
        >>> bool(results), len(results), results.first_failing
        (True, 2, None)
    """
    from padiff_ir.compare.batches import is_batches, match_batches
    from padiff_ir.compare.options import MatchOptions, auto_tolerance
    from padiff_ir.compare.pipeline import match as run_match
    from padiff_ir.metrics import Tolerance

    options = MatchOptions(
        atol=atol,
        rtol=rtol,
        compare_mode=compare_mode,
        layer_map=layer_map,
        assign_weights=assign_weights,
        tolerances=tolerances or {},
        localize=localize,
        providers=tuple(providers),
        memory_budget=memory_budget,
        opset=opset,
        progress=progress,
        **({"tolerance": tolerance} if isinstance(tolerance, Tolerance) else {}),
        auto_tolerance=auto_tolerance(tolerance, atol, rtol, compare_mode),
    )
    if is_batches(inputs):
        return match_batches(model_a, model_b, inputs, options, keys=keys)
    if keys is not None:
        from padiff_ir.compare.comparison import select_inputs
        from padiff_ir.frameworks import detect_framework
        from padiff_ir.frameworks.wrapper import unwrap_model

        frameworks = (detect_framework(unwrap_model(m)) for m in (model_a, model_b))
        inputs = select_inputs(inputs, keys, *frameworks)
    return run_match(model_a, model_b, inputs, options)


def clear(*, disk: bool = False) -> None:
    """Forget everything padiff-ir keeps from one call to the next.

    That is the one cache (:mod:`padiff_ir.pairing.cache`): the exports held in memory
    (:data:`export_cache`), the graph IR and eager traces of recent exports, and per pair of
    models the matching every entry point reuses, what ``auto_diff`` left for its next call and
    the onnxruntime sessions a ``match`` kept (released now). The next call exports and matches
    afresh. With ``disk`` the export cache's files are removed too.

    Example:
        >>> import padiff_ir
        >>> padiff_ir.clear()
        >>> len(padiff_ir.export_cache), padiff_ir.export_cache.hits
        (0, 0)
    """
    from padiff_ir.pairing.cache import pair_cache

    pair_cache.clear(disk=disk)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'padiff_ir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
