"""Whether a model's graph can run, asked before the export: a bfloat16 model's cannot.

onnxruntime's CPU provider has no bfloat16 kernels for the ops a model is made of (``Gemm``,
``MatMul``, ``Conv``: "NOT_IMPLEMENTED: Could not find an implementation" when the session
opens), and the graph path has never been run with another provider on bfloat16 graphs. So a
bfloat16 model is not exported: :func:`graphless_side` gives the
:class:`~padiff_ir.errors.ExportError`, naming the side, that sends the pair to the
module-by-module answer (:func:`~padiff_ir.compare.native_match.answer_natively`), where
``tolerance="auto"`` judges it against the noise measured in bfloat16. float16 graphs run on
the CPU and keep the graph path.
"""

from __future__ import annotations

import logging

from padiff_ir.errors import ExportError
from padiff_ir.frameworks import get_framework
from padiff_ir.pairing.pair import Side

__all__ = ["graphless_side"]

logger = logging.getLogger(__name__)


def graphless_side(side_a: Side, side_b: Side) -> ExportError | None:
    """The error that sends a pair with a bfloat16 model (its first floating parameter in
    bfloat16) to the module-by-module comparison (None: both graphs can run)."""
    for label, (model, framework, _) in zip("AB", (side_a, side_b)):
        if framework == "onnx":
            continue
        ops = get_framework(framework)
        dtype = ops.first_float(model)[0]
        if dtype is not None and ops.dtype_label(dtype) == "bfloat16":
            logger.debug("model %s computes in bfloat16: no graph", label)
            return ExportError(
                f"model {label} ({framework} {type(model).__name__}) computes in bfloat16, and "
                "onnxruntime's CPU provider has no bfloat16 kernels (Gemm, MatMul, Conv): the "
                "models are compared module by module (for op-level pairs, compare them in "
                "float32 or float16)",
                framework=framework,
                side=label,
            )
    return None
