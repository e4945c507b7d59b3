"""One-call forms of the runner: :func:`run_all` and :func:`run_subgraph` without a :class:`Runner`.

:func:`run_subgraph` keeps its runner on the :class:`~padiff_ir.exporters.ExportedGraph`
(``subgraph_runner``: its sessions go with the graph, no state is kept here); a bare
``ModelProto`` has no place for one, so use a :class:`~padiff_ir.runtime.Runner` to reuse
sessions for one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from padiff_ir.runtime.runner import DEFAULT_PROVIDERS, Runner
from padiff_ir.runtime.store import ActivationStore

if TYPE_CHECKING:
    from padiff_ir.runtime.runner import ModelLike

__all__ = ["run_all", "run_subgraph"]

logger = logging.getLogger(__name__)


def run_all(
    exported_or_model: ModelLike,
    feeds: Mapping[str, np.ndarray],
    *,
    tensors: Iterable[str] | None = None,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    store: ActivationStore | None = None,
) -> ActivationStore:
    """Record every node output of a model for ``feeds``; see :meth:`Runner.run_all`.

    The caller owns the returned store: close it, or use it in a ``with`` block.
    """
    runner = Runner(exported_or_model, providers=providers)
    try:
        return runner.run_all(
            feeds, tensors=tensors, chunk_size=chunk_size, memory_budget=memory_budget, store=store
        )
    finally:
        runner.close()


def run_subgraph(
    exported: ModelLike,
    feeds: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    *,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
) -> dict[str, np.ndarray]:
    """Compute ``outputs`` of a graph from values given for any of its tensors.

    See :meth:`Runner.run_subgraph`. Sessions are kept on an exported graph
    (``exported.subgraph_runner``) for its providers, and go when the graph does; a bare
    ``ModelProto`` keeps none.
    """
    if not hasattr(exported, "subgraph_runner"):  # a ModelProto: nowhere to keep sessions
        logger.debug("run_subgraph sessions are not kept for %s", type(exported).__name__)
        runner = Runner(exported, providers=providers)
        try:
            return runner.run_subgraph(feeds, outputs)
        finally:
            runner.close()
    runner = exported.subgraph_runner
    if runner is None or runner.model is not exported.model:
        runner = exported.subgraph_runner = Runner(exported, providers=providers)
    elif runner.providers != tuple(providers):
        runner.close()
        runner.providers = tuple(providers)
    return runner.run_subgraph(feeds, outputs)
