"""Fetch the values of a tensor pair from two activation stores, in one layout; compare named
tensors of two stores once per check (:class:`ComparedTensors`)."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from padiff_ir.matching.types import TensorPair
from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays, default_workers

__all__ = ["ComparedTensors", "pair_values", "side_value"]


class ComparedTensors:
    """``compare_arrays`` of a tensor of A's store with one of B's, each computed once.

    The tensor pairs, the module outputs and the module inputs of a check name many of the
    same tensors; each pair of names is compared once per tolerance.

    Example:
        >>> compared = ComparedTensors({"x": np.ones(2)}, {"y": np.ones(2)})
        >>> first = compared.compare("x", "y", Tolerance())
        >>> compared.compare("x", "y", Tolerance()) is first, bool(first)
        (True, True)
    """

    def __init__(self, store_a: Mapping[str, Any], store_b: Mapping[str, Any]) -> None:
        self.store_a = store_a
        self.store_b = store_b
        self._done: dict[tuple[str, str, Tolerance], TensorMetrics] = {}

    def compare(self, name_a: str, name_b: str, tolerance: Tolerance) -> TensorMetrics:
        key = (name_a, name_b, tolerance)
        metrics = self._done.get(key)
        if metrics is None:
            metrics = compare_arrays(self.store_a[name_a], self.store_b[name_b], tolerance)
            self._done[key] = metrics
        return metrics

    def prefetch(self, requests: Iterable[tuple[str, str, Tolerance]]) -> None:
        """Compare ``(name of A, name of B, tolerance)`` requests ahead, on threads (numpy
        releases the GIL in its loops, and the frameworks are idle meanwhile): the values are
        read from the stores on this thread, a few at a time, so a spilled store is not
        loaded whole."""
        todo = [key for key in dict.fromkeys(requests) if key not in self._done]
        workers = min(default_workers(), len(todo))
        if workers < 2:
            return
        window = 2 * workers  # pairs whose values are held at once
        with ThreadPoolExecutor(workers, thread_name_prefix="padiff-compare") as pool:
            pending: collections.deque[tuple[Any, Future[TensorMetrics]]] = collections.deque()
            for key in todo:
                name_a, name_b, tolerance = key
                values = self.store_a[name_a], self.store_b[name_b]
                pending.append((key, pool.submit(compare_arrays, *values, tolerance)))
                while len(pending) >= window:
                    done, future = pending.popleft()
                    self._done[done] = future.result()
            for done, future in pending:
                self._done[done] = future.result()


def side_value(
    store: Mapping[str, Any], names: Sequence[str], layout: Mapping[str, Any] | None, *, side: str
) -> np.ndarray | None:
    """One side's value of a pair: a single tensor, or a group joined as ``layout`` says.

    ``layout`` applies to side ``b`` (it brings B's value to A's layout): ``concat_axis``
    joins a group, ``transpose`` permutes. Side ``a`` groups are concatenated along
    ``concat_axis`` (default the last axis). ``None`` when a tensor is not in the store
    (a tensor made up by a canonicalising pass has no runtime value).
    """
    if any(name not in store for name in names):
        return None
    values = [np.asarray(store[name]) for name in names]
    layout = layout or {}
    if len(values) == 1:
        value = values[0]
    else:
        value = np.concatenate(values, axis=int(layout.get("concat_axis", -1)))
    if side == "b" and "transpose" in layout and value.ndim == len(layout["transpose"]):
        value = np.transpose(value, layout["transpose"])
    return value


def pair_values(
    pair: TensorPair, store_a: Mapping[str, Any], store_b: Mapping[str, Any]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A's and B's values of ``pair`` (``None`` for a side with no runtime value)."""
    return (
        side_value(store_a, pair.a, pair.layout, side="a"),
        side_value(store_b, pair.b, pair.layout, side="b"),
    )
