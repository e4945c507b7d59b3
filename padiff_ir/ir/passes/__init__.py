"""Canonicalising passes over the graph IR, and how to run them.

Each pass is a pure function ``graph -> PassResult(graph, modified)`` in a module of its own;
:func:`run_passes` runs an ordered tuple of them, :func:`canonicalize` the default ones.
"""

from __future__ import annotations

from padiff_ir.ir.passes._manager import DEFAULT_PASSES, canonicalize, run_passes
from padiff_ir.ir.passes._pass import Pass, PassResult
from padiff_ir.ir.passes.conv_bias_split import conv_bias_split
from padiff_ir.ir.passes.gemm_to_matmul_add import gemm_to_matmul_add
from padiff_ir.ir.passes.identity_alias import identity_alias
from padiff_ir.ir.passes.mark_shape_subgraphs import mark_shape_subgraphs

__all__ = [
    # running passes
    "DEFAULT_PASSES",
    "Pass",
    "PassResult",
    "canonicalize",
    "run_passes",
    # the passes, in their default order
    "identity_alias",
    "gemm_to_matmul_add",
    "conv_bias_split",
    "mark_shape_subgraphs",
]
