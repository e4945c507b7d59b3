"""The logical modules of two runs paired by the matcher.

A tensor-parallel model keeps its logical module paths (a ``ColumnParallelLinear`` sits where
the ``Linear`` was), so the pairs of two runs are the pairs of their logical models:
:func:`logical_pairs` asks :func:`padiff_ir.pairing.pair_models` for them on the unsharded
models (small configurations will do: the matcher reads structure, not weights).
"""

from __future__ import annotations

from padiff_ir.hints import Inputs, Model
from padiff_ir.pairing import pair_models

__all__ = ["logical_pairs"]


def logical_pairs(model_a: Model, model_b: Model, inputs: Inputs = None) -> dict[str, str]:
    """Module paths of ``model_a`` -> their partners in ``model_b`` (the matcher's module
    pairs; on eager traces when ``inputs`` are given, on the module trees otherwise), to pass
    as ``compare_runs(..., pairs=)``."""
    matching = pair_models(model_a, model_b, inputs, export=False, reuse=False)
    pairs: dict[str, str] = {}
    for pair in matching.module_pairs:
        if pair.call_a in (None, 0):
            pairs.setdefault(pair.a, pair.b)
    return pairs
