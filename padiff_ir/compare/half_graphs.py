"""Whether onnxruntime can run a 16-bit model's graph, asked before the export.

onnxruntime's CPU provider has no bfloat16 kernels for the ops a model is made of (``Gemm``,
``MatMul``, ``Conv``, ``LayerNormalization``: "Could not find an implementation"), so a
bfloat16 model's graph cannot run on the CPU. :func:`graphless_side` says so before anything
is exported, as an :class:`~padiff_ir.errors.ExportError` naming the side: ``match`` then
answers module by module on the eager models (:func:`~padiff_ir.compare.native_match.
answer_natively`), and ``tolerance="auto"`` judges that answer against the noise measured in
bfloat16. float16 graphs run on the CPU and take the graph path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from padiff_ir.errors import ExportError
from padiff_ir.frameworks import get_framework
from padiff_ir.pairing.pair import Side

__all__ = ["graphless_side"]

logger = logging.getLogger(__name__)

_BFLOAT16_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider")
"""Providers with bfloat16 kernels for the common ops; the CPU's has none."""


def graphless_side(side_a: Side, side_b: Side, providers: Sequence[str]) -> ExportError | None:
    """The error that sends a bfloat16 model to the module-by-module comparison when
    ``providers`` has no provider with bfloat16 kernels (None: the graphs can run)."""
    if any(p in _BFLOAT16_PROVIDERS for p in providers):
        return None
    for label, (model, framework, _) in zip("AB", (side_a, side_b)):
        if framework == "onnx":
            continue
        ops = get_framework(framework)
        dtype = ops.first_float(model)[0]
        if dtype is not None and ops.dtype_label(dtype) == "bfloat16":
            return ExportError(
                f"model {label} ({framework} {type(model).__name__}) computes in bfloat16 and "
                f"onnxruntime's providers {tuple(providers)} have no bfloat16 kernels (Gemm, "
                "MatMul, Conv): its graph cannot run, so the models are compared module by "
                "module; for op-level pairs compare them in float32 or float16, or pass "
                "providers=('CUDAExecutionProvider',) on a GPU",
                framework=framework,
                side=label,
            )
    return None
