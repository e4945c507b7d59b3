"""One-call forms of the runner: :func:`run_all` and :func:`run_subgraph` without a :class:`Runner`.

:func:`run_subgraph` caches its sessions per :class:`~padiff_ir.exporters.ExportedGraph` object
(dropped when the graph is garbage collected); a bare ``ModelProto`` cannot be tracked that way,
so use a :class:`~padiff_ir.runtime.Runner` to reuse sessions for one.
"""

from __future__ import annotations

import logging
import weakref
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


_SUBGRAPH_RUNNERS: dict[int, Runner] = {}


def _forget_runner(key: int) -> None:
    runner = _SUBGRAPH_RUNNERS.pop(key, None)
    if runner is not None:
        runner.close()


def run_subgraph(
    exported: ModelLike,
    feeds: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    *,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
) -> dict[str, np.ndarray]:
    """Compute ``outputs`` of a graph from values given for any of its tensors.

    See :meth:`Runner.run_subgraph`. Sessions are cached per ``exported`` object and providers,
    and dropped when that object is garbage collected; a bare ``ModelProto`` is not cached.
    """
    try:
        key = id(exported)
        runner = _SUBGRAPH_RUNNERS.get(key)
        if runner is None or runner.model is not getattr(exported, "model", exported):
            runner = Runner(exported, providers=providers)
            weakref.finalize(exported, _forget_runner, key)
            _SUBGRAPH_RUNNERS[key] = runner
        elif runner.providers != tuple(providers):
            runner.close()
            runner.providers = tuple(providers)
    except TypeError:  # not weak-referenceable (a ModelProto): no cache
        logger.debug("run_subgraph sessions are not cached for %s", type(exported).__name__)
        return Runner(exported, providers=providers).run_subgraph(feeds, outputs)
    return runner.run_subgraph(feeds, outputs)
