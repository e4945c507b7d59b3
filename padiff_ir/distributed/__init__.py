"""Sharded runs compared rank by rank: capture on every rank, canonical tensors, compare.

* :func:`capture_ranks` (every rank, in the user's own script under ``torchrun`` or
  ``python -m paddle.distributed.launch``): each module call of the rank, digested, with full
  tensors for a window of layers and steps, and each parameter's placement from the
  framework's metadata, into a store (a directory per rank);
* :class:`Run`: the store read back as logical tensors (shards joined on their split axis,
  data-parallel slices on the batch axis, pipeline stages by their global layer paths);
* :func:`compare_runs`: two stores compared window by window (digests first, full tensors
  where the digests disagree) in this process, local processes or Ray tasks; a
  :class:`ShardedResult` with the rank and placement of each culprit;
* :func:`logical_pairs`: the matcher's module pairs of two logical models, for runs of two
  frameworks.

Importing this package imports no framework and not Ray.
"""

from __future__ import annotations

from padiff_ir.distributed.canonical import Logical, Run
from padiff_ir.distributed.capture import RankCapture, Window, capture_ranks
from padiff_ir.distributed.compare import ENGINES, compare_runs
from padiff_ir.distributed.digest import Digest
from padiff_ir.distributed.pairs import logical_pairs
from padiff_ir.distributed.result import ShardCulprit, ShardedResult, SplitReplicas

__all__ = [
    "ENGINES",
    "Digest",
    "Logical",
    "RankCapture",
    "Run",
    "ShardCulprit",
    "ShardedResult",
    "SplitReplicas",
    "Window",
    "capture_ranks",
    "compare_runs",
    "logical_pairs",
]
